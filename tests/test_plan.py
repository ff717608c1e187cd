"""``paperlib plan``: its counts equal what the runner does, its time prediction is close."""

from __future__ import annotations

import time

import pytest
import torch

from paperlib.calibrate import calibrate, predict_seconds
from paperlib.config import RunConfig
from paperlib.methods import METHODS, build_method
from paperlib.plan import (
    PlanError,
    format_plan,
    notebook_grids,
    plan_grid,
    plan_run,
    plan_table,
)
from paperlib.runner import run
from paperlib.weights import AllWeights


@pytest.mark.parametrize("scenario", ["data_incremental", "class_incremental"])
def test_counts_match_a_smoke_run(scenario: str) -> None:
    """Steps per round equal the runner's ``grad_steps``; FLOPs equal its ``train_flops``
    (reward passes and importance estimates included), or lie in the range the weight
    bandit's choices allow."""
    for method in METHODS:
        cfg = RunConfig.from_params({"dataset": "digits", "scenario": scenario, "method": method,
                                     "profile": "smoke", "device": "cpu"})
        plan = plan_run(cfg)
        rounds = run(cfg, store=False).rounds
        assert plan.steps == rounds["grad_steps"].tolist(), method
        measured = rounds["train_flops"].tolist()
        if plan.exact:
            assert plan.flops == pytest.approx(measured, rel=1e-9), method
        else:
            for (lo, hi), m in zip(plan.flops_range, measured, strict=True):
                assert lo * (1 - 1e-9) <= m <= hi * (1 + 1e-9), method
        assert plan.exact == isinstance(build_method(method, {}, 1.0, 0).scope, AllWeights)


def test_paper_grid_counts_without_data() -> None:
    """The paper grids: every notebook target, 3 seeds, the shared runs of 05-07 counted once."""
    grids = notebook_grids("paper")
    assert len(grids) == 10 and {len(g) for g in grids.values()} >= {27, 24, 3, 84}
    configs = [c for g in grids.values() for c in g]
    assert all(c.profile == "paper" and c.seed in (0, 1, 2) for c in configs)
    with pytest.raises(Exception, match="did you mean"):
        notebook_grids("paper", notebooks=["01_data_incremantal"])


def test_unknown_component_is_an_error() -> None:
    from paperlib.plan import _step_rule

    class Odd:
        name = "odd"

    with pytest.raises(PlanError, match="odd"):
        _step_rule(Odd(), 10, 0, 4)


def test_time_prediction_within_30_percent() -> None:
    """Calibrate, then run the smoke grid of the Weather notebook, back to back in one process
    with one thread; the predicted time is within 30 % of the measured one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        grids = notebook_grids("smoke", notebooks=["04_real_streams_weather"], device="cpu")
        configs = grids["04_real_streams_weather"]
        plans = plan_grid(configs)
        ratios = []
        for _ in range(2):  # a shared CPU: one re-measurement if the first is disturbed
            cal = calibrate(plans)
            predicted = sum(predict_seconds(p, cal) for p in plans)
            t0 = time.perf_counter()
            for c in configs:
                run(c, store=False)
            ratios.append(predicted / (time.perf_counter() - t0))
            if 0.7 <= ratios[-1] <= 1.3:
                break
        assert 0.7 <= ratios[-1] <= 1.3, f"predicted / measured = {ratios}"
        rows = plan_table(grids, cal, plans)
        assert rows[-1]["steps"] == sum(p.total_steps for p in plans)
        assert "predicted on cpu" in format_plan(rows, cal)
    finally:
        torch.set_num_threads(threads)


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from paperlib.cli import main

    assert main(["plan", "-p", "profile", "smoke", "--notebooks", "06_bandit_dynamics",
                 "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    assert "06_bandit_dynamics" in out and "total" in out
    assert main(["plan", "-p", "profle", "smoke"]) == 2
    assert "did you mean 'profile'" in capsys.readouterr().err
