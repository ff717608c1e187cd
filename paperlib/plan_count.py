"""The counting half of :mod:`paperlib.plan`: a run's steps and training FLOPs from the stream
sizes, each method's step rule and the :class:`~paperlib.accounting.ComputeMeter` FLOP model,
without training anything. Below :mod:`paperlib.calibrate` (which times the counted steps) and
:mod:`paperlib.plan` (which re-exports everything here).

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

from paperlib.accounting import ComputeMeter
from paperlib.config import ConfigError, RunConfig, resolve_model
from paperlib.methods import build_method
from paperlib.models import build_model
from paperlib.samples import AllSeen, NewOnly, Replay, SampleBandit, _epoch_steps
from paperlib.weights import AllWeights, FixedSubset, RandomWeights, WeightBandit


class PlanError(ConfigError):
    """A method uses a component whose step rule or metered passes the planner does not know."""


# --------------------------------------------------------------------------- counting


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
        exact: False when a weight bandit's choices make ``flops`` an expectation.
    """

    config: RunConfig
    arch: str
    model_key: tuple
    steps: list[int] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)
    extra_round_flops: list[float] = field(default_factory=list)
    eval_samples: list[int] = field(default_factory=list)
    flops_range: list[tuple[float, float]] = field(default_factory=list)
    exact: bool = True
    stream_seconds: float = 0.0

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


def _step_rule(source: Any, n_new: int, n_seen: int, batch: int) -> int:
    """Steps the source's ``start_round`` returns (see :mod:`paperlib.samples`)."""
    if isinstance(source, AllSeen):
        return _epoch_steps(n_seen + n_new if n_seen else n_new, batch, source.epochs)
    if isinstance(source, SampleBandit | Replay):
        return _epoch_steps(n_new, batch, source.epochs * source.budget_factor)
    if isinstance(source, NewOnly):
        return _epoch_steps(n_new, batch, source.epochs)
    raise PlanError(f"the planner does not know the step rule of sample source {source.name!r}")


def _mean_step_flops(meter: ComputeMeter, scope: Any, batch: int
                     ) -> tuple[float, float, float]:
    """FLOPs of one step under ``scope``: ``(mean, lowest, highest)`` over the k-of-G group
    choices a weight bandit can make (all three equal when the trainable set is fixed)."""
    groups = meter.group_names
    if isinstance(scope, AllWeights | FixedSubset):
        f = meter.step_flops(batch, groups if isinstance(scope, AllWeights) else scope.fixed)
        return f, f, f
    if isinstance(scope, WeightBandit | RandomWeights):
        import itertools
        import math

        G = len(groups)
        k = scope.k_groups if scope.k_groups >= 1 else math.ceil(scope.k_groups * G)
        k = int(min(G, max(1, k)))
        flops = [meter.step_flops(batch, c) for c in itertools.combinations(groups, k)]
        return sum(flops) / len(flops), min(flops), max(flops)
    raise PlanError(f"the planner does not know weight scope {scope.name!r}")


def _plugin_passes(plugins: Sequence[Any], n_prev: int, n_seen: int, batch: int
                   ) -> tuple[float, float]:
    """Samples of extra metered passes in a round >= 1: ``(round_fixed, per_step)`` in units of
    one forward pass of one sample (a backward counts 2 forwards, as the meter does)."""
    from paperlib.regularizers import (
        EWC,
        MAS,
        L2Anchor,
        OnlineEWC,
        SynapseNeuronImportance,
        SynapticIntelligence,
    )

    fixed = per_step = 0.0
    for p in plugins:
        if isinstance(p, SynapseNeuronImportance):
            n = min(p.importance_samples, n_seen)
            if p.neuron_mode == "round":
                fixed += 3 * n * (int(p.use_neuron_term) + int(p.importance in ("fisher", "mas")))
                per_step += batch * int(p.use_neuron_term)
            else:
                per_step += 3 * batch * int(p.use_neuron_term or p.importance == "fisher")
                per_step += 3 * batch * int(p.importance == "mas")
        elif isinstance(p, EWC | OnlineEWC | MAS):
            fixed += 3 * min(p.importance_samples, n_prev if n_prev else n_seen)
        elif isinstance(p, L2Anchor):
            per_step += batch * int(p.use_neuron_term)
        elif not isinstance(p, SynapticIntelligence):
            raise PlanError(f"the planner does not know the metered passes of plugin {p.name!r}")
    return fixed, per_step


def plan_run(cfg: RunConfig, stream: Any = None) -> RunPlan:
    """Count the steps, FLOPs and evaluation passes of ``cfg`` round by round, without training.

    ``stream`` (the run's :class:`~paperlib.streams.Stream`) is built when not given."""
    t0 = time.perf_counter()
    if stream is None:
        from paperlib.runner import stream_for

        stream = stream_for(cfg)
    built_seconds = time.perf_counter() - t0
    arch, model, key = _model_for(cfg, stream.input_shape, stream.n_classes)
    meter = ComputeMeter(model, stream.input_shape)
    fwd = meter.forward_flops_per_sample
    built = build_method(cfg.method, cfg.hparams, cfg.epochs, cfg.seed)
    B = cfg.batch_size
    plan = RunPlan(cfg, arch, key, stream_seconds=built_seconds)
    all_step = meter.step_flops(B, meter.group_names)
    n_seen, n_prev = 0, 0
    guard = cfg.guard_tolerance is not None
    for r, chunk in enumerate([stream.initial, *stream.rounds]):
        n_chunk = len(chunk)
        n_new = n_chunk - (max(1, round(cfg.guard_fraction * n_chunk)) if guard else 0)
        evals = sum(len(s) for s in stream.test_splits)
        if r == 0:
            steps = _epoch_steps(n_new, B, cfg.epochs_initial)
            flops, fixed = steps * all_step, 0.0
            lo = hi = flops
        else:
            src = built.source
            steps = cfg.steps if cfg.steps is not None else _step_rule(src, n_new, n_seen, B)
            step_flops, lo, hi = _mean_step_flops(meter, built.scope, B)
            plan.exact &= lo == hi
            fixed_s, per_step_s = _plugin_passes(built.regularizers, n_prev, n_seen, B)
            if isinstance(src, SampleBandit):
                if src.wants_reward:
                    per_step_s += B  # the batch's loss after the update
                    if src.reward == "holdout":
                        per_step_s += min(src.holdout_size, n_new + n_seen)
                if src.grouping == "loss" and n_seen:
                    fixed_s += min(src.pool_size, n_seen)
            fixed = fixed_s * fwd
            flops = steps * (step_flops + per_step_s * fwd) + fixed
            lo, hi = flops + steps * (lo - step_flops), flops + steps * (hi - step_flops)
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
    from paperlib.datasets import resolve_mirror, resolve_root
    from paperlib.runner import stream_for
    from paperlib.streams import _load_memo

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
