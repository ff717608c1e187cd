"""Grids of runs for the notebooks: methods x seeds (x settings), concatenated as tidy tables.

A notebook is glue: it resolves its parameters with :func:`setup_notebook`, runs a grid with
:func:`run_grid` (every finished configuration is a cache hit in ``results/``), then plots
(:mod:`paperlib.plots`) and writes tables (:mod:`paperlib.report`).

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
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from paperlib.config import ConfigError, RunConfig, did_you_mean
from paperlib.methods import METHODS
from paperlib.runner import RunResult, run

#: Methods compared in every scenario notebook (the paper's method, its baselines and the
#: field's regularisers). The ablations of the paper's method live in ``ABLATION_METHODS``.
MAIN_METHODS: tuple[str, ...] = ("finetune", "full_retrain", "scratch", "replay", "bandit",
                                 "ewc", "online_ewc", "si", "mas")
#: The paper's method with each component switched on/off, plus two references.
ABLATION_METHODS: tuple[str, ...] = ("bandit", "bandit_samples_only", "bandit_weights_only",
                                     "importance_reg_only", "random_samples", "random_weights",
                                     "finetune", "full_retrain")
#: The field's other answers to "which data, which loss?" (paperlib.rivals, paperlib.distill):
#: MIR, GSS, DER, DER++, ER-ACE and LwF. Notebooks 01-04 and 07 show them beside MAIN_METHODS.
RIVAL_METHODS: tuple[str, ...] = ("mir", "gss", "der", "derpp", "er_ace", "lwf")
#: Seconds matter on a CPU: GSS's per-sample gradients make it the slowest rival per run (about
#: 3x the others in the quick profile, see `make bench`), and CIFAR-10 / Fashion-MNIST repeat
#: the MNIST comparison; the quick profile leaves those out of the scenario notebooks' defaults.
#: The real streams run the rivals at the paper profile (`make reproduce-paper-streams`, CPU).
QUICK_SKIPPED_RIVALS: tuple[str, ...] = ("gss",)
QUICK_RIVAL_DATASETS: tuple[str, ...] = ("mnist",)


def scenario_methods(profile: str, dataset: str = "mnist", gss: bool = False,
                     quick_rivals: bool = True) -> tuple[str, ...]:
    """The default methods of a scenario notebook: :data:`MAIN_METHODS` and the rivals.

    Profile ``paper`` runs every rival everywhere; ``quick`` and ``smoke`` keep the CPU
    reproduction short: rivals only where ``quick_rivals`` and on :data:`QUICK_RIVAL_DATASETS`,
    and GSS only where ``gss`` (data-incremental MNIST, notebook 01). Notebook 07 shows every
    method anyway.

    >>> scenario_methods("quick", "cifar10") == MAIN_METHODS
    True
    >>> scenario_methods("quick", gss=True)[-6:]
    ('mir', 'gss', 'der', 'derpp', 'er_ace', 'lwf')
    """
    if profile == "paper":
        return MAIN_METHODS + RIVAL_METHODS
    if not quick_rivals or dataset not in QUICK_RIVAL_DATASETS:
        return MAIN_METHODS
    return MAIN_METHODS + tuple(m for m in RIVAL_METHODS
                                if gss or m not in QUICK_SKIPPED_RIVALS)


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
#: average) on data-incremental MNIST, so the quick grid reaches its first round's cost (12).
#: The quick grid is cut to keep ``make reproduce PROFILE=quick`` within minutes on 2 CPU cores.
BUDGETS: dict[str, tuple[float, ...]] = {"smoke": (1.0, 4.0), "quick": (1.0, 2.0, 4.0, 12.0),
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


def budget_grids(nb: NotebookSetup, budgets: Any = None, budget_scenarios: Any = None,
                 budget_methods: Any = None) -> tuple[list[dict[str, Any]], list[str],
                                                      list[dict[str, Any]]]:
    """Notebook 07's budget sweep: ``(settings, methods, reference_settings)``: ``nb.base`` x
    scenarios x budgets for :data:`BUDGET_METHODS`, and each scenario at the references' own
    cost (:data:`BUDGET_REFERENCES`)."""
    settings = budget_settings(nb.base, nb.profile, budgets, budget_scenarios)
    methods = resolve_methods(budget_methods, BUDGET_METHODS)
    references = [{**nb.base, "scenario": s} for s in dict.fromkeys(st["scenario"] for st in settings)]
    return settings, methods, references


def budget_configs(nb: NotebookSetup, budgets: Any = None, budget_scenarios: Any = None,
                   budget_methods: Any = None) -> list[RunConfig]:
    """Every configuration of :func:`budget_grids` (what ``paperlib sweep`` computes for 07)."""
    settings, methods, references = budget_grids(nb, budgets, budget_scenarios, budget_methods)
    return (grid_configs(settings, methods, nb.seeds)
            + grid_configs(references, BUDGET_REFERENCES, nb.seeds))


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
        runs: the :class:`~paperlib.runner.RunResult` objects.
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
    :func:`paperlib.runner.run` (``store``, ``force``, ``results``). ``executor`` (default
    ``$PAPERLIB_SCHEDULER``, else ``serial``): ``local`` or a Dask scheduler address computes
    the missing runs in parallel first (:func:`paperlib.sweep.sweep`; stored runs only).
    """
    t0 = time.perf_counter()
    configs = grid_configs(base, list(methods), list(seeds))
    executor = executor or os.environ.get("PAPERLIB_SCHEDULER") or "serial"
    if executor != "serial" and kw.get("store", True):
        from paperlib.sweep import sweep

        sweep(configs, scheduler=executor, results=kw.get("results"),
              force=kw.pop("force", False), progress=progress).raise_for_failures()
    runs = []
    bar = tqdm(configs, desc="runs", disable=not progress, leave=True)
    for cfg in bar:
        bar.set_postfix_str(f"{cfg.method} {cfg.dataset}/{cfg.scenario} seed {cfg.seed}")
        runs.append(run(cfg, **kw))
    return grid_from_runs(runs, time.perf_counter() - t0)


# --------------------------------------------------------------------------- notebooks


@dataclass
class NotebookSetup:
    """A notebook's resolved parameters: the run ``base`` (notebook defaults, then the
    profile/device, then ``overrides``), ``methods``, ``seeds``, where figures go, and the raw
    ``params`` recorded in the figure manifest."""

    notebook: str
    base: dict[str, Any]
    methods: list[str]
    seeds: list[int]
    figures_dir: Path
    params: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)
    #: one grid per entry, each merged into ``base`` (see :class:`paperlib.grids.NotebookGrid`)
    settings: tuple[Mapping[str, Any], ...] = ({},)

    @property
    def profile(self) -> str:
        return str(self.base.get("profile", "quick"))

    @property
    def dataset(self) -> str:
        return str(self.base.get("dataset"))

    @property
    def label(self) -> str:
        """'MNIST class-incremental' etc. for titles and captions."""
        from paperlib.plots import DATASET_LABELS, SCENARIO_LABELS

        ds = DATASET_LABELS.get(self.dataset, self.dataset)
        scenario = self.base.get("scenario")
        return f"{ds} {SCENARIO_LABELS.get(scenario, scenario)}" if scenario else ds

    def describe(self) -> str:
        """What will run: the base parameters, methods and seeds."""
        return (f"{self.notebook}: {len(self.methods)} methods x {len(self.seeds)} seeds\n"
                f"  base    {self.base}\n  methods {', '.join(self.methods)}\n"
                f"  seeds   {self.seeds}\n  figures {self.figures_dir}")

    def name(self, *parts: str) -> str:
        """Stable figure/table name ``<notebook>_<part>_...``."""
        return "_".join([self.notebook, *[p for p in parts if p]])

    def elapsed(self) -> float:
        """Seconds since the notebook was set up (its wall time so far)."""
        return time.perf_counter() - self.started

    def run_grid(self, base: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 methods: Sequence[str] | None = None, **kw: Any) -> GridResult:
        """:func:`run_grid` over this notebook's methods and seeds (``base`` defaults to
        :attr:`base` with each of :attr:`settings`)."""
        return run_grid(self.bases() if base is None else base,
                        self.methods if methods is None else methods, self.seeds, **kw)

    def bases(self) -> list[dict[str, Any]]:
        """:attr:`base` merged with each of :attr:`settings`."""
        return [{**self.base, **s} for s in self.settings]

    def configs(self) -> list[RunConfig]:
        """Every configuration :meth:`run_grid` runs by default."""
        return grid_configs(self.bases(), self.methods, self.seeds)

    def save_figure(self, fig: Any, name: str, *, caption: str,
                    grid: GridResult | None = None) -> list[Path]:
        """:func:`paperlib.plots.save_figure` with this notebook's context."""
        from paperlib.plots import save_figure

        return save_figure(fig, name, caption=caption, figures_dir=self.figures_dir,
                           notebook=self.notebook, params=self.params, grid=grid,
                           wall_seconds=self.elapsed())

    def save_table(self, table: pd.DataFrame, name: str, *, caption: str,
                   grid: GridResult | None = None) -> list[Path]:
        """:func:`paperlib.report.write_table` with this notebook's context."""
        from paperlib.report import write_table

        return write_table(table, name, caption=caption, figures_dir=self.figures_dir,
                           notebook=self.notebook, params=self.params, grid=grid,
                           wall_seconds=self.elapsed())


def setup_notebook(notebook: str, *, base: Mapping[str, Any] | None = None,
                   default_methods: Sequence[str] | None = None, figures_dir: str | Path = "figures",
                   **kw: Any) -> NotebookSetup:
    """Resolve and validate a notebook's parameters (:func:`resolve_notebook`) and create its
    figures folder. ``base`` and ``default_methods`` default to the notebook's entry in
    :data:`paperlib.grids.NOTEBOOK_GRIDS` (with its variant parameters, e.g. ``dataset``,
    taken from ``kw``), the grid that ``paperlib sweep`` computes."""
    settings: tuple[Mapping[str, Any], ...] = ({},)
    if base is None or default_methods is None:
        from paperlib import grids

        spec = grids.spec(notebook)
        if base is None:
            base = grids.notebook_base(notebook, **{k: kw[k] for k in spec.variants if k in kw})
            settings = spec.settings
        if default_methods is None:
            default_methods = spec.default_methods(str(kw.get("profile", "paper")),
                                                   str(base.get("dataset")))
    nb = resolve_notebook(notebook, base=base, default_methods=default_methods,
                          figures_dir=figures_dir, settings=settings, **kw)
    nb.figures_dir.mkdir(parents=True, exist_ok=True)
    return nb


def resolve_notebook(notebook: str, *, base: Mapping[str, Any], default_methods: Sequence[str],
                     profile: str = "paper", device: str = "auto", seeds: Any = None,
                     methods: Any = None, overrides: Any = None,
                     figures_dir: str | Path = "figures",
                     settings: Sequence[Mapping[str, Any]] = ({},), **extra: Any) -> NotebookSetup:
    """Resolve and validate a notebook's parameters (no side effects).

    The run base is ``{**base, "profile": profile, "device": device, **overrides}``; it is
    validated by :class:`~paperlib.config.RunConfig` (a mistyped override key such as
    ``epoch`` raises :class:`ConfigError` naming the valid ones), as are ``methods`` and
    ``seeds``. ``extra`` are further notebook parameters (e.g. ``dataset``), recorded only.
    """
    over = parse_overrides(overrides)
    for reserved in ("method", "seed"):
        if reserved in over:
            raise ConfigError(f"overrides may not set {reserved!r}: use the notebook's "
                              f"{reserved}s parameter")
    run_base = {**dict(base), "profile": profile, "device": device, **over}
    resolved_methods = resolve_methods(methods, default_methods)
    for m in resolved_methods:  # validates every key/value against each method's vocabulary
        RunConfig.from_params({**run_base, "method": m})
    cfg = RunConfig.from_params({**run_base, "method": resolved_methods[0]})
    resolved_seeds = resolve_seeds(seeds, cfg.profile)
    params = {"profile": profile, "device": device, "seeds": seeds, "methods": methods,
              "overrides": over, "figures_dir": str(figures_dir), **extra,
              "resolved": {"base": run_base, "methods": resolved_methods,
                           "seeds": resolved_seeds}}
    return NotebookSetup(notebook, run_base, resolved_methods, resolved_seeds,
                         Path(figures_dir).resolve(), params, settings=tuple(settings))
