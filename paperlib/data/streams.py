"""Serving scenarios: a first training set, then rounds of newly arriving labelled data.

A :class:`Stream` is what the runner consumes. Every tensor lives on the CPU; the runner moves
it to the training device. Images are ``float32`` in ``[0, 1]`` with shape ``(N, C, H, W)``;
tabular rows are ``float32`` with shape ``(N, F)``; labels are ``int64`` with shape ``(N,)``.

Builders (deterministic for a given seed) live below the dataclasses; :func:`build_stream`
dispatches on the scenario name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paperlib.data.datasets import DATASETS, Dataset, load_dataset, resolve_mirror, resolve_root


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
            model); average accuracy counts a split from this round on.
        classes: active classes for multi-head evaluation (``None`` = all classes).
        training_ends_at: the last round that still brings training data of this split, when
            its data arrives over several rounds (class-incremental's new classes, in shards;
            data-incremental's one split); ``None`` = its data all arrives at
            ``introduced_at``. See :attr:`learned_at`.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    introduced_at: int = 0
    classes: tuple[int, ...] | None = None
    training_ends_at: int | None = None

    @property
    def learned_at(self) -> int:
        """The round after which no more training data of this split arrives: forgetting and
        backward transfer (:mod:`paperlib.engine.metrics`) measure a split from this round on,
        and only when it is before the final round (a split still being learned is not
        forgotten; Chaudhry et al. 2018 exclude the task being trained)."""
        return self.introduced_at if self.training_ends_at is None else self.training_ends_at

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


# =========================================================================== builders

SCENARIOS = ("data_incremental", "class_incremental", "rotated", "permuted", "stream",
             "split_task", "split_class")


def _rng(seed: int, purpose: int) -> np.random.Generator:
    """An independent generator per (seed, purpose), so e.g. the probe draw never shifts shards."""
    return np.random.default_rng([seed, purpose])


_SUB_TRAIN, _SUB_TEST, _SHUFFLE, _PROBE, _PERM = range(5)


def stratified_indices(y: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a stratified random subset of size ``min(n, len(y))``.

    Each class gets its proportional share (largest-remainder rounding); ``n=None`` keeps all.
    Sorting keeps the original (e.g. arrival) order.

    >>> y = np.array([0] * 80 + [1] * 20)
    >>> idx = stratified_indices(y, 10, np.random.default_rng(0))
    >>> np.bincount(y[idx]).tolist()
    [8, 2]
    """
    if n is None or n >= len(y):
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n / len(y)
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: n - int(take.sum())]
    take[extra] += 1
    picks = [rng.choice(np.flatnonzero(y == c), size=int(k), replace=False)
             for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picks))


def _tensor_x(x: np.ndarray) -> torch.Tensor:
    """``uint8`` images -> float32 in ``[0, 1]``; float arrays -> float32 copy."""
    out = x.astype(np.float32)
    if x.dtype == np.uint8:
        out /= 255.0
    return torch.from_numpy(out)


def _tensor_y(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(y.astype(np.int64))


@dataclass(frozen=True)
class _Data:
    """The (subsampled) numpy arrays a builder works on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _subsample(ds: Dataset, seed: int, max_train: int | None, max_test: int | None) -> _Data:
    tr = stratified_indices(ds.y_train, max_train, _rng(seed, _SUB_TRAIN))
    te = stratified_indices(ds.y_test, max_test, _rng(seed, _SUB_TEST))
    return _Data(ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te])


def _probe(x: torch.Tensor, y: torch.Tensor, size: int | None, seed: int,
           classes: tuple[int, ...] | None = None) -> TestSplit:
    """A fixed, seeded, class-stratified subset (at most ``size``) of an evaluation pool."""
    idx = torch.from_numpy(stratified_indices(y.numpy(), size, _rng(seed, _PROBE)))
    return TestSplit(x[idx], y[idx], "probe", introduced_at=0, classes=classes)


def _meta(ds: Dataset, scenario: str, seed: int, **params: Any) -> dict[str, Any]:
    return {**ds.meta, "dataset": ds.name, "scenario": scenario, "seed": seed,
            "scenario_params": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in params.items()}}


def _require_images(ds: Dataset, scenario: str) -> None:
    if ds.time_ordered or len(ds.input_shape) != 3:
        raise ValueError(f"scenario {scenario!r} needs an image dataset with train/test splits; "
                         f"{ds.name!r} is a time-ordered/tabular stream (use scenario 'stream')")


def _range_name(items: tuple[int, ...] | list[int]) -> str:
    """``(0, 1, 2)`` -> ``"0-2"``; non-contiguous -> ``"0,2,5"``."""
    items = sorted(items)
    if len(items) > 1 and items == list(range(items[0], items[-1] + 1)):
        return f"{items[0]}-{items[-1]}"
    return ",".join(str(i) for i in items)


def data_incremental(ds: Dataset, *, seed: int, n_shards: int = 10, initial_shards: int = 5,
                     max_train: int | None = None, max_test: int | None = None,
                     probe_size: int | None = 1000) -> Stream:
    """Data-incremental: the shuffled training set in ``n_shards`` disjoint (near-)equal shards;
    shards ``1..initial_shards`` train the first model, each later shard is one round. One test
    split, ``"all"``, whose training data keeps arriving until the last round: forgetting and
    backward transfer are undefined here (NaN); the negative flip rate measures instability.

    >>> s = data_incremental(load_dataset("digits"), seed=0)
    >>> s.initial.name, [c.name for c in s.rounds][:2], len(s.rounds), s.test_splits[0].name
    ('shards 1-5', ['shard 6', 'shard 7'], 5, 'all')
    """
    _require_images(ds, "data_incremental")
    if not 0 < initial_shards < n_shards:
        raise ValueError("need 0 < initial_shards < n_shards")
    d = _subsample(ds, seed, max_train, max_test)
    shards = np.array_split(_rng(seed, _SHUFFLE).permutation(len(d.y_train)), n_shards)
    first = np.concatenate(shards[:initial_shards])
    initial = Chunk(_tensor_x(d.x_train[first]), _tensor_y(d.y_train[first]),
                    f"shards {_range_name(list(range(1, initial_shards + 1)))}")
    rounds = [Chunk(_tensor_x(d.x_train[s]), _tensor_y(d.y_train[s]), f"shard {i + 1}")
              for i, s in enumerate(shards) if i >= initial_shards]
    x_te, y_te = _tensor_x(d.x_test), _tensor_y(d.y_test)
    return Stream(
        f"{ds.name}/data_incremental", initial, rounds,
        [TestSplit(x_te, y_te, "all", 0, training_ends_at=len(rounds))],
        _probe(x_te, y_te, probe_size, seed), ds.n_classes, tuple(ds.input_shape),
        _meta(ds, "data_incremental", seed, n_shards=n_shards, initial_shards=initial_shards,
              max_train=max_train, max_test=max_test, probe_size=probe_size))


def class_incremental(ds: Dataset, *, seed: int, old_classes: tuple[int, ...] = (0, 1, 2, 3, 4),
                      n_new_shards: int = 10, max_train: int | None = None,
                      max_test: int | None = None, probe_size: int | None = 1000) -> Stream:
    """Class-incremental: the first model sees every training sample of ``old_classes``; the
    remaining (new) classes arrive shuffled together in ``n_new_shards`` rounds.

    Test splits: ``"old"`` (introduced at 0) and ``"new"`` (introduced at 1, its training data
    arriving until the last round, so forgetting and backward transfer measure the old classes
    only). The probe is drawn from the full test set (all classes).

    >>> s = class_incremental(load_dataset("digits"), seed=0)
    >>> sorted(set(s.initial.y.tolist())), sorted(set(s.rounds[0].y.tolist()))
    ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    """
    _require_images(ds, "class_incremental")
    old = tuple(sorted(int(c) for c in old_classes))
    new = tuple(c for c in range(ds.n_classes) if c not in old)
    if not old or not new:
        raise ValueError(f"old_classes {old_classes} must be a proper subset of "
                         f"0..{ds.n_classes - 1}")
    d = _subsample(ds, seed, max_train, max_test)
    rng = _rng(seed, _SHUFFLE)
    is_old = np.isin(d.y_train, old)
    first = rng.permutation(np.flatnonzero(is_old))
    shards = np.array_split(rng.permutation(np.flatnonzero(~is_old)), n_new_shards)
    initial = Chunk(_tensor_x(d.x_train[first]), _tensor_y(d.y_train[first]),
                    f"old classes {_range_name(old)}")
    rounds = [Chunk(_tensor_x(d.x_train[s]), _tensor_y(d.y_train[s]),
                    f"new classes, shard {i + 1}") for i, s in enumerate(shards)]
    x_te, y_te = _tensor_x(d.x_test), _tensor_y(d.y_test)
    te_old = torch.from_numpy(np.isin(d.y_test, old))
    splits = [TestSplit(x_te[te_old], y_te[te_old], "old", 0),
              TestSplit(x_te[~te_old], y_te[~te_old], "new", 1, training_ends_at=len(rounds))]
    return Stream(
        f"{ds.name}/class_incremental", initial, rounds, splits,
        _probe(x_te, y_te, probe_size, seed), ds.n_classes, tuple(ds.input_shape),
        _meta(ds, "class_incremental", seed, old_classes=old, new_classes=new,
              n_new_shards=n_new_shards, max_train=max_train, max_test=max_test,
              probe_size=probe_size))


def rotate_images(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate square images ``(N, C, H, W)`` counter-clockwise (as displayed) by ``degrees``.

    Bilinear interpolation, zero padding (``affine_grid``/``grid_sample``, ``align_corners=False``);
    multiples of 360 return an exact copy.

    >>> x = torch.zeros(1, 1, 3, 3); x[0, 0, 1, 2] = 1.0   # a pixel right of the centre
    >>> rotate_images(x, 90)[0, 0].round().tolist()    # moves above the centre
    [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError("rotate_images needs square images")
    if degrees % 360 == 0:
        return x.clone()
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                         dtype=x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def permute_pixels(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Apply one permutation of the ``H*W`` pixel positions to every image (all channels alike).

    >>> permute_pixels(torch.arange(4.).view(1, 1, 2, 2), torch.tensor([3, 2, 1, 0])).flatten()
    tensor([3., 2., 1., 0.])
    """
    n, c, h, w = x.shape
    return x.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)


def _domain_stream(ds: Dataset, seed: int, scenario: str, names: list[str],
                   transforms: list[Callable[[torch.Tensor], torch.Tensor]],
                   max_train: int | None, max_test: int | None, probe_size: int | None,
                   params: dict[str, Any]) -> Stream:
    """Domain-incremental scaffold: disjoint training parts, domain ``d`` transformed by
    ``transforms[d]``; one test split per domain from the whole transformed test set."""
    _require_images(ds, scenario)
    if len(transforms) < 2:
        raise ValueError("need at least two domains")
    d = _subsample(ds, seed, max_train, max_test)
    parts = np.array_split(_rng(seed, _SHUFFLE).permutation(len(d.y_train)), len(transforms))
    chunks = [Chunk(t(_tensor_x(d.x_train[p])), _tensor_y(d.y_train[p]), name)
              for p, t, name in zip(parts, transforms, names, strict=True)]
    x_te, y_te = _tensor_x(d.x_test), _tensor_y(d.y_test)
    splits = [TestSplit(t(x_te), y_te, name, i)
              for i, (t, name) in enumerate(zip(transforms, names, strict=True))]
    pool_x = torch.cat([s.x for s in splits])
    pool_y = torch.cat([s.y for s in splits])
    return Stream(f"{ds.name}/{scenario}", chunks[0], chunks[1:], splits,
                  _probe(pool_x, pool_y, probe_size, seed), ds.n_classes, tuple(ds.input_shape),
                  _meta(ds, scenario, seed, **params, max_train=max_train, max_test=max_test,
                        probe_size=probe_size))


def rotated(ds: Dataset, *, seed: int, angles: tuple[float, ...] = (0, 30, 60, 90, 120),
            max_train: int | None = None, max_test: int | None = None,
            probe_size: int | None = 1000) -> Stream:
    """Rotated domains: domain ``d`` (a disjoint part of the training set) is rotated by
    ``angles[d]`` degrees; domain 0 trains the first model. Test splits ``"rot 30°"`` etc. hold
    the whole test set rotated, introduced at the domain index; the probe mixes all domains.

    >>> s = rotated(load_dataset("digits"), seed=0)
    >>> [t.name for t in s.test_splits]
    ['rot 0°', 'rot 30°', 'rot 60°', 'rot 90°', 'rot 120°']
    """
    names = [f"rot {a:g}°" for a in angles]
    transforms = [functools.partial(rotate_images, degrees=float(a)) for a in angles]
    return _domain_stream(ds, seed, "rotated", names, transforms, max_train, max_test,
                          probe_size, {"angles": tuple(angles)})


def permuted(ds: Dataset, *, seed: int, n_domains: int = 5, max_train: int | None = None,
             max_test: int | None = None, probe_size: int | None = 1000) -> Stream:
    """Permuted domains: domain ``d`` applies a seeded pixel permutation (domain 0: identity)
    to its disjoint part of the training set and to the whole test set (split ``"perm d"``).

    >>> s = permuted(load_dataset("digits"), seed=0, n_domains=3)
    >>> s.initial.name, [c.name for c in s.rounds]
    ('perm 0', ['perm 1', 'perm 2'])
    """
    h, w = ds.input_shape[-2:]
    rng = _rng(seed, _PERM)
    perms = [torch.arange(h * w)] + [torch.from_numpy(rng.permutation(h * w))
                                     for _ in range(n_domains - 1)]
    transforms = [functools.partial(permute_pixels, perm=p) for p in perms]
    return _domain_stream(ds, seed, "permuted", [f"perm {i}" for i in range(n_domains)],
                          transforms, max_train, max_test, probe_size, {"n_domains": n_domains})


def _scale(x: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """Standardise ``x`` with the mean/std of ``fit`` (std 0 -> 1), computed in float64."""
    mean = fit.mean(axis=0, dtype=np.float64)
    std = fit.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return ((x - mean) / std).astype(np.float32)


def time_ordered(ds: Dataset, *, seed: int, n_chunks: int = 20, initial_chunks: int = 2,
                 test_every: int = 5, max_train: int | None = None,
                 max_test: int | None = None, probe_size: int | None = 1000) -> Stream:
    """A real stream (elec2, weather) in ``n_chunks`` consecutive chunks in arrival order.

    Within each chunk every ``test_every``-th row (positions ``test_every-1, 2*test_every-1,
    ...``) is held out as test split ``"chunk k"``. Chunks ``0..initial_chunks-1`` train the
    first model; chunk ``k >= initial_chunks`` arrives in round ``k - initial_chunks + 1``.

    Scaling, one rule without look-ahead: every row is standardised once, when its chunk
    arrives, with the mean/std of the *initial chunks' training rows* (the data the first
    served model is trained on, all of which arrived before any later chunk). The scaler is
    then frozen: a later chunk never changes it, so a row stored in round 3 and one arriving in
    round 15 are on the same scale (``full_retrain`` and ``replay`` train on consistently
    scaled data), stored rows are never rescaled, and the served model always sees inputs on
    the scale it was trained on. (The rows of the initial chunks themselves, including their
    held-out rows, use the statistics of that initial window, as a model trained offline on a
    first batch would.) The probe is a seeded random subset of the initial chunks' test rows.
    ``max_train`` subsamples rows (stratified, order kept); ``max_test`` is unused.
    """
    if not ds.time_ordered or len(ds.input_shape) != 1:
        raise ValueError(f"scenario 'stream' needs a time-ordered tabular dataset (elec2, "
                         f"weather); {ds.name!r} is not one")
    if not 0 < initial_chunks < n_chunks or test_every < 2:
        raise ValueError("need 0 < initial_chunks < n_chunks and test_every >= 2")
    idx = stratified_indices(ds.y_train, max_train, _rng(seed, _SUB_TRAIN))
    x, y = ds.x_train[idx], ds.y_train[idx]
    chunks = np.array_split(np.arange(len(y)), n_chunks)
    is_test = [(np.arange(len(c)) + 1) % test_every == 0 for c in chunks]
    train_rows = [c[~t] for c, t in zip(chunks, is_test, strict=True)]
    test_rows = [c[t] for c, t in zip(chunks, is_test, strict=True)]
    seen = np.concatenate(train_rows[:initial_chunks])
    scaled = np.empty(x.shape, dtype=np.float32)
    for k in range(n_chunks):  # chunk by chunk, in arrival order, with the frozen scaler
        scaled[chunks[k]] = _scale(x[chunks[k]], x[seen])

    def part(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(scaled[rows]), _tensor_y(y[rows])

    initial = Chunk(*part(seen), f"chunks {_range_name(list(range(initial_chunks)))}")
    rounds = [Chunk(*part(train_rows[k]), f"chunk {k}") for k in range(initial_chunks, n_chunks)]
    splits = [TestSplit(*part(test_rows[k]), f"chunk {k}", max(0, k - initial_chunks + 1))
              for k in range(n_chunks)]
    pool = np.concatenate(test_rows[:initial_chunks])
    pick = np.sort(_rng(seed, _PROBE).permutation(len(pool))[: probe_size or len(pool)])
    probe = TestSplit(*part(pool[pick]), "probe", 0)
    return Stream(f"{ds.name}/stream", initial, rounds, splits, probe, ds.n_classes,
                  tuple(ds.input_shape),
                  _meta(ds, "stream", seed, n_chunks=n_chunks, initial_chunks=initial_chunks,
                        test_every=test_every, max_train=max_train, probe_size=probe_size))


def split_task(ds: Dataset, *, seed: int, n_tasks: int = 5, max_train: int | None = None,
               max_test: int | None = None, probe_size: int | None = 1000) -> Stream:
    """Task-incremental reference benchmark (Split-MNIST): task ``t`` holds classes
    ``(2t, 2t+1)``; task 0 trains the first model, tasks ``1..n_tasks-1`` are the rounds. Every
    chunk and test split ``"task t"`` carries ``classes`` for multi-head training/evaluation,
    and ``meta["heads"]`` lists every head's classes (the runner masks each sample's logits to
    its label's head, so replayed samples of old tasks keep their own head); the probe is drawn from task 0's test set (``classes=(0, 1)``).

    >>> s = split_task(load_dataset("digits"), seed=0)
    >>> [(c.name, c.classes) for c in s.rounds][:2]
    [('task 1', (2, 3)), ('task 2', (4, 5))]
    """
    _require_images(ds, "split_task")
    if 2 * n_tasks > ds.n_classes:
        raise ValueError(f"{n_tasks} two-class tasks need {2 * n_tasks} classes; "
                         f"{ds.name!r} has {ds.n_classes}")
    d = _subsample(ds, seed, max_train, max_test)
    rng = _rng(seed, _SHUFFLE)
    chunks, splits = [], []
    for t in range(n_tasks):
        cls = (2 * t, 2 * t + 1)
        tr = rng.permutation(np.flatnonzero(np.isin(d.y_train, cls)))
        te = np.flatnonzero(np.isin(d.y_test, cls))
        name = f"task {t}"
        chunks.append(Chunk(_tensor_x(d.x_train[tr]), _tensor_y(d.y_train[tr]), name, cls))
        splits.append(TestSplit(_tensor_x(d.x_test[te]), _tensor_y(d.y_test[te]), name, t, cls))
    return Stream(f"{ds.name}/split_task", chunks[0], chunks[1:], splits,
                  _probe(splits[0].x, splits[0].y, probe_size, seed, classes=(0, 1)),
                  ds.n_classes, tuple(ds.input_shape),
                  _meta(ds, "split_task", seed, n_tasks=n_tasks, max_train=max_train,
                        max_test=max_test, probe_size=probe_size,
                        heads=[(2 * t, 2 * t + 1) for t in range(n_tasks)]))


def split_class(ds: Dataset, *, seed: int, n_tasks: int = 5, max_train: int | None = None,
                max_test: int | None = None, probe_size: int | None = 1000) -> Stream:
    """Class-incremental reference benchmark (Seq-MNIST of Buzzega et al. 2020, as Mammoth
    runs it): the two-class tasks of :func:`split_task` with one shared head, so no chunk or
    split carries ``classes``; the probe is drawn from every task's test set.

    >>> s = split_class(load_dataset("digits"), seed=0)
    >>> [(t.name, t.introduced_at, t.classes) for t in s.test_splits][:2]
    [('task 0', 0, None), ('task 1', 1, None)]
    """
    s = split_task(ds, seed=seed, n_tasks=n_tasks, max_train=max_train, max_test=max_test,
                   probe_size=None)
    chunks = [Chunk(c.x, c.y, c.name) for c in (s.initial, *s.rounds)]
    splits = [TestSplit(t.x, t.y, t.name, t.introduced_at) for t in s.test_splits]
    pool_x, pool_y = torch.cat([t.x for t in splits]), torch.cat([t.y for t in splits])
    return Stream(f"{ds.name}/split_class", chunks[0], chunks[1:], splits,
                  _probe(pool_x, pool_y, probe_size, seed), ds.n_classes, tuple(ds.input_shape),
                  _meta(ds, "split_class", seed, n_tasks=n_tasks, max_train=max_train,
                        max_test=max_test, probe_size=probe_size))


_BUILDERS: dict[str, Callable[..., Stream]] = {
    "data_incremental": data_incremental,
    "class_incremental": class_incremental,
    "rotated": rotated,
    "permuted": permuted,
    "stream": time_ordered,
    "split_task": split_task,
    "split_class": split_class,
}


@functools.lru_cache(maxsize=4)
def _load_memo(name: str, root: str, mirror: str, download: bool | None) -> Dataset:
    return load_dataset(name, root=root, mirror=mirror, download=download)


def build_stream(dataset: str, scenario: str, *, seed: int, mirror: str | Path | None = None,
                 root: str | Path | None = None, download: bool | None = None,
                 **scenario_kwargs: Any) -> Stream:
    """Load ``dataset`` (memoised in-process) and build ``scenario`` from it.

    Args:
        dataset: a :data:`paperlib.data.datasets.DATASETS` name.
        scenario: one of :data:`SCENARIOS` (``"stream"`` = :func:`time_ordered`).
        seed: seeds every random choice (subsets, shuffles, permutations, probe).
        mirror, root, download: passed to :func:`paperlib.data.datasets.load_dataset`.
        **scenario_kwargs: the builder's keyword arguments (``n_shards``, ``max_train``, ...).

    >>> build_stream("digits", "split_task", seed=0).name
    'digits/split_task'
    """
    if scenario not in _BUILDERS:
        raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    if DATASETS[dataset].time_ordered != (scenario == "stream"):
        valid = [n for n, s in DATASETS.items() if s.time_ordered == (scenario == "stream")]
        raise ValueError(f"scenario {scenario!r} makes no sense for dataset {dataset!r}: "
                         f"{'only' if scenario == 'stream' else 'not'} for time-ordered streams; "
                         f"use it with {', '.join(valid)}")
    resolved_mirror = resolve_mirror(mirror)
    ds = _load_memo(dataset, str(resolve_root(root)),
                    "" if resolved_mirror is None else str(resolved_mirror), download)
    return _BUILDERS[scenario](ds, seed=seed, **scenario_kwargs)
