"""The validated run configuration shared by notebooks, the CLI and the reproduction.

Every run is described by one flat set of named parameters (the *vocabulary*): general ones
listed in :data:`FIELDS` and the chosen method's hyper-parameters (:mod:`paperlib.method.methods`).
A *profile* (``smoke`` for tests, ``quick`` for CPU-sized runs, ``paper`` for full settings)
supplies defaults; any explicit parameter overrides it. Unknown or mistyped names are an
error that lists the valid ones (papermill itself only warns), and values are type- and
range-checked.

>>> cfg = RunConfig.from_params({"dataset": "digits", "method": "finetune", "profile": "smoke"})
>>> cfg.dataset, cfg.method, cfg.epochs
('digits', 'finetune', 1.0)
>>> RunConfig.from_params({"datset": "digits"})
Traceback (most recent call last):
...
paperlib.spec.ConfigError: unknown parameter 'datset' (did you mean 'dataset'?). Valid parameters: ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paperlib.spec import ConfigError, Spec, did_you_mean
from paperlib.version import __version__

DATASETS = ("mnist", "fashion_mnist", "cifar10", "elec2", "weather", "digits")
SCENARIOS = ("data_incremental", "class_incremental", "rotated", "permuted", "stream", "split_task",
             "split_class")
PROFILES = ("smoke", "quick", "paper")
IMAGE_DATASETS = ("mnist", "fashion_mnist", "cifar10", "digits")
TABULAR_DATASETS = ("elec2", "weather")


FIELDS: dict[str, Spec] = {
    "dataset": Spec("str", DATASETS, help="dataset name"),
    "scenario": Spec("str", SCENARIOS, help="serving scenario"),
    "method": Spec("str", help="named method (paperlib.method.methods.METHODS)"),
    "seed": Spec("int", lo=0, help="random seed (data split, init, sampling)"),
    "device": Spec("str", ("auto", "cpu", "cuda"), help="auto = CUDA when available"),
    "profile": Spec("str", PROFILES, help="defaults: smoke (tests), quick (CPU), paper (full)"),
    "model": Spec("str", ("auto", "mlp", "lenet", "cifar_cnn", "tabular_mlp"),
                  help="network; auto picks by dataset and profile"),
    "hidden_widths": Spec("ints", optional=True, help="MLP hidden widths, e.g. 256,256"),
    "epochs_initial": Spec("float", lo=0.01, help="epochs that train the first served model"),
    "epochs": Spec("float", lo=0.01, help="epochs per retraining round (unit of the default step counts)"),
    "steps": Spec("int", lo=1, optional=True, help="fixed steps per round (not with budget)"),
    "budget": Spec("float", lo=0.0, optional=True,
                   help="training FLOPs per round, in full-model passes over the new chunk "
                        "(budget * n_new * full-step FLOPs per sample); None = the method's "
                        "default step count"),
    "batch_size": Spec("int", lo=1, help="mini-batch size"),
    "lr": Spec("float", lo=0.0, hi=10.0, help="learning rate"),
    "optimizer": Spec("str", ("adam", "sgd")),
    "grad_clip": Spec("float", lo=0.0, optional=True, help="max gradient norm (None = off)"),
    "lr_schedule": Spec("str", ("constant", "warmup_cosine"),
                        help="per-round learning-rate schedule, every method alike"),
    "freeze_bn_stats": Spec("bool", help="batch norm of frozen groups in eval mode while frozen"),
    "max_train": Spec("int", lo=10, optional=True, help="stratified training subset size"),
    "max_test": Spec("int", lo=10, optional=True, help="stratified test subset size"),
    "probe_size": Spec("int", lo=1, help="probe samples for the negative flip rate"),
    "n_shards": Spec("int", lo=2, help="data_incremental: shards of the training set"),
    "initial_shards": Spec("int", lo=1, help="data_incremental: shards training the first model"),
    "old_classes": Spec("ints", help="class_incremental: classes of the first model"),
    "n_new_shards": Spec("int", lo=1, help="class_incremental: rounds bringing new classes"),
    "n_domains": Spec("int", lo=2, help="rotated/permuted: number of domains"),
    "rotation_step": Spec("float", lo=0.0, hi=180.0, help="rotated: degrees between domains"),
    "n_chunks": Spec("int", lo=2, help="stream: consecutive chunks"),
    "initial_chunks": Spec("int", lo=1, help="stream: chunks training the first model"),
    "n_tasks": Spec("int", lo=2, help="split_task / split_class: tasks of two classes"),
    "store_capacity": Spec("int", lo=1, optional=True,
                           help="bound on stored past samples (reservoir); None = keep all"),
    "guard_tolerance": Spec("float", lo=0.0, hi=1.0, optional=True,
                            help="keep the served model if held-out accuracy drops by more"),
    "guard_fraction": Spec("float", lo=0.01, hi=0.5, help="share of each chunk held out for the guard"),
}

# Profile defaults; a profile may depend on the dataset (see profile_defaults).
_BASE: dict[str, Any] = {
    "dataset": "digits", "scenario": "data_incremental", "method": "finetune", "seed": 0,
    "device": "auto", "profile": "quick", "model": "auto", "hidden_widths": None,
    "steps": None, "budget": None, "optimizer": "adam", "grad_clip": 5.0, "max_test": None,
    "lr_schedule": "constant", "freeze_bn_stats": True,
    "old_classes": (0, 1, 2, 3, 4), "n_shards": 10, "initial_shards": 5, "n_domains": 5,
    "rotation_step": 30.0, "n_tasks": 5, "store_capacity": None, "guard_tolerance": None,
    "guard_fraction": 0.1,
}
_PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {"epochs_initial": 2, "epochs": 1, "batch_size": 32, "lr": 1e-3, "max_train": 600,
              "max_test": 300, "probe_size": 200, "n_shards": 4, "initial_shards": 2,
              "n_new_shards": 2, "n_domains": 3, "n_chunks": 5, "initial_chunks": 2,
              "hidden_widths": (32,)},
    "quick": {"epochs_initial": 3, "epochs": 2, "batch_size": 64, "lr": 1e-3, "max_train": 12000,
              "max_test": 2000, "probe_size": 1000, "n_new_shards": 5, "n_chunks": 20,
              "initial_chunks": 2},
    "paper": {"epochs_initial": 10, "epochs": 5, "batch_size": 128, "lr": 1e-4, "max_train": None,
              "max_test": None, "probe_size": 2000, "n_new_shards": 10, "n_chunks": 40,
              "initial_chunks": 4},
}


def profile_defaults(profile: str, dataset: str) -> dict[str, Any]:
    """Defaults of ``profile`` for ``dataset`` (tabular streams are small: no subsampling)."""
    d = {**_BASE, **_PROFILE_DEFAULTS[profile]}
    if dataset in TABULAR_DATASETS:
        d.update(max_train=None, max_test=None, lr=1e-3, batch_size=min(d["batch_size"], 64))
    if dataset == "digits":
        d.update(max_train=None, max_test=None, probe_size=min(d["probe_size"], 450))
    return d


def resolve_model(cfg: RunConfig) -> str:
    """``model="auto"``: tabular -> tabular_mlp; paper profile images -> the authors' LeNet;
    smaller profiles -> MLP (CPU-sized)."""
    if cfg.model != "auto":
        return cfg.model
    if cfg.dataset in TABULAR_DATASETS:
        return "tabular_mlp"
    return "lenet" if cfg.profile == "paper" else "mlp"


def _coerce(name: str, value: Any, spec: Spec) -> Any:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if spec.optional:
            return None
        raise ConfigError(f"parameter {name!r} may not be None")
    try:
        if spec.kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif spec.kind == "float":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        elif spec.kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            elif not isinstance(value, bool | int):
                raise ValueError
            value = bool(value)
        elif spec.kind == "ints":
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            value = tuple(int(v) for v in value)
        elif spec.kind == "str":
            if not isinstance(value, str):
                raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"parameter {name!r} expects {spec.kind}, got {value!r}") from None
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"parameter {name!r} must be one of {list(spec.choices)}, got {value!r}")
    if spec.lo is not None and spec.kind in ("int", "float") and value < spec.lo:
        raise ConfigError(f"parameter {name!r} must be >= {spec.lo}, got {value!r}")
    if spec.hi is not None and spec.kind in ("int", "float") and value > spec.hi:
        raise ConfigError(f"parameter {name!r} must be <= {spec.hi}, got {value!r}")
    return value


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved, validated run configuration (build with :meth:`from_params`)."""

    dataset: str
    scenario: str
    method: str
    seed: int
    device: str
    profile: str
    model: str
    hidden_widths: tuple[int, ...] | None
    epochs_initial: float
    epochs: float
    steps: int | None
    budget: float | None
    batch_size: int
    lr: float
    optimizer: str
    grad_clip: float | None
    lr_schedule: str
    freeze_bn_stats: bool
    max_train: int | None
    max_test: int | None
    probe_size: int
    n_shards: int
    initial_shards: int
    old_classes: tuple[int, ...]
    n_new_shards: int
    n_domains: int
    rotation_step: float
    n_chunks: int
    initial_chunks: int
    n_tasks: int
    store_capacity: int | None
    guard_tolerance: float | None
    guard_fraction: float
    hparams: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunConfig:
        """Validate ``params`` (any subset of the vocabulary) against the profile defaults."""
        from paperlib.method.methods import METHODS, method_hparam_specs

        params = dict(params)
        method = params.get("method", _BASE["method"])
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}{did_you_mean(str(method), list(METHODS))}. "
                              f"Valid methods: {', '.join(METHODS)}")
        hp_specs = method_hparam_specs(method)
        valid = list(FIELDS) + list(hp_specs)
        for name in params:
            if name not in valid:
                raise ConfigError(
                    f"unknown parameter {name!r}{did_you_mean(name, valid)}. "
                    f"Valid parameters: {', '.join(FIELDS)}; "
                    f"hyper-parameters of method {method!r}: {', '.join(hp_specs) or 'none'}")
        profile = _coerce("profile", params.get("profile", _BASE["profile"]), FIELDS["profile"])
        dataset = _coerce("dataset", params.get("dataset", _BASE["dataset"]), FIELDS["dataset"])
        values = profile_defaults(profile, dataset)
        values.update({k: v for k, v in params.items() if k in FIELDS})
        resolved = {k: _coerce(k, values[k], FIELDS[k]) for k in FIELDS}
        hparams = {k: _coerce(k, params.get(k, spec_default), spec)
                   for k, (spec, spec_default) in hp_specs.items()}
        cfg = cls(**resolved, hparams=hparams)
        cfg._check_combination()
        return cfg

    def _check_combination(self) -> None:
        if self.budget is not None and not (self.budget > 0 and math.isfinite(self.budget)):
            raise ConfigError(f"parameter 'budget' must be a finite number > 0 (full-model "
                              f"passes over the new chunk per round) or None, got {self.budget!r}")
        if self.budget is not None and self.steps is not None:
            raise ConfigError("set either 'steps' (a fixed step count) or 'budget' (a FLOP budget "
                              "per round), not both")
        if self.scenario == "stream" and self.dataset not in TABULAR_DATASETS:
            raise ConfigError("scenario 'stream' needs a time-ordered dataset: elec2 or weather")
        if self.dataset in TABULAR_DATASETS and self.scenario != "stream":
            raise ConfigError(f"dataset {self.dataset!r} is a time-ordered stream: use scenario 'stream'")
        if self.scenario == "data_incremental" and self.initial_shards >= self.n_shards:
            raise ConfigError("initial_shards must be smaller than n_shards")
        if self.scenario == "stream" and self.initial_chunks >= self.n_chunks:
            raise ConfigError("initial_chunks must be smaller than n_chunks")

    def params(self) -> dict[str, Any]:
        """The flat parameter dict (general + hyper-parameters) that reproduces this config."""
        d = {k: getattr(self, k) for k in FIELDS}
        d.update(self.hparams)
        return d

    def key(self, resolved_device: str) -> str:
        """Results-store key: sha256 of the canonical JSON of every parameter, the device the
        run actually uses, the library version and :func:`paperlib.serving.provenance.key_context`
        (code hash, data checksums, torch version, CPU threads). Any parameter change, code
        edit, other data variant, torch or thread count changes the key."""
        from paperlib.serving.provenance import key_context

        payload = {**self.params(), "device": resolved_device, "paperlib": __version__,
                   "context": key_context(self.dataset, resolved_device)}
        blob = json.dumps(payload, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some parameters changed."""
        return RunConfig.from_params({**self.params(), **changes})


def as_jsonable(cfg: RunConfig) -> dict[str, Any]:
    """Config as a JSON-friendly dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))
