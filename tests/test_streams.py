"""Stream builders: class sets, disjoint shards, determinism, transforms, no look-ahead scaling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.data import datasets, streams
from paperlib.data.datasets import Dataset, load_dataset
from paperlib.engine.samples import SeenData


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, known_hash: str, dest: Path) -> Path:
        raise OSError("network disabled in tests")

    monkeypatch.setattr(datasets, "_fetch", offline)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def identity_dataset(n_train: int = 1000, n_test: int = 200) -> Dataset:
    """Images ``(N, 1, 2, 2)`` whose first pixel is the sample's index: a per-sample identity."""

    def make(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.zeros((n, 1, 2, 2), np.float32)
        x[:, 0, 0, 0] = np.arange(n) + offset
        return x, (np.arange(n) % 10).astype(np.int64)

    x_tr, y_tr = make(n_train, 0)
    x_te, y_te = make(n_test, 100_000)
    return Dataset("ident", x_tr, y_tr, x_te, y_te, 10, (1, 2, 2), "bundled")


def ids(x: torch.Tensor) -> list[int]:
    return x[:, 0, 0, 0].long().tolist()


def classes(chunk: streams.Chunk | streams.TestSplit) -> set[int]:
    return set(chunk.y.unique().tolist())


def row_keys(x: torch.Tensor | np.ndarray) -> set[bytes]:
    arr = np.asarray(x, dtype=np.float32)
    return {r.tobytes() for r in arr.reshape(len(arr), -1)}


# ------------------------------------------------------------------ shards


def test_data_incremental_shards_partition_training_set() -> None:
    ds = identity_dataset()
    s = streams.data_incremental(ds, seed=3, n_shards=10, initial_shards=5)
    parts = [ids(s.initial.x)] + [ids(c.x) for c in s.rounds]
    flat = [i for p in parts for i in p]
    assert len(flat) == len(set(flat)) == 1000 and set(flat) == set(range(1000))
    assert [len(p) for p in parts] == [500] + [100] * 5
    assert s.initial.name == "shards 1-5" and [c.name for c in s.rounds][0] == "shard 6"
    for chunk in [s.initial, *s.rounds]:  # labels travel with their samples
        assert (chunk.y == chunk.x[:, 0, 0, 0].long() % 10).all()
    assert [t.name for t in s.test_splits] == ["all"] and len(s.test_splits[0]) == 200
    assert s.test_splits[0].learned_at == len(s.rounds)  # learned until the end: no forgetting


def test_subsampling_is_stratified_and_shards_cover_it() -> None:
    ds = identity_dataset()
    s = streams.data_incremental(ds, seed=0, max_train=300, max_test=50)
    flat = ids(s.initial.x) + [i for c in s.rounds for i in ids(c.x)]
    assert len(flat) == len(set(flat)) == 300
    assert np.bincount(np.array(flat) % 10).tolist() == [30] * 10
    assert len(s.test_splits[0]) == 50 and len(s.probe) == 50


def test_class_incremental_class_sets(digits: Dataset) -> None:
    s = streams.class_incremental(digits, seed=0, n_new_shards=4)
    assert classes(s.initial) == {0, 1, 2, 3, 4}
    assert len(s.initial) == int(np.isin(digits.y_train, range(5)).sum())
    assert len(s.rounds) == 4
    for chunk in s.rounds:
        assert classes(chunk) == {5, 6, 7, 8, 9} and chunk.name.startswith("new classes, shard")
    old, new = s.test_splits
    assert (old.name, old.introduced_at, new.name, new.introduced_at) == ("old", 0, "new", 1)
    # the new classes keep arriving until the last round: forgetting measures the old ones only
    assert (old.learned_at, new.learned_at) == (0, len(s.rounds))
    assert classes(old) == {0, 1, 2, 3, 4} and classes(new) == {5, 6, 7, 8, 9}
    assert len(old) + len(new) == len(digits.y_test) and classes(s.probe) == set(range(10))


def test_class_incremental_shards_disjoint() -> None:
    s = streams.class_incremental(identity_dataset(), seed=1)
    flat = ids(s.initial.x) + [i for c in s.rounds for i in ids(c.x)]
    assert len(flat) == len(set(flat)) == 1000


def test_split_task_classes(digits: Dataset) -> None:
    s = streams.split_task(digits, seed=0)
    chunks = [s.initial, *s.rounds]
    for t, (chunk, split) in enumerate(zip(chunks, s.test_splits, strict=True)):
        assert chunk.classes == split.classes == (2 * t, 2 * t + 1)
        assert classes(chunk) == classes(split) == {2 * t, 2 * t + 1}
        assert chunk.name == split.name == f"task {t}" and split.introduced_at == t
    assert s.probe.classes == (0, 1) and classes(s.probe) == {0, 1}


# ------------------------------------------------------------------ determinism, meta


def _tensors(s: streams.Stream) -> list[torch.Tensor]:
    parts = [s.initial, *s.rounds, *s.test_splits, s.probe]
    return [t for p in parts for t in (p.x, p.y)]


@pytest.mark.parametrize("scenario", ["data_incremental", "class_incremental", "rotated",
                                      "permuted", "split_task", "split_class"])
def test_determinism_by_seed(scenario: str) -> None:
    a = streams.build_stream("digits", scenario, seed=7)
    b = streams.build_stream("digits", scenario, seed=7)
    c = streams.build_stream("digits", scenario, seed=8)
    assert all(torch.equal(u, v) for u, v in zip(_tensors(a), _tensors(b), strict=True))
    assert not torch.equal(a.rounds[0].x, c.rounds[0].x)
    meta = json.loads(json.dumps(a.meta))
    assert meta["scenario"] == scenario and meta["seed"] == 7 and meta["name"] == "digits"
    assert meta["source"] == "bundled" and "scenario_params" in meta


def test_build_stream_errors() -> None:
    with pytest.raises(ValueError, match="valid scenarios"):
        streams.build_stream("digits", "nope", seed=0)
    with pytest.raises(ValueError, match="makes no sense"):
        streams.build_stream("mnist", "stream", seed=0)
    with pytest.raises(ValueError, match="makes no sense"):
        streams.build_stream("elec2", "rotated", seed=0)
    assert set(streams.SCENARIOS) == {"data_incremental", "class_incremental", "rotated",
                                      "permuted", "stream", "split_task", "split_class"}


# ------------------------------------------------------------------ domains


def test_rotated_domains(digits: Dataset) -> None:
    s = streams.rotated(digits, seed=0, angles=(0, 90, 45))
    assert [t.name for t in s.test_splits] == ["rot 0°", "rot 90°", "rot 45°"]
    assert [t.introduced_at for t in s.test_splits] == [0, 1, 2]
    assert [t.learned_at for t in s.test_splits] == [0, 1, 2]  # each arrives in one round
    assert torch.equal(s.test_splits[0].x, torch.tensor(digits.x_test))
    assert row_keys(s.initial.x) <= row_keys(digits.x_train)  # domain 0 is untransformed
    expected = torch.rot90(torch.tensor(digits.x_test), 1, dims=(2, 3))
    assert torch.allclose(s.test_splits[1].x, expected, atol=1e-5)
    assert not torch.allclose(s.test_splits[2].x, s.test_splits[0].x)
    sizes = [len(s.initial)] + [len(c) for c in s.rounds]
    assert sum(sizes) == len(digits.y_train) and max(sizes) - min(sizes) <= 1


def test_permuted_domains_are_pixel_permutations() -> None:
    rng = np.random.default_rng(0)
    x_tr = rng.random((300, 1, 4, 4), dtype=np.float32)
    x_te = rng.random((50, 1, 4, 4), dtype=np.float32)
    y_tr, y_te = np.arange(300) % 10, np.arange(50) % 10
    ds = Dataset("rand", x_tr, y_tr, x_te, y_te, 10, (1, 4, 4), "bundled")
    s = streams.permuted(ds, seed=0, n_domains=4)
    flat = torch.from_numpy(x_te).flatten(1)
    perms = []
    for d, split in enumerate(s.test_splits):
        assert split.name == f"perm {d}" and split.introduced_at == d
        out = split.x.flatten(1)
        perm = torch.tensor([int((flat[0] == v).nonzero()) for v in out[0]])
        assert torch.equal(out, flat[:, perm])  # one permutation for every image
        perms.append(perm)
    assert torch.equal(perms[0], torch.arange(16))
    assert len({tuple(p.tolist()) for p in perms}) == 4
    for d, chunk in enumerate([s.initial, *s.rounds]):  # training parts: same permutation
        flat_chunk = chunk.x.flatten(1)
        restored = torch.empty_like(flat_chunk)
        restored[:, perms[d]] = flat_chunk
        assert row_keys(restored) <= row_keys(x_tr)


# ------------------------------------------------------------------ time-ordered scaling


def stream_dataset(n: int = 400, f: int = 3, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, f)) * [1.0, 10.0, 0.0] + np.arange(n)[:, None] / 50).astype(
        np.float32)
    y = rng.integers(0, 2, n).astype(np.int64)
    return Dataset("synthetic", x, y, np.zeros((0, f), np.float32), np.zeros(0, np.int64), 2,
                   (f,), "bundled", time_ordered=True)


def test_time_ordered_layout() -> None:
    s = streams.time_ordered(stream_dataset(), seed=0, n_chunks=10, initial_chunks=2,
                             test_every=5)
    assert s.initial.name == "chunks 0-1" and len(s.initial) == 64
    assert [c.name for c in s.rounds] == [f"chunk {k}" for k in range(2, 10)]
    assert [t.introduced_at for t in s.test_splits] == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert all(len(t) == 8 for t in s.test_splits) and len(s.probe) == 16
    assert s.input_shape == (3,) and s.n_classes == 2
    assert torch.isfinite(s.initial.x).all()  # the constant column (std 0) is guarded


def _rewritten(ds: Dataset, start: int, delta: float = 1000.0) -> Dataset:
    x = ds.x_train.copy()
    x[start:] += delta
    return Dataset("synthetic", x, ds.y_train, ds.x_test, ds.y_test, 2, (3,), "bundled",
                   time_ordered=True)


@pytest.mark.parametrize("chunk", [2, 5, 9])
def test_time_ordered_no_look_ahead(chunk: int) -> None:
    """Rewriting the raw data from chunk ``chunk`` on changes no row that arrived before it."""
    ds = stream_dataset()  # 400 rows in 10 chunks of 40
    kw = {"seed": 0, "n_chunks": 10, "initial_chunks": 2, "test_every": 5}
    a = streams.time_ordered(ds, **kw)
    b = streams.time_ordered(_rewritten(ds, 40 * chunk), **kw)
    assert torch.equal(a.initial.x, b.initial.x) and torch.equal(a.probe.x, b.probe.x)
    first_changed = chunk - 2  # index into rounds
    for ca, cb in zip(a.rounds[:first_changed], b.rounds[:first_changed], strict=True):
        assert torch.equal(ca.x, cb.x)
    for ta, tb in zip(a.test_splits[:chunk], b.test_splits[:chunk], strict=True):
        assert torch.equal(ta.x, tb.x)
    assert not torch.equal(a.rounds[first_changed].x, b.rounds[first_changed].x)


def test_time_ordered_initial_rows_never_see_later_chunks() -> None:
    """Even the initial window's scaling ignores everything after it."""
    ds = stream_dataset()
    kw = {"seed": 0, "n_chunks": 10, "initial_chunks": 2, "test_every": 5}
    a = streams.time_ordered(ds, **kw)
    b = streams.time_ordered(_rewritten(ds, 80, delta=-7.0), **kw)
    assert torch.equal(a.initial.x, b.initial.x)
    assert torch.equal(a.test_splits[0].x, b.test_splits[0].x)


def test_time_ordered_one_scale_for_every_stored_row() -> None:
    """The same raw row is scaled identically in whichever chunk it arrives, so rows stored
    early and rows arriving late are on one scale, and storing them rescales nothing."""
    ds = stream_dataset()
    x = ds.x_train.copy()
    x[330] = x[100]  # a row of chunk 2 (train position) repeated in chunk 8 (train position)
    ds = Dataset("synthetic", x, ds.y_train, ds.x_test, ds.y_test, 2, (3,), "bundled",
                 time_ordered=True)
    s = streams.time_ordered(ds, seed=0, n_chunks=10, initial_chunks=2, test_every=5)
    early, late = s.rounds[0], s.rounds[6]
    assert early.name == "chunk 2" and late.name == "chunk 8"
    row_early = early.x[(100 - 80) - (100 - 80) // 5]
    row_late = late.x[(330 - 320) - (330 - 320) // 5]
    assert torch.equal(row_early, row_late)
    store = SeenData()
    chunks = [s.initial, *s.rounds]
    for r, c in enumerate(chunks):
        store.add(c, r)
    assert torch.equal(store.x, torch.cat([c.x for c in chunks]))  # stored exactly as served


def _check_chunk_scaling(raw: np.ndarray, s: streams.Stream, k: int, n_chunks: int,
                         test_every: int, initial_chunks: int) -> None:
    """Chunk ``k``'s rows equal (raw - mean) / std over the initial chunks' training rows."""
    chunks = np.array_split(np.arange(len(raw)), n_chunks)
    train = [c[(np.arange(len(c)) + 1) % test_every != 0] for c in chunks]
    test = [c[(np.arange(len(c)) + 1) % test_every == 0] for c in chunks]
    fit = raw[np.concatenate(train[:initial_chunks])].astype(np.float64)
    mean, std = fit.mean(0), fit.std(0)
    std[std == 0] = 1.0
    if k >= initial_chunks:
        round_chunk = s.rounds[k - initial_chunks]
        assert round_chunk.name == f"chunk {k}"
        np.testing.assert_allclose(round_chunk.x.numpy(), (raw[train[k]] - mean) / std,
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.test_splits[k].x.numpy(), (raw[test[k]] - mean) / std,
                               rtol=1e-5, atol=1e-5)


def test_time_ordered_scaling_uses_initial_training_rows_only() -> None:
    ds = stream_dataset()
    s = streams.time_ordered(ds, seed=0, n_chunks=10, initial_chunks=2, test_every=5)
    for k in (0, 1, 2, 5, 9):
        _check_chunk_scaling(ds.x_train, s, k, 10, 5, 2)


@pytest.mark.mirror
def test_elec2_stream_scaling(need_mirror: Callable[..., Path], session_data_root: Path) -> None:
    mirror = need_mirror("elec2/elec.csv")
    s = streams.build_stream("elec2", "stream", seed=0, mirror=mirror, root=session_data_root,
                             download=False)
    raw = load_dataset("elec2", root=session_data_root, mirror=mirror, download=False).x_train
    assert len(s.rounds) == 18 and len(s.test_splits) == 20 and s.input_shape == (6,)
    total = len(s.initial) + sum(len(c) for c in s.rounds) + sum(len(t) for t in s.test_splits)
    assert total == 45312
    for k in (2, 11):
        _check_chunk_scaling(raw, s, k, 20, 5, 2)
    assert s.meta["name"] == "elec2" and s.meta["source"] == "mirror"
