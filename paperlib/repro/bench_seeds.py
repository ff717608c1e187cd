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

Part 2c's answer to target 1 (no method within 1 point of full retraining at a quarter of its
compute, whatever its lr and schedule) rests on 3 seeds too, and picks each method's best
setting on the test set. :func:`tuned_runs` repeats that pick on the first 3 seeds only and
runs the picked settings on the others, so target 1's gap at each method's best setting is
read the same way.

>>> _reading(0.01, 0.004), _reading(-0.01, 0.02)
('> 0', 'includes 0')
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import Any

from paperlib.repro.bench_reach import Setting, best_settings, reach_runs
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
    return [_row(label, sc, {name: _paired(subset, sc, a, other, lambda x, y: x[ACC] - y[ACC])
                             for name, subset in (("first", [r for r in rows if r["seed"] in head]),
                                                  ("all", rows))})
            for label, sc, a, other in plan]


def _row(label: str, scenario: str, diffs: dict[str, list[float]]) -> dict[str, Any]:
    """One table row from the per-seed differences over the ``first`` seeds and ``all``."""
    row: dict[str, Any] = {"comparison": label, "scenario": scenario}
    for name, values in diffs.items():
        mean, half = statistics.mean(values), _half_width(values)
        row |= {f"{name}_seeds": mean_sd_text(values, signed=True), f"ci95_{name}": f"± {half:.4f}",
                f"reading_{name}": _reading(mean, half), f"mean_{name}": mean,
                f"n_{name}": len(values)}
    return row


def tuned_runs(device: str, seeds: list[int], profile: str, reference: Setting, first: int = 3,
               run: Callable[..., Any] | None = None) -> list[dict[str, Any]]:
    """Part 2c's runs for target 1 with each method tuned, chosen on the first seeds: every
    method at every setting on the ``first`` seeds (part 2c's own runs), then on the other
    seeds ``full_retrain`` at ``reference`` and each other method at its best setting on the
    first seeds only (76 runs for 10 seeds instead of 160)."""
    head = reach_runs(device, seeds[:first], profile, run)
    best = best_settings(head)
    plan = {"full_retrain": (reference,),
            **{m: (best[m][1:],) for m in best if m != "full_retrain"}}
    return head + reach_runs(device, seeds[first:], profile, run, plan=plan)


def evaluate_tuned(rows: list[dict[str, Any]], reference: Setting,
                   first: int = 3) -> list[dict[str, Any]]:
    """Target 1's gap (``full_retrain`` at ``reference`` minus the method) for each method of
    :func:`tuned_runs` at its best setting on the ``first`` seeds, over those seeds and all."""
    seeds = sorted({r["seed"] for r in rows})
    head = [r for r in rows if r["seed"] in seeds[:first]]
    ref = {r["seed"]: r[ACC] for r in rows
           if (r["method"], r["lr"], r["lr_schedule"]) == ("full_retrain", *reference)}
    out = []
    for method, (_, lr, schedule) in best_settings(head).items():
        if method == "full_retrain":
            continue
        mine = {r["seed"]: r[ACC] for r in rows
                if (r["method"], r["lr"], r["lr_schedule"]) == (method, lr, schedule)}
        gaps = {s: ref[s] - mine[s] for s in seeds if s in ref and s in mine}
        out.append(_row(f"full_retrain minus {method}, own default, lr {lr:g} {schedule} "
                        f"(target 1, its best setting on the first {first} seeds)",
                        "data_incremental",
                        {"first": [g for s, g in gaps.items() if s in seeds[:first]],
                         "all": list(gaps.values())}))
    return out
