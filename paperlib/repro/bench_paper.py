"""``make bench`` part 2e: issue 8's first target at the paper profile (``--part paper``).

Part 2b judges target 1 at the ``quick`` profile, which is sized for a CPU (12,000 images, an
MLP, 2 epochs a round). The paper's own setting is the ``paper`` profile: all 60,000 MNIST
images, the authors' LeNet with batch norm, 10 initial epochs and 5 a round, batch 128, Adam at
lr 1e-4. A miss at the small profile need not be a miss there, so this part runs, on
data-incremental MNIST at the paper profile, ``full_retrain``, the paper's method (``bandit``),
uniform ``replay`` and, as the floor, ``finetune`` (the new chunk only, no memory), each at its
own default budget, and the paper's method again at replay's budget (FLOPs matched, target 2),
seed by seed; and reports for each, mean ± sd over seeds: its final accuracy, its gap to
``full_retrain`` of the same seed, its training FLOPs and retraining seconds as shares of that
run (target 1: gap <= 1 point, both shares <= 25 %), and its accuracy minus replay's of the
same seed. Near the ceiling a 1-point gap is loose: the floor shows how loose.

It is not part of ``--part all`` (``make bench``): on 2 CPU cores a seed takes about 40
minutes (full retraining's 9,385 LeNet steps after round 0 dominate). Every run is stored in the
results store (keyed on code, parameters and thread count), so an interrupted run resumes
where it stopped, and a stored run keeps the seconds it measured.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from paperlib.repro.bench_reach import evaluate_reach
from paperlib.repro.bench_table import mean_sd_text
from paperlib.repro.bench_targets import replay_budget
from paperlib.serving.config import RunConfig

PROFILE = "paper"
#: ``(method, budget)``: ``None`` = the method's own default; ``"replay"`` = replay's default
#: budget (:func:`paperlib.repro.bench_targets.replay_budget`: 10 passes a round at this profile).
RUNS: tuple[tuple[str, str | None], ...] = (
    ("full_retrain", None), ("bandit", None), ("replay", None), ("finetune", None),
    ("bandit", "replay"))
PAPER_COLS = ["method", "accuracy", "gap_to_reference", "flops_share", "seconds_share",
              "target_1", "minus_replay"]


def _label(method: str, budget: float | None) -> str:
    return method if budget is None else f"{method} at replay's budget {budget:g}"


def paper_runs(device: str, seeds: list[int], run: Callable[..., Any] | None = None,
               profile: str = PROFILE) -> list[dict[str, Any]]:
    """One summary row per entry of :data:`RUNS` and seed: data-incremental MNIST, ``profile``
    (the paper's; tests pass ``smoke``), stored (a rerun reuses what is stored)."""
    if run is None:
        from paperlib.serving.runner import run
    base = {"dataset": "mnist", "scenario": "data_incremental", "profile": profile,
            "device": device}
    b = replay_budget(profile)
    rows = []
    for seed in seeds:
        for method, budget in RUNS:
            params = {**base, "method": method, "seed": seed}
            if budget is not None:
                params["budget"] = b
            cfg = RunConfig.from_params(params)
            res = run(params)
            s = res.summary
            rows.append({"method": _label(method, cfg.budget), "seed": seed, "lr": cfg.lr,
                         "lr_schedule": cfg.lr_schedule,
                         "final_avg_accuracy": s["final_avg_accuracy"],
                         "train_flops": s["train_flops"], "retrain_seconds": s["retrain_seconds"],
                         "grad_steps": s["grad_steps"], "cached": bool(res.cached)})
    return rows


def evaluate_paper(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Part 2e's table: one row per method, against ``full_retrain`` of the same seed (the
    columns of :data:`PAPER_COLS`, as in part 2c, plus the means)."""
    ref = next(r for r in rows if r["method"] == "full_retrain")
    replay = {r["seed"]: r["final_avg_accuracy"] for r in rows if r["method"] == "replay"}
    out = evaluate_reach(rows, (ref["lr"], ref["lr_schedule"]))
    for row in out:
        diffs = [r["final_avg_accuracy"] - replay[r["seed"]] for r in rows
                 if r["method"] == row["method"] and r["seed"] in replay]
        row["minus_replay"] = mean_sd_text(diffs, signed=True) if diffs else ""
        row["mean_minus_replay"] = statistics.mean(diffs) if diffs else float("nan")
    return out
