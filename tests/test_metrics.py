"""Every metric against small hand-computed examples."""

import math

import numpy as np
import pytest
import torch

from paperlib.engine import metrics

# Accuracy matrix: 3 rounds x 3 splits; split j introduced at round j.
A = np.array([
    [0.90, 0.10, 0.00],
    [0.70, 0.80, 0.20],
    [0.60, 0.85, 0.90],
])
INTRO = [0, 1, 2]


def test_accuracy():
    assert metrics.accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 0.5
    assert math.isnan(metrics.accuracy(torch.tensor([]), torch.tensor([])))


def test_average_accuracy_counts_only_introduced_splits():
    assert metrics.average_accuracy(A[0], INTRO, 0) == pytest.approx(0.90)
    assert metrics.average_accuracy(A[1], INTRO, 1) == pytest.approx((0.70 + 0.80) / 2)
    assert metrics.average_accuracy(A[2], INTRO, 2) == pytest.approx((0.60 + 0.85 + 0.90) / 3)


def test_forgetting_by_hand():
    # split 0: best before R among rounds 0..1 = 0.90, final 0.60 -> 0.30
    # split 1: best among round 1 = 0.80, final 0.85 -> -0.05
    # split 2: introduced at R -> excluded
    assert metrics.forgetting(A, INTRO) == pytest.approx((0.30 - 0.05) / 2)


def test_forgetting_ignores_rounds_before_introduction():
    # The 0.95 at round 0 precedes split 1's introduction and must not count.
    B = np.array([[0.5, 0.95], [0.5, 0.6], [0.5, 0.4]])
    assert metrics.forgetting(B, [0, 1]) == pytest.approx((0.0 + 0.2) / 2)


def test_backward_transfer_by_hand():
    # split 0: 0.60 - 0.90 = -0.30 ; split 1: 0.85 - 0.80 = +0.05
    assert metrics.backward_transfer(A, INTRO) == pytest.approx((-0.30 + 0.05) / 2)


def test_split_still_being_learned_counts_for_neither():
    # Split 1's training data arrives until the final round (learned_at = R = 2): as in
    # class-incremental MNIST's new classes, its rising accuracy is learning, not negative
    # forgetting, so only split 0 counts. With learned_at = 1 it would give -0.05 / +0.05.
    B = A[:, :2]
    assert metrics.forgetting(B, [0, 2]) == pytest.approx(0.30)
    assert metrics.backward_transfer(B, [0, 2]) == pytest.approx(-0.30)
    assert math.isnan(metrics.forgetting(B[:, 1:], [2]))


def test_forgetting_of_a_split_counts_from_the_round_it_was_learned():
    # Split 1 introduced at round 1 but learned at round 2: its 0.9 at round 1 (mid-learning)
    # is not the reference; the best from round 2 on is.
    C = np.array([[0.9, 0.0], [0.8, 0.9], [0.7, 0.6], [0.7, 0.5]])
    assert metrics.forgetting(C, [0, 2]) == pytest.approx(((0.9 - 0.7) + (0.6 - 0.5)) / 2)
    assert metrics.backward_transfer(C, [0, 2]) == pytest.approx(((0.7 - 0.9) + (0.5 - 0.6)) / 2)


def test_no_earlier_split_gives_nan():
    assert math.isnan(metrics.forgetting(np.array([[0.9]]), [0]))
    assert math.isnan(metrics.backward_transfer(np.array([[0.9], [0.8]]), [1]))


def test_prequential_accuracy_is_sample_weighted():
    # 9/10 and 1/30 correct: (9 + 1) / 40, not the mean of the two rates.
    assert metrics.prequential_accuracy([9, 1], [10, 30]) == pytest.approx(0.25)


def test_negative_flip_rate_by_hand():
    y = torch.tensor([0, 1, 2, 3, 4])
    old = torch.tensor([0, 1, 2, 0, 0])   # right on 0, 1, 2
    new = torch.tensor([0, 0, 1, 3, 4])   # wrong on 1, 2 (were right), right on 3, 4 (positive flips)
    assert metrics.negative_flip_rate(y, old, new) == pytest.approx(2 / 5)


def test_round_record_flattens_accuracies():
    rec = metrics.RoundRecord(
        round=1, chunk="c", n_new=5, accuracy={"old": 0.5, "new": 0.25}, avg_accuracy=0.375,
        served_accuracy=0.2, negative_flip_rate=0.1, deployed=True, guard_accuracy_old=float("nan"),
        guard_accuracy_new=float("nan"), retrain_seconds=1.0, grad_steps=3, samples_processed=30,
        train_flops=1e6, trainable_fraction=1.0, peak_memory_bytes=0)
    row = rec.as_row()
    assert row["acc/old"] == 0.5 and row["acc/new"] == 0.25 and "accuracy" not in row
