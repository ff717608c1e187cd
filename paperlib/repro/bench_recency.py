"""``make bench-seeds`` part 2g: why the bandits swing on class-incremental MNIST.

Part 2f finds the paper's method 2.3 points below replay on class-incremental MNIST on 10
seeds, with a spread of 3 points: on a few seeds it ends 5-7.5 points below. The sample
bandit's past-data arms are arrival rounds (``sample_grouping="chunk"``), and on this stream
only round 0 holds the old classes (0-4); rounds 1-4 hold new classes (5-9), as the new chunk
does. A step's memory rows all come from the one arm it pulls, so only the steps that pull
round 0 show the model an old class, while every replay batch carries them (its memory rows
are uniform over a reservoir in which the old classes are the majority).

This part records the arm of every step (:func:`arm_log` wraps
:meth:`~paperlib.engine.samples.SampleBandit.next_batch` for the duration of the runs; nothing
in the library changes) and asks, across seeds, whether the final old-class accuracy follows
the share of old-class pulls over the whole last round or over its last few steps. With
``sample_grouping="class"`` (each class its own arm) the old-class share of pulls doubles; if
the share over the round were what mattered, that would help.

>>> _corr([0.1, 0.2, 0.3], [0.5, 0.7, 0.9]), math.isnan(_corr([0.2, 0.2], [0.5, 0.6]))
(1.0, True)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from paperlib.repro.bench_table import mean_sd_text

#: ``(method, sample_grouping)``; replay (no arms) is the reference of ``minus_replay``.
CELLS = (("bandit", "chunk"), ("bandit_samples_only", "chunk"), ("bandit", "class"),
         ("bandit_samples_only", "class"))
OLD_ARMS = frozenset({"round 0", *(f"class {c}" for c in range(5))})
RECENCY_COLS = ["method", "grouping", "seeds", "old_pulls_round", "old_pulls_last",
                "final_old_acc", "minus_replay", "corr_round", "corr_last", "low_seeds"]


@contextmanager
def arm_log() -> Iterator[list[tuple[int, str]]]:
    """While open, every :class:`~paperlib.engine.samples.SampleBandit` step appends
    ``(round_index, arm name)`` to the yielded list; the class is restored on exit."""
    from paperlib.engine.samples import SampleBandit

    log: list[tuple[int, str]] = []
    real = SampleBandit.next_batch

    def recording(self: SampleBandit) -> Any:
        batch = real(self)
        log.append((self.round_index, self.arm_names[batch[2]]))
        return batch

    SampleBandit.next_batch = recording
    try:
        yield log
    finally:
        SampleBandit.next_batch = real


def recency_runs(device: str, seeds: list[int], profile: str, budget: float, last: int = 10,
                 run: Callable[..., Any] | None = None) -> list[dict[str, Any]]:
    """One row per (cell of :data:`CELLS` or replay, seed), class-incremental MNIST at
    ``budget``: final average and old-class accuracy and, for the bandits, the share of the
    last round's steps that pull an old-class arm, over the round and over its ``last`` steps."""
    if run is None:
        from paperlib.serving.runner import run
    base = {"dataset": "mnist", "scenario": "class_incremental", "profile": profile,
            "device": device, "budget": budget}
    rows = []
    for seed in seeds:
        for method, grouping in (("replay", None), *CELLS):
            params = {**base, "method": method, "seed": seed}
            if grouping is not None:
                params["sample_grouping"] = grouping
            with arm_log() as log:
                r = run(params, store=False)
            last_round = max((k for k, _ in log), default=None)
            final = [arm in OLD_ARMS for k, arm in log if k == last_round]
            rows.append({"method": method, "grouping": grouping, "seed": seed,
                         "final_avg_accuracy": r.summary["final_avg_accuracy"],
                         "final_old_acc": float(r.rounds["acc/old"].iloc[-1]),
                         "old_pulls_round": statistics.mean(final) if final else math.nan,
                         "old_pulls_last": statistics.mean(final[-last:]) if final else math.nan})
    return rows


def _corr(x: list[float], y: list[float]) -> float:
    """Pearson's correlation, rounded to 2 places; NaN when either side is constant."""
    try:
        return round(statistics.correlation(x, y), 2)
    except statistics.StatisticsError:
        return math.nan


def _corr_text(x: list[float], y: list[float]) -> str:
    c = _corr(x, y)
    return "n/a" if math.isnan(c) else f"{c:+.2f}"


def evaluate_recency(rows: list[dict[str, Any]], low: float = 0.03) -> list[dict[str, Any]]:
    """Part 2g's table: per cell, mean ± sd over seeds of the old-class pull shares, the final
    old-class accuracy and the final average accuracy minus replay's (same seed); the
    correlation across seeds of each share with the final old-class accuracy; the seeds that
    end more than ``low`` below replay."""
    replay = {r["seed"]: r for r in rows if r["method"] == "replay"}
    out = []
    for method, grouping in CELLS:
        mine = [r for r in rows if (r["method"], r["grouping"]) == (method, grouping)]
        old = [r["final_old_acc"] for r in mine]
        minus = [r["final_avg_accuracy"] - replay[r["seed"]]["final_avg_accuracy"] for r in mine]
        out.append({"method": method, "grouping": grouping, "seeds": len(mine),
                    **{k: mean_sd_text([r[k] for r in mine], True)
                       for k in ("old_pulls_round", "old_pulls_last")},
                    "final_old_acc": mean_sd_text(old), "minus_replay": mean_sd_text(minus, signed=True),
                    "corr_round": _corr_text([r["old_pulls_round"] for r in mine], old),
                    "corr_last": _corr_text([r["old_pulls_last"] for r in mine], old),
                    "low_seeds": ",".join(str(r["seed"]) for r, d in zip(mine, minus, strict=True)
                                          if d < -low) or "none"})
    return out
