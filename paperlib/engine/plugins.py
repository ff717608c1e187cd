"""The hook contract shared by every composable piece of a retraining round.

Modelled on Avalanche's strategy plugins: the :class:`~paperlib.engine.retrain.Retrainer` calls each
plugin at fixed points, so a regulariser can refresh its importances at ``before_round``, add its
penalty at ``penalty`` and accumulate path integrals at ``after_step`` without the training loop
knowing which regulariser it is. Methods compose by listing plugins.

Order of calls in one round::

    before_round(round)
    for each step:
        (forward pass; task loss: mean cross-entropy)
        task_loss(step)      -> a replacement task loss, or None (e.g. ER-ACE, DER)
        penalty(step)        -> extra loss terms, summed into the loss
        (backward pass)
        before_update(step)  -> gradients are in ``p.grad``; parameters not yet changed
        (optimizer step)
        after_step(step)     -> parameters changed
    after_round(round)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from paperlib.data.streams import Chunk
    from paperlib.engine.accounting import ComputeMeter
    from paperlib.engine.samples import SeenData


@dataclass
class RoundContext:
    """What a plugin may read during one retraining round.

    Attributes:
        round_index: 0 for the first model's training, then 1..R.
        model: the network being trained (its parameters change during the round).
        served_model: a frozen copy of the model served before this round (``None`` in round 0).
        new_chunk: the data that arrived this round (round 0: the initial training set).
        previous_chunk: the chunk the served model was last trained on (``None`` in round 0).
        seen: the data seen *before* this round (the store the sample sources draw from).
        device: the training device.
        generator: the round's seeded CPU random generator; use it for any sampling.
        meter: the compute meter; a plugin that runs extra forward/backward passes reports
            them here (``meter.add_forward(batch)``) so the FLOP count stays honest.
        heads: task-incremental (multi-head) scenarios only: a boolean ``(C, C)`` table whose
            row ``c`` marks the classes sharing class ``c``'s head; losses and predictions for
            a sample of class ``c`` use only those logits (``None`` = one shared head).
        batch_pool: ``(x, y)`` of every sample the round's batches can come from (the sample
            source's ``pool``, set by the retrainer after the source's ``start_round``;
            :attr:`StepContext.index` indexes it). ``None`` before that.
    """

    round_index: int
    model: nn.Module
    served_model: nn.Module | None
    new_chunk: Chunk
    previous_chunk: Chunk | None
    seen: SeenData
    device: torch.device
    generator: torch.Generator
    meter: ComputeMeter
    heads: torch.Tensor | None = None
    batch_pool: tuple[torch.Tensor, torch.Tensor] | None = None


@dataclass
class StepContext:
    """One optimisation step.

    Attributes:
        round: the enclosing :class:`RoundContext`.
        step: 0-based step index within the round.
        x: the mini-batch inputs, ``(B, *input_shape)`` on the device.
        y: labels, ``(B,)``.
        logits: the trained model's output on ``x``, ``(B, n_classes)``.
        hidden: post-activation outputs of every hidden block (only when some plugin sets
            ``needs_hidden``), each ``(B, ...)``; the last entry is the logits.
        loss: the task loss (mean cross-entropy), a scalar tensor.
        arm: the sample-source arm the batch came from (``-1`` if not a bandit source).
        index: ``(B,)`` rows of the batch in :attr:`RoundContext.batch_pool` (None if the
            source does not say).
        grad_scale: the factor gradient clipping multiplied every gradient by this step (a
            0-dim tensor, set after ``backward``; 1.0 without clipping), so ``p.grad /
            grad_scale`` is the unclipped gradient of the total loss.
    """

    round: RoundContext
    step: int
    x: torch.Tensor
    y: torch.Tensor
    logits: torch.Tensor
    loss: torch.Tensor
    hidden: list[torch.Tensor] | None = None
    arm: int = -1
    index: torch.Tensor | None = None
    grad_scale: torch.Tensor | float = 1.0


class Plugin:
    """Base class: every hook is a no-op. Override the ones you need.

    Class attribute ``needs_hidden`` asks the retrainer to run the forward pass with
    ``return_hidden=True`` so that :attr:`StepContext.hidden` is filled.
    """

    needs_hidden: bool = False
    #: True when, in round 0 (no served model; the runner trains the first model with
    #: ``NewOnly``), the plugin changes neither the loss nor its own state, draws no random
    #: numbers and reports no compute, so the first model trains exactly as without it. The
    #: runner may then reuse a first model trained for another method of the same run
    #: settings (:mod:`paperlib.serving.runner`). False (the safe default) always trains it.
    inert_in_round0: bool = False

    def before_round(self, ctx: RoundContext) -> None:
        """Called once before the first step of a round."""

    def task_loss(self, step: StepContext) -> torch.Tensor | None:
        """Return a scalar tensor that replaces the step's task loss (``step.loss``), or
        ``None`` to keep it. When several plugins replace it, the last one wins."""
        return None

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        """Return a scalar tensor added to the loss, or ``None``."""
        return None

    def before_update(self, step: StepContext) -> None:
        """Called after ``backward()`` and before ``optimizer.step()``."""

    def after_step(self, step: StepContext) -> None:
        """Called after ``optimizer.step()``."""

    def after_round(self, ctx: RoundContext) -> None:
        """Called once after the last step of a round."""
