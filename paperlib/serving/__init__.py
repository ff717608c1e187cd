"""Serving: the validated run configuration and profiles, the serving simulation (rounds, served
predictions, metrics, cost), the hash-keyed results store and the provenance its keys hash
(code, data, torch, threads). Modules: config, provenance, runner, store."""
