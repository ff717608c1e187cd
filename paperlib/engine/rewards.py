"""Rewards of the sample bandit: how much a data group (arm) helped, as a raw number.

The sample bandit (:class:`~paperlib.engine.samples.SampleBandit`) calls its reward once per step with
the arm it drew and the step's training-batch loss, which the training step has already computed.
A reward that needs more than that (a measuring forward pass) makes the pass itself and reports
it to ``ctx.meter``, so a method pays for its reward in FLOPs (and, under a FLOP budget, in
training steps).

=================  =========================================================  ==================
name               raw reward of arm ``a`` at this step                       extra passes/step
=================  =========================================================  ==================
``visit_progress`` ``|L_a(prev visit) - L_a(now)|``: change of the arm's       none
                   training-batch loss since its previous visit (learning
                   progress from the loss curve, Graves et al. 2017;
                   absolute slope, Matiisen et al. 2017)
``batch_progress`` ``L(batch; theta_before) - L(batch; theta_after)``: the     1 forward of the
                   same batch before and after the update (Graves et al.'s      batch (B samples)
                   prediction gain)
``holdout``        ``L(H; theta_prev step) - L(H; theta_now)`` on a fixed       1 forward of H
                   batch ``H`` held out of every arm for the round              (+1 per round)
=================  =========================================================  ==================

Raw rewards are mapped to ``[0, 1]`` by their rank among recent ones (:class:`QuantileScaler`,
shared with the weight bandit) before a policy sees them.

A reward returns ``None`` when it has no signal yet (an arm's first visit in a round for
``visit_progress``); the bandit then makes no policy update rather than a fake zero reward.

>>> r = VisitProgress()
>>> r.start_round(None)
>>> r(None, 0, 2.0) is None, r(None, 1, 1.0) is None, r(None, 0, 1.5)
(True, True, 0.5)
"""

from __future__ import annotations

from typing import Any

import torch

#: A :class:`paperlib.engine.plugins.RoundContext`. Not imported: :mod:`paperlib.engine.plugins` refers to
#: :mod:`paperlib.engine.samples`, which uses this module, so the import would close a circle
#: (``tests/test_layers.py``); :mod:`paperlib.engine.samples` leaves ``ctx`` untyped for the same reason.
RoundContext = Any

REWARDS = ("visit_progress", "batch_progress", "holdout")


class ArmReward:
    """Contract: ``start_round(ctx)``; then ``reward(ctx, arm, loss)`` once per step, after the
    optimizer step, returning the raw reward (a float, ``None`` = no signal yet).

    ``needs_batch``: the reward reads the last batch (``self.batch = (x, y)``, set by the
    source); ``needs_holdout``: the source holds a reference batch out of every arm and sets
    ``self.holdout = (x, y)`` before ``start_round``.
    """

    name = "reward"
    needs_batch = False
    needs_holdout = False

    def start_round(self, ctx: RoundContext | None) -> None:
        """Reset per-round state."""

    def __call__(self, ctx: RoundContext | None, arm: int, loss: float) -> float | None:
        raise NotImplementedError


class VisitProgress(ArmReward):
    """Learning progress from the training loss the step already computed: the absolute change
    of arm ``a``'s training-batch loss (mean cross-entropy, before the update) between its
    previous visit and this one. A falling loss (learning) and a rising one (forgetting, which
    the arm's data can repair) both draw the policy to the arm (Matiisen et al. 2017 use the
    absolute slope of each task's learning curve for this reason). No extra pass."""

    name = "visit_progress"

    def start_round(self, ctx: RoundContext | None) -> None:
        self.last: dict[int, float] = {}

    def __call__(self, ctx: RoundContext | None, arm: int, loss: float) -> float | None:
        prev, self.last[arm] = self.last.get(arm), loss
        return None if prev is None else abs(prev - loss)


@torch.no_grad()
def _mean_loss(ctx: RoundContext, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of ``ctx.model`` on ``(x, y)`` in its current mode (batch-norm
    running statistics untouched), charged to ``ctx.meter`` as one forward pass."""
    from paperlib.engine.losses import batched_losses

    ctx.meter.add_forward(len(y))
    return float(batched_losses(ctx.model, x, y, ctx.heads, keep_mode=True).mean())


class BatchProgress(ArmReward):
    """The training batch's loss before minus after the update: one extra forward of the batch
    per step, charged (the library's reward before the equal-compute work)."""

    name = "batch_progress"
    needs_batch = True

    def __call__(self, ctx: RoundContext | None, arm: int, loss: float) -> float | None:
        return loss - _mean_loss(ctx, *self.batch)


class HoldoutProgress(ArmReward):
    """Drop of the loss on a reference batch held out of every arm for the round, from the
    previous step to this one. The loss before the round's first update is measured at
    ``start_round``, so the first step gets a real reward, and every measured (and charged)
    loss is used: ``steps + 1`` forwards of the held-out batch per round."""

    name = "holdout"
    needs_holdout = True

    def start_round(self, ctx: RoundContext | None) -> None:
        self.prev = _mean_loss(ctx, *self.holdout)

    def __call__(self, ctx: RoundContext | None, arm: int, loss: float) -> float | None:
        after = _mean_loss(ctx, *self.holdout)
        raw, self.prev = self.prev - after, after
        return raw


def make_reward(name: str) -> ArmReward:
    """A reward by name (one of :data:`REWARDS`).

    >>> make_reward("progress")
    Traceback (most recent call last):
    ...
    ValueError: unknown sample reward 'progress'; choose one of visit_progress, batch_progress, holdout (did you mean 'visit_progress'?)
    """
    classes = {c.name: c for c in (VisitProgress, BatchProgress, HoldoutProgress)}
    if name not in classes:
        from difflib import get_close_matches

        close = get_close_matches(name, REWARDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown sample reward {name!r}; choose one of {', '.join(REWARDS)}{hint}")
    return classes[name]()


class QuantileScaler:
    """Maps raw rewards to ``[0, 1]`` by their rank among recent rewards, as Graves et al.
    (2017) do for learning-progress signals: ``clip((r - q20) / (q80 - q20), 0, 1)`` over the
    last ``window`` raw rewards (0.5 while the history is degenerate). A non-finite reward
    raises ``ValueError`` and leaves the window as it was (a NaN would break its order).

    >>> s = QuantileScaler()
    >>> [round(s(r), 2) for r in (1.0, 2.0, 3.0, 4.0, 5.0)]
    [0.5, 1.0, 1.0, 1.0, 1.0]
    >>> round(s(-10.0), 2), round(s(3.0), 2)
    (0.0, 0.69)
    >>> s(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: raw reward must be finite, got nan (a non-finite training loss?)
    """

    def __init__(self, window: int = 500) -> None:
        from collections import deque

        self.history: deque[float] = deque(maxlen=window)
        self.ordered: list[float] = []  # the same values, sorted (O(window) per reward)

    def _quantile(self, q: float) -> float:
        """Linear-interpolation quantile of the window (numpy's default method)."""
        pos = q * (len(self.ordered) - 1)
        i = int(pos)
        a, b = self.ordered[i], self.ordered[min(i + 1, len(self.ordered) - 1)]
        return a + (b - a) * (pos - i)

    def __call__(self, raw: float) -> float:
        import bisect
        import math

        if not math.isfinite(raw):
            raise ValueError(f"raw reward must be finite, got {raw} (a non-finite training loss?)")
        if len(self.history) == self.history.maxlen:
            del self.ordered[bisect.bisect_left(self.ordered, self.history[0])]
        self.history.append(raw)
        bisect.insort(self.ordered, raw)
        lo, hi = self._quantile(0.2), self._quantile(0.8)
        if hi - lo <= 1e-12:
            return 0.5
        return float(min(1.0, max(0.0, (raw - lo) / (hi - lo))))
