"""A notebook's resolved parameters (:class:`NotebookSetup`, made by :func:`resolve_notebook`
without side effects) and the equal-compute sweep's grids of notebook 07 (:func:`budget_grids`).
Below :mod:`paperlib.repro.grids` (which resolves every notebook's grid through it) and
:mod:`paperlib.repro.experiments` (whose :func:`~paperlib.repro.experiments.setup_notebook` reads
:mod:`paperlib.repro.grids`); :mod:`paperlib.repro.experiments` re-exports everything here.

>>> nb = resolve_notebook("demo", base={"dataset": "digits"}, default_methods=["finetune"],
...                       profile="smoke")
>>> nb.methods, nb.seeds, nb.label
(['finetune'], [0], 'digits')
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from paperlib.repro.gridrun import (
    BUDGET_METHODS,
    BUDGET_REFERENCES,
    GridResult,
    budget_settings,
    grid_configs,
    parse_overrides,
    resolve_methods,
    resolve_seeds,
    run_grid,
)
from paperlib.serving.config import ConfigError, RunConfig


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
    #: one grid per entry, each merged into ``base`` (see :class:`paperlib.repro.grids.NotebookGrid`)
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
        from paperlib.repro.labels import DATASET_LABELS, SCENARIO_LABELS

        ds = DATASET_LABELS.get(self.dataset, self.dataset)
        scenario = self.base.get("scenario")
        return f"{ds} {SCENARIO_LABELS.get(scenario, scenario)}" if scenario else ds

    def describe(self) -> str:
        """What will run: the base parameters, methods and seeds (the figures folder relative
        to the working directory, so an executed notebook shows no path of the machine)."""
        return (f"{self.notebook}: {len(self.methods)} methods x {len(self.seeds)} seeds\n"
                f"  base    {self.base}\n  methods {', '.join(self.methods)}\n"
                f"  seeds   {self.seeds}\n  figures {os.path.relpath(self.figures_dir)}")

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
                    grid: GridResult | None = None) -> None:
        """:func:`paperlib.repro.plots.save_figure` with this notebook's context. Returns nothing, so
        a notebook cell ending with it shows the figure only (not the written paths)."""
        from paperlib.repro.plots import save_figure

        save_figure(fig, name, caption=caption, figures_dir=self.figures_dir,
                    notebook=self.notebook, params=self.params, grid=grid,
                    wall_seconds=self.elapsed())

    def save_table(self, table: pd.DataFrame, name: str, *, caption: str,
                   grid: GridResult | None = None) -> None:
        """:func:`paperlib.repro.report.write_table` with this notebook's context (returns nothing,
        as :meth:`save_figure`)."""
        from paperlib.repro.report import write_table

        write_table(table, name, caption=caption, figures_dir=self.figures_dir,
                    notebook=self.notebook, params=self.params, grid=grid,
                    wall_seconds=self.elapsed())


def resolve_notebook(notebook: str, *, base: Mapping[str, Any], default_methods: Sequence[str],
                     profile: str = "paper", device: str = "auto", seeds: Any = None,
                     methods: Any = None, overrides: Any = None,
                     figures_dir: str | Path = "figures",
                     settings: Sequence[Mapping[str, Any]] = ({},), **extra: Any) -> NotebookSetup:
    """Resolve and validate a notebook's parameters (no side effects).

    The run base is ``{**base, "profile": profile, "device": device, **overrides}``; it is
    validated by :class:`~paperlib.serving.config.RunConfig` (a mistyped override key such as
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
