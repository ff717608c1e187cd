"""paperlib: a reproducible companion to *Neural Network Retraining for Model Serving*
(Klabjan & Zhu, arXiv:2004.14203).

The package is layered; imports only point down (``tests/test_layers.py`` checks it):

1. data and streams: checksummed dataset loaders, serving scenarios (:func:`load_dataset`,
   :func:`build_stream`);
2. engine: models, compute accounting, the plugin hooks, sample sources, weight scopes, bandit
   policies and one retraining round (:class:`Retrainer`, :class:`Plugin`);
3. method: importance regularisers and the named methods (:data:`METHODS`);
4. serving: the validated configuration, the serving simulation and the results store
   (:class:`RunConfig`, :func:`run`);
5. reproduction: grids (run on Dask by :mod:`paperlib.repro.sweep`), figures, tables with their
   provenance and checked README claims, notebooks, benchmarks, the GPU plan, the command line.

The public API below is importable from ``paperlib`` directly:

>>> import paperlib
>>> result = paperlib.run({"dataset": "digits", "method": "bandit", "profile": "smoke"},
...                       store=False)
>>> result.config.method, "final_avg_accuracy" in result.summary, "ewc" in paperlib.METHODS
('bandit', True, True)
"""

from paperlib.data.datasets import DataError, Dataset, load_dataset
from paperlib.data.streams import Chunk, Stream, build_stream
from paperlib.engine.accounting import ComputeMeter, RoundCost
from paperlib.engine.bandits import POLICIES, Policy, make_policy
from paperlib.engine.models import build_model
from paperlib.engine.plugins import Plugin, RoundContext, StepContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.samples import SampleSource, SeenData
from paperlib.engine.weights import WeightScope
from paperlib.method.methods import METHODS, build_method
from paperlib.method.regularizers import REGULARIZERS, Regularizer, make_regularizer
from paperlib.serving.config import FIELDS, RunConfig
from paperlib.serving.runner import RunResult, run
from paperlib.spec import ConfigError
from paperlib.version import __version__

__all__ = [
    "FIELDS", "METHODS", "POLICIES", "REGULARIZERS", "Chunk", "ComputeMeter", "ConfigError",
    "DataError", "Dataset", "Plugin", "Policy", "Regularizer", "Retrainer", "RoundContext",
    "RoundCost", "RunConfig", "RunResult", "SampleSource", "SeenData", "StepContext", "Stream",
    "TrainSettings", "WeightScope", "__version__", "build_method", "build_model", "build_stream",
    "load_dataset", "make_policy", "make_regularizer", "run",
]
