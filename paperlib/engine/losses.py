"""Per-sample losses of a model without gradients, shared by the retrainer and the sample
sources (which rank or score samples by loss). Below :mod:`paperlib.engine.retrain` and
:mod:`paperlib.engine.samples`, so neither imports the other for it; :mod:`paperlib.engine.retrain`
re-exports both names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from paperlib.engine.models import frozen_bn_stats, masked_logits


def apply_heads(logits: torch.Tensor, y: torch.Tensor, heads: torch.Tensor | None) -> torch.Tensor:
    """Mask each row's logits to its label's head (multi-head); unchanged when ``heads`` is None."""
    return logits if heads is None else masked_logits(logits, heads[y])


@torch.no_grad()
def batched_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   heads: torch.Tensor | None = None, keep_mode: bool = False,
                   batch_size: int = 2048) -> torch.Tensor:
    """Per-sample cross-entropy ``(N,)`` without gradients. Eval mode unless ``keep_mode``
    (then the model's current mode with running statistics left untouched)."""
    was_training = model.training
    if not keep_mode:
        model.eval()
    out = []
    try:
        with frozen_bn_stats(model):
            for i in range(0, len(y), batch_size):
                xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                logits = apply_heads(model(xb), yb, heads)
                out.append(F.cross_entropy(logits, yb, reduction="none"))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)
