"""The notebooks' glue: :func:`setup_notebook` resolves a notebook's parameters (its grid from
:data:`paperlib.repro.grids.NOTEBOOK_GRIDS` by default), and the :class:`NotebookSetup` it returns
runs the grid and saves figures and tables with the notebook's context. Grids themselves
(:func:`run_grid`, :class:`GridResult`, the method lists, the budget sweep's settings) live in
:mod:`paperlib.repro.gridrun`, the setup itself in :mod:`paperlib.repro.notebook_setup`; both are
re-exported here, so a notebook needs only this module, :mod:`paperlib.repro.plots` and
:mod:`paperlib.repro.report`.

>>> import tempfile
>>> nb = setup_notebook("demo", base={"dataset": "digits"}, default_methods=MAIN_METHODS,
...                     profile="smoke", figures_dir=tempfile.mkdtemp())
>>> nb.methods[:2], nb.seeds, nb.label
(['finetune', 'full_retrain'], [0], 'digits')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from paperlib.repro import grids
from paperlib.repro.gridrun import (  # noqa: F401  (re-exported)
    ABLATION_METHODS,
    ALL_METHODS,
    BANDIT_DYNAMICS_METHODS,
    BANDIT_TABLES,
    BUDGET_METHODS,
    BUDGET_REFERENCES,
    BUDGET_SCENARIOS,
    BUDGETS,
    MAIN_METHODS,
    PROFILE_SEEDS,
    QUICK_RIVAL_DATASETS,
    QUICK_SKIPPED_RIVALS,
    RIVAL_METHODS,
    GridResult,
    budget_settings,
    concat_grids,
    grid_configs,
    grid_from_runs,
    pareto_methods,
    parse_list,
    parse_overrides,
    resolve_methods,
    resolve_seeds,
    run_grid,
    scenario_methods,
    summary_row,
    validate_notebook_params,
)
from paperlib.repro.notebook_setup import (  # noqa: F401  (re-exported)
    NotebookSetup,
    budget_configs,
    budget_grids,
    resolve_notebook,
)


def setup_notebook(notebook: str, *, base: Mapping[str, Any] | None = None,
                   default_methods: Sequence[str] | None = None, figures_dir: str | Path = "figures",
                   **kw: Any) -> NotebookSetup:
    """Resolve and validate a notebook's parameters (:func:`resolve_notebook`) and create its
    figures folder. ``base`` and ``default_methods`` default to the notebook's entry in
    :data:`paperlib.repro.grids.NOTEBOOK_GRIDS` (with its variant parameters, e.g. ``dataset``,
    taken from ``kw``), the grid that ``paperlib sweep`` computes."""
    settings: tuple[Mapping[str, Any], ...] = ({},)
    if base is None or default_methods is None:
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
