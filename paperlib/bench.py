"""Benchmarks (``make bench``): every ratio is measured side by side in one process.

Part 1 - engine overhead: :class:`~paperlib.retrain.Retrainer` against a hand-written PyTorch
loop doing the same work (same model, batches, Adam, gradient clipping, finiteness check).
Target: at most 1.10x.

Part 2a - freezing: steps with k of G parameter groups trainable against all groups; the
measured time saving next to the saving the FLOP count predicts. Target: >= 80% realised.

Part 2b - methods: ``bandit`` against ``full_retrain`` and ``finetune`` on data- and
class-incremental MNIST (quick profile): final accuracy and total retraining seconds.
Target: within 1 accuracy point of ``full_retrain`` at <= 25% of its retraining time.

Part 3 - rivals (:mod:`paperlib.bench_rivals`): each rival's cost per step (metered FLOPs and
seconds) as a ratio to plain replay, side by side.

Run ``python -m paperlib.bench --help`` for options; results are also written as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from paperlib.accounting import ComputeMeter
from paperlib.models import build_model
from paperlib.plugins import RoundContext
from paperlib.retrain import Retrainer, TrainSettings
from paperlib.samples import NewOnly, SeenData, _Cycler
from paperlib.streams import Chunk
from paperlib.weights import AllWeights, FixedSubset, WeightBandit

INPUT = (1, 28, 28)


def _data(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(n, *INPUT, generator=gen).to(device),
            torch.randint(0, 10, (n,), generator=gen).to(device))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
              settings: TrainSettings) -> float:
    """The reference: a plain PyTorch training loop. Returns seconds."""
    gen = torch.Generator().manual_seed(1)
    cycler = _Cycler(torch.arange(len(y), device=x.device), gen)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr, foreach=True)
    model.train()
    _sync(x.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = cycler.take(settings.batch_size)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
    _sync(x.device)
    return time.perf_counter() - t0


def engine_round(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                 settings: TrainSettings, scope=None) -> tuple[float, float]:  # noqa: ANN001
    """The same work through the engine. Returns (seconds, counted FLOPs)."""
    meter = ComputeMeter(model, INPUT)
    ctx = RoundContext(1, model, None, Chunk(x, y, "bench"), None, SeenData(device=x.device),
                       x.device, torch.Generator().manual_seed(1), meter)
    cost = Retrainer(settings).run_round(ctx, NewOnly(1.0), scope or AllWeights(), [], steps=steps)
    return cost.retrain_seconds, cost.train_flops


def bench_engine(device: torch.device, arch: str, steps: int, repeats: int) -> dict[str, Any]:
    settings = TrainSettings(batch_size=128, lr=1e-3, grad_clip=5.0)
    x, y = _data(4096, device)
    torch.manual_seed(0)
    model = build_model(arch, INPUT, 10).to(device)
    hand_loop(model, x, y, 10, settings)  # warm-up
    engine_round(model, x, y, 10, settings)
    hand, eng = [], []
    for r in range(repeats):  # interleaved, alternating which goes first, so drift and
        first_hand = r % 2 == 0  # position effects hit both sides alike
        if first_hand:
            hand.append(hand_loop(model, x, y, steps, settings) / steps)
        eng.append(engine_round(model, x, y, steps, settings)[0] / steps)
        if not first_hand:
            hand.append(hand_loop(model, x, y, steps, settings) / steps)
    h, e = statistics.median(hand), statistics.median(eng)
    return {"arch": arch, "device": device.type, "steps": steps, "repeats": repeats,
            "hand_ms_per_step": 1e3 * h, "engine_ms_per_step": 1e3 * e, "ratio": e / h}


def bench_freezing(device: torch.device, arch: str, steps: int, repeats: int) -> list[dict[str, Any]]:
    settings = TrainSettings(batch_size=128, lr=1e-3, grad_clip=5.0)
    x, y = _data(4096, device)
    torch.manual_seed(0)
    model = build_model(arch, INPUT, 10).to(device)
    groups = list(model.parameter_groups())
    scopes = {f"top {k} of {len(groups)}": groups[-k:] for k in range(1, len(groups))}
    engine_round(model, x, y, 5, settings)
    rows = []
    for label, subset in scopes.items():
        t_all, t_sub = [], []
        for r in range(repeats):
            runs = [("all", AllWeights()), ("sub", FixedSubset(tuple(subset)))]
            for kind, scope in runs if r % 2 == 0 else runs[::-1]:
                sec, flops = engine_round(model, x, y, steps, settings, scope)
                if kind == "all":
                    t_all.append(sec)
                    flops_all = flops
                else:
                    t_sub.append(sec)
                    flops_sub = flops
        rows.append(_freeze_row(label, statistics.median(t_all), statistics.median(t_sub),
                                flops_all, flops_sub))
    for k in (1, 2):
        t_all, t_sub = [], []
        for r in range(repeats):
            sec, flops_all = engine_round(model, x, y, steps, settings, AllWeights())
            t_all.append(sec)
            scope = WeightBandit(k_groups=k, reselect_every=20, seed=r)
            sec, flops_sub = engine_round(model, x, y, steps, settings, scope)
            t_sub.append(sec)
        rows.append(_freeze_row(f"weight bandit k={k} of {len(groups)}", statistics.median(t_all),
                                statistics.median(t_sub), flops_all, flops_sub))
    return [r | {"arch": arch, "device": device.type, "steps": steps} for r in rows]


def _freeze_row(label: str, t_all: float, t_sub: float, f_all: float, f_sub: float) -> dict:
    predicted = 1 - f_sub / f_all
    measured = 1 - t_sub / t_all
    return {"scope": label, "time_ratio": t_sub / t_all, "flop_ratio": f_sub / f_all,
            "predicted_saving": predicted, "measured_saving": measured,
            "realised_share": measured / predicted if predicted > 0 else float("nan")}


def bench_methods(device: str, seeds: list[int], profile: str) -> list[dict[str, Any]]:
    from paperlib.runner import run

    rows = []
    for scenario in ("data_incremental", "class_incremental"):
        for method in ("finetune", "full_retrain", "bandit"):
            for seed in seeds:
                s = run({"dataset": "mnist", "scenario": scenario, "method": method, "seed": seed,
                         "profile": profile, "device": device}, store=False).summary
                rows.append({"scenario": scenario, "method": method, "seed": seed,
                             "final_avg_accuracy": s["final_avg_accuracy"],
                             "retrain_seconds": s["retrain_seconds"],
                             "train_flops": s["train_flops"],
                             "trainable_fraction": s["trainable_fraction"]})
    return rows


def _print_table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).rjust(widths[c]) for c in cols))


def _markdown(rows: list[dict[str, Any]], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3e}" if abs(v) >= 1e5 else f"{v:.4f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("engine", "freezing", "methods", "rivals", "all"),
                   default="all")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seeds", default="0", help="comma-separated seeds for part 2b")
    p.add_argument("--profile", default="quick", help="profile for part 2b")
    p.add_argument("--out", type=Path, default=Path("results/bench.json"))
    p.add_argument("--readme", type=Path, default=None,
                   help="splice a Markdown summary between '<!-- bench:start/end -->' markers")
    a = p.parse_args(argv)
    from paperlib.models import resolve_device

    device = resolve_device(a.device)
    out: dict[str, Any] = {"device": device.type, "torch": torch.__version__,
                           "threads": torch.get_num_threads()}
    if a.part in ("engine", "all"):
        print("== Part 1: engine step vs hand-written loop (target ratio <= 1.10) ==")
        out["engine"] = [bench_engine(device, "mlp", a.steps, a.repeats),
                         bench_engine(device, "lenet", max(10, a.steps // 10), a.repeats)]
        _print_table(out["engine"], ["arch", "device", "steps", "hand_ms_per_step",
                                     "engine_ms_per_step", "ratio"])
    if a.part in ("freezing", "all"):
        print("\n== Part 2a: freezing k of G groups (target: measured saving >= 80% of predicted) ==")
        out["freezing"] = bench_freezing(device, "lenet", max(10, a.steps // 10), a.repeats)
        _print_table(out["freezing"], ["scope", "flop_ratio", "time_ratio", "predicted_saving",
                                       "measured_saving", "realised_share"])
    if a.part in ("methods", "all"):
        print("\n== Part 2b: bandit vs full_retrain vs finetune on MNIST "
              f"(profile {a.profile}; target: within 0.01 of full_retrain at <= 25% of its time) ==")
        rows = bench_methods(device.type, [int(s) for s in a.seeds.split(",")], a.profile)
        out["methods"] = rows
        _print_table(rows, ["scenario", "method", "seed", "final_avg_accuracy", "retrain_seconds",
                            "train_flops", "trainable_fraction"])
        for scenario in ("data_incremental", "class_incremental"):
            def mean(method: str, key: str, sc: str = scenario) -> float:
                return statistics.mean(r[key] for r in rows
                                       if r["scenario"] == sc and r["method"] == method)
            gap = mean("full_retrain", "final_avg_accuracy") - mean("bandit", "final_avg_accuracy")
            tr = mean("bandit", "retrain_seconds") / mean("full_retrain", "retrain_seconds")
            fr = mean("bandit", "train_flops") / mean("full_retrain", "train_flops")
            out.setdefault("method_ratios", []).append(
                {"scenario": scenario, "accuracy_gap_vs_full": gap, "time_ratio_vs_full": tr,
                 "flop_ratio_vs_full": fr})
            verdict = "met" if gap <= 0.01 and tr <= 0.25 else "MISSED"
            print(f"{scenario}: bandit is {gap * 100:+.2f} points below full_retrain at "
                  f"{tr:.1%} of its retraining time ({fr:.1%} of its FLOPs): target {verdict}")
    if a.part in ("rivals", "all"):
        from paperlib.bench_rivals import bench_rivals

        print("\n== Part 3: each rival's cost per step relative to replay (MLP, batch 64) ==")
        out["rivals"] = bench_rivals(device, max(10, a.steps // 2), a.repeats)
        _print_table(out["rivals"], ["method", "flops_per_step", "flop_ratio", "ms_per_step",
                                     "time_ratio"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(f"\nwritten {a.out}")
    if a.readme is not None and a.part == "all":
        from paperlib.report import splice_readme

        md = [f"Measured by `make bench` on {device.type} ({out['threads']} threads, "
              f"torch {out['torch']}); medians of {a.repeats} interleaved repeats.", "",
              "Part 1, engine step / hand-written loop:", "",
              _markdown(out["engine"], ["arch", "hand_ms_per_step", "engine_ms_per_step", "ratio"]),
              "", "Part 2a, freezing (LeNet, batch 128):", "",
              _markdown(out["freezing"], ["scope", "flop_ratio", "time_ratio",
                                          "predicted_saving", "measured_saving", "realised_share"]),
              "", f"Part 2b, MNIST, profile {a.profile}, seeds {a.seeds}:", "",
              _markdown(out["method_ratios"], ["scenario", "accuracy_gap_vs_full",
                                               "time_ratio_vs_full", "flop_ratio_vs_full"]),
              "", "Part 3, rivals' cost per step relative to replay (MLP 784-256-256-10, batch 64):",
              "", _markdown(out["rivals"], ["method", "flop_ratio", "time_ratio"])]
        splice_readme(a.readme, "\n".join(md), "<!-- bench:start -->", "<!-- bench:end -->")
        print(f"updated the benchmark section of {a.readme}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
