"""Sample sources: which data each retraining step learns from.

Holds the store of seen data (:class:`SeenData`) and the sources that draw mini-batches from the
new chunk and that store. (Sources are completed in a later section of this file.)
"""

from __future__ import annotations

import torch

from paperlib.data.streams import Chunk
from paperlib.engine.rewards import QuantileScaler


class SeenData:
    """The data seen before the current round, with each sample's arrival round.

    ``capacity=None`` keeps everything (the paper's "retrain on all data" premise). A capacity
    bounds the store with reservoir sampling (Vitter's algorithm R), so every sample seen so far
    is kept with equal probability ``capacity / n_seen``.

    Attributes:
        x: ``(N, *input_shape)`` stored inputs on the store's device.
        y: ``(N,)`` labels.
        arrival: ``(N,)`` int64, the round in which each stored sample arrived.
        n_seen: number of samples ever offered to the store.

    >>> import torch
    >>> store = SeenData(capacity=None)
    >>> _ = store.add(Chunk(torch.zeros(5, 2), torch.arange(5), "a"), round_index=0)
    >>> slots, src = store.add(Chunk(torch.ones(3, 2), torch.arange(3), "b"), round_index=1)
    >>> len(store), store.arrival.tolist(), slots.tolist(), src.tolist()
    (8, [0, 0, 0, 0, 0, 1, 1, 1], [5, 6, 7], [0, 1, 2])
    """

    def __init__(self, capacity: int | None = None, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> None:
        if capacity is not None and capacity <= 0:
            raise ValueError("capacity must be positive or None")
        self.capacity = capacity
        self.device = torch.device(device)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        # Row buffers, grown geometrically (doubled, or at most to ``capacity``): adding a chunk
        # copies the chunk, not the whole store (a store of everything seen used to be
        # re-concatenated every round). ``x``, ``y`` and ``arrival`` are views of their first
        # ``len(self)`` rows.
        self._buffers: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._n = 0
        self.n_seen = 0

    def __len__(self) -> int:
        return self._n

    def _view(self, i: int) -> torch.Tensor | None:
        return None if self._buffers is None else self._buffers[i][:self._n]

    @property
    def x(self) -> torch.Tensor | None:
        return self._view(0)

    @property
    def y(self) -> torch.Tensor | None:
        return self._view(1)

    @property
    def arrival(self) -> torch.Tensor | None:
        return self._view(2)

    def _append(self, x: torch.Tensor, y: torch.Tensor, arrival: torch.Tensor) -> None:
        """Rows appended after the first ``len(self)``, growing the buffers when full."""
        n, k = self._n, len(y)
        if self._buffers is None:
            self._buffers = (x.new_empty((0, *x.shape[1:])), y.new_empty(0), arrival.new_empty(0))
        room = len(self._buffers[1])
        if n + k > room:
            size = max(n + k, 2 * room)
            if self.capacity is not None:
                size = max(n + k, min(size, self.capacity))
            grown = tuple(b.new_empty((size, *b.shape[1:])) for b in self._buffers)
            for old, new in zip(self._buffers, grown, strict=True):
                new[:n] = old[:n]
            self._buffers = grown  # type: ignore[assignment]
        for buf, rows in zip(self._buffers, (x, y, arrival), strict=True):
            buf[n:n + k] = rows
        self._n = n + k

    def add(self, chunk: Chunk, round_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Offer every sample of ``chunk`` to the store; returns ``(slots, src)``, int64 ``(K,)``:
        store slot ``slots[k]`` now holds chunk sample ``src[k]`` (e.g. to store its logits)."""
        x = chunk.x.to(self.device)
        y = chunk.y.to(self.device)
        arrival = torch.full((len(chunk),), round_index, dtype=torch.long, device=self.device)
        start = len(self)
        if self.capacity is None:
            self._append(x, y, arrival)
            self.n_seen += len(chunk)
            return torch.arange(start, len(self)), torch.arange(len(chunk))
        # Reservoir sampling: fill, then sample i replaces slot j ~ U[0, n_seen) if j < capacity.
        free = max(0, self.capacity - len(self))
        take = min(free, len(chunk))
        filled = torch.arange(start, start + take), torch.arange(take)
        if take or self._buffers is None:
            self._append(x[:take], y[:take], arrival[:take])
        # Remaining samples: sample i (1-based count n_i among all seen) draws j ~ U[0, n_i)
        # and replaces slot j when j < capacity; for a slot hit twice the later sample wins.
        rest = len(chunk) - take
        if rest:
            counts = torch.arange(self.n_seen + take + 1, self.n_seen + len(chunk) + 1)
            j = (torch.rand(rest, generator=self.generator, dtype=torch.float64) * counts).long()
            hit = (j < self.capacity).nonzero().flatten()
            if len(hit):  # (small online batches mostly hit nothing)
                slots, src = j[hit].flip(0), (hit + take).flip(0)
                first = torch.ones_like(slots, dtype=torch.bool)
                order = torch.argsort(slots, stable=True)
                s_sorted = slots[order]
                first[order[1:]] = s_sorted[1:] != s_sorted[:-1]
                slots, src = slots[first].to(self.device), src[first].to(self.device)
                self.x[slots], self.y[slots], self.arrival[slots] = x[src], y[src], arrival[src]
                filled = torch.cat([filled[0], slots.cpu()]), torch.cat([filled[1], src.cpu()])
        self.n_seen += len(chunk)
        return filled


# --------------------------------------------------------------------------------------------
# Sample sources
# --------------------------------------------------------------------------------------------


def _epoch_steps(n: int, batch_size: int, epochs: float) -> int:
    """Steps for ``epochs`` passes over ``n`` samples in batches of ``batch_size`` (>= 1)."""
    return max(1, round(epochs * -(-n // batch_size)))


class _Cycler:
    """Draws batches from ``index`` (1-D tensor) in reshuffled epochs, without replacement
    inside an epoch; tiny sets are repeated rather than truncated."""

    def __init__(self, index: torch.Tensor, generator: torch.Generator) -> None:
        self.index = index
        self.generator = generator
        self._order = index[:0]

    def take(self, n: int) -> torch.Tensor:
        parts, need = [], n
        while need > 0:
            if self._order.numel() == 0:
                perm = torch.randperm(self.index.numel(), generator=self.generator)
                self._order = self.index[perm.to(self.index.device)]
            parts.append(self._order[:need])
            self._order = self._order[need:]
            need -= parts[-1].numel()
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class SampleSource:
    """Contract: ``start_round`` returns the round's default number of steps; then
    ``next_batch`` is called once per step (a source serves batches indefinitely); when
    ``wants_reward``, ``update(arm, loss)`` receives the step's training-batch loss after the
    update (a source that needs a measuring pass makes it itself and reports it to
    ``ctx.meter``); ``end_round`` closes the round. ``log`` holds per-round rows for plotting.

    Batch provenance: after ``start_round``, ``pool = (x, y)`` holds every sample the round's
    batches can come from (``(P, *input_shape)``, ``(P,)``), and after each ``next_batch``,
    ``last_index`` (``(B,)`` int64) gives the batch's rows in ``pool``, so a plugin can cache a
    per-sample quantity once per round (e.g. the served model's activations) and look it up."""

    name = "source"
    wants_reward = False
    pool: tuple[torch.Tensor, torch.Tensor] | None = None
    last_index: torch.Tensor | None = None

    def __init__(self) -> None:
        self.log: list[dict[str, object]] = []

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001 - RoundContext
        raise NotImplementedError

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Return ``(x, y, arm)`` with ``x`` ``(B, *input_shape)`` on the device."""
        raise NotImplementedError

    def update(self, arm: int, loss: float) -> None:
        """The last batch's training loss (mean, before the update; only when ``wants_reward``)."""

    def reward_loss(self, step) -> torch.Tensor:  # noqa: ANN001 - StepContext
        """The loss the retrainer hands to :meth:`update`: the step's training loss (a source
        whose batch mixes parts can score one part, from the step's logits: no extra pass)."""
        return step.loss

    def end_round(self, ctx) -> None:  # noqa: ANN001
        """Called after the round's last step."""

    def _take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``idx`` of ``pool``, remembered as ``last_index``."""
        self.last_index = idx
        return self.pool[0][idx], self.pool[1][idx]


class NewOnly(SampleSource):
    """Fine-tuning: ``epochs`` passes over the arriving chunk only."""

    name = "new_only"

    def __init__(self, epochs: float = 1.0) -> None:
        super().__init__()
        self.epochs = epochs

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        self.pool = ctx.new_chunk.x.to(ctx.device), ctx.new_chunk.y.to(ctx.device)
        self.batch_size = batch_size
        n = len(self.pool[1])
        self.cycler = _Cycler(torch.arange(n, device=ctx.device), ctx.generator)
        return _epoch_steps(n, batch_size, self.epochs)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        return (*self._take(self.cycler.take(self.batch_size)), -1)


class AllSeen(NewOnly):
    """Full retraining: ``epochs`` passes over everything seen so far plus the new chunk."""

    name = "all_seen"

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        steps_new = super().start_round(ctx, batch_size)
        if len(ctx.seen) == 0:
            return steps_new
        self.pool = torch.cat([ctx.seen.x, self.pool[0]]), torch.cat([ctx.seen.y, self.pool[1]])
        n = len(self.pool[1])
        self.cycler = _Cycler(torch.arange(n, device=ctx.device), ctx.generator)
        return _epoch_steps(n, batch_size, self.epochs)


def _reservoir(capacity: int, ctx) -> SeenData:  # noqa: ANN001
    """A reservoir of ``capacity`` samples over everything ``ctx.seen`` holds, one arrival
    round at a time (so each stored sample keeps its arrival round)."""
    memory = SeenData(capacity, ctx.device,
                      torch.Generator().manual_seed(int(ctx.generator.initial_seed())))
    seen = ctx.seen
    if len(seen):
        for r in seen.arrival.unique().tolist():
            keep = (seen.arrival == r).nonzero().flatten()
            memory.add(Chunk(seen.x[keep], seen.y[keep], f"round {r}"), round_index=int(r))
    return memory


class Replay(SampleSource):
    """Experience replay with a reservoir memory (Chaudhry et al. 2019, "tiny episodic
    memories"): each batch holds ``(1 - replay_ratio) * B`` new samples and ``replay_ratio * B``
    samples drawn uniformly from a reservoir of ``memory_size`` past samples. After the round the
    chunk is offered to the reservoir. Steps: ``budget_factor * epochs * ceil(n_new / B)``, the
    same budget as the sample bandit, so the two compare at equal cost. ``pool`` is the new chunk
    followed by the memory (``memory_size=None``: the memory is everything seen).

    ``online=True`` (ER as Mammoth runs it): each step's new samples are offered to the reservoir
    right after that step, and the memory part of a batch is ``min(replay_ratio * B, memory)``;
    the memory then changes within the round, so there is no ``pool`` (``last_index`` is None).
    Subclasses (:mod:`paperlib.method.rivals`) override :meth:`memory_index` (which stored samples to
    replay) and :meth:`insert` (how new samples enter the memory)."""

    name = "replay"

    def __init__(self, epochs: float = 1.0, memory_size: int | None = 2000,
                 replay_ratio: float = 0.5, budget_factor: float = 2.0,
                 online: bool = False) -> None:
        super().__init__()
        if not 0.0 <= replay_ratio < 1.0:
            raise ValueError("replay_ratio must be in [0, 1)")
        if online and memory_size is None:
            raise ValueError("online replay needs a bounded memory (memory_size)")
        self.epochs, self.memory_size = epochs, memory_size
        self.replay_ratio, self.budget_factor, self.online = replay_ratio, budget_factor, online
        self.memory: SeenData | None = None
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        if self.memory is None:  # first retraining round: reservoir over everything seen so far
            self.memory = _reservoir(self.memory_size, ctx) if self.memory_size else ctx.seen
        self.generator, self.round_index = ctx.generator, ctx.round_index
        self.x, self.y = ctx.new_chunk.x.to(ctx.device), ctx.new_chunk.y.to(ctx.device)
        if self.online:
            self.pool = None
        elif len(self.memory):
            self.pool = torch.cat([self.x, self.memory.x]), torch.cat([self.y, self.memory.y])
        else:
            self.pool = self.x, self.y
        n_mem = round(batch_size * self.replay_ratio) if len(self.memory) or self.online else 0
        self.n_mem, self.n_new = n_mem, batch_size - n_mem
        self.cycler = _Cycler(torch.arange(len(self.y), device=ctx.device), ctx.generator)
        return _epoch_steps(len(self.y), batch_size, self.epochs * self.budget_factor)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        self._flush()
        idx = self.cycler.take(self.n_new)
        x, y = self.x[idx], self.y[idx]
        if self.online:
            self._pending = (x, y)
        n_mem = min(self.n_mem, len(self.memory)) if self.online else self.n_mem
        j = self.memory_index(x, y, n_mem) if n_mem else idx[:0]
        if not self.online:
            self.last_index = torch.cat([idx, j.to(idx.device) + len(self.y)])
        if n_mem:
            x, y = torch.cat([x, self.memory.x[j]]), torch.cat([y, self.memory.y[j]])
        return x, y, -1

    def memory_index(self, x: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
        """Memory slots ``(n,)`` replayed beside the new samples ``x, y``: uniform, with
        replacement."""
        j = torch.randint(len(self.memory), (n,), generator=self.generator)
        return j.to(self.memory.device)

    def insert(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Offer new samples to the memory (online mode; reservoir sampling)."""
        self.memory.add(Chunk(x, y, "step"), self.round_index)

    def _flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.insert(*pending)

    def end_round(self, ctx) -> None:  # noqa: ANN001
        if self.online:
            self._flush()
        elif self.memory is not ctx.seen:
            self.memory.add(ctx.new_chunk, ctx.round_index)


class SampleBandit(SampleSource):
    """The paper's sample bandit (our reconstruction, NOTES.md): arms are groups of candidate
    data; each step a bandit policy picks an arm, a mini-batch is drawn from it, one update is
    made, and the arm is rewarded by the learning progress it produced.

    Candidate data: the arriving chunk (arm ``"new"``) and a reservoir memory of
    ``memory_size`` past samples (as :class:`Replay` keeps; ``None`` = everything seen so far,
    so a round's scoring cost would grow with history). The memory is grouped into arms by
    ``grouping``: ``"chunk"`` (one arm per arrival round), ``"class"`` (one per label), or
    ``"loss"`` (``n_loss_groups`` quantile bins of the served model's loss on up to
    ``pool_size`` stored samples; that scoring pass is counted as forward FLOPs).

    Reward (:mod:`paperlib.engine.rewards`, scaled to [0, 1] by :class:`~paperlib.engine.rewards.QuantileScaler`):
    ``"visit_progress"`` (default) = change of the arm's training-batch loss between visits, from
    the loss the step computes anyway (no extra pass); ``"batch_progress"`` = the batch's loss
    before minus after the update (one extra, charged forward of the batch per step);
    ``"holdout"`` = drop of the loss on ``holdout_size`` samples drawn from the memory and the new
    chunk and held out of every arm for the round (one charged forward of that batch per step,
    plus one before the first step).

    Batches: with ``new_share > 0`` (default 0.5, replay's split) every batch holds
    ``round(new_share * B)`` samples of the arriving chunk and the rest from the memory arm the
    policy picks, so the new data is always learned and the bandit chooses only *which past
    data* is replayed; the arm's reward then scores the memory part's loss (from the step's
    logits, no extra pass). ``new_share=0``: the whole batch comes from the picked arm, and the
    new chunk is one more arm (the reconstruction before issue 8's equal-compute work).

    Budget: ``budget_factor * epochs * ceil(n_new / B)`` steps, independent of how much past
    data exists.
    """

    name = "sample_bandit"
    wants_reward = True

    def __init__(self, epochs: float = 1.0, budget_factor: float = 2.0, policy: str = "exp3s",
                 grouping: str = "chunk", reward: str = "visit_progress", n_loss_groups: int = 4,
                 pool_size: int = 20000, holdout_size: int = 256, seed: int = 0,
                 policy_kwargs: dict | None = None, memory_size: int | None = 2000,
                 new_share: float = 0.5) -> None:
        super().__init__()
        from paperlib.engine.rewards import make_reward

        if not 0.0 <= new_share < 1.0:
            raise ValueError("new_share must be in [0, 1)")
        self.new_share = new_share

        if grouping not in ("chunk", "class", "loss"):
            raise ValueError("grouping must be 'chunk', 'class' or 'loss'")
        self.reward, self.reward_fn = reward, make_reward(reward)
        self.epochs, self.budget_factor, self.policy_name = epochs, budget_factor, policy
        self.grouping, self.n_loss_groups = grouping, n_loss_groups
        self.pool_size, self.holdout_size, self.seed = pool_size, holdout_size, seed
        self.policy_kwargs = policy_kwargs or {}
        self.memory_size = memory_size
        self.memory: SeenData | None = None
        self.trace: list[dict[str, object]] = []

    # -- arms -------------------------------------------------------------------------------
    def _past_arms(self, ctx) -> list[tuple[str, torch.Tensor]]:  # noqa: ANN001
        """``(name, rows of the memory)`` per past-data arm."""
        mem = self.memory
        if len(mem) == 0:
            return []
        if self.grouping == "chunk":
            keys = mem.arrival
            return [(f"round {int(k)}", (keys == k).nonzero().flatten()) for k in keys.unique()]
        if self.grouping == "class":
            return [(f"class {int(c)}", (mem.y == c).nonzero().flatten()) for c in mem.y.unique()]
        pool = torch.randperm(len(mem), generator=ctx.generator)[: self.pool_size].to(mem.device)
        from paperlib.engine.losses import batched_losses

        losses = batched_losses(ctx.served_model, mem.x[pool], mem.y[pool], ctx.heads)
        ctx.meter.add_forward(len(pool))
        order = pool[losses.argsort()]
        bins = order.tensor_split(self.n_loss_groups)
        return [(f"loss q{i + 1}/{self.n_loss_groups}", b) for i, b in enumerate(bins) if b.numel()]

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        from paperlib.engine.bandits import make_policy

        if self.memory is None:  # first retraining round: reservoir over everything seen so far
            self.memory = _reservoir(self.memory_size, ctx) if self.memory_size else ctx.seen
        self.ctx, self.batch_size, self.round_index = ctx, batch_size, ctx.round_index
        new_x, new_y = ctx.new_chunk.x.to(ctx.device), ctx.new_chunk.y.to(ctx.device)
        mem, n_new = self.memory, len(new_y)
        self.pool = (torch.cat([new_x, mem.x]), torch.cat([new_y, mem.y])) if len(mem) else (new_x, new_y)
        keep = torch.ones(len(self.pool[1]), dtype=torch.bool, device=ctx.device)
        if self.reward_fn.needs_holdout:  # a reference batch held out of every arm this round
            pick = torch.randperm(len(keep), generator=ctx.generator)[: self.holdout_size]
            pick = pick.to(ctx.device)
            keep[pick] = False
            self.holdout = self.reward_fn.holdout = self.pool[0][pick], self.pool[1][pick]
        new_rows = torch.arange(n_new, device=ctx.device)
        past = [(name, idx.to(ctx.device) + n_new) for name, idx in self._past_arms(ctx)]
        past = [(name, idx[keep[idx]]) for name, idx in past]
        past = [a for a in past if a[1].numel()]
        new_rows = new_rows[keep[new_rows]]
        can_mix = bool(past) and bool(new_rows.numel())
        self.n_new = self.new_rows_per_batch(batch_size) if can_mix else 0
        mixed = self.n_new > 0  # False also when new_share = 0 or B = 1
        self.new_cycler = _Cycler(new_rows, ctx.generator) if mixed else None
        arms = past if mixed else [a for a in [("new", new_rows), *past]
                                   if a[1].numel()]
        self.arm_names = [a[0] for a in arms]
        self.cyclers = [_Cycler(a[1], ctx.generator) for a in arms]
        self.policy = make_policy(self.policy_name, len(arms), seed=self.seed * 1000 + ctx.round_index,
                                  **self.policy_kwargs)
        self.scaler = QuantileScaler()
        self.pulls = [0] * len(arms)
        self.reward_sum = [0.0] * len(arms)
        self.n_rewards = [0] * len(arms)
        if self.wants_reward:
            self.reward_fn.start_round(ctx)
        steps = _epoch_steps(n_new, batch_size, self.epochs * self.budget_factor)
        self.snapshot_every = max(1, steps // 25)
        self.step = 0
        return steps

    def new_rows_per_batch(self, batch_size: int) -> int:
        """Rows of a mixed batch from the new chunk, ``round(new_share * B)`` clipped to
        ``[1, B - 1]`` (at least one row each: an empty arm part would leave the arm's reward
        undefined); 0 when batches are not mixed (``new_share = 0`` or ``B = 1``), as when the
        round has no memory or no new rows.

        >>> [SampleBandit(1, new_share=s).new_rows_per_batch(b) for s, b in
        ...  ((0.5, 64), (0.5, 1), (0.0, 64), (0.99, 8))]
        [32, 0, 0, 7]
        """
        if self.new_share <= 0 or batch_size <= 1:
            return 0
        return min(batch_size - 1, max(1, round(batch_size * self.new_share)))

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.step % self.snapshot_every == 0:
            for name, p in zip(self.arm_names, self.policy.probabilities(), strict=True):
                self.trace.append({"round": self.round_index, "step": self.step,
                                   "arm": name, "probability": float(p)})
        self.step += 1
        arm = self.policy.pull() if len(self.arm_names) > 1 else 0
        self.pulls[arm] += 1
        idx = self.cyclers[arm].take(self.batch_size - self.n_new)
        if self.n_new:
            idx = torch.cat([self.new_cycler.take(self.n_new), idx])
        x, y = self._take(idx)
        if self.reward_fn.needs_batch:  # the arm's own part of the batch
            self.reward_fn.batch = x[self.n_new:], y[self.n_new:]
        return x, y, arm

    def reward_loss(self, step) -> torch.Tensor:  # noqa: ANN001 - StepContext
        """Mixed batches: the mean cross-entropy of the arm's part (rows ``n_new:``)."""
        if not self.n_new:
            return step.loss
        import torch.nn.functional as F

        from paperlib.engine.losses import apply_heads

        logits, y = step.logits.detach()[self.n_new:], step.y[self.n_new:]
        return F.cross_entropy(apply_heads(logits, y, step.round.heads), y)

    def update(self, arm: int, loss: float) -> None:
        raw = self.reward_fn(self.ctx, arm, loss)
        if raw is None:  # no signal yet (e.g. the arm's first visit): no policy update
            return
        r = self.scaler(raw)
        self.reward_sum[arm] += r
        self.n_rewards[arm] += 1
        if len(self.arm_names) > 1:
            self.policy.update(arm, r)

    def end_round(self, ctx) -> None:  # noqa: ANN001
        probs = self.policy.probabilities()
        for i, name in enumerate(self.arm_names):
            self.log.append({"round": self.round_index, "arm": name, "pulls": self.pulls[i],
                             "probability": float(probs[i]),
                             "mean_reward": (self.reward_sum[i] / self.n_rewards[i]
                                             if self.n_rewards[i] else float("nan"))})
        if self.memory is not ctx.seen:
            self.memory.add(ctx.new_chunk, ctx.round_index)
        self.reward_fn.batch = self.reward_fn.holdout = None
        del self.ctx, self.cyclers, self.new_cycler
        self.pool = self.last_index = None


class RandomSamples(SampleBandit):
    """Ablation: the sample bandit's arms and budget, with a uniform-random policy."""

    name = "random_samples"
    wants_reward = False  # a uniform policy ignores rewards: spend no compute measuring them

    def __init__(self, **kwargs: object) -> None:
        kwargs["policy"] = "uniform"
        super().__init__(**kwargs)
