"""Data and streams: checksummed, mirror-aware dataset loaders and their file registry, and the
serving scenarios built from them (data-, class- and domain-incremental, real time-ordered
streams). The lowest layer: it imports no other part of paperlib. Modules: dataset_registry,
datasets, streams."""
