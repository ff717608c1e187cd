"""Which runs each notebook needs: the single source of truth for the notebooks and the sweep.

Every notebook calls :func:`paperlib.repro.experiments.setup_notebook` with its name; the run base and
the default method list come from :data:`NOTEBOOK_GRIDS` here. ``paperlib sweep`` calls
:func:`profile_grid` with the same parameters, so it computes exactly the runs the notebooks will
then load from the cache. Method lists are functions of the profile and dataset that read the
constants of :mod:`paperlib.repro.gridrun` (``MAIN_METHODS``, ``RIVAL_METHODS``..., re-exported by
:mod:`paperlib.repro.experiments`) when a grid is built, so a method added there reaches both.

>>> cfgs = notebook_grid("02_class_incremental", {"profile": "smoke", "dataset": "digits"})
>>> len(cfgs) == len(gridrun.MAIN_METHODS) * len(gridrun.PROFILE_SEEDS["smoke"])
True
>>> {(c.dataset, c.scenario) for c in cfgs}
{('digits', 'class_incremental')}
>>> notebook_grid("02_class_incremental", {"profile": "smoke", "datset": "digits"})
Traceback (most recent call last):
...
paperlib.spec.ConfigError: unknown notebook parameter 'datset' (did you mean 'dataset'?)...
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from paperlib.repro import gridrun, notebook_setup
from paperlib.repro.sweep import config_id
from paperlib.serving.config import ConfigError, RunConfig, did_you_mean

#: Parameters every notebook declares (its papermill ``parameters`` cell).
COMMON_PARAMS = ("profile", "device", "seeds", "methods", "overrides", "figures_dir")


@dataclass(frozen=True)
class NotebookGrid:
    """The runs of one notebook.

    Attributes:
        base: run parameters shared by every run of the notebook.
        methods: ``(profile, dataset) -> method names``, the default method list (read from
            :mod:`paperlib.repro.gridrun` when called).
        settings: one grid per entry, each merged into ``base`` (07 runs two scenarios).
        variants: notebook parameters that are run parameters too (``dataset``), with the
            values ``make reproduce`` / ``paperlib sweep`` run, the first being the default.
        extra: further runs of the notebook beyond methods x seeds x settings (07's budget
            sweep): ``extra(nb, **extra_params) -> configs``.
        extra_params: notebook parameters that only ``extra`` reads (07's ``budgets``...).
    """

    base: Mapping[str, Any]
    methods: Callable[[str, str], Sequence[str]]
    settings: tuple[Mapping[str, Any], ...] = ({},)
    variants: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    extra: Callable[..., list[RunConfig]] | None = None
    extra_params: tuple[str, ...] = ()

    def default_methods(self, profile: str, dataset: str) -> tuple[str, ...]:
        return tuple(self.methods(profile, dataset))


_MNIST = {"dataset": "mnist"}


def _constant(name: str) -> Callable[[str, str], Sequence[str]]:
    return lambda profile, dataset: getattr(gridrun, name)


NOTEBOOK_GRIDS: dict[str, NotebookGrid] = {
    "01_data_incremental": NotebookGrid(
        {**_MNIST, "scenario": "data_incremental"},
        lambda profile, dataset: gridrun.scenario_methods(profile, dataset)),
    "02_class_incremental": NotebookGrid(
        {"scenario": "class_incremental"},
        lambda profile, dataset: gridrun.scenario_methods(profile, dataset),
        variants={"dataset": ("mnist", "fashion_mnist", "cifar10")}),
    "03_domain_drift": NotebookGrid(
        {**_MNIST, "scenario": "rotated"},
        lambda profile, dataset: gridrun.scenario_methods(profile, dataset,
                                                              quick_rivals=False)),
    "04_real_streams": NotebookGrid(
        {"scenario": "stream"}, lambda profile, dataset: gridrun.scenario_methods(profile, dataset),
        variants={"dataset": ("elec2", "weather")}),
    "05_ablations": NotebookGrid({**_MNIST, "scenario": "class_incremental"},
                                 _constant("ABLATION_METHODS")),
    "06_bandit_dynamics": NotebookGrid({**_MNIST, "scenario": "class_incremental"},
                                       _constant("BANDIT_DYNAMICS_METHODS")),
    "07_cost_vs_accuracy": NotebookGrid(
        _MNIST, lambda profile, dataset: gridrun.pareto_methods(profile),
        settings=({"scenario": "data_incremental"}, {"scenario": "class_incremental"}),
        extra=lambda nb, **kw: notebook_setup.budget_configs(nb, **kw),
        extra_params=("budgets", "budget_scenarios", "budget_methods")),
}


def spec(name: str) -> NotebookGrid:
    """The grid of notebook ``name`` (``ConfigError`` with did-you-mean when unknown)."""
    if name not in NOTEBOOK_GRIDS:
        raise ConfigError(f"unknown notebook {name!r}{did_you_mean(name, list(NOTEBOOK_GRIDS))}. "
                          f"Valid notebooks: {', '.join(NOTEBOOK_GRIDS)}")
    return NOTEBOOK_GRIDS[name]


def notebook_base(name: str, **variant_values: Any) -> dict[str, Any]:
    """The run base of notebook ``name`` with its variant parameters (e.g. ``dataset``) filled
    in; a variant left out takes its default (first) value."""
    s = spec(name)
    unknown = set(variant_values) - set(s.variants)
    if unknown:
        raise ConfigError(f"notebook {name} has no parameter {sorted(unknown)[0]!r}")
    values = {k: v[0] for k, v in s.variants.items()} | variant_values
    return {**s.base, **values}


def notebook_grid(name: str, params: Mapping[str, Any] | None = None) -> list[RunConfig]:
    """Every run notebook ``name`` needs with the notebook parameters ``params`` (``profile``,
    ``device``, ``seeds``, ``methods``, ``overrides`` and the notebook's own, e.g. ``dataset``;
    the same values papermill would pass). Resolved exactly as the notebook resolves them."""
    params = dict(params or {})
    s = spec(name)
    allowed = [*COMMON_PARAMS, *s.variants, *s.extra_params]
    for k in params:
        if k not in allowed:
            raise ConfigError(f"unknown notebook parameter {k!r}{did_you_mean(k, allowed)} for "
                              f"{name}. Valid parameters: {', '.join(allowed)}")
    variant_values = {k: params.pop(k) for k in list(params) if k in s.variants}
    extra_values = {k: params.pop(k) for k in list(params) if k in s.extra_params}
    params.pop("figures_dir", None)
    base = notebook_base(name, **variant_values)
    methods = s.default_methods(str(params.get("profile", "paper")), str(base.get("dataset")))
    nb = notebook_setup.resolve_notebook(name, base=base, default_methods=methods,
                                         settings=s.settings, **params)
    configs = nb.configs()
    if s.extra is not None:
        configs += s.extra(nb, **extra_values)
    return configs


def profile_grid(profile: str, params: Mapping[str, Any] | None = None,
                 notebooks: Sequence[str] | None = None) -> list[RunConfig]:
    """Every run the notebooks of ``make reproduce`` need (each variant, e.g. every dataset of
    02), without duplicates (07 reuses runs of 01, 02 and 05), in a stable order.

    ``params`` are further notebook parameters applied to every notebook (``device``,
    ``seeds``, ``overrides``). A variant parameter such as ``dataset`` (one value or a list)
    selects those variants: of all notebooks that list the value (``elec2`` -> 04 only), or
    of the ``notebooks`` named explicitly (any value). ``notebooks`` restricts the sweep.
    """
    params = dict(params or {})
    variant_names = {k for g in NOTEBOOK_GRIDS.values() for k in g.variants}
    common = {k: v for k, v in params.items() if k not in variant_names}
    out: dict[str, RunConfig] = {}
    for name in notebooks or list(NOTEBOOK_GRIDS):
        s = spec(name)
        choices = []
        for k, values in s.variants.items():
            chosen = gridrun.parse_list(params.get(k)) or list(values)
            if not notebooks:
                chosen = [v for v in chosen if v in values]
            choices.append([(k, v) for v in chosen])
        if any(k in params for k in variant_names) and (
                not any(k in params for k in s.variants) or not all(choices)):
            continue  # a variant was chosen, and this notebook has none of it
        for combo in itertools.product(*choices):
            for cfg in notebook_grid(name, {**common, **dict(combo), "profile": profile}):
                out.setdefault(config_id(cfg), cfg)
    return list(out.values())


