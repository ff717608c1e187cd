"""Grids of runs: methods x seeds (x settings), concatenated as tidy tables, and the parsing of
the notebooks' list-valued parameters. The lowest module of the reproduction layer: plots,
tables and the manifest read a :class:`GridResult`; :mod:`paperlib.repro.experiments` re-exports
everything here.

>>> parse_list("finetune, bandit")
['finetune', 'bandit']
>>> parse_list("0,1,2", int), parse_list(3, int), parse_list(None)
([0, 1, 2], [3], None)
>>> grid = run_grid({"dataset": "digits", "profile": "smoke"}, ["finetune", "replay"], [0],
...                 progress=False, store=False)
>>> sorted(grid.summaries["method"]), "final_acc/all" in grid.summaries
(['finetune', 'replay'], True)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from paperlib.method.methods import METHODS
from paperlib.progress import progress_bar
from paperlib.serving.config import ConfigError, RunConfig, did_you_mean
from paperlib.serving.runner import RunResult, run

#: Methods compared in every scenario notebook (the paper's method, its baselines and the
#: field's regularisers). The ablations of the paper's method live in ``ABLATION_METHODS``.
MAIN_METHODS: tuple[str, ...] = ("finetune", "full_retrain", "scratch", "replay", "bandit",
                                 "ewc", "online_ewc", "si", "mas")
#: The paper's method with each component switched on/off, plus two references.
ABLATION_METHODS: tuple[str, ...] = ("bandit", "bandit_samples_only", "bandit_weights_only",
                                     "bandit_no_reg", "bandit_all_weights",
                                     "importance_reg_only", "random_samples", "random_weights",
                                     "finetune", "full_retrain")
#: The field's other answers to "which data, which loss?" (paperlib.method.rivals, paperlib.method.distill):
#: MIR, GSS, DER, DER++, ER-ACE and LwF. Notebooks 01-04 and 07 show them beside MAIN_METHODS.
RIVAL_METHODS: tuple[str, ...] = ("mir", "gss", "der", "derpp", "er_ace", "lwf")
#: Seconds matter on a CPU: GSS's per-sample gradients make it the slowest rival per run (about
#: 3x the others in the quick profile, see `make bench`), and CIFAR-10 / Fashion-MNIST repeat
#: the MNIST comparison; the quick profile leaves those out of the scenario notebooks' defaults.
#: The real streams run the rivals at the paper profile (`make reproduce-paper-streams`, CPU).
QUICK_SKIPPED_RIVALS: tuple[str, ...] = ("gss",)
QUICK_RIVAL_DATASETS: tuple[str, ...] = ("mnist",)
#: The field's regularisers without replay forget the old classes on every image dataset (the
#: MNIST scenarios show it), and on CIFAR-10 they are the slowest runs of the quick profile
#: (EWC's penalty per past round each step): the quick profile runs them on MNIST only
#: (all three scenarios); the paper profile everywhere.
REGULARIZER_METHODS: tuple[str, ...] = ("ewc", "online_ewc", "si", "mas")
QUICK_REGULARIZER_DATASETS: tuple[str, ...] = ("mnist",)


def scenario_methods(profile: str, dataset: str = "mnist", gss: bool = False,
                     quick_rivals: bool = True) -> tuple[str, ...]:
    """The default methods of a scenario notebook: :data:`MAIN_METHODS` and the rivals.

    Profile ``paper`` runs every rival everywhere; ``quick`` and ``smoke`` keep the CPU
    reproduction short: rivals only where ``quick_rivals`` and on :data:`QUICK_RIVAL_DATASETS`,
    and GSS only where ``gss`` (data-incremental MNIST, notebook 01). Notebook 07 shows every
    method anyway.

    The quick profile runs the field's regularisers (:data:`REGULARIZER_METHODS`) only on
    :data:`QUICK_REGULARIZER_DATASETS`.

    >>> scenario_methods("quick", "cifar10")
    ('finetune', 'full_retrain', 'scratch', 'replay', 'bandit')
    >>> scenario_methods("smoke", "digits") == MAIN_METHODS
    True
    >>> scenario_methods("quick", gss=True)[-6:]
    ('mir', 'gss', 'der', 'derpp', 'er_ace', 'lwf')
    """
    if profile == "paper":
        return MAIN_METHODS + RIVAL_METHODS
    main = MAIN_METHODS
    if profile == "quick" and dataset not in QUICK_REGULARIZER_DATASETS:
        main = tuple(m for m in MAIN_METHODS if m not in REGULARIZER_METHODS)
    if not quick_rivals or dataset not in QUICK_RIVAL_DATASETS:
        return main
    return main + tuple(m for m in RIVAL_METHODS if gss or m not in QUICK_SKIPPED_RIVALS)


#: The bandit-dynamics notebook looks inside the paper's method only.
BANDIT_DYNAMICS_METHODS: tuple[str, ...] = ("bandit",)
#: Every named method (the Pareto notebook shows them all).
ALL_METHODS: tuple[str, ...] = tuple(METHODS)


def pareto_methods(profile: str) -> tuple[str, ...]:
    """Notebook 07's methods: every named method (the quick profile skips
    :data:`QUICK_SKIPPED_RIVALS`, whose per-sample gradients dominate a CPU run).

    >>> "gss" in pareto_methods("paper"), "gss" in pareto_methods("quick")
    (True, False)
    """
    if profile == "paper":
        return ALL_METHODS
    return tuple(m for m in ALL_METHODS if m not in QUICK_SKIPPED_RIVALS)


#: Seeds per profile when a notebook's ``seeds`` parameter is None.
PROFILE_SEEDS: dict[str, tuple[int, ...]] = {"smoke": (0,), "quick": (0, 1, 2), "paper": (0, 1, 2)}
BANDIT_TABLES = ("sample_arms", "sample_trace", "weight_groups")

# --- the equal-compute sweep (notebook 07, ``make bench``) ---------------------------------
#: Methods swept over :data:`BUDGETS` (extend the tuple to add a method to the curves).
BUDGET_METHODS: tuple[str, ...] = ("replay", "bandit", "bandit_samples_only", "mir", "derpp",
                                   "er_ace")
#: Methods drawn as reference points at their own default cost (``budget=None``).
BUDGET_REFERENCES: tuple[str, ...] = ("full_retrain",)
#: Per-round budgets in full-model training passes over the new chunk (the ``budget``
#: parameter), per profile. Quick profile: replay's default is 2 (budget_factor) x 2 epochs
#: = 4 passes; full retraining makes 2 epochs over everything seen, 12-20 passes (16 on
#: average) on data-incremental MNIST, so the quick grid's last budget (16) is full
#: retraining's own cost (issue 8: "up to full retraining's cost"). The quick grid is cut to
#: these four to keep ``make reproduce PROFILE=quick`` within minutes on 2 CPU cores.
BUDGETS: dict[str, tuple[float, ...]] = {"smoke": (1.0, 4.0), "quick": (1.0, 2.0, 4.0, 16.0),
                                         "paper": (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)}
#: MNIST scenarios of the sweep, per profile.
BUDGET_SCENARIOS: dict[str, tuple[str, ...]] = {
    "smoke": ("data_incremental",), "quick": ("data_incremental",),
    "paper": ("data_incremental", "class_incremental", "rotated")}


def budget_settings(base: Mapping[str, Any], profile: str, budgets: Any = None,
                    scenarios: Any = None) -> list[dict[str, Any]]:
    """Run settings of the budget sweep: ``base`` x scenarios x budgets (None -> the profile's
    :data:`BUDGETS` / :data:`BUDGET_SCENARIOS`).

    >>> [(s["scenario"], s["budget"]) for s in budget_settings({}, "smoke")]
    [('data_incremental', 1.0), ('data_incremental', 4.0)]
    """
    if profile not in BUDGETS:
        raise ConfigError(f"unknown profile {profile!r}; valid: {', '.join(BUDGETS)}")
    values = parse_list(budgets, float) or list(BUDGETS[profile])
    names = parse_list(scenarios) or list(BUDGET_SCENARIOS[profile])
    return [{**dict(base), "scenario": sc, "budget": b} for sc in names for b in values]


def parse_list(value: Any, cast: Callable[[Any], Any] = str) -> list[Any] | None:
    """A list from a list/tuple, a comma-separated string (papermill parameters passed by the
    Makefile arrive as strings; a JSON list string works too) or a scalar; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"cannot parse list {value!r}: {exc}") from None
        else:
            value = [v.strip().strip("'\"") for v in text.split(",") if v.strip()]
    elif not isinstance(value, list | tuple):
        value = [value]
    try:
        return [cast(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"cannot read {value!r} as a list of {cast.__name__}") from None


def parse_overrides(value: Any) -> dict[str, Any]:
    """Extra run parameters from a dict, a JSON object string, or None/'' (no overrides)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"overrides must be a JSON object, got {value!r}: {exc}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"overrides must be a dict / JSON object, got {value!r}")
    return dict(value)


def validate_notebook_params(params: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise :class:`ConfigError` naming the valid names when ``params`` has an unknown one."""
    allowed = sorted(allowed)
    for name in params:
        if name not in allowed:
            raise ConfigError(f"unknown notebook parameter {name!r}{did_you_mean(name, allowed)}. "
                              f"Valid parameters: {', '.join(allowed)}")


def resolve_seeds(seeds: Any, profile: str) -> list[int]:
    """``seeds`` as a list of ints; None -> the profile's default (:data:`PROFILE_SEEDS`)."""
    parsed = parse_list(seeds, int)
    if parsed is None:
        if profile not in PROFILE_SEEDS:
            raise ConfigError(f"unknown profile {profile!r}; valid: {', '.join(PROFILE_SEEDS)}")
        return list(PROFILE_SEEDS[profile])
    if not parsed or any(s < 0 for s in parsed):
        raise ConfigError(f"seeds must be non-negative integers, got {seeds!r}")
    return parsed


def resolve_methods(methods: Any, default: Sequence[str]) -> list[str]:
    """``methods`` as a list of known method names; None -> ``default``."""
    parsed = parse_list(methods) or list(default)
    for m in parsed:
        if m not in METHODS:
            raise ConfigError(f"unknown method {m!r}{did_you_mean(m, list(METHODS))}. "
                              f"Valid methods: {', '.join(METHODS)}")
    return parsed


# --------------------------------------------------------------------------- grids


@dataclass
class GridResult:
    """The runs of a grid and their concatenated tidy tables.

    Attributes:
        rounds: every run's rounds table (one row per run and round).
        summaries: one row per run: the summary's scalars, ``final_acc/<split>`` columns,
            ``run_seconds`` (from env.json), ``cached`` and ``run_dir``.
        tables: bandit logs concatenated over runs (``sample_arms``, ``sample_trace``,
            ``weight_groups``; empty DataFrames when no run produced them).
        runs: the :class:`~paperlib.serving.runner.RunResult` objects.
        wall_seconds: time this grid took in this process (cache hits are nearly free).
    """

    rounds: pd.DataFrame
    summaries: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def sample_arms(self) -> pd.DataFrame:
        return self.tables.get("sample_arms", pd.DataFrame())

    @property
    def sample_trace(self) -> pd.DataFrame:
        return self.tables.get("sample_trace", pd.DataFrame())

    @property
    def weight_groups(self) -> pd.DataFrame:
        return self.tables.get("weight_groups", pd.DataFrame())

    def __add__(self, other: GridResult) -> GridResult:
        return concat_grids([self, other])


def summary_row(result: RunResult) -> dict[str, Any]:
    """One flat row of a run's summary (``final_accuracy_by_split`` -> ``final_acc/<split>``)."""
    row: dict[str, Any] = {}
    for k, v in result.summary.items():
        if k == "final_accuracy_by_split":
            row.update({f"final_acc/{s}": a for s, a in v.items()})
        elif not isinstance(v, dict | list):
            row[k] = v
    budget = result.config.budget
    row["budget"] = float("nan") if budget is None else float(budget)
    row["run_seconds"] = float(result.env.get("run_seconds", float("nan")))
    row["cached"] = bool(result.cached)
    row["run_dir"] = str(result.path) if result.path is not None else None
    return row


def _tag(df: pd.DataFrame, result: RunResult) -> pd.DataFrame:
    """Add the identifying columns a bandit log lacks (dataset, scenario, profile)."""
    df = df.copy()
    for k in ("method", "dataset", "scenario", "seed", "profile"):
        if k not in df.columns:
            df[k] = getattr(result.config, k)
    return df


def grid_from_runs(runs: Sequence[RunResult], wall_seconds: float = 0.0) -> GridResult:
    """Concatenate the tables of ``runs`` into a :class:`GridResult`."""
    rounds = pd.concat([r.rounds for r in runs], ignore_index=True) if runs else pd.DataFrame()
    summaries = pd.DataFrame([summary_row(r) for r in runs])
    tables: dict[str, pd.DataFrame] = {}
    for name in BANDIT_TABLES:
        parts = [_tag(r.tables[name], r) for r in runs
                 if name in r.tables and len(r.tables[name])]
        tables[name] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return GridResult(rounds, summaries, tables, list(runs), wall_seconds)


def concat_grids(grids: Sequence[GridResult]) -> GridResult:
    """One :class:`GridResult` holding every run of ``grids``."""
    runs = [r for g in grids for r in g.runs]
    return grid_from_runs(runs, sum(g.wall_seconds for g in grids))


def grid_configs(base: Mapping[str, Any] | Sequence[Mapping[str, Any]], methods: Sequence[str],
                 seeds: Sequence[int]) -> list[RunConfig]:
    """Validated configurations of the grid (fails before anything runs on a bad parameter)."""
    bases = [base] if isinstance(base, Mapping) else list(base)
    return [RunConfig.from_params({**b, "method": m, "seed": int(s)})
            for b in bases for m in methods for s in seeds]


def run_grid(base: Mapping[str, Any] | Sequence[Mapping[str, Any]], methods: Sequence[str],
             seeds: Sequence[int], progress: bool = True, executor: str | None = None,
             **kw: Any) -> GridResult:
    """``run({**base, "method": m, "seed": s})`` for every method and seed (and every base when
    ``base`` is a list of settings); finished configurations are cache hits.

    Every configuration is validated before the first one runs. ``kw`` goes to
    :func:`paperlib.serving.runner.run` (``store``, ``force``, ``results``). ``executor`` (default
    ``$PAPERLIB_SCHEDULER``, else ``serial``): ``local`` or a Dask scheduler address computes
    the missing runs in parallel first (:func:`paperlib.repro.sweep.sweep`; stored runs only).
    """
    t0 = time.perf_counter()
    configs = grid_configs(base, list(methods), list(seeds))
    executor = executor or os.environ.get("PAPERLIB_SCHEDULER") or "serial"
    if executor != "serial" and kw.get("store", True):
        from paperlib.repro.sweep import sweep

        sweep(configs, scheduler=executor, results=kw.get("results"),
              force=kw.pop("force", False), progress=progress).raise_for_failures()
    runs = []
    bar = progress_bar(configs, desc="runs", disable=not progress, leave=True)
    for cfg in bar:
        bar.set_postfix_str(f"{cfg.method} {cfg.dataset}/{cfg.scenario} seed {cfg.seed}")
        runs.append(run(cfg, **kw))
    return grid_from_runs(runs, time.perf_counter() - t0)
