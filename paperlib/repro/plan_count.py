"""The counting half of ``paperlib plan`` (:mod:`paperlib.repro.plan`): a run's steps and metered
training FLOPs per round, predicted without training (see :mod:`paperlib.repro.plan` for the rules
and how exact they are).

>>> cfg = RunConfig.from_params({"dataset": "digits", "method": "finetune", "profile": "smoke"})
>>> p = plan_run(cfg)   # smoke: 4 shards, 2 train the first model; 2 epochs, then 1 per round
>>> p.rounds, p.steps
(3, [44, 11, 11])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.models import build_model
from paperlib.engine.retrain import budget_flops
from paperlib.engine.samples import _epoch_steps
from paperlib.method.methods import build_method
from paperlib.repro.plan_passes import default_steps, plugin_passes, round_work, scope_step_flops
from paperlib.serving.config import RunConfig, resolve_model


@dataclass
class RunPlan:
    """Predicted work of one run, per round (round 0 = the first served model).

    Attributes:
        steps, flops: optimizer steps and metered training FLOPs per round (what the runner
            records as ``grad_steps`` / ``train_flops``).
        extra_round_flops: metered FLOPs of the round's fixed passes (importance estimates,
            loss-group scoring); included in ``flops``.
        eval_samples: forward passes of evaluation per round (served accuracy, test splits,
            probe), not metered.
        flops_range: per round, the lowest and highest FLOPs the weight bandit's choices allow.
        steps_range: per round, the fewest and most steps (they differ only under a FLOP
            ``budget`` when the data decide a step's cost).
        exact: False when a bandit's choices or a memory's fill make ``flops`` (and under a
            budget ``steps``) an estimate (``~`` in the report).
        round0_key: the first-model cache's key (architecture and
            :func:`~paperlib.serving.runner.round0_settings`) when every plugin of the method
            is inert in round 0, so that a process that already trained that first model
            skips round 0; None when the run always trains its own.
    """

    config: RunConfig
    arch: str
    model_key: tuple
    steps: list[int] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)
    extra_round_flops: list[float] = field(default_factory=list)
    eval_samples: list[int] = field(default_factory=list)
    flops_range: list[tuple[float, float]] = field(default_factory=list)
    steps_range: list[tuple[int, int]] = field(default_factory=list)
    exact: bool = True
    stream_seconds: float = 0.0
    round0_key: str | None = None

    @property
    def rounds(self) -> int:
        return len(self.steps)

    @property
    def total_steps(self) -> int:
        return int(sum(self.steps))

    @property
    def total_flops(self) -> float:
        return float(sum(self.flops))


def _model_for(cfg: RunConfig, input_shape: tuple[int, ...], n_classes: int
               ) -> tuple[str, torch.nn.Module, tuple]:
    arch = resolve_model(cfg)
    model = build_model(arch, input_shape, n_classes, cfg.hidden_widths)
    key = (arch, tuple(input_shape), n_classes, cfg.hidden_widths, cfg.batch_size)
    return arch, model, key


_step_rule = default_steps
_mean_step_flops = scope_step_flops


def _plugin_passes(plugins: Sequence[Any], n_prev: int, n_seen: int, batch: int,
                   meter: ComputeMeter) -> tuple[float, float]:
    """``(round_fixed, per_step)`` samples of the plugins' extra forwards (see
    :func:`~paperlib.repro.plan_passes.plugin_passes`)."""
    fixed, per_step, _first, _lazy = plugin_passes(plugins, n_prev, n_seen, batch, meter=meter)
    return fixed, per_step


def plan_run(cfg: RunConfig, stream: Any = None) -> RunPlan:
    """Count the steps, FLOPs and evaluation passes of ``cfg`` round by round, without training.

    ``stream`` (the run's :class:`~paperlib.data.streams.Stream`) is built when not given."""
    t0 = time.perf_counter()
    if stream is None:
        from paperlib.serving.runner import stream_for

        stream = stream_for(cfg)
    built_seconds = time.perf_counter() - t0
    arch, model, key = _model_for(cfg, stream.input_shape, stream.n_classes)
    meter = ComputeMeter(model, stream.input_shape)
    built = build_method(cfg.method, cfg.hparams, cfg.epochs, cfg.seed)
    B = cfg.batch_size
    plan = RunPlan(cfg, arch, key, stream_seconds=built_seconds)
    from paperlib.serving.runner import round0_settings, shares_first_model

    if shares_first_model(built.regularizers):
        plan.round0_key = f"{arch} {round0_settings(cfg)}"
    all_step = meter.step_flops(B, meter.group_names)
    n_params = sum(p.numel() for p in model.parameters())
    n_seen, n_prev = 0, 0
    debt = debt_lo = debt_hi = 0.0  # earlier budgeted rounds' overshoot (Retrainer.budget_debt)
    guard = cfg.guard_tolerance is not None
    for r, chunk in enumerate([stream.initial, *stream.rounds]):
        n_chunk = len(chunk)
        n_new = n_chunk - (max(1, round(cfg.guard_fraction * n_chunk)) if guard else 0)
        evals = sum(len(s) for s in stream.test_splits)
        if r == 0:
            steps = _epoch_steps(n_new, B, cfg.epochs_initial)
            flops, fixed = steps * all_step, 0.0
            lo = hi = flops
            plan.steps_range.append((steps, steps))
        else:
            work = round_work(built, meter, n_params, r, n_new, n_seen, n_prev, B)
            if cfg.budget is not None:  # the round's budget less the earlier overshoot
                budget = budget_flops(cfg.budget, n_new, meter.step_flops(1, meter.group_names))
                limit = budget - debt
                steps = work.budget_steps(limit)
                lo_steps = work.budget_steps(budget - debt_hi, 2)
                hi_steps = work.budget_steps(budget - debt_lo, 1)
            else:
                steps = lo_steps = hi_steps = (cfg.steps if cfg.steps is not None
                                               else work.default_steps)
            plan.exact &= work.exact and lo_steps == hi_steps
            fixed = work.fixed
            flops = work.flops(steps)
            lo, hi = work.flops(lo_steps, 1), work.flops(hi_steps, 2)
            if cfg.budget is not None:  # the last step's overshoot is at most one step
                lo, hi = min(lo, work.flops(hi_steps, 1)), max(hi, work.flops(lo_steps, 2))
                debt = flops - limit
                debt_lo = max(0.0, lo - (budget - debt_lo))
                debt_hi = max(debt_hi, hi - (budget - debt_hi))
            plan.steps_range.append((int(lo_steps), int(hi_steps)))
            evals += n_chunk + 2 * len(stream.probe)
            if guard:
                evals += 2 * (n_chunk - n_new) * r  # the guard set grows every round
        plan.steps.append(int(steps))
        plan.flops.append(float(flops))
        plan.flops_range.append((float(lo), float(hi)))
        plan.extra_round_flops.append(float(fixed))
        plan.eval_samples.append(int(evals))
        n_seen = n_seen + n_new if cfg.store_capacity is None else min(cfg.store_capacity,
                                                                     n_seen + n_new)
        n_prev = n_new
    return plan


def _stream_key(cfg: RunConfig) -> tuple:
    skip = {"method", "device", "profile", "model", "hidden_widths", "epochs_initial", "epochs",
            "steps", "batch_size", "lr", "optimizer", "grad_clip", "store_capacity",
            "guard_tolerance", "guard_fraction"}
    return tuple((k, v) for k, v in sorted(cfg.params().items())
                 if k not in skip and k not in cfg.hparams)


def plan_grid(configs: Sequence[RunConfig]) -> list[RunPlan]:
    """:func:`plan_run` for every config, building each distinct stream once."""
    from paperlib.data.datasets import resolve_mirror, resolve_root
    from paperlib.data.streams import _load_memo
    from paperlib.serving.runner import stream_for

    streams: dict[tuple, tuple[Any, float]] = {}
    plans = []
    for cfg in configs:
        key = _stream_key(cfg)
        if key not in streams:
            mirror = resolve_mirror(None)
            _load_memo(cfg.dataset, str(resolve_root(None)), "" if mirror is None else str(mirror),
                       None)  # time the stream's construction, not the (memoised) data load
            t0 = time.perf_counter()
            streams[key] = (stream_for(cfg), time.perf_counter() - t0)
        stream, seconds = streams[key]
        p = plan_run(cfg, stream)
        p.stream_seconds = seconds  # every run builds its stream again (data load memoised)
        plans.append(p)
    return plans
