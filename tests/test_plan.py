"""``paperlib plan``: its counts equal what the runner does, its time prediction is close."""

from __future__ import annotations

import time

import pytest
import torch

from paperlib.engine.weights import AllWeights
from paperlib.method.methods import build_method
from paperlib.method.rivals import GSS, MIR
from paperlib.repro.calibrate import (
    Calibration,
    calibrate,
    predict_grid_seconds,
    predict_seconds,
)
from paperlib.repro.experiments import ALL_METHODS
from paperlib.repro.plan import (
    PlanError,
    format_plan,
    notebook_grids,
    plan_grid,
    plan_run,
    plan_table,
)
from paperlib.serving.config import RunConfig
from paperlib.serving.runner import clear_first_models, run


def _check_against_run(params: dict) -> None:
    """The plan's steps and FLOPs against a smoke run of ``params``: exact where nothing but the
    configuration decides them, else within the plan's range."""
    cfg = RunConfig.from_params({"dataset": "digits", "profile": "smoke", "device": "cpu",
                                 **params})
    plan = plan_run(cfg)
    rounds = run(cfg, store=False).rounds
    steps, measured = rounds["grad_steps"].tolist(), rounds["train_flops"].tolist()
    if plan.exact:
        assert plan.steps == steps, params
        assert plan.flops == pytest.approx(measured, rel=1e-9), params
    for (lo, hi), s in zip(plan.steps_range, steps, strict=True):
        assert lo <= s <= hi, params
    for (lo, hi), m in zip(plan.flops_range, measured, strict=True):
        assert lo * (1 - 1e-9) <= m <= hi * (1 + 1e-9), params


@pytest.mark.parametrize("budget", [None, 1.5])
@pytest.mark.parametrize("scenario", ["data_incremental", "class_incremental"])
def test_counts_match_a_smoke_run(scenario: str, budget: float | None) -> None:
    """Steps per round equal the runner's ``grad_steps``; FLOPs equal its ``train_flops``
    (reward passes, importance estimates, the neuron cache and the rivals' extra passes
    included), for every method, with the method's own step count and under a FLOP budget."""
    for method in ALL_METHODS:
        _check_against_run({"scenario": scenario, "method": method, "budget": budget})
        built = build_method(method, {}, 1.0, 0)
        lazy_cache = any(getattr(p, "neuron_cache", False) and getattr(p, "use_neuron_term", False)
                         and getattr(p, "neuron_anchors", 0) is None  # rows forwarded as
                         for p in built.regularizers)  # batches first draw them
        if isinstance(built.scope, AllWeights) and not isinstance(built.source, GSS | MIR) \
                and not lazy_cache:
            cfg = RunConfig.from_params({"dataset": "digits", "method": method,
                                         "profile": "smoke", "budget": budget})
            assert plan_run(cfg).exact, method


@pytest.mark.parametrize("budget", [None, 1.5])
@pytest.mark.parametrize("params", [
    {"method": "gss", "memory_size": 64},   # a full memory: per-sample scores when c < 1
    {"method": "mir", "memory_size": 64},   # the candidate pool runs short as memory turns over
    {"method": "bandit_weights_only", "k_groups": 1, "train_head_always": False},
    {"method": "bandit_weights_only", "k_groups": 2, "train_head_always": True},
    {"method": "bandit_samples_only", "sample_reward": "holdout"},
    {"method": "bandit_samples_only", "sample_reward": "batch_progress"},
    {"method": "importance_reg_only", "neuron_cache": False},
    {"method": "importance_reg_only", "neuron_anchors": None},  # the lazily filled cache
])
def test_data_dependent_counts_lie_in_the_plans_range(params: dict, budget: float | None) -> None:
    _check_against_run({**params, "budget": budget})


def test_estimates_are_marked() -> None:
    """A full GSS memory makes the plan an estimate (``~``); finetune's plan is exact."""
    grids = {"g": [RunConfig.from_params({"dataset": "digits", "method": "gss",
                                          "profile": "smoke", "memory_size": 64, "budget": 1.5})]}
    rows = plan_table(grids)
    assert not rows[0]["flops_exact"] and not rows[0]["steps_exact"]
    text = format_plan(rows)
    assert "~" in text.splitlines()[2]
    fine = plan_run(RunConfig.from_params({"dataset": "digits", "method": "finetune",
                                           "profile": "smoke", "budget": 1.5}))
    assert fine.exact and all(a == b for a, b in fine.steps_range)


def test_paper_grid_counts_without_data() -> None:
    """The paper grids: every notebook target, 3 seeds, the shared runs of 05-07 counted once."""
    grids = notebook_grids("paper")
    assert len(grids) == 10 and all(len(g) % 3 == 0 for g in grids.values())
    configs = [c for g in grids.values() for c in g]
    budgeted = [c for c in grids["07_cost_vs_accuracy"] if c.budget is not None]
    assert budgeted and {c.method for c in grids["07_cost_vs_accuracy"]} == set(ALL_METHODS)
    assert all(c.profile == "paper" and c.seed in (0, 1, 2) for c in configs)
    with pytest.raises(Exception, match="did you mean"):
        notebook_grids("paper", notebooks=["01_data_incremantal"])


def test_unknown_component_is_an_error() -> None:
    from paperlib.repro.plan import _step_rule

    class Odd:
        name = "odd"

    with pytest.raises(PlanError, match="odd"):
        _step_rule(Odd(), 10, 0, 4)


@pytest.mark.timing
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
            predicted = sum(predict_grid_seconds(plans, cal))
            clear_first_models()  # the prediction is for a fresh process
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
    from paperlib.repro.cli import main

    assert main(["plan", "-p", "profile", "smoke", "--notebooks", "06_bandit_dynamics",
                 "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    assert "06_bandit_dynamics" in out and "total" in out
    assert main(["plan", "-p", "profle", "smoke"]) == 2
    assert "did you mean 'profile'" in capsys.readouterr().err


def test_grid_prediction_charges_a_shared_first_model_once() -> None:
    """Methods whose plugins are inert in round 0 share the first model of equal settings
    (the runner's cache): the grid prediction charges its round-0 steps once; a method that
    trains its own (SI's path integral runs in round 0) pays them every time."""
    base = {"dataset": "digits", "profile": "smoke", "device": "cpu"}
    methods = ["finetune", "replay", "si", "si"]
    plans = plan_grid([RunConfig.from_params({**base, "method": m}) for m in methods])
    assert plans[0].round0_key == plans[1].round0_key is not None
    assert plans[2].round0_key is None
    cal = Calibration("cpu", 1)
    for p in plans:
        k = (p.model_key, p.config.method)
        cal.step0[k], cal.step[k], cal.fixed[k], cal.fixed_flops[k] = 1.0, 0.0, 0.0, 0.0
        cal.eval_per_sample[p.model_key], cal.per_round[p.model_key] = 0.0, 0.0
    cold = [predict_seconds(p, cal) for p in plans]
    grid = predict_grid_seconds(plans, cal)
    assert grid[0] == cold[0] and grid[2:] == cold[2:]
    assert grid[1] == pytest.approx(cold[1] - plans[1].steps[0]) and plans[1].steps[0] > 0


def test_plan_knows_which_runs_share_a_first_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's rule (``RunPlan.round0_key``) against the runner's cache, method by
    method: after a ``finetune`` run, a run trains round 0 again exactly when its plan's key
    differs from finetune's (or is None)."""
    import paperlib.serving.runner as runner_mod

    trained: list[str] = []
    real = runner_mod._first_model

    def spy(cfg, arch, model, plugins, train):  # noqa: ANN001, ANN202
        def counted():  # noqa: ANN202
            trained.append(cfg.method)
            return train()
        return real(cfg, arch, model, plugins, counted)

    monkeypatch.setattr(runner_mod, "_first_model", spy)
    base = {"dataset": "digits", "profile": "smoke", "device": "cpu"}
    first = plan_grid([RunConfig.from_params({**base, "method": "finetune"})])[0]
    for method in ALL_METHODS:
        cfg = RunConfig.from_params({**base, "method": method})
        plan = plan_grid([cfg])[0]
        clear_first_models()
        run({**base, "method": "finetune"}, store=False)
        trained.clear()
        run(cfg, store=False)
        shared = plan.round0_key is not None and plan.round0_key == first.round0_key
        assert (trained == []) == shared, (method, plan.round0_key is not None, trained)
    clear_first_models()
