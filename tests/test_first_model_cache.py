"""The runner's first-model cache (``paperlib.serving.runner._first_model``): a run that
reuses another method's round 0 gives exactly the numbers it gives when it trains its own."""

from __future__ import annotations

import json

import pytest

from paperlib.method.methods import METHODS
from paperlib.serving import runner
from paperlib.serving.runner import run

BASE = {"dataset": "digits", "scenario": "class_incremental", "profile": "smoke", "seed": 1,
        "device": "cpu"}
TIMING = ("retrain_seconds", "cumulative_retrain_seconds", "peak_memory_bytes")


def _numbers(result: runner.RunResult) -> str:
    """Every number of a run but its timings, as text (so NaN equals NaN)."""
    rounds = result.rounds.drop(columns=[c for c in TIMING if c in result.rounds])
    summary = {k: v for k, v in result.summary.items()
               if k not in ("retrain_seconds", "peak_memory_bytes", "results_path")}
    tables = {k: v.to_dict("list") for k, v in result.tables.items()}
    return json.dumps({"rounds": rounds.to_dict("list"), "summary": summary, "tables": tables},
                      sort_keys=True, default=str)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_reused_first_model_gives_identical_results(method: str) -> None:
    runner._FIRST_MODELS.clear()
    own = _numbers(run({**BASE, "method": method}, store=False))   # trains (and keeps) round 0
    runner._FIRST_MODELS.clear()
    run({**BASE, "method": "finetune"}, store=False)               # another method's round 0
    cached = len(runner._FIRST_MODELS)
    again = _numbers(run({**BASE, "method": method}, store=False))
    assert again == own
    assert cached == 1


def test_first_model_is_reused_only_for_equal_settings() -> None:
    runner._FIRST_MODELS.clear()
    run({**BASE, "method": "finetune"}, store=False)
    run({**BASE, "method": "replay", "budget": 2.0}, store=False)  # same round 0: a hit
    assert len(runner._FIRST_MODELS) == 1
    run({**BASE, "method": "replay", "seed": 2}, store=False)       # another seed: trains
    run({**BASE, "method": "replay", "lr": 0.01}, store=False)      # another lr: trains
    run({**BASE, "method": "si"}, store=False)                      # SI's path needs round 0
    assert len(runner._FIRST_MODELS) == 3
