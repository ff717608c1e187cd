"""The time half of ``paperlib plan``: a short calibration on the current device and the
predicted wall time of a planned run.

:func:`calibrate` runs, for each model shape and method of the plans, a few dozen real steps of
the real :class:`~paperlib.engine.retrain.Retrainer` on synthetic data (plugins, reward passes and
bandits included), times the round's fixed work (importance estimates) and the evaluation
forward pass per sample, and runs the cheapest configuration once for the runner's own
per-round work. :func:`predict_seconds` combines these with a :class:`~paperlib.repro.plan.RunPlan`.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import build_model, resolve_device
from paperlib.engine.samples import NewOnly
from paperlib.engine.weights import AllWeights
from paperlib.method.methods import build_method
from paperlib.repro.plan_count import RunPlan, _plugin_passes


@dataclass
class Calibration:
    """Measured times on one device (seconds), keyed by ``(model_key, method)`` or model key.

    Attributes:
        step0: per step of round 0 (the first model: new data, all weights, the method's hooks).
        step: per step of a retraining round (source, scope, plugins and reward passes).
        fixed: a retraining round's work before its first step (importance estimates...),
            with ``fixed_flops`` the metered FLOPs of that work in the calibration round.
        eval_per_sample: evaluation forward pass, per sample.
        per_round: per-round bookkeeping (copying the served model).
        runner_per_round: the runner's remaining per-round work (metrics, records), from one
            real run of the grid's cheapest configuration: its measured time minus the time
            the other terms predict, per round.
    """

    device: str
    threads: int
    step0: dict[tuple, float] = field(default_factory=dict)
    step: dict[tuple, float] = field(default_factory=dict)
    fixed: dict[tuple, float] = field(default_factory=dict)
    fixed_flops: dict[tuple, float] = field(default_factory=dict)
    eval_per_sample: dict[tuple, float] = field(default_factory=dict)
    per_round: dict[tuple, float] = field(default_factory=dict)
    runner_per_round: float = 0.0
    seconds: float = 0.0


def _timed_round(retrainer: Any, ctx: Any, source: Any, scope: Any, plugins: Sequence[Any],
                 steps: int) -> tuple[float, float]:
    """Run one real round; return ``(seconds before the first batch, median seconds per
    step)``, the step time measured between consecutive ``next_batch`` calls."""
    stamps: list[float] = []
    inner = source.next_batch

    def next_batch() -> Any:
        stamps.append(time.perf_counter())
        return inner()

    source.next_batch = next_batch
    t0 = time.perf_counter()
    retrainer.run_round(ctx, source, scope, plugins, steps=steps)
    stamps.append(time.perf_counter())
    diffs = [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]
    return stamps[0] - t0, statistics.fmean(diffs)


def calibrate(plans: Sequence[RunPlan], steps: int = 24, device: str | None = None,
              real_run: bool = True) -> Calibration:
    """Time a few dozen real steps of every (model shape, method) of ``plans`` on synthetic
    data, on ``device`` (default: the plans' resolved device); with ``real_run``, also run the
    cheapest configuration of ``plans`` once for the runner's own per-round work."""
    from paperlib.data.streams import Chunk
    from paperlib.engine.plugins import RoundContext
    from paperlib.engine.retrain import Retrainer, TrainSettings, predict
    from paperlib.engine.samples import SeenData

    t_start = time.perf_counter()
    dev = resolve_device(device or plans[0].config.device)
    cal = Calibration(str(dev), torch.get_num_threads())
    seen_keys: set[tuple] = set()
    for plan in plans:
        cfg, mkey = plan.config, plan.model_key
        if (mkey, cfg.method) in seen_keys:
            continue
        seen_keys.add((mkey, cfg.method))
        arch, shape, n_classes, _, B = mkey
        gen = torch.Generator().manual_seed(0)
        n = max(4 * B, 256)

        def chunk(name: str, n: int = n, shape: tuple = shape, n_classes: int = n_classes,
                  gen: torch.Generator = gen) -> Any:
            return Chunk(torch.rand((n, *shape), generator=gen),
                         torch.randint(n_classes, (n,), generator=gen), name)

        torch.manual_seed(0)
        model = build_model(arch, shape, n_classes, cfg.hidden_widths).to(dev)
        meter = ComputeMeter(model, shape)
        retrainer = Retrainer(TrainSettings(B, cfg.lr, cfg.optimizer, cfg.grad_clip))
        built = build_method(cfg.method, cfg.hparams, cfg.epochs, cfg.seed)
        seen = SeenData(None, dev, torch.Generator().manual_seed(0))
        first = chunk("c0")
        ctx = RoundContext(0, model, None, first, None, seen, dev, gen, meter, None)
        _, cal.step0[(mkey, cfg.method)] = _timed_round(
            retrainer, ctx, NewOnly(1.0), AllWeights(), built.regularizers, max(6, steps // 3))
        seen.add(first, 0)
        seen.add(chunk("c1"), 1)
        t0 = time.perf_counter()
        served = copy.deepcopy(model).eval()
        for p in served.parameters():
            p.requires_grad_(False)
        cal.per_round[mkey] = time.perf_counter() - t0
        new = chunk("c2")
        ctx = RoundContext(2, model, served, new, first, seen, dev, gen, meter, None)
        fixed, cal.step[(mkey, cfg.method)] = _timed_round(
            retrainer, ctx, built.source, built.scope, built.regularizers, steps)
        cal.fixed[(mkey, cfg.method)] = fixed
        fx, _ = _plugin_passes(built.regularizers, n, len(seen), B, meter)
        cal.fixed_flops[(mkey, cfg.method)] = fx * meter.forward_flops_per_sample
        if mkey not in cal.eval_per_sample:
            x = torch.rand((2048, *shape), generator=gen)
            predict(model, x)  # warm-up
            t0 = time.perf_counter()
            predict(model, x)
            cal.eval_per_sample[mkey] = (time.perf_counter() - t0) / len(x)
    if real_run:
        from paperlib.serving.runner import clear_first_models, run

        cheapest = min(plans, key=lambda p: predict_seconds(p, cal))
        run(cheapest.config, store=False)  # warm-up (first-run costs happen once per process)
        clear_first_models()  # the timed run trains its own round 0, as predict_seconds assumes
        t0 = time.perf_counter()
        run(cheapest.config, store=False)
        clear_first_models()
        measured = time.perf_counter() - t0
        cal.runner_per_round = max(0.0, measured - predict_seconds(cheapest, cal)) / cheapest.rounds
    cal.seconds = time.perf_counter() - t_start
    return cal


def predict_seconds(plan: RunPlan, cal: Calibration) -> float:
    """Predicted wall time of one run (stream construction included, data load excluded)."""
    k = (plan.model_key, plan.config.method)
    total = plan.stream_seconds
    for r, (steps, extra, evals) in enumerate(zip(plan.steps, plan.extra_round_flops,
                                                  plan.eval_samples, strict=True)):
        total += steps * (cal.step0[k] if r == 0 else cal.step[k])
        if r >= 1:
            ref = cal.fixed_flops[k]
            total += cal.fixed[k] * (extra / ref if ref > 0 else 1.0)
        total += evals * cal.eval_per_sample[plan.model_key] + cal.per_round[plan.model_key]
        total += cal.runner_per_round
    return total


def predict_grid_seconds(plans: Sequence[RunPlan], cal: Calibration) -> list[float]:
    """Predicted wall time of each run of ``plans`` run in this order in one fresh process:
    :func:`predict_seconds`, less round 0's steps for a run whose first model the process
    already trained (the runner's first-model cache: equal ``RunPlan.round0_key``, at most
    ``FIRST_MODEL_CACHE_SIZE`` kept, least recently used dropped first)."""
    from collections import OrderedDict

    from paperlib.serving.runner import FIRST_MODEL_CACHE_SIZE

    cached: OrderedDict[str, None] = OrderedDict()
    out = []
    for plan in plans:
        seconds = predict_seconds(plan, cal)
        key = plan.round0_key
        if key is not None and key in cached:
            seconds -= plan.steps[0] * cal.step0[(plan.model_key, plan.config.method)]
            cached.move_to_end(key)
        elif key is not None:
            cached[key] = None
            while len(cached) > FIRST_MODEL_CACHE_SIZE:
                cached.popitem(last=False)
        out.append(seconds)
    return out
