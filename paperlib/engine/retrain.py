"""One retraining round: a sample source x a weight scope x plugins (regularisers).

The loop is deliberately plain PyTorch (index-based batches on the device, no DataLoader) so
that its per-step overhead stays within a few percent of a hand-written loop (``make bench``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.engine.accounting import RoundCost
from paperlib.engine.finite import LossWatch, NonFiniteLossError
from paperlib.engine.losses import apply_heads
from paperlib.engine.models import group_batch_norms, masked_logits
from paperlib.engine.plugins import Plugin, RoundContext, StepContext
from paperlib.engine.samples import SampleSource
from paperlib.engine.weights import WeightScope


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser settings shared by every round of a run.

    Attributes:
        batch_size: samples per step.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (with ``momentum``).
        grad_clip: max global gradient norm (None = no clipping); 5 as in the authors' code.
        weight_decay: L2 weight decay of the optimiser.
        lr_schedule: per-round learning-rate schedule, the same for every method:
            ``"constant"`` or ``"warmup_cosine"`` (re-warm linearly over the first
            ``warmup_fraction`` of the round's expected steps, then cosine decay to 0 at the
            expected last step; see :func:`lr_factor`). The expected step count is the round's
            step count when it is fixed (a method's default, or ``steps``).
        warmup_fraction: share of the expected steps spent warming up (0.05).
        freeze_bn_stats: batch-norm layers of frozen parameter groups run in eval mode while
            frozen (running statistics neither used from the batch nor updated), so a frozen
            group is frozen entirely; False lets them keep updating (the behaviour before).
        momentum: SGD momentum (0 = plain SGD, as in Mammoth's reference protocols).
    """

    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    grad_clip: float | None = 5.0
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_fraction: float = 0.05
    freeze_bn_stats: bool = True
    momentum: float = 0.9

    def make_optimizer(self, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        # foreach: one multi-tensor kernel per update instead of one per parameter tensor
        # (PyTorch's default on CUDA; on CPU it avoids per-tensor dispatch overhead).
        if self.optimizer == "adam":
            # fused: one kernel for the whole update (CPU and CUDA; ~25 % faster steps than
            # foreach for the quick profile's MLP on one CPU thread, measured)
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, fused=True)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                                   weight_decay=self.weight_decay, foreach=True)
        raise ValueError(f"optimizer must be 'adam' or 'sgd', not {self.optimizer!r}")


LR_SCHEDULES = ("constant", "warmup_cosine")


def lr_factor(progress: float, schedule: str = "constant", warmup_fraction: float = 0.05) -> float:
    """Learning-rate multiplier at ``progress`` = share of the round's expected steps done
    (``step / expected_steps``, in [0, 1]; values past 1 count as 1).

    ``"warmup_cosine"``: linear from 0 up to 1 over the first ``warmup_fraction``, then half a
    cosine down to 0 at ``progress = 1``. The retrainer evaluates it at the middle of each step,
    ``(step + 0.5) / expected_steps``, so no step has a zero learning rate.

    >>> [round(lr_factor(p, "warmup_cosine", 0.1), 3) for p in (0.0, 0.05, 0.1, 0.55, 1.0)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> lr_factor(0.3)
    1.0
    """
    if schedule == "constant":
        return 1.0
    if schedule != "warmup_cosine":
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {schedule!r}")
    p = min(max(progress, 0.0), 1.0)
    if p < warmup_fraction:
        return p / warmup_fraction
    rest = (p - warmup_fraction) / max(1.0 - warmup_fraction, 1e-12)
    return 0.5 * (1.0 + math.cos(math.pi * rest))


def heads_table(heads: Sequence[Sequence[int]] | None, n_classes: int) -> torch.Tensor | None:
    """Boolean ``(C, C)`` table: row ``c`` marks the classes in class ``c``'s head.

    >>> heads_table([(0, 1), (2, 3)], 4).int().tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
    """
    if heads is None:
        return None
    table = torch.zeros(n_classes, n_classes, dtype=torch.bool)
    for head in heads:
        idx = torch.tensor(list(head))
        table[idx.unsqueeze(1), idx.unsqueeze(0)] = True
    return table


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, classes: Sequence[int] | None = None,
            batch_size: int = 2048) -> torch.Tensor:
    """Predicted labels ``(N,)`` in eval mode (``classes`` restricts the candidate labels)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        preds = [masked_logits(model(x[i:i + batch_size].to(device)), classes).argmax(1)
                 for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds).cpu() if preds else torch.zeros(0, dtype=torch.long)


def set_trainable(groups: dict[str, list[nn.Parameter]], names: Sequence[str]) -> None:
    """``requires_grad = (group in names)`` for every group."""
    names = set(names)
    for g, params in groups.items():
        for p in params:
            p.requires_grad_(g in names)


def budget_flops(budget: float, n_new: int, full_step_flops_per_sample: float) -> float:
    """A round's FLOP budget: ``budget`` full-model training passes over the new chunk,
    ``budget * n_new * full_step_flops_per_sample`` (the per-sample FLOPs of one training step
    with every group trainable, :meth:`~paperlib.engine.accounting.ComputeMeter.step_flops`).

    >>> budget_flops(2.0, 100, 12224.0)
    2444800.0
    """
    if not (budget > 0 and math.isfinite(budget)):
        raise ValueError(f"budget must be a finite number > 0, got {budget!r}")
    return float(budget) * n_new * full_step_flops_per_sample


class Retrainer:
    """Runs one round: optimiser steps with batches from ``source``, the trainable groups
    chosen by ``scope``, and the ``plugins``' penalties added to the loss.

    How many steps: ``steps`` if given, else the source's default; or, with ``budget``
    (full-model passes over the new chunk, :func:`budget_flops`), as many as the FLOP budget
    allows: a step starts only while the round's metered FLOPs (``ctx.meter.flops``: training
    steps plus every extra pass that the source, scope or plugins report, including their
    ``before_round`` work) are below the round's limit, so a method that pays for extra passes
    simply gets fewer steps. The limit is the round's budget less what the earlier budgeted
    rounds of this retrainer (one run) spent beyond theirs (:attr:`budget_debt`), so a round's
    overshoot, less than one of the method's own steps, is repaid by the next round, and a
    run's total stays within one step of its total budget however dear its steps are."""

    #: steps between two reads of the device-side finiteness flag (:class:`LossWatch`)
    finite_check_every: int = 50

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings
        #: FLOPs the budgeted rounds so far spent beyond their budgets (taken from the next)
        self.budget_debt = 0.0

    def run_round(self, ctx: RoundContext, source: SampleSource, scope: WeightScope,
                  plugins: Sequence[Plugin] = (), steps: int | None = None,
                  budget: float | None = None) -> RoundCost:
        s, model, meter = self.settings, ctx.model, ctx.meter
        if budget is not None and steps is not None:
            raise ValueError("pass either steps or budget, not both")
        meter.start_round()
        model.train()
        for p in plugins:
            p.before_round(ctx)
        default_steps = source.start_round(ctx, s.batch_size)
        n_steps = default_steps if steps is None else steps
        limit = None
        if budget is not None:  # n_steps is then only the plan's estimate (for the scope)
            full = meter.step_flops(1, meter.group_names)
            limit = budget_flops(budget, len(ctx.new_chunk), full) - self.budget_debt
            n_steps = max(1, math.ceil((limit - meter.flops) / (full * s.batch_size)))
        scope.start_round(ctx, n_steps)
        scope.before_round(ctx)
        hooks = [scope, *plugins]
        groups = model.parameter_groups()
        optimizer = s.make_optimizer(model.parameters())
        needs_hidden = any(p.needs_hidden for p in plugins)
        active: tuple[str, ...] | None = None
        ctx.batch_pool = source.pool
        bns = group_batch_norms(model) if s.freeze_bn_stats else []
        # The learning-rate schedule's progress: steps taken / the round's steps, or under a
        # FLOP budget the share of the budget spent (so a method with cheaper steps, e.g. frozen
        # groups, reaches the end of its schedule exactly when its budget runs out).
        start_flops = meter.flops
        watch = LossWatch(self.finite_check_every)
        try:
            step = 0
            while (step < n_steps) if limit is None else (meter.flops < limit):
                names = scope.select(step)
                if names != active:
                    set_trainable(groups, names)
                    active = names
                    trainable = [p for g in names for p in groups[g]]
                for g, bn in bns:  # every step: a plugin may have switched the model's mode
                    bn.train(g in names)
                if s.lr_schedule != "constant":
                    if limit is None:
                        progress = (step + 0.5) / max(n_steps, 1)
                    else:
                        half = 0.5 * meter.step_flops(s.batch_size, names)  # mid-step
                        progress = (meter.flops - start_flops + half) / max(limit - start_flops, 1.0)
                    factor = lr_factor(progress, s.lr_schedule, s.warmup_fraction)
                    for pg in optimizer.param_groups:
                        pg["lr"] = s.lr * factor
                x, y, arm = source.next_batch()
                if needs_hidden:
                    logits, hidden = model(x, return_hidden=True)
                else:
                    logits, hidden = model(x), None
                loss = F.cross_entropy(apply_heads(logits, y, ctx.heads), y)
                sc = StepContext(ctx, step, x, y, logits, loss, hidden, arm, source.last_index)
                for p in plugins:
                    if (own := p.task_loss(sc)) is not None:
                        sc.loss = loss = own
                total = loss
                for p in plugins:
                    pen = p.penalty(sc)
                    if pen is not None:
                        total = total + pen
                watch.observe(total, step)  # read every few steps, not per step (issue 11)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if s.grad_clip is not None:
                    norm = torch.nn.utils.clip_grad_norm_(trainable, s.grad_clip)
                    sc.grad_scale = (s.grad_clip / (norm + 1e-6)).clamp(max=1.0)  # as torch does
                for h in hooks:
                    h.before_update(sc)
                optimizer.step()
                for h in hooks:
                    h.after_step(sc)
                meter.add_step(len(y), names)
                if source.wants_reward:  # the source meters any pass its reward makes
                    # one host sync per step, kept: the host-side policy needs the reward now
                    source.update(arm, float(source.reward_loss(sc).detach()))
                if watch.due(step):
                    watch.check(ctx.round_index)
                step += 1
            watch.check(ctx.round_index)
            source.end_round(ctx)
            scope.after_round(ctx)
            for p in plugins:
                p.after_round(ctx)
        except NonFiniteLossError:
            raise
        except Exception:  # a NaN loss can break a later computation before the check
            watch.check(ctx.round_index)
            raise
        finally:
            set_trainable(groups, list(groups))
            for _, bn in bns:
                bn.train(model.training)
        cost = meter.end_round()
        if limit is not None:
            self.budget_debt = cost.train_flops - limit  # >= 0: the loop stops at the limit
        return cost
