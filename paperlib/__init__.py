"""paperlib: a reproducible companion to *Neural Network Retraining for Model Serving*
(Klabjan & Zhu, arXiv:2004.14203).

Modules, one idea each:

- :mod:`paperlib.datasets`      checksummed, mirror-aware dataset loaders
- :mod:`paperlib.streams`       serving scenarios (data-/class-/domain-incremental, real streams)
- :mod:`paperlib.models`        networks with named parameter groups
- :mod:`paperlib.bandits`       multi-armed bandit policies (``pull`` / ``update``)
- :mod:`paperlib.samples`       sample sources (new only, all seen, replay, the sample bandit)
- :mod:`paperlib.weights`       weight scopes (all, fixed subset, the weight bandit)
- :mod:`paperlib.regularizers`  importance regularisers (the paper's, EWC, online EWC, SI, MAS)
- :mod:`paperlib.plugins`       the hook contract every composable piece implements
- :mod:`paperlib.retrain`       one retraining round: sample source x weight scope x regularisers
- :mod:`paperlib.runner`        the serving simulation (rounds, served predictions, metrics, cost)
- :mod:`paperlib.metrics`       metric formulas and the typed per-round record
- :mod:`paperlib.accounting`    compute accounting (FLOPs, seconds, memory)
- :mod:`paperlib.methods`       named methods and their hyper-parameters
- :mod:`paperlib.config`        the validated run configuration and profiles
- :mod:`paperlib.store`         the results store (hash-keyed, atomic)
- :mod:`paperlib.cli`           ``paperlib run -p NAME VALUE ...``
- :mod:`paperlib.plots`         seaborn figure helpers
- :mod:`paperlib.provenance`    what a results key hashes besides parameters; pinned threads
- :mod:`paperlib.claims`        README claims checked against the results tables
- :mod:`paperlib.reprocheck`    a fresh reproduction compared with the committed tables
"""

__version__ = "0.1.0"
