"""The retraining engine: networks with named parameter groups, compute accounting and metric
formulas, the plugin hooks, per-sample losses, sample sources, weight scopes, the bandit
policies they draw from and the sample bandit's rewards, the CUDA numeric policy, and one
retraining round (Retrainer). Imports only paperlib.data and the base modules. Modules:
accounting, bandit_policy, bandits, determinism, exp3, finite, losses, metrics, models, plugins,
retrain, rewards, samples, stochastic_bandits, weights."""
