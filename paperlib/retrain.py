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

from paperlib.accounting import RoundCost
from paperlib.losses import apply_heads, batched_losses
from paperlib.models import masked_logits
from paperlib.plugins import Plugin, RoundContext, StepContext
from paperlib.samples import SampleSource
from paperlib.weights import WeightScope


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite; names the round and step."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser settings shared by every round of a run.

    Attributes:
        batch_size: samples per step.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        grad_clip: max global gradient norm (None = no clipping); 5 as in the authors' code.
        weight_decay: L2 weight decay of the optimiser.
    """

    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    grad_clip: float | None = 5.0
    weight_decay: float = 0.0

    def make_optimizer(self, params: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        # foreach: one multi-tensor kernel per update instead of one per parameter tensor
        # (PyTorch's default on CUDA; on CPU it avoids per-tensor dispatch overhead).
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, foreach=True)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay,
                                   foreach=True)
        raise ValueError(f"optimizer must be 'adam' or 'sgd', not {self.optimizer!r}")


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


class Retrainer:
    """Runs one round: ``steps`` optimiser steps with batches from ``source``, the trainable
    groups chosen by ``scope``, and the ``plugins``' penalties added to the loss."""

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings

    def run_round(self, ctx: RoundContext, source: SampleSource, scope: WeightScope,
                  plugins: Sequence[Plugin] = (), steps: int | None = None) -> RoundCost:
        s, model, meter = self.settings, ctx.model, ctx.meter
        meter.start_round()
        model.train()
        for p in plugins:
            p.before_round(ctx)
        default_steps = source.start_round(ctx, s.batch_size)
        n_steps = default_steps if steps is None else steps
        scope.start_round(ctx, n_steps)
        scope.before_round(ctx)
        hooks = [scope, *plugins]
        groups = model.parameter_groups()
        optimizer = s.make_optimizer(model.parameters())
        needs_hidden = any(p.needs_hidden for p in plugins)
        active: tuple[str, ...] | None = None
        try:
            for step in range(n_steps):
                names = scope.select(step)
                if names != active:
                    set_trainable(groups, names)
                    active = names
                    trainable = [p for g in names for p in groups[g]]
                x, y, arm = source.next_batch()
                if needs_hidden:
                    logits, hidden = model(x, return_hidden=True)
                else:
                    logits, hidden = model(x), None
                loss = F.cross_entropy(apply_heads(logits, y, ctx.heads), y)
                sc = StepContext(ctx, step, x, y, logits, loss, hidden, arm)
                total = loss
                for p in plugins:
                    pen = p.penalty(sc)
                    if pen is not None:
                        total = total + pen
                value = float(total.detach())
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"non-finite training loss ({value}) in round {ctx.round_index}, "
                        f"step {step}: lower the learning rate or the regularisation strength")
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if s.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(trainable, s.grad_clip)
                for h in hooks:
                    h.before_update(sc)
                optimizer.step()
                for h in hooks:
                    h.after_step(sc)
                meter.add_step(len(y), names)
                if source.wants_reward:
                    after = float(batched_losses(model, x, y, ctx.heads, keep_mode=True).mean())
                    meter.add_forward(len(y))
                    source.update(arm, float(loss.detach()), after)
            source.end_round(ctx)
            scope.after_round(ctx)
            for p in plugins:
                p.after_round(ctx)
        finally:
            set_trainable(groups, list(groups))
        return meter.end_round()
