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
        n = self.n_seen + take
        for i in range(take, len(chunk)):
            n += 1
            j = int(torch.randint(n, (1,), generator=self.generator))
            if j < self.capacity:
                self.x[j], self.y[j], self.arrival[j] = x[i], y[i], arrival[i]
        self.n_seen = n

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` stored samples drawn uniformly without replacement (all if fewer are stored)."""
        if len(self) == 0:
            raise ValueError("the store is empty")
        idx = torch.randperm(len(self), generator=generator)[:n].to(self.device)
        return self.x[idx], self.y[idx]
