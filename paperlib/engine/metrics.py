"""Metric formulas and the typed per-round record of a run.

Notation: ``A[r, j]`` is the accuracy after round ``r`` (0 = the first served model) on test
split ``j``; ``t_j`` is the round that introduced split ``j`` (:attr:`TestSplit.introduced_at`);
``l_j`` the round after which no more of its training data arrives
(:attr:`TestSplit.learned_at`; ``l_j = t_j`` when its data arrives at once); ``R`` is the final
round.

>>> import numpy as np
>>> A = np.array([[0.9, 0.0], [0.5, 0.8], [0.6, 0.9]])
>>> intro = [0, 1]
>>> round(average_accuracy(A[-1], intro, 2), 3)   # (0.6 + 0.9) / 2
0.75
>>> round(forgetting(A, intro), 3)                 # ((0.9 - 0.6) + (0.8 - 0.9)) / 2
0.1
>>> round(backward_transfer(A, intro), 3)          # ((0.6-0.9) + (0.9-0.8)) / 2
-0.1

A split whose data arrives until the final round (here split 1, ``l_1 = 2``) is still being
learned, so it counts for neither:

>>> round(forgetting(A, [0, 2]), 3), round(backward_transfer(A, [0, 2]), 3)
(0.3, -0.3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions: ``mean(pred == y)``; NaN for an empty set."""
    if y.numel() == 0:
        return float("nan")
    return float((pred == y).float().mean())


def average_accuracy(acc_row: Sequence[float], introduced_at: Sequence[int], round_index: int) -> float:
    """``mean_{j : t_j <= r} A[r, j]``: mean accuracy over the splits seen by round ``r``."""
    vals = [a for a, t in zip(acc_row, introduced_at, strict=True) if t <= round_index]
    return float(np.mean(vals)) if vals else float("nan")


def forgetting(A: np.ndarray, learned_at: Sequence[int]) -> float:
    """Average forgetting (Chaudhry et al. 2018) at the final round ``R``, over the splits
    learned before it (``learned_at`` = ``l_j``; a split still being learned is excluded, as
    Chaudhry et al. exclude the current task):

    ``mean_{j : l_j < R} ( max_{l_j <= l < R} A[l, j] - A[R, j] )``.

    Positive = accuracy lost since its best; NaN when no split was learned before ``R``.
    """
    A = np.asarray(A, dtype=float)
    R = A.shape[0] - 1
    vals = [A[t:R, j].max() - A[R, j] for j, t in enumerate(learned_at) if t < R]
    return float(np.mean(vals)) if vals else float("nan")


def backward_transfer(A: np.ndarray, learned_at: Sequence[int]) -> float:
    """Backward transfer (Lopez-Paz & Ranzato 2017), generalised to splits learned by round
    ``l_j``: ``mean_{j : l_j < R} ( A[R, j] - A[l_j, j] )``. Negative = forgetting; NaN when
    no split was learned before ``R``."""
    A = np.asarray(A, dtype=float)
    R = A.shape[0] - 1
    vals = [A[R, j] - A[t, j] for j, t in enumerate(learned_at) if t < R]
    return float(np.mean(vals)) if vals else float("nan")


def prequential_accuracy(correct: Sequence[int], total: Sequence[int]) -> float:
    """Test-then-train accuracy: ``sum_r correct_r / sum_r n_r``, where the served model
    predicts each arriving chunk *before* its labels are used for retraining.

    >>> prequential_accuracy([8, 5], [10, 10])
    0.65
    """
    n = int(np.sum(total))
    return float(np.sum(correct) / n) if n else float("nan")


def negative_flip_rate(y: torch.Tensor, pred_old: torch.Tensor, pred_new: torch.Tensor) -> float:
    """Share of probe samples the old model got right and the new one gets wrong
    (Yan et al. 2021): ``mean( [pred_old == y] * [pred_new != y] )``.

    >>> y = torch.tensor([0, 1, 2, 3])
    >>> negative_flip_rate(y, torch.tensor([0, 1, 0, 3]), torch.tensor([0, 0, 2, 1]))
    0.5
    """
    if y.numel() == 0:
        return float("nan")
    return float(((pred_old == y) & (pred_new != y)).float().mean())


@dataclass
class RoundRecord:
    """One row of a run's tidy results table (one per round; round 0 = the first served model).

    Attributes:
        round: round index ``r``.
        chunk: name of the data that arrived (round 0: the initial training set).
        n_new: samples in the arriving chunk.
        accuracy: ``{split: A[r, split]}`` of the model deployed after the round.
        avg_accuracy: :func:`average_accuracy` over the splits introduced by round ``r``.
        served_accuracy: accuracy of the *previously served* model on the arriving chunk,
            measured before its labels are used (NaN in round 0); the prequential terms.
        negative_flip_rate: :func:`negative_flip_rate` between the previously served and the
            newly deployed model on the fixed probe set (NaN in round 0).
        deployed: whether the retrained model replaced the served one (False only when the
            deployment guard kept the old model).
        guard_accuracy_old / guard_accuracy_new: held-out accuracies the guard compared
            (NaN when the guard is off).
        retrain_seconds, grad_steps, samples_processed, train_flops, trainable_fraction,
        peak_memory_bytes: the round's :class:`~paperlib.engine.accounting.RoundCost`.
        cumulative_retrain_seconds / cumulative_train_flops: sums over rounds 1..r (the first
            model's training, round 0, is excluded so that methods share the same origin).
    """

    round: int
    chunk: str
    n_new: int
    accuracy: dict[str, float]
    avg_accuracy: float
    served_accuracy: float
    negative_flip_rate: float
    deployed: bool
    guard_accuracy_old: float
    guard_accuracy_new: float
    retrain_seconds: float
    grad_steps: int
    samples_processed: int
    train_flops: float
    trainable_fraction: float
    peak_memory_bytes: int
    cumulative_retrain_seconds: float = 0.0
    cumulative_train_flops: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict[str, object]:
        """Flatten to one table row: accuracies become ``acc/<split>`` columns."""
        row = asdict(self)
        acc = row.pop("accuracy")
        extra = row.pop("extra")
        row.update({f"acc/{k}": v for k, v in acc.items()})
        row.update(extra)
        return row
