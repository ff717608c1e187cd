"""Results tables and the figure manifest, generated from stored runs (never typed by hand).

- :func:`summary_table`: per dataset / scenario / method, mean and sd over seeds of the final
  accuracy (average and per split), forgetting, prequential accuracy, negative flip rate,
  retraining seconds and FLOPs.
- :func:`write_table`: ``<figures>/tables/<name>.csv`` (numbers) and ``.md`` (``mean ± sd``),
  recorded in the manifest.
- :func:`record_manifest_entry` (in :mod:`paperlib.repro.manifest`, re-exported): ``<figures>/MANIFEST.json`` says, for every figure and table,
  which notebook and parameters made it, the git revision, the data checksums, the runs used and
  their run time, the notebook's wall time and the device. Notebooks run in parallel under
  ``make -j``, so every update is a locked read-modify-write replaced atomically.
- :func:`make_readme_table` and ``python -m paperlib.repro.report``: the results table shown in the
  README, rebuilt from the runs the manifest lists.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from paperlib.method.methods import METHODS
from paperlib.repro.labels import DATASET_LABELS, SCENARIO_LABELS, footnote_text
from paperlib.repro.manifest import (  # noqa: F401  (re-exported: the manifest API of this module)
    MANIFEST,
    _atomic_write,
    _read_json,
    read_manifest,
    record_manifest_entry,
    update_manifest,
)
from paperlib.serving.config import DATASETS, SCENARIOS
from paperlib.serving.provenance import describe_table_versions, describe_versions
from paperlib.serving.store import REPO_ROOT, results_root

if TYPE_CHECKING:
    from paperlib.repro.gridrun import GridResult

#: Summary columns aggregated by :func:`summary_table` (when present), in display order.
METRICS: tuple[str, ...] = ("final_avg_accuracy", "forgetting", "backward_transfer",
                            "prequential_accuracy", "negative_flip_rate", "retrain_seconds",
                            "train_flops", "trainable_fraction")
METRIC_LABELS = {"final_avg_accuracy": "final avg. accuracy", "forgetting": "forgetting",
                 "backward_transfer": "backward transfer",
                 "prequential_accuracy": "prequential acc.", "negative_flip_rate": "neg. flip rate",
                 "retrain_seconds": "retraining time (s)", "train_flops": "training FLOPs",
                 "trainable_fraction": "trainable fraction"}
KEYS = ("dataset", "scenario", "method")
#: The headline metric per scenario: a real stream is scored as it is served, on each chunk
#: before training on it (prequential); the other scenarios by the final model's accuracy.
HEADLINE: dict[str, str] = {"stream": "prequential_accuracy"}


def headline_metric(scenario: str) -> str:
    """The headline metric of ``scenario`` (:data:`HEADLINE`, else final average accuracy).

    >>> headline_metric("stream"), headline_metric("class_incremental")
    ('prequential_accuracy', 'final_avg_accuracy')
    """
    return HEADLINE.get(scenario, "final_avg_accuracy")
#: Provenance columns carried into tables (distinct values joined by commas).
PROVENANCE_COLUMNS = ("profile", "data_source", "lossy_data", "code_hash", "git_revision",
                      "threads")


# --------------------------------------------------------------------------- tables


def summary_table(summaries: pd.DataFrame, by: Sequence[str] = KEYS,
                  metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean and sd over seeds per ``by`` group: ``<metric>_mean``, ``<metric>_std`` for every
    metric and ``final_acc/<split>`` column, plus ``n_seeds``, ``profile``, ``data_source`` and
    ``lossy_data``. Rows follow the method order of :data:`paperlib.method.methods.METHODS`.

    >>> s = pd.DataFrame({"dataset": "d", "scenario": "s", "method": ["a", "a"], "seed": [0, 1],
    ...                   "profile": "quick", "final_avg_accuracy": [0.8, 0.9]})
    >>> t = summary_table(s)
    >>> round(float(t.loc[0, "final_avg_accuracy_mean"]), 6), int(t.loc[0, "n_seeds"])
    (0.85, 2)
    """
    metrics = list(metrics) if metrics is not None else [m for m in METRICS if m in summaries]
    metrics += [c for c in summaries.columns if c.startswith("final_acc/") and c not in metrics]
    by = list(by)
    grouped = summaries.groupby(by, sort=False, dropna=False)
    out = grouped.agg(n_seeds=("seed", "nunique")).reset_index()
    for m in metrics:
        stats = grouped[m].agg(["mean", "std"]).reset_index()
        out[f"{m}_mean"] = stats["mean"].to_numpy()
        out[f"{m}_std"] = stats["std"].to_numpy()
    for extra in PROVENANCE_COLUMNS:
        if extra in summaries:
            vals = grouped[extra].agg(lambda v: ",".join(dict.fromkeys(map(str, v))))
            out[extra] = vals.to_numpy()
    if "lossy_data" in out:
        out["lossy_data"] = out["lossy_data"].map(lambda v: "True" in v.split(","))
    return _sort_rows(out, by)


def _sort_rows(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Rows in a stable, meaningful order: scenario (SCENARIOS order), dataset (DATASETS
    order), method (METHODS order), then any other key."""
    orders = {"scenario": SCENARIOS, "dataset": DATASETS, "method": tuple(METHODS)}
    keys = [k for k in ("scenario", "dataset") if k in by] + [k for k in by if k not in
                                                               ("scenario", "dataset", "method")]
    keys += ["method"] if "method" in by else []
    sort_cols = []
    tmp = df.copy()
    for k in keys:
        if k in orders:
            rank = {v: i for i, v in enumerate(orders[k])}
            tmp[f"_o_{k}"] = tmp[k].map(lambda v, rank=rank: rank.get(v, len(rank)))
            sort_cols.append(f"_o_{k}")
        else:
            sort_cols.append(k)
    tmp = tmp.sort_values(sort_cols, kind="stable")
    return tmp.drop(columns=[c for c in tmp.columns if c.startswith("_o_")]).reset_index(drop=True)


def bandit_arm_table(sample_arms: pd.DataFrame) -> pd.DataFrame:
    """Sample-bandit arms per method and round: pulls, final probability and mean reward,
    mean over seeds (``*_mean``/``*_std`` columns, ``n_seeds``)."""
    if not len(sample_arms):
        return pd.DataFrame(columns=["method", "round", "arm", "n_seeds"])
    by = ["method", "round", "arm"]
    return summary_table(sample_arms, by=by,
                         metrics=[m for m in ("pulls", "probability", "mean_reward")
                                  if m in sample_arms])


def _fmt_number(v: float, metric: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if metric.endswith("flops") or metric.endswith("FLOPs"):
        return f"{v:.2e}"
    if metric.endswith("seconds"):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return f"{v:.3f}"


def mean_sd(mean: float, sd: float, metric: str) -> str:
    """``0.912 ± 0.004`` (sd omitted when undefined, e.g. one seed).

    >>> mean_sd(0.91234, 0.0041, "final_avg_accuracy"), mean_sd(1.5e12, float("nan"), "train_flops")
    ('0.912 ± 0.004', '1.50e+12')
    """
    text = _fmt_number(mean, metric)
    if text == "–" or sd is None or (isinstance(sd, float) and math.isnan(sd)):
        return text
    return f"{text} ± {_fmt_number(sd, metric)}"


#: Metrics shown in the Markdown tables (the CSV files keep every column).
MARKDOWN_METRICS = ("final_avg_accuracy", "final_acc/*", "forgetting", "prequential_accuracy",
                    "negative_flip_rate", "retrain_seconds", "train_flops", "trainable_fraction")


def formatted_table(table: pd.DataFrame, metrics: Sequence[str] | None = MARKDOWN_METRICS,
                    max_splits: int = 6) -> pd.DataFrame:
    """:func:`summary_table` output as strings ``mean ± sd`` with readable headers.

    ``metrics``: which ``<metric>_mean`` columns to show (``"final_acc/*"`` = every split when
    there are at most ``max_splits``; None = all; a chosen metric that is NaN in every row, such
    as forgetting on data-incremental streams, is left out); key columns with one value are
    dropped."""
    keys = [c for c in table.columns if not c.endswith(("_mean", "_std"))
            and c not in PROVENANCE_COLUMNS]
    keys = [c for c in keys if c in ("method", "n_seeds") or table[c].nunique() > 1]
    out = table[keys].copy()
    available = [c[:-5] for c in table.columns if c.endswith("_mean")]
    if metrics is not None and "scenario" in table and set(table["scenario"]) == {"stream"}:
        lead = headline_metric("stream")  # streams lead with their headline metric
        metrics = [lead, *[m for m in metrics if m != lead]]
    if metrics is None:
        metrics = available
    else:
        splits = [m for m in available if m.startswith("final_acc/")]
        chosen: list[str] = []
        for m in metrics:
            if m == "final_acc/*":
                chosen += splits if 1 < len(splits) <= max_splits else []
            elif m in available and table[f"{m}_mean"].notna().any():  # all-NaN: undefined
                chosen.append(m)                                          # here, left out
        metrics = chosen or available
    for m in metrics:
        label = METRIC_LABELS.get(m, m.replace("final_acc/", "final acc. "))
        out[label] = [mean_sd(a, b, m) for a, b in zip(table[f"{m}_mean"], table[f"{m}_std"],
                                                        strict=True)]
    if "lossy_data" in table and table["lossy_data"].any():
        out["data"] = ["lossy JPEG copy" if v else "" for v in table["lossy_data"]]
    return out


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency).

    >>> print(to_markdown(pd.DataFrame({"a": [1], "b": ["x|y"]})))
    | a | b |
    | --- | --- |
    | 1 | x\\|y |
    """
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "| " + " | ".join("---" for _ in df.columns) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


def table_notes(summaries: pd.DataFrame | None) -> str:
    """One line: profile(s), seeds, data provenance (lossy CIFAR-10 said explicitly)."""
    if summaries is None or not len(summaries):
        return ""
    return footnote_text(summaries)


def write_table(table: pd.DataFrame, name: str, *, caption: str,
                figures_dir: str | Path = "figures", notebook: str,
                params: Mapping[str, Any] | None = None, grid: GridResult | None = None,
                wall_seconds: float | None = None, summaries: pd.DataFrame | None = None,
                record: bool = True) -> list[Path]:
    """Write ``<figures_dir>/tables/<name>.csv`` (the numbers) and ``.md`` (caption, the table as
    ``mean ± sd``, provenance note) and record them in the manifest."""
    out = Path(figures_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    summaries = summaries if summaries is not None else (grid.summaries if grid else None)
    note = table_notes(summaries)
    if summaries is not None and "code_hash" in summaries:
        note = "; ".join(filter(None, [note, describe_versions(summaries.to_dict("records"))]))
    csv, md = out / f"{name}.csv", out / f"{name}.md"
    _atomic_write(csv, table.to_csv(index=False, float_format="%.6g"))
    body = formatted_table(table) if any(c.endswith("_mean") for c in table.columns) else table
    text = f"**{caption}**\n\n{to_markdown(body)}\n"
    if note:
        text += f"\n_{note}._\n"
    _atomic_write(md, text)
    if record:
        record_manifest_entry(Path(figures_dir), "tables", name, files=[csv, md], caption=caption,
                              notebook=notebook, params=params or {}, grid=grid,
                              wall_seconds=wall_seconds, footnote=note, summaries=summaries)
    return [csv, md]


def _setting_label(dataset: str, scenario: str) -> str:
    return f"{DATASET_LABELS.get(dataset, dataset)} {SCENARIO_LABELS.get(scenario, scenario)}"


def _display(path: Path) -> str:
    """``path`` relative to the repository when inside it (for README text)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def make_readme_table(table: pd.DataFrame | None = None, *,
                      figures_dir: str | Path = REPO_ROOT / "figures",
                      metric: str = "headline",
                      cost: str | None = "retrain_seconds") -> str:
    """The README's results table: one row per method, one column per dataset/scenario, cells
    ``mean ± sd`` of ``metric`` over seeds; a second table for ``cost``. ``table`` is a
    :func:`summary_table` (default: ``<figures_dir>/tables/results.csv``). ``"headline"``:
    each column's :func:`headline_metric` (prequential accuracy for the streams, marked †)."""
    if table is None:
        table = pd.read_csv(Path(figures_dir) / "tables" / "results.csv")
    if not len(table):
        return "_No results yet: run `make reproduce`._\n"
    table = table.assign(setting=[_setting_label(d, s) for d, s in
                                  zip(table["dataset"], table["scenario"], strict=True)])
    settings = list(dict.fromkeys(table["setting"]))
    methods = [m for m in METHODS if m in set(table["method"])]
    methods += [m for m in dict.fromkeys(table["method"]) if m not in methods]

    scenario_of = dict(zip(table["setting"], table["scenario"], strict=True))

    def pivot(col: str) -> pd.DataFrame:
        rows = []
        for m in methods:
            row = {"method": m}
            for s in settings:
                c = headline_metric(scenario_of[s]) if col == "headline" else col
                head = f"{s} †" if c != col and c != "final_avg_accuracy" else s
                hit = table[(table["method"] == m) & (table["setting"] == s)]
                row[head] = (mean_sd(hit[f"{c}_mean"].iloc[0], hit[f"{c}_std"].iloc[0], c)
                             if len(hit) else "–")
            rows.append(row)
        return pd.DataFrame(rows)

    profiles = ", ".join(dict.fromkeys(str(p) for p in table.get("profile", ["?"])))
    seeds = sorted(set(int(n) for n in table["n_seeds"]))
    label = METRIC_LABELS.get(metric, metric)
    if metric == "headline":
        streams = any(headline_metric(v) != "final_avg_accuracy" for v in scenario_of.values())
        label = "final avg. accuracy" + ("; † prequential (test-then-train) accuracy, the "
                                         "headline of a stream" if streams else "")
    lines = [f"**{label}** (mean ± sd over "
             f"{'/'.join(map(str, seeds))} seeds; profile {profiles})", "",
             to_markdown(pivot(metric))]
    if cost is not None and f"{cost}_mean" in table:
        lines += ["", f"**{METRIC_LABELS.get(cost, cost)}**, summed over retraining rounds "
                      "(mean ± sd)", "", to_markdown(pivot(cost))]
    notes = []
    if "lossy_data" in table and table["lossy_data"].astype(str).isin(["True", "true"]).any():
        notes.append("CIFAR-10 results come from a lossy JPEG copy of the dataset "
                     "(quality ~75), not the canonical release.")
    manifest = _display(Path(figures_dir) / MANIFEST)
    notes.append(f"Generated by `python -m paperlib.repro.report` from stored runs of "
                 f"{describe_table_versions(table)}; see `{manifest}` for provenance.")
    lines += ["", *[f"_{n}_" for n in notes]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI


def run_variant(config: dict[str, Any]) -> str:
    """The settings of a stored run (its ``config.json``) that differ from the defaults of its
    method and profile, as ``"name=value"`` joined by ``", "``; ``""`` for a run at the
    defaults. The device is not a setting here (``auto`` and ``cuda`` are the same run).

    >>> base = {"dataset": "mnist", "scenario": "data_incremental", "method": "replay",
    ...         "seed": 0, "profile": "quick"}
    >>> from paperlib.serving.config import RunConfig, as_jsonable
    >>> run_variant(as_jsonable(RunConfig.from_params(base)))
    ''
    >>> run_variant(as_jsonable(RunConfig.from_params({**base, "budget": 4, "memory_size": 500})))
    'budget=4.0, memory_size=500'
    """
    from paperlib.serving.config import FIELDS, RunConfig

    ref = RunConfig.from_params({k: config[k] for k in
                                 ("dataset", "scenario", "method", "seed", "profile")})
    canon = lambda v: json.dumps(v, sort_keys=True, default=list)  # noqa: E731 - tuples = lists
    out = [f"{k}={config.get(k)}" for k in FIELDS
           if k != "device" and canon(config.get(k)) != canon(getattr(ref, k))]
    hparams = config.get("hparams", {})
    out += [f"{k}={hparams.get(k)}" for k, v in ref.hparams.items()
            if canon(hparams.get(k)) != canon(v)]
    return ", ".join(out)


def collect_summaries(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """Summary rows (as :func:`paperlib.repro.experiments.summary_row`) of stored run folders,
    with ``variant`` (:func:`run_variant`; ``""`` = the method's and profile's defaults, also
    for a folder without ``config.json``, which the runner always writes)."""
    rows = []
    for d in dict.fromkeys(run_dirs):
        summary = _read_json(d / "summary.json")
        if not summary:
            continue
        env = _read_json(d / "env.json")
        row = {k: v for k, v in summary.items() if not isinstance(v, dict | list)}
        row.update({f"final_acc/{k}": v
                    for k, v in summary.get("final_accuracy_by_split", {}).items()})
        row["run_seconds"] = env.get("run_seconds")
        config = _read_json(d / "config.json")
        row["variant"] = run_variant(config) if config else ""
        row["run_dir"] = str(d)
        rows.append(row)
    return pd.DataFrame(rows)


def manifest_runs(figures_dir: Path, results: Path, profile: str | None) -> list[Path]:
    """Run folders used by the manifest's notebook entries (of ``profile`` when given)."""
    manifest = read_manifest(figures_dir)
    runs: list[Path] = []
    for kind in ("figures", "tables"):
        for entry in manifest[kind].values():
            if entry.get("notebook") == "paperlib.repro.report":
                continue
            if profile and entry.get("parameters", {}).get("profile") != profile:
                continue
            root = entry.get("results_root")
            root = Path(root) if isinstance(root, str) and root else results
            runs += [root / r for r in entry.get("runs", [])]
    return list(dict.fromkeys(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m paperlib.repro.report",
        description="Rebuild figures/tables/results.{csv,md} and README_results.md from the runs "
                    "the figure manifest lists (or, with --all, every stored run).")
    parser.add_argument("--profile", help="only runs of this profile (default: all)")
    parser.add_argument("--figures-dir", type=Path, default=REPO_ROOT / "figures")
    parser.add_argument("--results", type=Path, default=None, help="results root")
    parser.add_argument("--all", action="store_true", help="every run in the results store")
    parser.add_argument("--readme", type=Path, default=None,
                        help="also splice the snippet into this file between "
                             "'<!-- MARKER:start -->' and '<!-- MARKER:end -->'")
    parser.add_argument("--readme-marker", default="results", metavar="MARKER",
                        help="marker name for --readme (default: results)")
    parser.add_argument("--allow-mixed-code", action="store_true",
                        help="combine runs made by different code versions (default: refuse)")
    parser.add_argument("--check-claims", type=Path, metavar="MARKDOWN", default=None,
                        help="only check the '<!-- claim: ... -->' markers of this file against "
                             "the tables under --figures-dir (see paperlib.repro.claims); exit 1 if "
                             "one is false")
    parser.add_argument("--splice", nargs=2, action="append", default=[],
                        metavar=("TABLE", "MARKER"),
                        help="only splice the generated table <figures-dir>/tables/TABLE.md into "
                             "--readme between the MARKER markers (repeatable)")
    args = parser.parse_args(argv)
    if args.splice:
        if args.readme is None:
            parser.error("--splice needs --readme")
        for name, m in args.splice:
            table_md = args.figures_dir / "tables" / f"{name}.md"
            if not table_md.exists():
                print(f"error: no table {table_md}; run its notebook first", file=sys.stderr)
                return 1
            splice_readme(args.readme, table_md.read_text(), f"<!-- {m}:start -->",
                          f"<!-- {m}:end -->")
            print(f"spliced {table_md} into {args.readme} ({m})")
        return 0
    if args.check_claims is not None:
        from paperlib.repro.claims import check_claims

        passed, failed = check_claims(args.check_claims, args.figures_dir)
        for line in passed + failed:
            print(line)
        print(f"{len(passed)} claims hold, {len(failed)} do not")
        return 1 if failed else 0
    results = args.results or results_root()
    if args.all:
        dirs = sorted(p.parent for p in results.glob("*/summary.json"))
    else:
        dirs = manifest_runs(args.figures_dir, results, args.profile)
    summaries = collect_summaries(dirs)
    if len(summaries) and args.profile:
        summaries = summaries[summaries["profile"] == args.profile]
    if not len(summaries):
        print(f"no runs found (profile={args.profile}, results={results}); "
              "run the notebooks first (make reproduce)", file=sys.stderr)
        return 1
    from paperlib.serving.provenance import MixedCodeError, check_single_code

    try:
        check_single_code(summaries.to_dict("records"), args.allow_mixed_code)
    except MixedCodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # One row per dataset / scenario / method: runs at the method's and profile's defaults
    # only. Runs of other settings (07's budget sweep, 05's ablation variants) have their own
    # notebook tables; averaged in here they would pass for the defaults.
    variants = summaries["variant"] != ""
    if variants.any():
        print(f"left out {int(variants.sum())} runs at non-default settings (their notebooks' "
              f"tables show them), e.g. {summaries.loc[variants, 'variant'].iloc[0]}")
        summaries = summaries[~variants]
    table = summary_table(summaries)
    params = {"profile": args.profile, "all": args.all, "results": str(results)}
    write_table(table, "results", caption="Results per dataset, scenario and method, each "
                "at its default settings (mean ± sd over seeds)", figures_dir=args.figures_dir,
                notebook="paperlib.repro.report", params=params, summaries=summaries)
    readme = args.figures_dir / "tables" / "README_results.md"
    _atomic_write(readme, make_readme_table(table, figures_dir=args.figures_dir))
    record_manifest_entry(args.figures_dir, "tables", "README_results", files=[readme],
                          caption="README results snippet", notebook="paperlib.repro.report",
                          params=params, summaries=summaries)
    print(f"wrote {args.figures_dir / 'tables'}/results.csv|md and {readme} "
          f"({len(summaries)} runs, {len(table)} rows)")
    if args.readme is not None:
        m = args.readme_marker
        splice_readme(args.readme, readme.read_text(), f"<!-- {m}:start -->", f"<!-- {m}:end -->")
        print(f"updated the results section of {args.readme}")
    return 0


def splice_readme(path: Path, snippet: str, start: str = "<!-- results:start -->",
                  end: str = "<!-- results:end -->") -> None:
    r"""Replace the text between the ``start`` and ``end`` markers of ``path`` with ``snippet``.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "R.md"
    >>> _ = p.write_text("a\n<!-- results:start -->\nold\n<!-- results:end -->\nb\n")
    >>> splice_readme(p, "new table")
    >>> p.read_text()
    'a\n<!-- results:start -->\nnew table\n<!-- results:end -->\nb\n'
    """
    text = path.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{path} lacks the markers {start!r} ... {end!r}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    _atomic_write(path, f"{head}{start}\n{snippet.strip()}\n{end}{tail}")


if __name__ == "__main__":
    raise SystemExit(main())
