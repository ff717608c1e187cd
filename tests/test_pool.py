"""The run pool: its results equal the same runs made one after the other."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from paperlib.repro.pool import default_workers, run_pool
from paperlib.serving.config import RunConfig
from paperlib.serving.runner import run

TIMING = {"retrain_seconds", "cumulative_retrain_seconds", "peak_memory_bytes", "results_path"}


def _configs() -> list[RunConfig]:
    base = {"dataset": "digits", "profile": "smoke", "device": "cpu"}
    return [RunConfig.from_params({**base, "method": m, "seed": s})
            for m, s in (("finetune", 0), ("bandit", 0), ("replay", 1), ("finetune", 0))]


def _comparable(summary: dict) -> str:
    """The summary without timings, as text (NaN, e.g. data-incremental forgetting, equals
    itself there)."""
    return json.dumps({k: v for k, v in summary.items() if k not in TIMING}, sort_keys=True,
                      default=str)


def test_pool_equals_serial() -> None:
    configs = _configs()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the pool's workers use one thread each
    try:
        serial = [run(c, store=False) for c in configs]
    finally:
        torch.set_num_threads(threads)
    pooled = run_pool(configs, workers=2, store=False, progress=False)
    assert [r.config for r in pooled] == configs
    assert pooled[0] is pooled[3]  # a duplicate configuration runs once
    for s, p in zip(serial, pooled, strict=True):
        assert _comparable(s.summary) == _comparable(p.summary)
        cols = [c for c in s.rounds.columns if c not in TIMING]
        pd.testing.assert_frame_equal(s.rounds[cols], p.rounds[cols])
        assert s.tables.keys() == p.tables.keys()


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERLIB_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.delenv("PAPERLIB_WORKERS")
    assert default_workers("cpu") >= 1
