"""Compare a fresh reproduction's tables with reference tables (by default, the committed ones).

``make check-reproduction`` reruns the notebooks of a profile into a temporary folder and calls
``python -m paperlib.repro.reprocheck --fresh <tmp>/figures/tables`` (reference: ``git show
HEAD:figures/tables/<name>.csv``). For every table it prints the largest absolute deviation over
the deterministic numbers (accuracies, forgetting, flip rates, FLOPs, bandit statistics; not
wall-clock seconds or memory; FLOPs relatively) and where it is, and exits 1 when a deviation exceeds
``--tolerance``, a row or table is missing, or a table has rows the reference lacks.

>>> ref = pd.DataFrame({"method": ["a", "b"], "acc_mean": [0.5, 0.7], "retrain_seconds_mean": [1, 2]})
>>> new = pd.DataFrame({"method": ["b", "a"], "acc_mean": [0.7, 0.52], "retrain_seconds_mean": [9, 9]})
>>> d = compare_tables(ref, new)
>>> round(d.deviation, 6), d.where
(0.02, 'method=a: acc_mean')
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pandas as pd

from paperlib.serving.store import REPO_ROOT

#: Column stems that measure the machine, not the method: never compared.
NONDETERMINISTIC = ("retrain_seconds", "run_seconds", "peak_memory_bytes", "seconds")
#: Provenance columns: differ by design between a reference and a rerun of newer code.
PROVENANCE = ("code_hash", "git_revision", "threads", "data_source", "profile")


@dataclass
class Deviation:
    """Largest absolute deviation of one table (``where``: the row keys and column)."""

    deviation: float
    where: str
    problems: list[str]


def _numeric_columns(df: pd.DataFrame) -> list[str]:
    cols = []
    for c in df.columns:
        if c in PROVENANCE or any(c.startswith(p) for p in NONDETERMINISTIC):
            continue
        if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
            cols.append(c)
    return cols


def _keys(df: pd.DataFrame) -> list[str]:
    """Identifying columns: the non-numeric ones, plus ``round``/``seed`` when present."""
    keys = [c for c in df.columns if c not in PROVENANCE and c != "lossy_data"
            and not pd.api.types.is_numeric_dtype(df[c])]
    return keys + [c for c in ("round", "seed") if c in df.columns]


def compare_tables(reference: pd.DataFrame, fresh: pd.DataFrame) -> Deviation:
    """Largest |fresh - reference| over matching rows and the deterministic numeric columns
    (a different ``n_seeds``, missing rows or columns are listed as problems)."""
    keys = _keys(reference)
    problems: list[str] = []
    missing_keys = [k for k in keys if k not in fresh.columns]
    if missing_keys:
        return Deviation(math.inf, "", [f"fresh table lacks key columns {missing_keys}"])
    ref = reference.set_index(keys) if keys else reference
    new = fresh.set_index(keys) if keys else fresh
    gone = [i for i in ref.index if i not in new.index]
    extra = [i for i in new.index if i not in ref.index]
    if gone:
        problems.append(f"{len(gone)} reference rows missing, e.g. {gone[0]}")
    if extra:
        problems.append(f"{len(extra)} rows not in the reference, e.g. {extra[0]}")
    worst, where = 0.0, ""
    common = [i for i in ref.index if i in new.index]
    if "n_seeds" in reference and "n_seeds" in fresh and common:
        differ = ref.loc[common, "n_seeds"].to_numpy() != new.loc[common, "n_seeds"].to_numpy()
        if differ.any():
            problems.append(f"n_seeds differs in {int(differ.sum())} rows (reference "
                            f"{sorted(set(ref['n_seeds']))}, fresh {sorted(set(new['n_seeds']))})")
    for col in [c for c in _numeric_columns(reference) if c not in (*keys, "n_seeds")]:
        if col not in fresh.columns:
            problems.append(f"column {col} missing")
            continue
        a = pd.to_numeric(ref.loc[common, col], errors="coerce")
        b = pd.to_numeric(new.loc[common, col], errors="coerce")
        diff = (b - a).abs()
        if "flops" in col:  # counts of order 1e10: compared relatively
            diff = diff / a.abs().clip(lower=1.0)
        one_sided = a.isna() ^ b.isna()
        if one_sided.any():
            problems.append(f"{col}: {int(one_sided.sum())} cells empty on one side only")
        diff = diff.fillna(0.0)
        if len(diff) and float(diff.max()) > worst:
            worst = float(diff.max())
            i = diff.idxmax()
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, i if isinstance(i, tuple) else (i,),
                                                         strict=True))
            where = f"{label}: {col}"
    return Deviation(worst, where, problems)


def read_reference(name: str, reference: str) -> pd.DataFrame | None:
    """Table ``name`` from a folder, or from git (``REV:path``, e.g. ``HEAD:figures/tables``)."""
    if ":" in reference and not Path(reference).exists():
        rev, folder = reference.split(":", 1)
        proc = subprocess.run(["git", "show", f"{rev}:{folder.rstrip('/')}/{name}"],
                              cwd=REPO_ROOT, capture_output=True, text=True)
        return pd.read_csv(StringIO(proc.stdout)) if proc.returncode == 0 else None
    path = Path(reference) / name
    return pd.read_csv(path) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paperlib.repro.reprocheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", type=Path, required=True, help="folder of fresh tables (*.csv)")
    parser.add_argument("--reference", default="HEAD:figures/tables",
                        help="folder or REV:path in git (default HEAD:figures/tables)")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest allowed absolute deviation (default 0: identical)")
    args = parser.parse_args(argv)
    names = sorted(p.name for p in args.fresh.glob("*.csv"))
    if not names:
        print(f"no tables in {args.fresh}", file=sys.stderr)
        return 1
    failed = 0
    print(f"{'table':45s} {'largest deviation':>18s}  where")
    # a problem (missing rows/columns, cells empty on one side) fails like a deviation
    for name in names:
        ref = read_reference(name, args.reference)
        if ref is None:
            print(f"{name:45s} {'(no reference)':>18s}")
            failed += 1
            continue
        d = compare_tables(ref, pd.read_csv(args.fresh / name))
        bad = d.deviation > args.tolerance or d.problems
        failed += bool(bad)
        print(f"{name:45s} {d.deviation:18.6g}  {d.where}{'  <-- over tolerance' if bad else ''}")
        for p in d.problems:
            print(f"{'':45s} {'':18s}  {p}")
    print(f"{len(names) - failed} of {len(names)} tables within tolerance {args.tolerance:g} "
          f"of {args.reference}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
