"""Seaborn figure helpers: tidy DataFrames in, a matplotlib Figure out.

Every helper takes the tables of :func:`paperlib.repro.experiments.run_grid` (``rounds``,
``summaries``, ``sample_trace``, ``weight_groups``) and returns a :class:`~matplotlib.figure.Figure`.
Style: seaborn ``paper`` context, the colour-blind palette, and for every method a fixed colour,
marker AND line style (:func:`method_styles`), so figures stay readable in greyscale and a method
looks the same in every figure. Bands and error bars are mean ± sd over seeds.

:func:`save_figure` writes ``<figures_dir>/<name>.pdf`` and ``.png`` with stable names and no
timestamps in the files, stamps a footnote with the profile, data source and seed count, and
records the figure in the manifest (:func:`paperlib.repro.manifest.record_manifest_entry`).
Labels and footnote text live in :mod:`paperlib.repro.labels` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from paperlib.method.methods import METHODS
from paperlib.repro.labels import DATASET_LABELS, SCENARIO_LABELS, data_note, footnote_text  # noqa: F401
from paperlib.repro.manifest import record_manifest_entry

if TYPE_CHECKING:
    from paperlib.repro.gridrun import GridResult

_MARKERS: list[Any] = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "d", "8", "H",
                       (7, 0, 0), (4, 1, 0), (6, 1, 0), (8, 1, 0), (9, 0, 0), (3, 1, 0),
                       (5, 1, 0), (10, 0, 0)]
_DASHES: list[Any] = ["", (4, 1.5), (1, 1), (3, 1, 1, 1), (6, 2), (2, 2), (5, 1, 1, 1, 1, 1),
                      (1, 2.5), (8, 2, 2, 2), (3, 3), (4, 1, 1, 1, 1, 1, 1, 1), (10, 3),
                      (2, 1, 2, 4), (6, 1, 1, 1), (1, 4), (2, 3, 6, 3), (7, 1, 2, 1),
                      (1, 1, 4, 1), (5, 3), (3, 1, 3, 4), (9, 1, 1, 1), (2, 5), (6, 1, 2, 1, 2, 1)]
# Colour-blind palette index per method: the nine methods of the scenario notebooks and the
# eight of the ablation notebook each get distinct colours (index 8, yellow, is left out);
# markers and line styles are unique over all methods.
_COLOUR_INDEX = {"finetune": 0, "full_retrain": 1, "scratch": 2, "bandit": 3, "replay": 4,
                 "ewc": 5, "online_ewc": 6, "si": 7, "mas": 9, "bandit_samples_only": 2,
                 "bandit_weights_only": 4, "importance_reg_only": 5, "random_samples": 9,
                 "random_weights": 7}
# The rivals (experiments.RIVAL_METHODS) take the darker shades of the same palette, and so do
# the ablation notebook's ninth and tenth methods (no rival is drawn beside them).
_DARK_INDEX = {"mir": 0, "gss": 1, "der": 2, "derpp": 3, "er_ace": 4, "lwf": 9,
               "bandit_no_reg": 6, "bandit_all_weights": 7}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
PNG_METADATA = {"Software": None}
ACCURACY = "accuracy"


def set_style() -> None:
    """Seaborn ``paper`` context, white grid, colour-blind palette."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind",
                  rc={"figure.dpi": 110, "savefig.dpi": 200, "legend.frameon": False})


def _ordered(values: Sequence[str], reference: Sequence[str]) -> list[str]:
    uniq = list(dict.fromkeys(values))
    ref = [v for v in reference if v in uniq]
    return ref + [v for v in uniq if v not in ref]


def method_styles(methods: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """``{method: {"color", "marker", "dashes", "linestyle"}}``, fixed per method name (its
    position in :data:`paperlib.method.methods.METHODS`), so the style never depends on the subset.

    >>> s = method_styles(["bandit", "finetune"])
    >>> s["bandit"]["marker"] != s["finetune"]["marker"], s["finetune"]["dashes"]
    (True, '')
    """
    names = list(METHODS)
    for m in methods or []:
        if m not in names:
            names.append(m)
    palette = sns.color_palette("colorblind", 10)
    dark = sns.color_palette("dark", 10)
    out = {}
    for i, m in enumerate(names):
        dashes = _DASHES[i % len(_DASHES)]
        colour = (dark[_DARK_INDEX[m]] if m in _DARK_INDEX
                  else palette[_COLOUR_INDEX.get(m, i) % len(palette)])
        out[m] = {"color": colour, "marker": _MARKERS[i % len(_MARKERS)],
                  "dashes": dashes, "linestyle": "-" if dashes == "" else (0, dashes)}
    return out if methods is None else {m: out[m] for m in methods}


def _methods_in(df: pd.DataFrame) -> list[str]:
    return _ordered(df["method"].tolist(), list(METHODS))


def _lineplot(ax: Any, df: pd.DataFrame, x: str, y: str, methods: list[str]) -> None:
    styles = method_styles(methods)
    sns.lineplot(data=df, x=x, y=y, hue="method", style="method", hue_order=methods,
                 style_order=methods, palette={m: styles[m]["color"] for m in methods},
                 markers={m: styles[m]["marker"] for m in methods},
                 dashes={m: styles[m]["dashes"] for m in methods}, errorbar="sd",
                 markersize=5, linewidth=1.3, ax=ax, legend=True)


def _finish(fig: Figure, axes: Sequence[Any], title: str | None = None,
            legend_title: str = "method") -> Figure:
    """One shared legend right of the panels; integer round ticks; optional title."""
    handles, labels = [], []
    for ax in axes:
        leg = ax.get_legend()
        if leg is not None:
            if not handles:
                handles, labels = ax.get_legend_handles_labels()
            leg.remove()
    if handles:
        _legend(fig, handles, labels, legend_title)
    if title:
        fig.suptitle(title)
    return fig


def _legend(fig: Figure, handles: list[Any], labels: list[str], title: str) -> None:
    """A shared legend under the panels (clear of titles whatever the figure width)."""
    fig.legend(handles, labels, title=title, loc="outside lower center",
               ncols=min(len(labels), 5), columnspacing=1.2, handlelength=2.6)


def _round_axis(ax: Any, label: str = "round (retraining after each new chunk)") -> None:
    ax.set_xlabel(label)
    ax.xaxis.get_major_locator().set_params(integer=True)


def _panels(n: int, width: float = 3.2, height: float = 2.6, ncols: int | None = None,
            sharey: bool = True) -> tuple[Figure, list[Any]]:
    ncols = ncols or min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 1.6, height * nrows),
                             sharey=sharey, squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _split_columns(rounds: pd.DataFrame) -> list[str]:
    return [c[4:] for c in rounds.columns if c.startswith("acc/")]


def accuracy_long(rounds: pd.DataFrame, splits: Sequence[str] | None = None,
                  include_average: bool | None = None,
                  average_label: str = "average") -> pd.DataFrame:
    """Rounds table -> long form ``(method, seed, round, split, accuracy)``; the average over the
    introduced splits (``avg_accuracy``) appears as split ``average_label``."""
    splits = list(splits) if splits is not None else _split_columns(rounds)
    if include_average is None:
        include_average = len(splits) > 1
    keep = ["method", "seed", "round"]
    long = rounds.melt(id_vars=keep, value_vars=[f"acc/{s}" for s in splits],
                       var_name="split", value_name=ACCURACY)
    long["split"] = long["split"].str[4:]
    if include_average:
        avg = rounds[keep + ["avg_accuracy"]].rename(columns={"avg_accuracy": ACCURACY})
        long = pd.concat([long, avg.assign(split=average_label)], ignore_index=True)
    return long


def accuracy_per_round(rounds: pd.DataFrame, splits: Sequence[str] | None = None, *,
                       include_average: bool | None = None, average_label: str = "average",
                       title: str | None = None) -> Figure:
    """Test accuracy of the deployed model after each round, one panel per test split (plus the
    average over introduced splits), one line per method, band = mean ± sd over seeds."""
    set_style()
    long = accuracy_long(rounds, splits, include_average, average_label)
    methods = _methods_in(rounds)
    panels = list(dict.fromkeys(long["split"]))
    fig, axes = _panels(len(panels))
    for ax, split in zip(axes, panels, strict=True):
        _lineplot(ax, long[long["split"] == split], "round", ACCURACY, methods)
        ax.set_title(f"test split: {split}" if split != average_label else average_label)
        ax.set_ylabel("accuracy")
        _round_axis(ax)
    return _finish(fig, axes, title)


def class_incremental_accuracy(rounds: pd.DataFrame, title: str | None = None) -> Figure:
    """Old-class, new-class and overall (mean of the old and new splits) test accuracy per
    round for class-incremental runs."""
    return accuracy_per_round(rounds, ["old", "new"], include_average=True,
                              average_label="overall (mean of old and new)", title=title)


def _log_scale(ax: Any, axis: str = "y", plain: bool = False) -> None:
    """Log scale with labels on the decades only (``plain``: 0.1, 1, 10 instead of 10^k)."""
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_minor_formatter(mticker.NullFormatter())
    if plain:
        target.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _log_sensible(values: pd.Series) -> bool:
    v = values[np.isfinite(values) & (values > 0)]
    return len(v) > 0 and v.max() / v.min() > 20


def cumulative_cost(rounds: pd.DataFrame, title: str | None = None) -> Figure:
    """Cumulative retraining cost after each round: wall-clock seconds and training FLOPs
    (rounds 1..R; the first model is shared by all methods). Log y when the costs span more than
    a decade and a half."""
    set_style()
    df = rounds[rounds["round"] >= 1]
    methods = _methods_in(rounds)
    fig, axes = _panels(2, height=2.9, sharey=False)
    for ax, col, label in ((axes[0], "cumulative_retrain_seconds", "retraining time (s)"),
                           (axes[1], "cumulative_train_flops", "training FLOPs")):
        _lineplot(ax, df, "round", col, methods)
        if _log_sensible(df[col]):
            _log_scale(ax, plain=col.endswith("seconds"))
        ax.set_ylabel(label)
        ax.set_title(f"cumulative {label.replace(' (s)', '')}")
        _round_axis(ax)
    return _finish(fig, axes, title)


def per_round_metric(rounds: pd.DataFrame, column: str, ylabel: str, *,
                     first_round: int = 1, logy: bool | None = False,
                     title: str | None = None) -> Figure:
    """Any per-round column (e.g. ``negative_flip_rate``, ``retrain_seconds``) per method,
    mean ± sd over seeds. ``logy=None``: log scale when sensible."""
    set_style()
    df = rounds[rounds["round"] >= first_round]
    methods = _methods_in(rounds)
    fig, axes = _panels(1, width=4.2, height=2.8)
    _lineplot(axes[0], df, "round", column, methods)
    if logy or (logy is None and _log_sensible(df[column])):
        _log_scale(axes[0], plain=column.endswith("seconds"))
    axes[0].set_ylabel(ylabel)
    _round_axis(axes[0])
    return _finish(fig, axes, title)


def negative_flip_rate(rounds: pd.DataFrame, title: str | None = None) -> Figure:
    """Share of probe samples the previously served model got right and the new one gets wrong,
    per round."""
    return per_round_metric(rounds, "negative_flip_rate", "negative flip rate (share of probe)",
                            title=title)


def prequential_long(rounds: pd.DataFrame) -> pd.DataFrame:
    """Per round: ``served_accuracy`` (the served model on the arriving chunk, before training)
    and the running prequential accuracy (sample-weighted, rounds 1..r)."""
    df = rounds[rounds["round"] >= 1].sort_values(["method", "seed", "round"]).copy()
    correct = df["served_accuracy"] * df["n_new"]
    grp = df.groupby(["method", "seed"], sort=False)
    df["prequential_accuracy"] = (correct.groupby([df["method"], df["seed"]]).cumsum()
                                  / grp["n_new"].cumsum())
    return df


def prequential_accuracy(rounds: pd.DataFrame, title: str | None = None) -> Figure:
    """Test-then-train accuracy over the stream: the served model's accuracy on each arriving
    chunk, and the running (cumulative) prequential accuracy."""
    set_style()
    df = prequential_long(rounds)
    methods = _methods_in(rounds)
    fig, axes = _panels(2)
    _lineplot(axes[0], df, "round", "served_accuracy", methods)
    axes[0].set_title("served model on the arriving chunk")
    _lineplot(axes[1], df, "round", "prequential_accuracy", methods)
    axes[1].set_title("cumulative prequential accuracy")
    for ax in axes:
        ax.set_ylabel("accuracy")
        _round_axis(ax, "round (chunk of the stream, in time order)")
    return _finish(fig, axes, title)


def summary_bars(summaries: pd.DataFrame, metric: str, ylabel: str,
                 title: str | None = None) -> Figure:
    """One bar per method (mean over seeds, error bar = sd), e.g. ``forgetting``."""
    set_style()
    methods = _methods_in(summaries)
    styles = method_styles(methods)
    fig, axes = _panels(1, width=max(3.0, 0.45 * len(methods) + 1.0), height=2.8)
    sns.barplot(data=summaries, x="method", y=metric, order=methods, hue="method",
                hue_order=methods, palette={m: styles[m]["color"] for m in methods},
                errorbar="sd", capsize=0.2, ax=axes[0], legend=False)
    axes[0].set_ylabel(ylabel)
    axes[0].set_xlabel("method")
    axes[0].tick_params(axis="x", rotation=45)
    for label in axes[0].get_xticklabels():
        label.set_horizontalalignment("right")
    if title:
        fig.suptitle(title)
    return fig


def forgetting_bars(summaries: pd.DataFrame, title: str | None = None) -> Figure:
    """Forgetting per method: mean over the splits learned before the last round of their best
    accuracy since then minus the final one (:func:`paperlib.engine.metrics.forgetting`; in a
    class-incremental stream, the old classes), as a fraction of accuracy."""
    return summary_bars(summaries, "forgetting", "forgetting (accuracy lost, 0-1)", title)


def _global_steps(trace: pd.DataFrame) -> pd.DataFrame:
    """Add ``global_step``: the step counted across rounds (per method and seed)."""
    parts = []
    for _, g in trace.groupby(["method", "seed"], sort=False):
        g = g.sort_values(["round", "step"]).copy()
        length = g.groupby("round")["step"].max() + 1
        offset = length.cumsum().shift(fill_value=0)
        g["global_step"] = g["step"] + g["round"].map(offset)
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


def arm_probabilities(sample_trace: pd.DataFrame, title: str | None = None) -> Figure:
    """Sample-bandit arm probabilities over gradient steps (all rounds in sequence; dotted lines
    mark round starts), one panel per method, mean ± sd over seeds."""
    set_style()
    df = _global_steps(sample_trace)
    methods = _methods_in(df)
    fig, axes = _panels(len(methods), width=5.5, height=2.6, ncols=1)
    arms = _ordered(df["arm"].tolist(), ["new"])
    palette = sns.color_palette("colorblind", max(len(arms), 3))
    arm_pal = {a: palette[i % len(palette)] for i, a in enumerate(arms)}
    arm_mark = {a: _MARKERS[i % len(_MARKERS)] for i, a in enumerate(arms)}
    arm_dash = {a: _DASHES[i % len(_DASHES)] for i, a in enumerate(arms)}
    for ax, method in zip(axes, methods, strict=True):
        d = df[df["method"] == method]
        present = [a for a in arms if a in set(d["arm"])]
        sns.lineplot(data=d, x="global_step", y="probability", hue="arm", style="arm",
                     hue_order=present, style_order=present, palette=arm_pal, markers=arm_mark,
                     dashes=arm_dash, errorbar="sd", markersize=3, markevery=5, linewidth=1.1,
                     ax=ax)
        first = d[d["seed"] == d["seed"].min()]
        for r, start in first.groupby("round")["global_step"].min().items():
            ax.axvline(start, color="0.5", linestyle=":", linewidth=0.8)
            ax.annotate(f"r{r}", (start, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", va="top", fontsize=7)
        ax.set_title(method)
        ax.set_xlabel("gradient step (all retraining rounds in sequence)")
        ax.set_ylabel("arm probability")
        ax.set_ylim(0, 1)
    return _finish(fig, axes, title, legend_title="data arm")


def weight_group_share(weight_groups: pd.DataFrame) -> pd.DataFrame:
    """Share of weight-bandit decisions in which each parameter group was trained, per method,
    group and round (mean over decisions and seeds)."""
    df = weight_groups.copy()
    df["trained"] = df["trained"].astype(str).str.lower().isin(["true", "1"])
    return (df.groupby(["method", "group", "round"], sort=False)["trained"].mean()
            .rename("share").reset_index())


def weight_group_map(weight_groups: pd.DataFrame, title: str | None = None) -> Figure:
    """Heatmap: share of the weight bandit's decisions in which each parameter group (rows, in
    network order) was trained, per round (columns); one panel per method."""
    set_style()
    share = weight_group_share(weight_groups)
    methods = _methods_in(share)
    groups = list(dict.fromkeys(weight_groups["group"]))
    fig, axes = _panels(len(methods), width=max(3.0, 0.5 * share["round"].nunique() + 1.5),
                        height=max(1.8, 0.35 * len(groups) + 1.0), sharey=False)
    for i, (ax, method) in enumerate(zip(axes, methods, strict=True)):
        mat = (share[share["method"] == method].pivot(index="group", columns="round",
                                                       values="share").reindex(groups))
        sns.heatmap(mat, ax=ax, vmin=0, vmax=1, cmap="cividis", annot=True, fmt=".2f",
                    annot_kws={"fontsize": 6}, cbar=i == len(methods) - 1,
                    cbar_kws={"label": "share of steps trained"}, linewidths=0.3)
        ax.set_title(method)
        ax.set_xlabel("round")
        ax.set_ylabel("parameter group")
    if title:
        fig.suptitle(title)
    return fig


def pareto_front(points: pd.DataFrame, cost: str, accuracy: str) -> pd.DataFrame:
    """Rows of ``points`` not dominated by a cheaper-or-equal, at-least-as-accurate other row,
    sorted by cost.

    >>> pts = pd.DataFrame({"c": [1, 2, 3, 4], "a": [0.5, 0.4, 0.9, 0.8]})
    >>> pareto_front(pts, "c", "a")["c"].tolist()
    [1, 3]
    """
    pts = points.sort_values([cost, accuracy], ascending=[True, False])
    keep, best = [], -np.inf
    for idx, row in pts.iterrows():
        if row[accuracy] > best:
            keep.append(idx)
            best = row[accuracy]
    return pts.loc[keep]


def _setting(df: pd.DataFrame) -> pd.Series:
    return (df["dataset"].map(lambda d: DATASET_LABELS.get(d, d)) + " "
            + df["scenario"].map(lambda s: SCENARIO_LABELS.get(s, s)))


def pareto(summaries: pd.DataFrame, cost: str = "train_flops",
           accuracy: str = "final_avg_accuracy", title: str | None = None) -> Figure:
    """Cost vs accuracy: every method as a point (mean over seeds, error bars = sd in both
    directions), one panel per dataset/scenario; the Pareto front (cheapest for its accuracy) is
    drawn as a line and its points are ringed."""
    set_style()
    labels = {"train_flops": "training FLOPs (rounds 1..R)",
              "retrain_seconds": "retraining time (s, rounds 1..R)",
              "samples_processed": "samples processed (rounds 1..R)"}
    df = summaries.assign(setting=_setting(summaries))
    methods = _methods_in(df)
    styles = method_styles(methods)
    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = _panels(len(settings), width=3.8, height=3.0, sharey=False)
    for ax, setting in zip(axes, settings, strict=True):
        agg = (df[df["setting"] == setting].groupby("method")[[cost, accuracy]]
               .agg(["mean", "std"]))
        agg.columns = [f"{a}_{b}" for a, b in agg.columns]
        agg = agg.reset_index()
        for _, row in agg.iterrows():
            st = styles[row["method"]]
            ax.errorbar(row[f"{cost}_mean"], row[f"{accuracy}_mean"],
                        xerr=np.nan_to_num(row[f"{cost}_std"]),
                        yerr=np.nan_to_num(row[f"{accuracy}_std"]), marker=st["marker"], linestyle="none",
                        color=st["color"], markersize=6, capsize=2, linewidth=0.9,
                        label=row["method"])
            ax.annotate(row["method"], (row[f"{cost}_mean"], row[f"{accuracy}_mean"]),
                        xytext=(4, 3), textcoords="offset points", fontsize=6)
        front = pareto_front(agg, f"{cost}_mean", f"{accuracy}_mean")
        ax.plot(front[f"{cost}_mean"], front[f"{accuracy}_mean"], color="0.2", linestyle="--",
                linewidth=1.0, drawstyle="steps-post", zorder=0, label="Pareto front")
        ax.scatter(front[f"{cost}_mean"], front[f"{accuracy}_mean"], s=110, facecolors="none",
                   edgecolors="0.1", linewidths=1.0, zorder=3)
        if _log_sensible(agg[f"{cost}_mean"]):
            _log_scale(ax, "x", plain=cost.endswith("seconds"))
        ax.set_title(setting)
        ax.set_xlabel(labels.get(cost, cost))
        ax.set_ylabel("final average accuracy" if accuracy == "final_avg_accuracy" else accuracy)
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    order = [k for k in [*methods, "Pareto front"] if k in handles]
    _legend(fig, [handles[k] for k in order], order, "method")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- saving


def _stamp(fig: Figure, text: str) -> None:
    """Put ``text`` under everything drawn so far (below legends and tick labels), left-aligned;
    a second call replaces the text."""
    old = getattr(fig, "_paperlib_footnote", None)
    if old is not None:
        old.set_visible(False)
    fig.canvas.draw()  # run the constrained layout once, then freeze it: a layout re-run at
    fig.set_layout_engine("none")  # save time (other dpi, tight bbox) would move the legend
    renderer = fig.canvas.get_renderer()
    for leg in fig.legends:  # pin figure legends in figure coordinates: a tight-bbox save
        box = leg.get_window_extent(renderer).transformed(fig.transFigure.inverted())
        leg.set_loc("lower left")  # re-anchors them to the cropped bbox otherwise
        leg.borderaxespad = 0.0
        leg.set_bbox_to_anchor((box.x0, box.y0), transform=fig.transFigure)
    bbox = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    x, y = bbox.x0 / w, (bbox.y0 - 6 / 72) / h  # 6 pt below the lowest artist
    if old is not None:
        old.set_text(text)
        old.set_position((x, y))
        old.set_visible(True)
        return
    fig._paperlib_footnote = fig.text(x, y, text, ha="left", va="top", fontsize=6.5,
                                      color="0.3", transform=fig.transFigure)


def save_figure(fig: Figure, name: str, *, caption: str, figures_dir: str | Path = "figures",
                notebook: str, params: Mapping[str, Any], grid: GridResult | None = None,
                wall_seconds: float | None = None, footnote: str | None = None) -> list[Path]:
    """Write ``<figures_dir>/<name>.pdf`` and ``.png`` (stable names, no timestamps or software
    versions in the files, so a rerun with the same results produces the same bytes), after
    stamping a footnote (``footnote`` or one built from ``grid``: profile, data source, seeds),
    and record the figure in ``<figures_dir>/MANIFEST.json``."""
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = footnote if footnote is not None else footnote_text(
        grid.summaries if grid is not None else None, params)
    if text:
        _stamp(fig, text)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    fig.savefig(paths[0], bbox_inches="tight", metadata=PDF_METADATA)
    fig.savefig(paths[1], bbox_inches="tight", metadata=PNG_METADATA)
    record_manifest_entry(out, "figures", name, files=paths, caption=caption, notebook=notebook,
                          params=params, grid=grid, wall_seconds=wall_seconds, footnote=text)
    return paths
