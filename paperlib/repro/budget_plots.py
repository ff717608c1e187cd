"""Accuracy against compute: the budget sweep's curves and its matched-budget table.

Input: the ``summaries`` of :func:`paperlib.repro.experiments.run_grid` over
:func:`paperlib.repro.experiments.budget_settings` (one row per run, with a ``budget`` column: full-model
training passes over the new chunk per round, NaN for a method run at its own default cost).
x = training FLOPs summed over the retraining rounds (``train_flops``; every extra forward and
backward pass included), log scale; y = final average accuracy; mean ± sd over seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from paperlib.repro import plots
from paperlib.repro.report import mean_sd

ACC, FLOPS, SECONDS = "final_avg_accuracy", "train_flops", "retrain_seconds"


def budget_points(summaries: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per ``(dataset, scenario, method, budget)``: columns
    ``<metric>_mean``/``<metric>_std`` for accuracy, FLOPs, seconds and steps, and ``n_seeds``.
    ``budget`` is NaN for a method at its own default cost.

    >>> s = pd.DataFrame({"dataset": "d", "scenario": "s", "method": "m", "seed": [0, 1],
    ...                   "budget": [2.0, 2.0], "final_avg_accuracy": [0.8, 0.9],
    ...                   "train_flops": [1e9, 1e9], "retrain_seconds": [1.0, 3.0],
    ...                   "grad_steps": [10, 10]})
    >>> p = budget_points(s)
    >>> round(float(p.loc[0, "final_avg_accuracy_mean"]), 6), round(float(p.loc[0, "retrain_seconds_std"]), 6)
    (0.85, 1.414214)
    """
    df = summaries.copy()
    if "budget" not in df:
        df["budget"] = np.nan
    df["budget"] = pd.to_numeric(df["budget"], errors="coerce")
    keys = ["dataset", "scenario", "method", "budget"]
    grouped = df.groupby(keys, dropna=False, sort=False)
    out = grouped.agg(n_seeds=("seed", "nunique")).reset_index()
    for m in (ACC, FLOPS, SECONDS, "grad_steps"):
        stats = grouped[m].agg(["mean", "std"]).reset_index()
        out[f"{m}_mean"], out[f"{m}_std"] = stats["mean"].to_numpy(), stats["std"].to_numpy()
    return out.sort_values(keys, na_position="last").reset_index(drop=True)


def budget_curves(summaries: pd.DataFrame, title: str | None = None) -> Figure:
    """One panel per dataset/scenario: for every swept method a line through its budgets
    (x = mean training FLOPs, y = mean final accuracy, band = ± sd of accuracy over seeds);
    methods at their own default cost (``budget`` NaN) as single points with sd error bars."""
    plots.set_style()
    pts = budget_points(summaries)
    pts["setting"] = plots._setting(pts)
    methods = plots._methods_in(pts)
    styles = plots.method_styles(methods)
    settings = list(dict.fromkeys(pts["setting"]))
    fig, axes = plots._panels(len(settings), width=4.6 if len(settings) == 1 else 3.8,
                              height=3.2, sharey=False)
    for ax, setting in zip(axes, settings, strict=True):
        here = pts[pts["setting"] == setting]
        for method in methods:
            st = styles[method]
            curve = here[(here["method"] == method) & here["budget"].notna()]
            curve = curve.sort_values(f"{FLOPS}_mean")
            if len(curve):
                x, y = curve[f"{FLOPS}_mean"], curve[f"{ACC}_mean"]
                sd = np.nan_to_num(curve[f"{ACC}_std"].to_numpy())
                ax.plot(x, y, color=st["color"], marker=st["marker"], linestyle=st["linestyle"],
                        markersize=5, linewidth=1.3, label=method)
                ax.fill_between(x, y - sd, y + sd, color=st["color"], alpha=0.15, linewidth=0)
            point = here[(here["method"] == method) & here["budget"].isna()]
            for _, row in point.iterrows():
                ax.errorbar(row[f"{FLOPS}_mean"], row[f"{ACC}_mean"],
                            xerr=np.nan_to_num(row[f"{FLOPS}_std"]),
                            yerr=np.nan_to_num(row[f"{ACC}_std"]), marker=st["marker"], linestyle="none",
                            color=st["color"], markersize=7, capsize=2, linewidth=0.9,
                            markeredgecolor="0.1",
                            label=method if not len(curve) else f"{method} (own default)")
        plots._log_scale(ax, "x")
        ax.set_title(setting)
        ax.set_xlabel("training FLOPs, rounds 1..R (log scale)")
        ax.set_ylabel("final average accuracy")
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), title="method", loc="outside lower center",
               ncols=3 if len(settings) == 1 else 4, columnspacing=1.2, handlelength=2.6)
    if title:
        fig.suptitle(title)
    return fig


def budget_claims_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """:func:`budget_points` with the budget folded into the scenario (``data_incremental@4``;
    ``data_incremental@default`` for a method at its own cost): the long form that README claims
    address (:mod:`paperlib.repro.claims`, e.g. ``in tables/07_cost_vs_accuracy_budget_points
    final_avg_accuracy mnist/data_incremental@4 replay > bandit``).

    >>> s = pd.DataFrame({"dataset": "d", "scenario": "s", "method": "m", "seed": [0, 1],
    ...                   "budget": [2.0, float("nan")], "final_avg_accuracy": [0.8, 0.9],
    ...                   "train_flops": 1e9, "retrain_seconds": 1.0, "grad_steps": 10})
    >>> budget_claims_table(s)["scenario"].tolist()
    ['s@2', 's@default']
    """
    pts = budget_points(summaries)
    pts["scenario"] = [f"{s}@{'default' if pd.isna(b) else format(b, 'g')}"
                       for s, b in zip(pts["scenario"], pts["budget"], strict=True)]
    return pts.drop(columns="budget")


def matched_budget_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """Methods side by side at each budget: one row per (dataset, scenario, budget), one
    column per method with ``accuracy mean ± sd``, plus the mean metered training FLOPs of the
    row's runs (``FLOPs``, mean over methods and seeds; methods spend a budget within a step of
    each other) and their spread (``FLOPs max/min``: largest over smallest method mean).
    Methods at their own default cost form rows with budget ``default`` and have their own
    FLOPs.

    >>> s = pd.DataFrame({"dataset": "d", "scenario": "s", "method": ["a", "b"], "seed": 0,
    ...                   "budget": [1.0, 1.0], "final_avg_accuracy": [0.8, 0.9],
    ...                   "train_flops": [1e9, 1.02e9], "retrain_seconds": 1.0,
    ...                   "grad_steps": 5})
    >>> matched_budget_table(s).iloc[0].tolist()
    ['d', 's', '1', '1.010e+09', '1.020', '0.800', '0.900']
    """
    pts = budget_points(summaries)
    methods = plots._methods_in(pts)
    rows = []
    for (dataset, scenario, budget), grp in pts.groupby(
            ["dataset", "scenario", "budget"], dropna=False, sort=False):
        flops = grp[f"{FLOPS}_mean"]
        row = {"dataset": dataset, "scenario": scenario,
               "budget": "default" if pd.isna(budget) else f"{budget:g}",
               "FLOPs": f"{flops.mean():.3e}", "FLOPs max/min": f"{flops.max() / flops.min():.3f}"}
        for _, r in grp.iterrows():
            row[r["method"]] = mean_sd(r[f"{ACC}_mean"], r[f"{ACC}_std"], ACC)
        rows.append(row)
    table = pd.DataFrame(rows)
    cols = ["dataset", "scenario", "budget", "FLOPs", "FLOPs max/min"]
    return table[cols + [m for m in methods if m in table]].fillna("")
