"""The sample bandit's rivals: other answers to "which data should a retraining step use?".

Each is a :class:`~paperlib.engine.samples.Replay` source in online mode (the reservoir is offered every
step's new samples right after that step, as in the papers and in Mammoth) with one rule changed:

- :class:`MIR` changes *which memory samples are replayed* (:meth:`Replay.memory_index`);
- :class:`GSS` changes *which new samples enter the memory* (:meth:`Replay.insert`);
- :class:`ERACE` changes *the loss* (it is also a plugin: its ``task_loss`` hook).

Honest cost: every extra pass is charged to ``ctx.meter`` (:func:`add_train_pass` for a
forward + backward, ``meter.add_forward`` for a forward), so under the equal-compute budget a
rival that spends compute on choosing data gets fewer training steps.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from paperlib.engine.accounting import ComputeMeter
from paperlib.engine.losses import apply_heads
from paperlib.engine.models import frozen_bn_stats
from paperlib.engine.plugins import Plugin, StepContext
from paperlib.engine.samples import Replay


def add_train_pass(meter: ComputeMeter, n: int, trainable: Iterable[str] | None = None) -> None:
    """Charge an extra forward + backward on ``n`` samples with weight gradients of the
    ``trainable`` groups (default: all), at exactly what the same samples cost inside a training
    step (:meth:`ComputeMeter.step_flops`: the first layer's input gradient is never computed)."""
    meter.flops += meter.step_flops(n, meter.group_names if trainable is None else trainable)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, heads: torch.Tensor | None,
          params: dict[str, torch.Tensor] | None = None, reduction: str = "mean") -> torch.Tensor:
    logits = model(x) if params is None else functional_call(model, params, (x,))
    return F.cross_entropy(apply_heads(logits, y, heads), y, reduction=reduction)


def interference(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cx: torch.Tensor,
                 cy: torch.Tensor, lr: float, heads: torch.Tensor | None = None) -> torch.Tensor:
    """MIR's score ``(C,)``: each candidate's loss after a virtual SGD step of size ``lr`` on the
    incoming batch ``x, y``, minus its loss before. Passes: forward + backward on ``x``, two
    forwards on the candidates ``cx`` (the model keeps its mode; batch-norm statistics frozen)."""
    params = {k: p for k, p in model.named_parameters() if p.requires_grad}
    with frozen_bn_stats(model):
        grads = torch.autograd.grad(_loss(model, x, y, heads), list(params.values()))
        with torch.no_grad():
            virtual = {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
            before = _loss(model, cx, cy, heads, reduction="none")
            after = _loss(model, cx, cy, heads, virtual, reduction="none")
    return after - before


def per_sample_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     heads: torch.Tensor | None = None, chunk: int = 64) -> list[torch.Tensor]:
    """Loss gradients of each sample alone (eval mode, as GSS does), one ``(N, p_k)`` block per
    parameter tensor (never concatenated: :func:`max_cosine` works blockwise)."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return _loss(model, xi[None], yi[None], heads, {**p, **buffers})

    was_training = model.training
    model.eval()
    try:
        parts = [vmap(grad(one), in_dims=(None, 0, 0))(params, x[i:i + chunk], y[i:i + chunk])
                 for i in range(0, len(y), chunk)]
    finally:
        model.train(was_training)
    blocks = [[g.reshape(len(g), -1) for g in part.values()] for part in parts]
    return [torch.cat(b) if len(b) > 1 else b[0] for b in zip(*blocks, strict=True)]


def max_cosine(a: list[torch.Tensor], b: list[torch.Tensor], meter: ComputeMeter) -> torch.Tensor:
    """``max_j cos(a_i, b_j)`` ``(N,)`` for gradients given as blocks (:func:`per_sample_grads`).
    The dot products of these ``P``-long vectors cost ``2 P`` FLOPs a pair, charged to ``meter``
    (with many parameters they are not negligible next to a training step)."""
    n, m = a[0].shape[0], b[0].shape[0]
    meter.flops += 2.0 * n * m * sum(block.shape[1] for block in a)
    dots = sum(ak @ bk.T for ak, bk in zip(a, b, strict=True))
    na = torch.sqrt(sum((ak * ak).sum(1) for ak in a))
    nb = torch.sqrt(sum((bk * bk).sum(1) for bk in b))
    return (dots / (na[:, None] * nb[None, :]).clamp_min(1e-12)).max(1).values.cpu()


class MIR(Replay):
    """Maximally Interfered Retrieval (Aljundi et al., NeurIPS 2019). Each step draws
    ``candidates`` memory samples (those of earlier rounds when there are any, as the original
    excludes the current task), makes a virtual SGD step of size ``virtual_lr`` on the batch's new
    samples, and replays the ``n`` candidates whose loss that step would raise most (``n`` =
    the batch's memory part, ``replay_ratio * batch_size``). ``candidates=None``:
    :attr:`CANDIDATES_PER_REPLAYED` per replayed sample, the original's ratio (50 candidates
    for a memory batch of 10), at any batch size; an explicit count must exceed ``n``, or
    there would be nothing to choose (ValueError).

    Cost per step: forward + backward on the new samples, 2 forwards on the candidates (the
    original reuses the incoming gradient for the real update; our engine cannot, so the
    backward is charged here). ``chosen`` holds the last step's replayed memory slots."""

    name = "mir"
    #: candidates per replayed sample by default (Aljundi et al. 2019: --subsample 50, mem batch 10)
    CANDIDATES_PER_REPLAYED = 5

    def __init__(self, epochs: float = 1.0, memory_size: int = 2000, replay_ratio: float = 0.5,
                 budget_factor: float = 2.0, candidates: int | None = None,
                 virtual_lr: float = 0.1) -> None:
        super().__init__(epochs, memory_size, replay_ratio, budget_factor, online=True)
        self.candidates, self.virtual_lr = candidates, virtual_lr

    def candidate_count(self, n_replayed: int) -> int:
        """Candidates drawn per step when ``n_replayed`` memory samples are replayed.

        >>> MIR().candidate_count(32), MIR(candidates=50).candidate_count(32)
        (160, 50)
        """
        if self.candidates is None:
            return self.CANDIDATES_PER_REPLAYED * n_replayed
        if self.candidates <= n_replayed:
            raise ValueError(f"MIR: candidates ({self.candidates}) must exceed the memory samples "
                             f"replayed per step ({n_replayed} = replay_ratio x batch_size), or "
                             f"it has nothing to choose from; leave it unset for "
                             f"{self.CANDIDATES_PER_REPLAYED} per replayed sample")
        return self.candidates

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001 - RoundContext
        self.ctx = ctx
        steps = super().start_round(ctx, batch_size)
        self.n_candidates = self.candidate_count(self.n_mem)
        return steps

    def memory_index(self, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        mem, ctx = self.memory, self.ctx
        pool = (mem.arrival < self.round_index).nonzero().flatten()
        if pool.numel() == 0:
            pool = torch.arange(len(mem), device=mem.device)
        pick = torch.randperm(pool.numel(), generator=self.generator)[: self.n_candidates]
        cand = pool[pick.to(pool.device)]
        self.last_candidates = cand
        if cand.numel() <= n:  # a pool this small leaves no choice: replay it all, no virtual step
            self.chosen = cand
            return cand
        scores = interference(ctx.model, x, y, mem.x[cand], mem.y[cand], self.virtual_lr,
                              ctx.heads)
        add_train_pass(ctx.meter, len(y))
        ctx.meter.add_forward(2 * cand.numel())
        self.chosen = cand[torch.topk(scores, n).indices]
        return self.chosen

    def end_round(self, ctx) -> None:  # noqa: ANN001
        super().end_round(ctx)
        del self.ctx


class GSS(Replay):
    """Greedy gradient-based sample selection (Aljundi et al., NeurIPS 2019; as in Mammoth).
    Replay is uniform; the memory is populated for gradient diversity: after each step, the
    new samples' mean gradient is compared (cosine) with the gradients of ``candidates`` random
    memory samples, ``c = max cos + 1``. While the memory fills, samples enter with score ``c``.
    Once it is full, and only when ``c < 1``, each new sample gets its own score ``s`` and
    replaces a slot ``i`` drawn with probability ``∝ score_i`` with probability
    ``score_i / (score_i + s)``. Memory seeded from earlier rounds' data gets the neutral
    score 1 (cosine 0). Cost per step: one gradient (forward + backward) per candidate and per
    new sample (their mean is the batch gradient), and the cosine similarities."""

    name = "gss"

    def __init__(self, epochs: float = 1.0, memory_size: int = 2000, replay_ratio: float = 0.5,
                 budget_factor: float = 2.0, candidates: int = 10) -> None:
        super().__init__(epochs, memory_size, replay_ratio, budget_factor, online=True)
        self.candidates = candidates
        self.scores = torch.zeros(memory_size)

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001 - RoundContext
        self.ctx = ctx
        first = self.memory is None
        steps = super().start_round(ctx, batch_size)
        if first:
            self.scores[: len(self.memory)] = 1.0
        return steps

    def insert(self, x: torch.Tensor, y: torch.Tensor) -> None:
        mem, model, meter, heads = self.memory, self.ctx.model, self.ctx.meter, self.ctx.heads
        c, single = 0.1, None  # 0.1: Mammoth's score while the memory is empty
        if len(mem):
            cand = torch.randperm(len(mem), generator=self.generator)[: self.candidates]
            cand = cand.to(mem.device)
            both = per_sample_grads(model, torch.cat([x, mem.x[cand]]),  # one vmap call
                                    torch.cat([y, mem.y[cand]]), heads)
            gx, G = [b[: len(y)] for b in both], [b[len(y):] for b in both]
            add_train_pass(meter, len(cand) + len(y))
            mean = [g.mean(0, keepdim=True) for g in gx]  # the batch gradient
            c = float(max_cosine(mean, G, meter)[0]) + 1
        for i in range(len(y)):
            if len(mem) < self.memory_size:
                slots, _ = mem.add(_one(x, y, i), self.round_index)
                self.scores[slots] = c
                continue
            mem.n_seen += 1
            if c >= 1:
                continue
            if single is None:
                single = max_cosine(gx, G, meter) + 1
            k = int(torch.multinomial(self.scores, 1, generator=self.generator))
            if float(torch.rand(1, generator=self.generator)) < self.scores[k] / (
                    self.scores[k] + single[i]):
                mem.x[k], mem.y[k], mem.arrival[k] = x[i], y[i], self.round_index
                self.scores[k] = single[i]

    def end_round(self, ctx) -> None:  # noqa: ANN001
        super().end_round(ctx)
        del self.ctx


def _one(x: torch.Tensor, y: torch.Tensor, i: int):  # noqa: ANN202 - a one-sample Chunk
    from paperlib.data.streams import Chunk

    return Chunk(x[i:i + 1], y[i:i + 1], "step")


class ERACE(Replay, Plugin):
    """ER with asymmetric cross-entropy (Caccia et al., ICLR 2022): replay as ER, but from the
    second round on the new samples' loss only sees the logits of the classes present in the
    batch and of classes never seen yet, so learning new classes does not push down old ones;
    the replayed samples' loss sees every logit. Loss = CE(new, masked) + CE(memory). The
    memory is replayed from the first step it holds data (Mammoth's ``task_free`` variant).
    No extra passes. This object is both the sample source and the plugin that sets the loss."""

    name = "er_ace"
    inert_in_round0 = True  # its loss applies only while it is the round's source

    def __init__(self, epochs: float = 1.0, memory_size: int = 2000, replay_ratio: float = 0.5,
                 budget_factor: float = 2.0) -> None:
        super().__init__(epochs, memory_size, replay_ratio, budget_factor, online=True)
        self.active = False
        self.seen_classes: torch.Tensor | None = None

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001 - RoundContext
        steps = super().start_round(ctx, batch_size)
        self.active = True
        for labels in (ctx.seen.y, self.memory.y):  # classes seen before (round 0 may not
            if labels is not None and len(labels):  # have run through this source)
                self._see(labels)
        return steps

    def _see(self, labels: torch.Tensor) -> None:
        labels = labels.unique().cpu()
        top = int(labels.max()) + 1
        if self.seen_classes is None or len(self.seen_classes) < top:
            grown = torch.zeros(top, dtype=torch.bool)
            if self.seen_classes is not None:
                grown[: len(self.seen_classes)] = self.seen_classes
            self.seen_classes = grown
        self.seen_classes[labels] = True

    def task_loss(self, step: StepContext) -> torch.Tensor | None:
        if not self.active:
            return None
        k, y, logits, heads = self.n_new, step.y, step.logits, step.round.heads
        self._see(y[:k])
        new = logits[:k]
        if step.round.round_index > 0:
            keep = torch.ones(new.shape[1], dtype=torch.bool, device=new.device)
            keep[: len(self.seen_classes)] = ~self.seen_classes.to(new.device)
            keep[y[:k].unique()] = True
            new = new.masked_fill(~keep, -1e9)
        loss = F.cross_entropy(apply_heads(new, y[:k], heads), y[:k])
        if len(y) > k:
            loss = loss + F.cross_entropy(apply_heads(logits[k:], y[k:], heads), y[k:])
        return loss

    def end_round(self, ctx) -> None:  # noqa: ANN001
        super().end_round(ctx)
        self.active = False
