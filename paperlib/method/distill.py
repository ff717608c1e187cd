"""Distillation rivals of the paper's regulariser: Dark Experience Replay (DER, DER++) and
Learning without Forgetting (LwF).

- :class:`DarkReplay` stores each sample's logits *at insertion time* beside it in an online
  reservoir and replays them with an MSE loss (DER); DER++ adds a cross-entropy on a second
  memory batch. It is both the sample source and the plugin that sets the loss, so the replayed
  samples travel in the step's batch and are charged like any training sample.
- :class:`LwF` distils the served model's outputs on the new data (a teacher forward per step,
  charged to the meter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from paperlib.data.streams import Chunk
from paperlib.engine.losses import apply_heads
from paperlib.engine.models import frozen_bn_stats
from paperlib.engine.plugins import Plugin, RoundContext, StepContext
from paperlib.engine.samples import Replay


class DarkReplay(Replay, Plugin):
    """DER / DER++ (Buzzega et al., NeurIPS 2020). A batch is ``[new | memory | memory']``:
    ``(1 - replay_ratio) * B`` new samples, ``replay_ratio * B`` memory samples replayed on their
    stored logits, and (DER++, ``beta > 0``) as many again replayed on their labels. Loss::

        CE(new) + alpha * MSE(logits(memory), stored logits) + beta * CE(memory')

    After each step its new samples are offered to the reservoir with the logits the model gave
    them in that step's forward pass (before the update), as Mammoth does. Memory seeded from
    earlier rounds' data (rounds the source did not train) gets the current model's logits, one
    forward each, charged to the meter. ``logits``: ``(memory_size, C)`` aligned with the
    memory's slots."""

    name = "der"
    inert_in_round0 = True  # its loss applies only while it is the round's source

    def __init__(self, epochs: float = 1.0, memory_size: int = 2000, replay_ratio: float = 0.5,
                 budget_factor: float = 2.0, alpha: float = 1.0, beta: float = 0.0) -> None:
        super().__init__(epochs, memory_size, replay_ratio, budget_factor, online=True)
        self.alpha, self.beta = alpha, beta
        self.active = False
        self.logits: torch.Tensor | None = None

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001 - RoundContext
        steps = super().start_round(ctx, batch_size)
        self.active = True
        if self.logits is None and len(self.memory):  # seeded from earlier rounds' data
            with torch.no_grad(), frozen_bn_stats(ctx.model):
                out = ctx.model(self.memory.x)
            ctx.meter.add_forward(len(self.memory))
            self.logits = out.new_zeros(self.memory_size, out.shape[1])
            self.logits[: len(out)] = out
        return steps

    def memory_index(self, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        self.replayed = super().memory_index(x, y, n)
        return self.replayed

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        x, y, arm = super().next_batch()
        self.n_logit, self.n_label = len(y) - self.n_new, 0
        if self.beta > 0 and self.n_logit:  # DER++: a second, independent memory batch
            j = Replay.memory_index(self, x, y, self.n_logit)
            x, y = torch.cat([x, self.memory.x[j]]), torch.cat([y, self.memory.y[j]])
            self.n_label = self.n_logit
        return x, y, arm

    def task_loss(self, step: StepContext) -> torch.Tensor | None:
        if not self.active:
            return None
        k, m, y, logits, heads = self.n_new, self.n_logit, step.y, step.logits, step.round.heads
        self._new_logits = logits[:k].detach()
        loss = F.cross_entropy(apply_heads(logits[:k], y[:k], heads), y[:k])
        if m:
            loss = loss + self.alpha * F.mse_loss(logits[k:k + m], self.logits[self.replayed])
        if self.n_label:
            loss = loss + self.beta * F.cross_entropy(
                apply_heads(logits[k + m:], y[k + m:], heads), y[k + m:])
        return loss

    def insert(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.logits is None:
            self.logits = torch.zeros(self.memory_size, self._new_logits.shape[1],
                                      device=self._new_logits.device)
        slots, src = self.memory.add(Chunk(x, y, "step"), self.round_index)
        self.logits[slots.to(self.logits.device)] = self._new_logits[src.to(self.logits.device)]

    def end_round(self, ctx) -> None:  # noqa: ANN001
        super().end_round(ctx)
        self.active = False


class LwF(Plugin):
    """Learning without Forgetting (Li & Hoiem, 2017): the served model (the teacher) labels
    each batch of new data, and the loss adds ``alpha * CE(softmax(teacher / T),
    softmax(student / T))`` over the logits of the classes seen before this round (all classes
    in data-incremental streams). One teacher forward per step, charged to the meter. Our
    version skips the original's warm-up of the new head."""

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        self.alpha, self.temperature = alpha, temperature
        self.old: torch.Tensor | None = None  # bool (C,): classes seen before this round

    def before_round(self, ctx: RoundContext) -> None:
        self.teacher, self.meter = ctx.served_model, ctx.meter

    def penalty(self, step: StepContext) -> torch.Tensor | None:
        if self.teacher is None or self.old is None:
            return None
        with torch.no_grad():
            target = self.teacher(step.x)
        self.meter.add_forward(len(step.x))
        old = torch.zeros(step.logits.shape[1], dtype=torch.bool, device=step.logits.device)
        old[: len(self.old)] = self.old.to(old.device)
        soft = F.softmax(target[:, old] / self.temperature, 1)
        log_student = F.log_softmax(step.logits[:, old] / self.temperature, 1)
        return self.alpha * -(soft * log_student).sum(1).mean()

    def after_round(self, ctx: RoundContext) -> None:
        labels = ctx.new_chunk.y.unique().cpu()
        size = max(int(labels.max()) + 1, 0 if self.old is None else len(self.old))
        old = torch.zeros(size, dtype=torch.bool)
        if self.old is not None:
            old[: len(self.old)] = self.old
        old[labels] = True
        self.old = old
        self.teacher = None
