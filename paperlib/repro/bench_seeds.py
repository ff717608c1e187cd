"""``make bench-seeds`` part 2f: do parts 2b and 2d's 3-seed readings survive more seeds?

Parts 2b and 2d judge accuracy differences of a few tenths of a point to a few points on 3
seeds, as issue 8 asks; their spread over seeds is often as large as the differences. This part
reruns the same runs (:func:`~paperlib.repro.bench_targets.target_runs`, one timing repeat: no
seconds are read here) on more seeds (``make bench-seeds``: 0-9) and, for every accuracy
comparison the README reads off those tables, puts the first 3 seeds' answer (the seeds part 2b
uses, so the same numbers) beside all seeds' answer, each with its 95 % confidence interval for
the mean of the per-seed paired differences (Student's t, n - 1 degrees of freedom: with 3
seeds the interval is 4.3 standard errors wide on each side, with 10 seeds 2.26). ``reading``
says whether that interval lies above 0, below 0 or includes 0.

>>> _reading(0.01, 0.004), _reading(-0.01, 0.02)
('> 0', 'includes 0')
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from paperlib.repro.bench_table import mean_sd_text
from paperlib.repro.bench_targets import SCENARIOS, _paired, replay_budget

ACC = "final_avg_accuracy"
SEED_COLS = ["comparison", "scenario", "first_seeds", "ci95_first", "reading_first",
             "all_seeds", "ci95_all", "reading_all"]
#: ``(label, a, b)``: a's accuracy minus b's, seed by seed; ``"b"`` in a budget = replay's.
COMPARISONS: tuple[tuple[str, tuple[str, str | None], tuple[str, str | None]], ...] = (
    ("bandit minus replay (target 2)", ("bandit", "b"), ("replay", "b")),
    ("bandit minus random_weights", ("bandit", "b"), ("random_weights", "b")),
    ("bandit minus random_samples", ("bandit", "b"), ("random_samples", "b")),
    ("sample bandit alone minus replay", ("bandit_samples_only", "b"), ("replay", "b")),
    ("+ weight bandit (vs sample bandit alone)", ("bandit_no_reg", "b"),
     ("bandit_samples_only", "b")),
    ("+ regulariser (vs sample bandit alone)", ("bandit_all_weights", "b"),
     ("bandit_samples_only", "b")),
    ("+ both (vs sample bandit alone)", ("bandit", "b"), ("bandit_samples_only", "b")))


def _t975(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def _half_width(values: list[float]) -> float:
    """Half-width of the 95 % t-interval for the mean of ``values`` (NaN for one value)."""
    if len(values) < 2:
        return math.nan
    return _t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def _reading(mean: float, half: float) -> str:
    if math.isnan(half):
        return "n/a"
    return "> 0" if mean - half > 0 else "< 0" if mean + half < 0 else "includes 0"


def evaluate_seeds(rows: list[dict[str, Any]], profile: str, first: int = 3) -> list[dict[str, Any]]:
    """Part 2f's table from :func:`~paperlib.repro.bench_targets.target_runs` rows: for target
    1's accuracy gap and every comparison of :data:`COMPARISONS` on each scenario, the mean ± sd
    of the per-seed differences over the ``first`` seeds and over all seeds, each with its 95 %
    interval's half-width and reading (numeric ``mean_first``/``mean_all`` too)."""
    seeds = sorted({r["seed"] for r in rows})
    if len(seeds) <= first:
        raise ValueError(f"part 2f needs more than {first} seeds, got {seeds}")
    head = set(seeds[:first])
    b = replay_budget(profile)
    plan = [("full_retrain minus bandit, own default (target 1)", "data_incremental",
             ("full_retrain", None), ("bandit", None))]
    for sc in SCENARIOS:
        for label, (ma, ba), (mb, bb) in COMPARISONS:
            plan.append((label, sc, (ma, b if ba == "b" else ba), (mb, b if bb == "b" else bb)))
    out = []
    for label, sc, a, other in plan:
        row: dict[str, Any] = {"comparison": label, "scenario": sc}
        for name, subset in (("first", [r for r in rows if r["seed"] in head]), ("all", rows)):
            diffs = _paired(subset, sc, a, other, lambda x, y: x[ACC] - y[ACC])
            mean, half = statistics.mean(diffs), _half_width(diffs)
            row |= {f"{name}_seeds": mean_sd_text(diffs, signed=True), f"ci95_{name}": f"± {half:.4f}",
                    f"reading_{name}": _reading(mean, half), f"mean_{name}": mean,
                    f"n_{name}": len(diffs)}
        out.append(row)
    return out
