"""Sample sources: which data each retraining step learns from.

Holds the store of seen data (:class:`SeenData`) and the sources that draw mini-batches from the
new chunk and that store. (Sources are completed in a later section of this file.)
"""

from __future__ import annotations

import torch

from paperlib.streams import Chunk


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
    >>> store.add(Chunk(torch.zeros(5, 2), torch.arange(5), "a"), round_index=0)
    >>> store.add(Chunk(torch.ones(3, 2), torch.arange(3), "b"), round_index=1)
    >>> len(store), store.arrival.tolist()
    (8, [0, 0, 0, 0, 0, 1, 1, 1])
    """

    def __init__(self, capacity: int | None = None, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> None:
        if capacity is not None and capacity <= 0:
            raise ValueError("capacity must be positive or None")
        self.capacity = capacity
        self.device = torch.device(device)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.arrival: torch.Tensor | None = None
        self.n_seen = 0

    def __len__(self) -> int:
        return 0 if self.y is None else int(self.y.shape[0])

    def add(self, chunk: Chunk, round_index: int) -> None:
        """Offer every sample of ``chunk`` to the store."""
        x = chunk.x.to(self.device)
        y = chunk.y.to(self.device)
        arrival = torch.full((len(chunk),), round_index, dtype=torch.long, device=self.device)
        if self.x is None:
            self.x, self.y, self.arrival = x[:0], y[:0], arrival[:0]
        if self.capacity is None:
            self.x = torch.cat([self.x, x])
            self.y = torch.cat([self.y, y])
            self.arrival = torch.cat([self.arrival, arrival])
            self.n_seen += len(chunk)
            return
        # Reservoir sampling: fill, then sample i replaces slot j ~ U[0, n_seen) if j < capacity.
        free = max(0, self.capacity - len(self))
        take = min(free, len(chunk))
        if take:
            self.x = torch.cat([self.x, x[:take]])
            self.y = torch.cat([self.y, y[:take]])
            self.arrival = torch.cat([self.arrival, arrival[:take]])
        # Remaining samples: sample i (1-based count n_i among all seen) draws j ~ U[0, n_i)
        # and replaces slot j when j < capacity; for a slot hit twice the later sample wins.
        rest = len(chunk) - take
        if rest:
            counts = torch.arange(self.n_seen + take + 1, self.n_seen + len(chunk) + 1)
            j = (torch.rand(rest, generator=self.generator, dtype=torch.float64) * counts).long()
            hit = (j < self.capacity).nonzero().flatten()
            slots, src = j[hit].flip(0), (hit + take).flip(0)
            first = torch.ones_like(slots, dtype=torch.bool)
            if len(slots):
                order = torch.argsort(slots, stable=True)
                s_sorted = slots[order]
                first[order[1:]] = s_sorted[1:] != s_sorted[:-1]
            slots, src = slots[first].to(self.device), src[first].to(self.device)
            self.x[slots], self.y[slots], self.arrival[slots] = x[src], y[src], arrival[src]
        self.n_seen += len(chunk)


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
    ``next_batch`` is called once per step; ``update`` receives the step's reward signal when
    ``wants_reward`` (the retrainer then measures the batch loss again after the update);
    ``end_round`` closes the round. ``log`` holds per-round rows for plotting."""

    name = "source"
    wants_reward = False

    def __init__(self) -> None:
        self.log: list[dict[str, object]] = []

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001 - RoundContext
        raise NotImplementedError

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Return ``(x, y, arm)`` with ``x`` ``(B, *input_shape)`` on the device."""
        raise NotImplementedError

    def update(self, arm: int, loss_before: float, loss_after: float) -> None:
        """Reward signal of the last batch (only called when ``wants_reward``)."""

    def end_round(self, ctx) -> None:  # noqa: ANN001
        """Called after the round's last step."""


class NewOnly(SampleSource):
    """Fine-tuning: ``epochs`` passes over the arriving chunk only."""

    name = "new_only"

    def __init__(self, epochs: float = 1.0) -> None:
        super().__init__()
        self.epochs = epochs

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        self.x = ctx.new_chunk.x.to(ctx.device)
        self.y = ctx.new_chunk.y.to(ctx.device)
        self.batch_size = batch_size
        self.cycler = _Cycler(torch.arange(len(self.y), device=ctx.device), ctx.generator)
        return _epoch_steps(len(self.y), batch_size, self.epochs)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        idx = self.cycler.take(self.batch_size)
        return self.x[idx], self.y[idx], -1


class AllSeen(NewOnly):
    """Full retraining: ``epochs`` passes over everything seen so far plus the new chunk."""

    name = "all_seen"

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        steps_new = super().start_round(ctx, batch_size)
        if len(ctx.seen) == 0:
            return steps_new
        self.x = torch.cat([ctx.seen.x, self.x])
        self.y = torch.cat([ctx.seen.y, self.y])
        self.cycler = _Cycler(torch.arange(len(self.y), device=ctx.device), ctx.generator)
        return _epoch_steps(len(self.y), batch_size, self.epochs)


class Replay(SampleSource):
    """Experience replay with a reservoir memory (Chaudhry et al. 2019, "tiny episodic
    memories"): each batch holds ``(1 - replay_ratio) * B`` new samples and ``replay_ratio * B``
    samples drawn uniformly from a reservoir of ``memory_size`` past samples. After the round the
    chunk is offered to the reservoir. Steps: ``budget_factor * epochs * ceil(n_new / B)``, the
    same budget as the sample bandit, so the two compare at equal cost."""

    name = "replay"

    def __init__(self, epochs: float = 1.0, memory_size: int = 2000, replay_ratio: float = 0.5,
                 budget_factor: float = 2.0) -> None:
        super().__init__()
        if not 0.0 <= replay_ratio < 1.0:
            raise ValueError("replay_ratio must be in [0, 1)")
        self.epochs, self.memory_size = epochs, memory_size
        self.replay_ratio, self.budget_factor = replay_ratio, budget_factor
        self.memory: SeenData | None = None

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        if self.memory is None:  # first retraining round: reservoir over everything seen so far
            self.memory = SeenData(self.memory_size, ctx.device,
                                   torch.Generator().manual_seed(int(ctx.generator.initial_seed())))
            if len(ctx.seen):
                self.memory.add(Chunk(ctx.seen.x, ctx.seen.y, "seen"), round_index=0)
        self.generator = ctx.generator
        self.x = ctx.new_chunk.x.to(ctx.device)
        self.y = ctx.new_chunk.y.to(ctx.device)
        n_mem = round(batch_size * self.replay_ratio) if len(self.memory) else 0
        self.n_mem, self.n_new = n_mem, batch_size - n_mem
        self.cycler = _Cycler(torch.arange(len(self.y), device=ctx.device), ctx.generator)
        return _epoch_steps(len(self.y), batch_size, self.epochs * self.budget_factor)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        idx = self.cycler.take(self.n_new)
        x, y = self.x[idx], self.y[idx]
        if self.n_mem:
            j = torch.randint(len(self.memory), (self.n_mem,), generator=self.generator)
            j = j.to(self.memory.device)
            x, y = torch.cat([x, self.memory.x[j]]), torch.cat([y, self.memory.y[j]])
        return x, y, -1

    def end_round(self, ctx) -> None:  # noqa: ANN001
        self.memory.add(ctx.new_chunk, ctx.round_index)


class QuantileScaler:
    """Maps raw rewards to ``[0, 1]`` by their rank among recent rewards, as Graves et al.
    (2017) do for learning-progress signals: ``clip((r - q20) / (q80 - q20), 0, 1)`` over the
    last ``window`` raw rewards (0.5 while the history is degenerate).

    >>> s = QuantileScaler()
    >>> [round(s(r), 2) for r in (1.0, 2.0, 3.0, 4.0, 5.0)]
    [0.5, 1.0, 1.0, 1.0, 1.0]
    >>> round(s(-10.0), 2), round(s(3.0), 2)
    (0.0, 0.69)
    """

    def __init__(self, window: int = 500) -> None:
        from collections import deque

        self.history: deque[float] = deque(maxlen=window)

    def __call__(self, raw: float) -> float:
        import numpy as np

        self.history.append(raw)
        lo, hi = np.quantile(np.fromiter(self.history, float), (0.2, 0.8))
        if hi - lo <= 1e-12:
            return 0.5
        return float(min(1.0, max(0.0, (raw - lo) / (hi - lo))))


class SampleBandit(SampleSource):
    """The paper's sample bandit (our reconstruction, NOTES.md): arms are groups of candidate
    data; each step a bandit policy picks an arm, a mini-batch is drawn from it, one update is
    made, and the arm is rewarded by the learning progress it produced.

    Arms: ``"new"`` (the arriving chunk) plus the past data grouped by ``grouping``:
    ``"chunk"`` (one arm per arrival round), ``"class"`` (one per label), or ``"loss"``
    (``n_loss_groups`` quantile bins of the served model's loss on up to ``pool_size`` stored
    samples; that scoring pass is counted as forward FLOPs).

    Reward (scaled to [0, 1] by :class:`QuantileScaler`): ``"progress"`` = loss on the batch
    before minus after the update (one extra forward of the batch per step); ``"holdout"`` =
    drop of the loss on a batch of ``holdout_size`` samples drawn at random from the seen and new
    data and held out of every arm for the round (one forward of that batch per step).

    Budget: ``budget_factor * epochs * ceil(n_new / B)`` steps, independent of how much past
    data exists, so cost stays flat across rounds while all past data stays reachable.
    """

    name = "sample_bandit"
    wants_reward = True

    def __init__(self, epochs: float = 1.0, budget_factor: float = 2.0, policy: str = "exp3s",
                 grouping: str = "chunk", reward: str = "progress", n_loss_groups: int = 4,
                 pool_size: int = 20000, holdout_size: int = 256, seed: int = 0,
                 policy_kwargs: dict | None = None) -> None:
        super().__init__()
        if grouping not in ("chunk", "class", "loss"):
            raise ValueError("grouping must be 'chunk', 'class' or 'loss'")
        if reward not in ("progress", "holdout"):
            raise ValueError("reward must be 'progress' or 'holdout'")
        self.epochs, self.budget_factor, self.policy_name = epochs, budget_factor, policy
        self.grouping, self.reward, self.n_loss_groups = grouping, reward, n_loss_groups
        self.pool_size, self.holdout_size, self.seed = pool_size, holdout_size, seed
        self.policy_kwargs = policy_kwargs or {}
        self.trace: list[dict[str, object]] = []

    # -- arms -------------------------------------------------------------------------------
    def _past_arms(self, ctx) -> list[tuple[str, torch.Tensor]]:  # noqa: ANN001
        seen = ctx.seen
        if len(seen) == 0:
            return []
        if self.grouping == "chunk":
            keys = seen.arrival
            return [(f"round {int(k)}", (keys == k).nonzero().flatten()) for k in keys.unique()]
        if self.grouping == "class":
            return [(f"class {int(c)}", (seen.y == c).nonzero().flatten()) for c in seen.y.unique()]
        pool = torch.randperm(len(seen), generator=ctx.generator)[: self.pool_size].to(seen.device)
        from paperlib.losses import batched_losses

        losses = batched_losses(ctx.served_model, seen.x[pool], seen.y[pool], ctx.heads)
        ctx.meter.add_forward(len(pool))
        order = pool[losses.argsort()]
        bins = order.tensor_split(self.n_loss_groups)
        return [(f"loss q{i + 1}/{self.n_loss_groups}", b) for i, b in enumerate(bins) if b.numel()]

    def start_round(self, ctx, batch_size: int) -> int:  # noqa: ANN001
        from paperlib.bandits import make_policy

        self.ctx, self.batch_size, self.round_index = ctx, batch_size, ctx.round_index
        new_x, new_y = ctx.new_chunk.x.to(ctx.device), ctx.new_chunk.y.to(ctx.device)
        n_new, n_seen = len(new_y), len(ctx.seen)
        keep_new = torch.ones(n_new, dtype=torch.bool, device=ctx.device)
        keep_seen = torch.ones(n_seen, dtype=torch.bool, device=ctx.device)
        if self.reward == "holdout":  # a reference batch held out of every arm this round
            pick = torch.randperm(n_new + n_seen, generator=ctx.generator)[: self.holdout_size]
            pick = pick.to(ctx.device)
            new_pick, seen_pick = pick[pick < n_new], pick[pick >= n_new] - n_new
            keep_new[new_pick], keep_seen[seen_pick] = False, False
            hx, hy = [new_x[new_pick]], [new_y[new_pick]]
            if n_seen:
                hx.append(ctx.seen.x[seen_pick])
                hy.append(ctx.seen.y[seen_pick])
            self.holdout = torch.cat(hx), torch.cat(hy)
            self.holdout_loss = None
        arms = [("new", new_x, new_y, keep_new.nonzero().flatten())]
        arms += [(name, ctx.seen.x, ctx.seen.y, idx[keep_seen[idx]])
                 for name, idx in self._past_arms(ctx)]
        arms = [a for a in arms if a[3].numel()]
        self.arm_names = [a[0] for a in arms]
        self.arm_data = [(a[1], a[2]) for a in arms]
        self.cyclers = [_Cycler(a[3], ctx.generator) for a in arms]
        self.policy = make_policy(self.policy_name, len(arms), seed=self.seed * 1000 + ctx.round_index,
                                  **self.policy_kwargs)
        self.scaler = QuantileScaler()
        self.pulls = [0] * len(arms)
        self.reward_sum = [0.0] * len(arms)
        steps = _epoch_steps(len(new_y), batch_size, self.epochs * self.budget_factor)
        self.snapshot_every = max(1, steps // 25)
        self.step = 0
        return steps

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.step % self.snapshot_every == 0:
            for name, p in zip(self.arm_names, self.policy.probabilities(), strict=True):
                self.trace.append({"round": self.round_index, "step": self.step,
                                   "arm": name, "probability": float(p)})
        self.step += 1
        arm = self.policy.pull() if len(self.arm_names) > 1 else 0
        self.pulls[arm] += 1
        x, y = self.arm_data[arm]
        idx = self.cyclers[arm].take(self.batch_size)
        return x[idx], y[idx], arm

    def _holdout_loss(self) -> float:
        from paperlib.losses import batched_losses

        self.ctx.meter.add_forward(len(self.holdout[1]))
        return float(batched_losses(self.ctx.model, *self.holdout, self.ctx.heads,
                                    keep_mode=True).mean())

    def update(self, arm: int, loss_before: float, loss_after: float) -> None:
        if self.reward == "progress":
            raw = loss_before - loss_after
        else:
            after = self._holdout_loss()
            before = self.holdout_loss if self.holdout_loss is not None else after
            raw, self.holdout_loss = before - after, after
        r = self.scaler(raw)
        self.reward_sum[arm] += r
        if len(self.arm_names) > 1:
            self.policy.update(arm, r)

    def end_round(self, ctx) -> None:  # noqa: ANN001
        probs = self.policy.probabilities()
        for i, name in enumerate(self.arm_names):
            self.log.append({"round": self.round_index, "arm": name, "pulls": self.pulls[i],
                             "probability": float(probs[i]),
                             "mean_reward": (self.reward_sum[i] / self.pulls[i]
                                             if self.wants_reward and self.pulls[i] else float("nan"))})
        del self.ctx, self.arm_data, self.cyclers


class RandomSamples(SampleBandit):
    """Ablation: the sample bandit's arms and budget, with a uniform-random policy."""

    name = "random_samples"
    wants_reward = False  # a uniform policy ignores rewards: spend no compute measuring them

    def __init__(self, **kwargs: object) -> None:
        kwargs["policy"] = "uniform"
        super().__init__(**kwargs)
