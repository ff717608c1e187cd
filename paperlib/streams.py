"""Serving scenarios: a first training set, then rounds of newly arriving labelled data.

A :class:`Stream` is what the runner consumes. Every tensor lives on the CPU; the runner moves
it to the training device. Images are ``float32`` in ``[0, 1]`` with shape ``(N, C, H, W)``;
tabular rows are ``float32`` with shape ``(N, F)``; labels are ``int64`` with shape ``(N,)``.

Builders (deterministic for a given seed) live below the dataclasses; :func:`build_stream`
dispatches on the scenario name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Chunk:
    """Labelled data that arrives together.

    Attributes:
        x: inputs, ``(N, *input_shape)`` float32.
        y: labels, ``(N,)`` int64 in ``[0, n_classes)``.
        name: human-readable label, e.g. ``"shard 6"`` or ``"classes 5-9, shard 2"``.
        classes: output classes active for this chunk in task-incremental (multi-head)
            scenarios: the loss and predictions use only these logits. ``None`` = all classes.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    classes: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class TestSplit:
    """A held-out evaluation set; one column of the accuracy matrix.

    Attributes:
        x, y: as in :class:`Chunk`.
        name: column name, e.g. ``"all"``, ``"old"``, ``"new"``, ``"task 3"``, ``"chunk 4"``.
        introduced_at: the round whose training data first covers this split (0 = the initial
            model). Forgetting and backward transfer only count splits introduced before the
            final round.
        classes: active classes for multi-head evaluation (``None`` = all classes).
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    introduced_at: int = 0
    classes: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class Stream:
    """A complete serving scenario.

    Attributes:
        name: e.g. ``"mnist/class_incremental"``.
        initial: data that trains the first served model (round 0).
        rounds: chunks arriving in rounds 1..R, in order.
        test_splits: evaluation sets (accuracy-matrix columns).
        probe: fixed probe set for the negative flip rate between consecutive served models.
        n_classes: number of output classes of the model.
        input_shape: shape of one input, e.g. ``(1, 28, 28)`` or ``(6,)``.
        meta: dataset metadata (name, source, lossy flag, checksums) and scenario parameters.
    """

    name: str
    initial: Chunk
    rounds: list[Chunk]
    test_splits: list[TestSplit]
    probe: TestSplit
    n_classes: int
    input_shape: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict)
