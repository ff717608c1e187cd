"""Benchmarks (``make bench``): every ratio is measured side by side in one process.

Part 1 - engine overhead: :class:`~paperlib.engine.retrain.Retrainer` against a hand-written PyTorch
loop doing the same work (same model, batches, Adam, gradient clipping, finiteness check).
Target: at most 1.10x.

Part 2a - freezing: steps with k of G parameter groups trainable against all groups; the
measured time saving next to the saving the FLOP count predicts. Each repeat's time ratio is
paired with that repeat's FLOP ratio (a weight bandit of seed r draws its own groups); medians
over repeats. Target: >= 80% realised.

Part 2b - issue 8's targets at equal compute (:mod:`paperlib.repro.bench_targets`): on MNIST, quick
profile, 3 seeds, ``bandit`` against ``full_retrain`` (data-incremental) and, at replay's budget,
against ``replay``, ``random_weights`` and ``random_samples`` (data-incremental,
class-incremental, rotated); one table, PASS or MISS per target.

Part 2d - where part 2b's gap comes from: the sample bandit alone, with the weight bandit, with
the regulariser and with both, at replay's budget, each against replay (same runs as 2b).

Part 2c - can any method reach part 2b's first target with its learning rate and schedule
tuned? (:mod:`paperlib.repro.bench_reach`): full retraining, replay, the sample bandit alone and
the paper's method, each at 4 settings (lr x schedule), data-incremental MNIST, 3 seeds.

Part 2f - do parts 2b, 2c and 2d's 3-seed readings hold on more seeds? (:mod:`paperlib.repro.bench_seeds`,
``--part seeds`` only, not in ``all``; ``make bench-seeds``: seeds 0-9, 8-20 minutes on 2 CPU
cores): every accuracy comparison of parts 2b and 2d, and target 1's gap at each method's best
setting of part 2c (chosen on the first 3 seeds), over the first 3 seeds and over all, each with
its 95 % t-interval. Part 2g (:mod:`paperlib.repro.bench_recency`, in the same run): on
class-incremental MNIST, which arms the bandits pull at the end of the stream, against the
final old-class accuracy, seed by seed.

Part 2e - part 2b's two targets at the paper profile (:mod:`paperlib.repro.bench_paper`,
``--part paper`` only, not in ``all``: on 2 CPU cores about 40 minutes a seed for
data-incremental MNIST, an hour for class-incremental and 50 minutes for rotated; ``--scenarios``
picks them, and ``--readme`` splices one section per scenario run, leaving the others;
``--attribution rotated`` adds part 2d's cells at that profile on rotated MNIST, in a section of
their own).

Part 3 - rivals (:mod:`paperlib.repro.bench_rivals`): each rival's cost per step (metered FLOPs and
seconds) as a ratio to plain replay, side by side.

Run ``python -m paperlib.repro.bench --help`` for options; results are also written as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from paperlib.data.streams import Chunk
from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import build_model
from paperlib.engine.plugins import RoundContext
from paperlib.engine.retrain import Retrainer, TrainSettings
from paperlib.engine.samples import NewOnly, SeenData, _Cycler
from paperlib.engine.weights import AllWeights, FixedSubset, WeightBandit
from paperlib.repro.bench_paper import PAPER_COLS
from paperlib.repro.bench_reach import REACH_COLS
from paperlib.repro.bench_recency import RECENCY_COLS
from paperlib.repro.bench_seeds import SEED_COLS
from paperlib.repro.bench_table import _fmt, _markdown, _print_table  # noqa: F401
from paperlib.repro.bench_targets import ATTRIBUTION_COLS
from paperlib.serving.config import RunConfig

INPUT = (1, 28, 28)
FREEZE_COLS = ["scope", "flop_ratio", "flop_ratio_range", "time_ratio", "predicted_saving",
               "measured_saving", "realised_share"]
TARGET_COLS = ["target", "scenario", "value", "goal", "verdict"]


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
    opt = torch.optim.Adam(params, lr=settings.lr, fused=True)
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
    warm = min(10, steps)  # warm-up (a tiny --steps, as the tests pass, keeps it tiny)
    hand_loop(model, x, y, warm, settings)
    engine_round(model, x, y, warm, settings)
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
    """Per scope, ``repeats`` interleaved pairs (all groups, the subset); each repeat's time
    ratio is paired with that repeat's FLOP ratio (a weight bandit of seed ``r`` draws its
    own groups), and the row reports medians over repeats of the paired quantities."""
    settings = TrainSettings(batch_size=128, lr=1e-3, grad_clip=5.0)
    x, y = _data(4096, device)
    torch.manual_seed(0)
    model = build_model(arch, INPUT, 10).to(device)
    groups = list(model.parameter_groups())
    scopes: dict[str, Any] = {f"top {k} of {len(groups)}": (lambda r, s=tuple(groups[-k:]):
                                                            FixedSubset(s))
                              for k in range(1, len(groups))}
    for k in (1, 2):
        scopes[f"weight bandit k={k} of {len(groups)}"] = (
            lambda r, k=k: WeightBandit(k_groups=k, reselect_every=20, seed=r,
                                         train_head_always=False))
    engine_round(model, x, y, 5, settings)
    rows = []
    for label, make_scope in scopes.items():
        pairs = []
        for r in range(repeats):
            runs = [("all", AllWeights()), ("sub", make_scope(r))]
            got = {}
            for kind, scope in runs if r % 2 == 0 else runs[::-1]:
                got[kind] = engine_round(model, x, y, steps, settings, scope)
            pairs.append((got["all"], got["sub"]))
        rows.append(_freeze_row(label, pairs))
    return [r | {"arch": arch, "device": device.type, "steps": steps} for r in rows]


def _freeze_row(label: str, pairs: list[tuple[tuple[float, float], tuple[float, float]]]) -> dict:
    """Medians over repeats of paired ratios; ``pairs`` = [((t_all, f_all), (t_sub, f_sub))]."""
    time_r = [ts / ta for (ta, _), (ts, _) in pairs]
    flop_r = [fs / fa for (_, fa), (_, fs) in pairs]
    shares = [(1 - t) / (1 - f) for t, f in zip(time_r, flop_r, strict=True) if f < 1]
    predicted, measured = 1 - statistics.median(flop_r), 1 - statistics.median(time_r)
    return {"scope": label, "time_ratio": statistics.median(time_r),
            "flop_ratio": statistics.median(flop_r),
            "flop_ratio_range": f"{min(flop_r):.3f}-{max(flop_r):.3f}",
            "predicted_saving": predicted, "measured_saving": measured,
            "realised_share": statistics.median(shares) if shares else float("nan")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("engine", "freezing", "methods", "reach", "rivals", "all",
                                       "paper", "seeds"),
                   default="all")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds for parts 2b and 2c")
    p.add_argument("--profile", default="quick", help="profile for parts 2b and 2c")
    p.add_argument("--scenarios", nargs="+", default=["data_incremental"],
                   metavar="SCENARIO[:SEEDS]",
                   help="part 2e's MNIST scenarios, each with its own comma-separated seeds "
                        "after a colon (default: --seeds), e.g. data_incremental "
                        "class_incremental:0,1")
    p.add_argument("--attribution", nargs="*", default=[], metavar="SCENARIO",
                   help="part 2e: also run part 2d's cells (the sample bandit alone, with the "
                        "weight bandit, with the regulariser) at replay's budget on these of "
                        "--scenarios, e.g. rotated")
    p.add_argument("--out", type=Path, default=Path("results/bench.json"))
    p.add_argument("--readme", type=Path, default=None,
                   help="splice a Markdown summary between '<!-- bench:start/end -->' markers")
    a = p.parse_args(argv)
    from paperlib.engine.models import resolve_device

    device = resolve_device(a.device)
    # Runs pin their thread count (paperlib.serving.provenance, default 1); the benchmark keeps one
    # count throughout: this process's, unless PAPERLIB_THREADS says otherwise. Both are given
    # back on return, so a caller's later runs (a notebook, a test worker) keep their own.
    saved_env, saved_threads = os.environ.get("PAPERLIB_THREADS"), torch.get_num_threads()
    os.environ.setdefault("PAPERLIB_THREADS", str(saved_threads))
    torch.set_num_threads(int(os.environ["PAPERLIB_THREADS"]))
    try:
        return _measure(p, a, device)
    finally:
        if saved_env is None:
            os.environ.pop("PAPERLIB_THREADS", None)
        else:
            os.environ["PAPERLIB_THREADS"] = saved_env
        torch.set_num_threads(saved_threads)


def _measure(p: argparse.ArgumentParser, a: argparse.Namespace, device: torch.device) -> int:
    """The parts ``a.part`` names, printed, written to ``a.out`` and spliced into ``a.readme``."""
    seeds = [int(v) for v in a.seeds.split(",")]  # parts 2b-2f (2e: scenarios without their own)
    out: dict[str, Any] = {"device": device.type, "torch": torch.__version__,
                           "threads": torch.get_num_threads()}
    if a.part in ("engine", "all"):
        print("== Part 1: engine step vs hand-written loop (target ratio <= 1.10) ==")
        out["engine"] = [bench_engine(device, "mlp", a.steps, a.repeats),
                         bench_engine(device, "lenet", max(min(10, a.steps), a.steps // 10),
                                      a.repeats)]
        _print_table(out["engine"], ["arch", "device", "steps", "hand_ms_per_step",
                                     "engine_ms_per_step", "ratio"])
    if a.part in ("freezing", "all"):
        print("\n== Part 2a: freezing k of G groups (target: measured saving >= 80% of predicted) ==")
        out["freezing"] = bench_freezing(device, "lenet", max(10, a.steps // 10), a.repeats)
        _print_table(out["freezing"], FREEZE_COLS)
    if a.part in ("methods", "all"):
        from paperlib.repro.bench_targets import (
            evaluate_attribution,
            evaluate_targets,
            replay_budget,
            target_runs,
        )

        print(f"\n== Part 2b: issue 8's targets at equal compute, MNIST, profile {a.profile}, "
              f"seeds {a.seeds} (replay's budget = {replay_budget(a.profile):g} full passes over "
              f"the new chunk per round) ==")
        out["methods"] = target_runs(device.type, seeds, a.profile)
        _print_table(out["methods"], ["scenario", "method", "budget", "seed", "final_avg_accuracy",
                                      "train_flops", "retrain_seconds", "grad_steps"])
        out["targets"] = evaluate_targets(out["methods"], a.profile)
        print()
        _print_table(out["targets"], TARGET_COLS)
        print("\n== Part 2d: where part 2b's gap comes from (each component at replay's budget) ==")
        out["attribution"] = evaluate_attribution(out["methods"], a.profile)
        _print_table(out["attribution"], ATTRIBUTION_COLS)
    cfg = RunConfig.from_params({"dataset": "mnist", "method": "full_retrain", "profile": a.profile})
    reference = (cfg.lr, cfg.lr_schedule)  # parts 2c and 2f: target 1's full_retrain setting
    if a.part in ("reach", "all"):
        from paperlib.repro.bench_reach import SETTINGS, evaluate_reach, reach_runs

        print(f"\n== Part 2c: target 1 with each method's lr and schedule tuned "
              f"({len(SETTINGS)} settings), data-incremental MNIST, profile {a.profile}, "
              f"seeds {a.seeds}; reference: full_retrain at lr {cfg.lr:g}, {cfg.lr_schedule} ==")
        out["reach_runs"] = reach_runs(device.type, seeds, a.profile)
        out["reach"] = evaluate_reach(out["reach_runs"], reference)
        _print_table(out["reach"], REACH_COLS)
    if a.part == "seeds":  # not in "all": parts 2b and 2d's runs on every seed, ~90 s a seed
        from paperlib.repro.bench_recency import evaluate_recency, recency_runs
        from paperlib.repro.bench_seeds import evaluate_seeds, evaluate_tuned, tuned_runs
        from paperlib.repro.bench_targets import replay_budget, target_runs

        if len(seeds) <= 3:  # checked before hours of runs, not after
            p.error(f"--part seeds compares the first 3 seeds with all: give more, got {a.seeds}")
        print(f"\n== Part 2f: parts 2b and 2d's accuracy comparisons, and target 1 at part 2c's "
              f"best settings, on seeds {a.seeds} against their first 3, profile {a.profile} ==")
        out["seed_runs"] = target_runs(device.type, seeds, a.profile, timing_repeats=1)
        out["tuned_runs"] = tuned_runs(device.type, seeds, a.profile, reference)
        out["seeds"] = (evaluate_seeds(out["seed_runs"], a.profile)
                        + evaluate_tuned(out["tuned_runs"], reference))
        _print_table(out["seeds"], SEED_COLS)
        print("\n== Part 2g: which arms the bandits pull at the end, class-incremental MNIST ==")
        out["recency_runs"] = recency_runs(device.type, seeds, a.profile, replay_budget(a.profile))
        out["recency"] = evaluate_recency(out["recency_runs"])
        _print_table(out["recency"], RECENCY_COLS)
    if a.part == "paper":  # not in "all": about 40-60 minutes a seed on 2 CPU cores
        from paperlib.repro.bench_paper import (
            evaluate_paper,
            evaluate_paper_attribution,
            paper_runs,
            parse_scenarios,
        )

        plan = parse_scenarios(a.scenarios, seeds)
        if unknown := set(a.attribution) - {s for s, _ in plan}:
            p.error(f"--attribution {' '.join(sorted(unknown))}: not among --scenarios "
                    f"({' '.join(s for s, _ in plan)})")
        out["paper_runs"] = []
        for scenario, its_seeds in plan:
            print(f"\n== Part 2e: targets 1 and 2 at the paper profile, {scenario} MNIST, seeds "
                  f"{','.join(map(str, its_seeds))} (stored runs are reused) ==")
            out["paper_runs"] += paper_runs(device.type, its_seeds, scenario=scenario,
                                            attribution=scenario in a.attribution)
        _print_table(out["paper_runs"], ["scenario", "method", "seed", "final_avg_accuracy",
                                         "train_flops", "retrain_seconds", "grad_steps", "cached"])
        out["paper"] = evaluate_paper(out["paper_runs"])
        _print_table(out["paper"], PAPER_COLS)
        if a.attribution:
            print("\n== Part 2e, attribution: each component at replay's budget ==")
            out["paper_attribution"] = evaluate_paper_attribution(out["paper_runs"])
            _print_table(out["paper_attribution"], ATTRIBUTION_COLS + ["forgetting"])
    if a.part in ("rivals", "all"):
        from paperlib.repro.bench_rivals import bench_rivals

        print("\n== Part 3: each rival's cost per step relative to replay (MLP, batch 64) ==")
        out["rivals"] = bench_rivals(device, max(10, a.steps // 2), a.repeats)
        _print_table(out["rivals"], ["method", "flops_per_step", "flop_ratio", "ms_per_step",
                                     "time_ratio"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(f"\nwritten {a.out}")
    if a.readme is not None:
        from paperlib.repro.report import splice_readme

        parts = {
            "engine": ("Part 1, engine step / hand-written loop:",
                       ["arch", "hand_ms_per_step", "engine_ms_per_step", "ratio"]),
            "freezing": ("Part 2a, freezing (LeNet, batch 128):", FREEZE_COLS),
            "targets": (f"Part 2b, issue 8's targets at equal compute (MNIST, profile "
                        f"{a.profile}, seeds {a.seeds}; mean ± sd over seeds of per-seed paired "
                        "values):", TARGET_COLS),
            "attribution": (f"Part 2d, where part 2b's gap comes from: the sample bandit with "
                            f"each other component of the paper's method switched on, at replay's "
                            f"budget (MNIST, profile {a.profile}, seeds {a.seeds}; accuracy "
                            "differences, mean ± sd over seeds of per-seed paired values):",
                            ATTRIBUTION_COLS),
            "reach": (f"Part 2c, target 1 with each method's learning rate and schedule tuned "
                      f"(data-incremental MNIST, profile {a.profile}, seeds {a.seeds}, each method "
                      "at its default budget; mean ± sd over seeds; gaps and shares against "
                      "full_retrain at the profile's lr and schedule, same seed):", REACH_COLS),
            "seeds": (f"Part 2f, parts 2b and 2d's accuracy comparisons on more seeds (MNIST, "
                      f"profile {a.profile}, each at replay's budget except target 1's rows, which "
                      "are at each method's default budget, the last ones at the lr and schedule "
                      "of part 2c that are the method's best on the first 3 seeds; a's accuracy "
                      "minus b's, mean ± sd over seeds of per-seed paired values, first over the "
                      f"first 3 seeds of {a.seeds}, then over all; ci95: half-width of the 95 % "
                      "t-interval of the mean; reading: where that interval lies):", SEED_COLS),
            "recency": (f"Part 2g, which arms the bandits pull at the end of the stream "
                        f"(class-incremental MNIST, profile {a.profile}, seeds {a.seeds}, at "
                        "replay's budget; grouping: the sample bandit's past-data arms, arrival "
                        "rounds or classes; old_pulls: share of the last round's steps whose "
                        "memory rows come from an old-class arm (round 0, or classes 0-4), over "
                        "the round and over its last 10 steps; final_old_acc: accuracy on "
                        "classes 0-4 after the last round; minus_replay: final average accuracy "
                        "minus replay's, same seed; mean ± sd over seeds; corr: Pearson's "
                        "correlation across seeds of old_pulls with final_old_acc; low_seeds: "
                        "seeds more than 3 points below replay):", RECENCY_COLS),
            "rivals": ("Part 3, rivals' cost per step relative to replay (MLP 784-256-256-10, "
                       "batch 64):", ["method", "flop_ratio", "time_ratio"]),
        }
        for key, (title, cols) in parts.items():  # each part has its own README section
            if key not in out:
                continue
            how = {"attribution": "seed by seed, one run per method",
                   "seeds": "seed by seed, one run per method",
                   "recency": "seed by seed, one run per method and grouping",
                   "targets": "seed by seed, one run per method, and the runs whose seconds "
                              "are divided (data-incremental bandit and full_retrain) 3 times, "
                              "interleaved, median seconds",
                   "reach": "seed by seed, one run per method and setting"}.get(
                       key, f"medians of {a.repeats} interleaved repeats")
            target, flags = (("make bench-seeds", f" --seeds {a.seeds}")
                             if key in ("seeds", "recency")
                             else ("make bench", ""))
            md = [f"Measured by `{target}` (`--part {a.part}{flags}`) on {device.type} "
                  f"({out['threads']} threads, torch {out['torch']}); {how}.", "", title, "",
                  _markdown(out[key], cols)]
            splice_readme(a.readme, "\n".join(md), f"<!-- bench-{key}:start -->",
                          f"<!-- bench-{key}:end -->")
        if "paper" in out:  # one section per scenario: the others keep what they measured
            from paperlib.repro.bench_paper import splice_paper_sections

            seeds_of = dict(plan)

            def measured(scenario: str, flags: str = "") -> str:
                seeds = ",".join(map(str, seeds_of[scenario]))
                return (f"Measured by `make bench-paper` (`--part paper --scenarios "
                        f"{scenario}:{seeds}{flags}`) on {device.type} ({out['threads']} threads, "
                        f"torch {out['torch']}); seed by seed, one stored run per method.")

            def paper_md(scenario: str, rows: list[dict[str, Any]]) -> str:
                seeds = ",".join(map(str, seeds_of[scenario]))
                return "\n".join([
                    measured(scenario), "",
                    f"Part 2e, {scenario.replace('_', '-')} MNIST: targets 1 and 2 at the paper "
                    f"profile (LeNet with batch norm, all 60,000 images; seeds {seeds}; each "
                    "method at its default budget and the bandit again at replay's; mean ± sd "
                    "over seeds; gap and shares against full_retrain of the same seed):", "",
                    _markdown(rows, PAPER_COLS[1:])])

            splice_paper_sections(a.readme, out["paper"], paper_md)

            def attribution_md(scenario: str, rows: list[dict[str, Any]]) -> str:
                seeds = ",".join(map(str, seeds_of[scenario]))
                return "\n".join([
                    measured(scenario, f" --attribution {scenario}"), "",
                    f"Part 2e, {scenario.replace('_', '-')} MNIST, where target 2's gap comes "
                    "from: part 2d's cells at the paper profile, each at replay's budget (seeds "
                    f"{seeds}; accuracy differences, mean ± sd over seeds of per-seed paired "
                    "values; forgetting of each cell):", "",
                    _markdown(rows, ATTRIBUTION_COLS[1:] + ["forgetting"])])

            if "paper_attribution" in out:
                splice_paper_sections(a.readme, out["paper_attribution"], attribution_md,
                                      part="paper-attribution")
        print(f"updated the benchmark sections of {a.readme}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
