"""The step loop's finiteness check without a host synchronisation per step (issue 11 item 1).

:class:`LossWatch` keeps the steps' total losses on their device (no kernel, no sync per
step) and the Retrainer reads the first NaN or infinite one every ``every`` steps, at the round's
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
paperlib.engine.finite.NonFiniteLossError: non-finite training loss (nan) in round 4, step 2: lower the learning rate or the regularisation strength
"""

from __future__ import annotations

import torch


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite; names the round and step."""


class LossWatch:
    """The round's total losses since the last read, kept as detached 0-dim device tensors (no
    kernel and no sync per step); :meth:`check` stacks them and reads the first non-finite one
    with one host synchronisation."""

    def __init__(self, every: int = 50) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.pending: list[torch.Tensor] = []
        self.first_step = 0  # step index of pending[0]

    def observe(self, total: torch.Tensor, step: int) -> None:
        """Record step ``step``'s total loss (no host synchronisation)."""
        if not self.pending:
            self.first_step = step
        self.pending.append(total.detach())

    def due(self, step: int) -> bool:
        """Whether the check is due after step ``step`` (every ``every`` steps)."""
        return (step + 1) % self.every == 0

    def check(self, round_index: int) -> None:
        """Raise :class:`NonFiniteLossError` if any loss observed since the last check was not
        finite (one sync); the first bad step is named."""
        if not self.pending:
            return
        losses = torch.stack(self.pending).float()
        self.pending, base = [], self.first_step
        bad = ~torch.isfinite(losses)
        i = bad.int().argmax().view(1)  # the first bad one (0 when none: bad[0] is False)
        flag, value, at = torch.cat([bad.float().gather(0, i), losses.gather(0, i),
                                     i.float()]).tolist()  # exact for < 2**24 steps
        if flag:
            raise NonFiniteLossError(
                f"non-finite training loss ({value}) in round {round_index}, step "
                f"{base + int(at)}: lower the learning rate or the regularisation strength")
