"""The planner's model of one retraining round's metered work (:mod:`paperlib.repro.plan`): the
training step's FLOPs and every extra pass that a sample source, a rival or a plugin charges to
the :class:`~paperlib.engine.accounting.ComputeMeter`, and the step count under a FLOP ``budget``
predicted the way :meth:`~paperlib.engine.retrain.Retrainer.run_round` takes steps.

Where the data decide (MIR's candidate pool as the memory turns over, GSS's per-sample scores
once its memory is full, a weight bandit's groups) the round carries a ``(lowest, highest)``
range and ``exact = False``: the report marks it with ``~``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.samples import AllSeen, NewOnly, Replay, SampleBandit, _epoch_steps
from paperlib.engine.weights import AllWeights, FixedSubset, RandomWeights, WeightBandit
from paperlib.spec import ConfigError


class PlanError(ConfigError):
    """A method uses a component whose step rule or metered passes the planner does not know."""


@dataclass
class RoundWork:
    """Metered FLOPs of a retraining round, split by when the Retrainer's budget check sees
    them. ``fixed``: charged before the first step (importance estimates, loss-group scoring,
    the holdout's first loss, DER's logits of a seeded memory); ``first``: charged inside the
    first step only (the neuron cache's forward over the pool); ``step``: one training step
    (mean, lowest, highest over a weight bandit's choices); ``extra``: extra passes inside each
    step (rewards, teachers, MIR's virtual step), ``(mean, lo, hi)``; ``deferred``: charged at
    the *next* step's batch or at the round's end (GSS's memory update), ``(mean, lo, hi)``."""

    fixed: float
    first: float
    step: tuple[float, float, float]
    extra: tuple[float, float, float]
    deferred: tuple[float, float, float]
    default_steps: int

    @property
    def exact(self) -> bool:
        return all(t[1] == t[2] for t in (self.step, self.extra, self.deferred))

    def flops(self, steps: int, which: int = 0) -> float:
        """Metered FLOPs of ``steps`` steps (``which``: 0 mean, 1 lowest, 2 highest)."""
        per = self.step[which] + self.extra[which] + self.deferred[which]
        return self.fixed + (self.first if steps else 0.0) + steps * per

    def budget_steps(self, limit: float, which: int = 0) -> int:
        """Steps the Retrainer takes under a FLOP ``limit``: step ``k`` starts while the metered
        FLOPs are below it; a step's deferred passes are charged after the next check."""
        s, e, d = self.step[which], self.extra[which], self.deferred[which]
        flops, k = self.fixed, 0
        while flops < limit:
            flops += (self.first if k == 0 else d) + e + s
            k += 1
        return k


def scope_step_flops(meter: ComputeMeter, scope: Any, batch: int) -> tuple[float, float, float]:
    """FLOPs of one step under ``scope``: ``(mean, lowest, highest)`` over the group choices a
    weight bandit can make (the head in every choice with ``train_head_always``)."""
    groups = meter.group_names
    if isinstance(scope, AllWeights | FixedSubset):
        f = meter.step_flops(batch, groups if isinstance(scope, AllWeights) else scope.fixed)
        return f, f, f
    if isinstance(scope, WeightBandit | RandomWeights):
        G = len(groups)
        k = scope.k_groups if scope.k_groups >= 1 else math.ceil(scope.k_groups * G)
        k = int(min(G, max(1, k)))
        always = ("head",) if scope.train_head_always and "head" in groups and G > 1 else ()
        arms = [g for g in groups if g not in always]
        flops = [meter.step_flops(batch, (*always, *c))
                 for c in itertools.combinations(arms, k - len(always))]
        return sum(flops) / len(flops), min(flops), max(flops)
    raise PlanError(f"the planner does not know weight scope {scope.name!r}")


def default_steps(source: Any, n_new: int, n_seen: int, batch: int) -> int:
    """Steps the source's ``start_round`` returns (see :mod:`paperlib.engine.samples`)."""
    if isinstance(source, AllSeen):
        return _epoch_steps(n_seen + n_new if n_seen else n_new, batch, source.epochs)
    if isinstance(source, SampleBandit | Replay):
        return _epoch_steps(n_new, batch, source.epochs * source.budget_factor)
    if isinstance(source, NewOnly):
        return _epoch_steps(n_new, batch, source.epochs)
    raise PlanError(f"the planner does not know the step rule of sample source {source.name!r}")


def plugin_passes(plugins: Any, n_prev: int, n_seen: int, batch: int, pool: int | None = None,
                  *, meter: ComputeMeter) -> tuple[float, float, float, float]:
    """Samples of the plugins' extra metered passes in a round >= 1, ``(round_fixed, per_step,
    first_step, lazy)``, in forwards of one sample (a backward to the weights or to the block
    outputs counts what ``meter`` charges for it, in forwards).
    ``pool``: the source's pool size when it has one. ``first_step``: the neuron cache's
    anchors, all forwarded at the round's first step (exact unless that step's batch holds no
    anchor, when they come a step later). ``lazy``: without anchors, the most pool rows the
    cache may forward in the round, each the first time a batch draws it (how many it does is
    data-dependent: :func:`round_work` turns it into a range)."""
    from paperlib.method.distill import LwF
    from paperlib.method.regularizers import (
        EWC,
        MAS,
        L2Anchor,
        OnlineEWC,
        SynapseNeuronImportance,
        SynapticIntelligence,
    )

    fwd = meter.forward_flops_per_sample
    full = 1.0 + meter.backward_flops_per_sample / fwd  # forward + backward to the weights
    act = 1.0 + meter.activation_backward_flops_per_sample / fwd  # ... to the block outputs
    fixed = per_step = first = lazy = 0.0
    for p in plugins:
        if isinstance(p, SynapseNeuronImportance):
            n = min(p.importance_samples, n_seen)
            if p.neuron_mode == "round":
                weights = int(p.importance in ("fisher", "mas"))
                neurons = int(p.use_neuron_term)
                if p.shared_pass and p.use_neuron_term and p.importance == "fisher":
                    neurons = 0  # both importances from one forward+backward
                fixed += n * (full * weights + act * neurons)
                if p.use_neuron_term and p.neuron_cache and pool is not None:
                    if p.neuron_anchors is None:  # each row the first time a batch draws it
                        lazy += pool
                    else:  # every anchor at once, at the first step whose batch holds one
                        first += min(p.neuron_anchors, pool)
                else:
                    per_step += batch * int(p.use_neuron_term)
            else:  # per step on the served model: one pass (to the weights when fisher
                # needs them, else to the block outputs), and MAS's own pass to the weights
                if p.use_neuron_term or p.importance == "fisher":
                    per_step += (full if p.importance == "fisher" else act) * batch
                per_step += full * batch * int(p.importance == "mas")
        elif isinstance(p, EWC | OnlineEWC | MAS):
            fixed += full * min(p.importance_samples, n_prev if n_prev else n_seen)
        elif isinstance(p, L2Anchor):
            per_step += batch * int(p.use_neuron_term)
        elif isinstance(p, LwF):
            per_step += batch  # the teacher's forward
        elif not isinstance(p, SynapticIntelligence | Replay):  # a rival source: counted there
            raise PlanError(f"the planner does not know the metered passes of plugin {p.name!r}")
    return fixed, per_step, first, lazy


def round_work(built: Any, meter: ComputeMeter, n_params: int, r: int, n_new: int, n_seen: int,
               n_prev: int, batch: int) -> RoundWork:
    """The metered work of retraining round ``r >= 1`` (``n_seen`` samples stored before it)."""
    from paperlib.method.distill import DarkReplay
    from paperlib.method.rivals import GSS, MIR

    src, fwd, B = built.source, meter.forward_flops_per_sample, batch
    steps = default_steps(src, n_new, n_seen, B)
    mem = n_seen if getattr(src, "memory_size", None) is None else min(src.memory_size, n_seen)
    pool: int | None = None
    if isinstance(src, AllSeen):
        pool = n_seen + n_new if n_seen else n_new
    elif isinstance(src, SampleBandit) or (isinstance(src, Replay) and not src.online):
        pool = n_new + mem
    elif isinstance(src, NewOnly):
        pool = n_new
    fixed_s, per_s, first_s, lazy = plugin_passes(built.regularizers, n_prev, n_seen, B, pool,
                                                  meter=meter)
    if isinstance(src, SampleBandit):
        if src.wants_reward:
            if src.reward == "batch_progress":  # the arm's rows' loss after the update
                per_s += B - (src.new_rows_per_batch(B) if mem > 0 else 0)
            elif src.reward == "holdout":  # its loss after every step, and once before
                h = min(src.holdout_size, pool)
                per_s += h
                fixed_s += h
        if src.grouping == "loss" and n_seen:
            fixed_s += min(src.pool_size, n_seen)
    samples = B
    s_mean, s_lo, s_hi = scope_step_flops(meter, built.scope, 1)
    extra = [per_s * fwd] * 3
    deferred = [0.0, 0.0, 0.0]
    if isinstance(src, Replay) and src.online:
        n_mem = round(B * src.replay_ratio)
        n_in = B - n_mem
        if isinstance(src, DarkReplay):
            samples = n_in + n_mem * (2 if src.beta > 0 else 1)
            if r == 1 and mem:
                fixed_s += mem  # the seeded memory's logits
        elif isinstance(src, MIR):
            want = src.candidate_count(n_mem)
            c = min(want, mem)
            cost = meter.step_flops(n_in, meter.group_names) + 2 * c * fwd if c > n_mem else 0.0
            extra[0] += cost
            extra[2] += cost
            if mem - steps * n_in >= want or c <= n_mem:  # pool never short
                extra[1] += cost
        elif isinstance(src, GSS):
            c = min(src.candidates, mem + n_in)
            base = meter.step_flops(c + n_in, meter.group_names) + 2.0 * c * n_params
            single = 2.0 * n_in * c * n_params  # per-sample scores once the memory is full
            fill_steps = math.ceil(max(0, src.memory_size - mem) / n_in)
            full_share = max(0, steps - fill_steps) / max(steps, 1)
            deferred = [base + 0.5 * full_share * single, base, base + full_share * single]
    if lazy:  # the neuron cache: 0 to `lazy` rows per step (a batch-norm model fills at once),
        # on average the anchors a round's batches reach: lazy * (1 - exp(-steps * B / pool))
        reach = lazy * (1.0 - math.exp(-steps * B / max(pool or 1, 1)))
        extra = [extra[0] + reach / max(steps, 1) * fwd, extra[1], extra[2] + lazy * fwd]
    fixed = fixed_s * fwd
    step = (s_mean * samples, s_lo * samples, s_hi * samples)
    return RoundWork(fixed, first_s * fwd, step, tuple(extra), tuple(deferred), steps)
