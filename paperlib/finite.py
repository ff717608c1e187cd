"""The step loop's finiteness check without a host synchronisation per step (issue 11 item 1).

:class:`LossWatch` keeps, on the loss's device, the index and value of the first step whose
total loss was NaN or infinite; the Retrainer reads it every ``every`` steps, at the round's
end, and whenever a step fails (a NaN that reached a bandit's probabilities may raise there
first), so a non-finite loss still raises :class:`NonFiniteLossError` naming the round and the
first bad step, at most ``every - 1`` steps later. Nothing random is drawn: the run's random
number sequences are those of a per-step check.

>>> w = LossWatch(every=50)
>>> for step, v in enumerate([1.0, 2.0, float("nan"), 3.0]):
...     w.observe(torch.tensor(v), step)
>>> w.check(round_index=4)
Traceback (most recent call last):
...
paperlib.finite.NonFiniteLossError: non-finite training loss (nan) in round 4, step 2: lower the learning rate or the regularisation strength
"""

from __future__ import annotations

import torch


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite; names the round and step."""


class LossWatch:
    """First non-finite total loss of a round, tracked on the device (two 0-dim tensors)."""

    def __init__(self, every: int = 50) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.first: torch.Tensor | None = None  # int64: the first bad step, -1 while none
        self.value: torch.Tensor | None = None

    def observe(self, total: torch.Tensor, step: int) -> None:
        """Record step ``step``'s total loss (no host synchronisation)."""
        t = total.detach()
        if self.first is None:
            self.first = torch.full((), -1, dtype=torch.long, device=t.device)
            self.value = torch.zeros((), dtype=t.dtype, device=t.device)
        new = (self.first < 0) & ~torch.isfinite(t)
        self.first = torch.where(new, step, self.first)
        self.value = torch.where(new, t, self.value)

    def due(self, step: int) -> bool:
        """Whether the check is due after step ``step`` (every ``every`` steps)."""
        return (step + 1) % self.every == 0

    def check(self, round_index: int) -> None:
        """Raise :class:`NonFiniteLossError` if any observed loss was not finite (one sync)."""
        if self.first is None:
            return
        first, value = torch.stack([self.first.float(), self.value.float()]).tolist()  # exact < 2**24
        if first >= 0:
            raise NonFiniteLossError(
                f"non-finite training loss ({value}) in round {round_index}, step {int(first)}: "
                f"lower the learning rate or the regularisation strength")
