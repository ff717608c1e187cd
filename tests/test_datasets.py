"""Dataset loaders: mirror reads, label counts, checksum failures, caches, offline behaviour."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from paperlib.data import datasets
from paperlib.data.datasets import DataError, available_offline, load_dataset

MNIST_FILES = [f"mnist/{s}.gz" for s in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never download: the single network entry point raises."""

    def offline(url: str, known_hash: str, dest: Path) -> Path:
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(datasets, "_fetch", offline)


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# ------------------------------------------------------------------ bundled / no mirror


def test_digits_bundled() -> None:
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1347, 1, 8, 8) and ds.x_test.shape == (450, 1, 8, 8)
    assert len(ds.y_train) + len(ds.y_test) == 1797
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.source == "bundled" and not ds.lossy and not ds.time_ordered
    assert set(np.unique(ds.y_test)) == set(range(10))
    meta = json.loads(json.dumps(ds.meta))
    assert meta["shapes"]["x_test"] == [450, 1, 8, 8] and meta["n_classes"] == 10
    assert available_offline("digits")


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="valid names"):
        load_dataset("imagenet")


def test_missing_data_names_file_and_fix(tmp_path: Path) -> None:
    mirror, root = tmp_path / "mirror", tmp_path / "root"
    mirror.mkdir()
    assert not available_offline("mnist", mirror=mirror, root=root)
    with pytest.raises(DataError) as err:
        load_dataset("mnist", root=root, mirror=mirror)  # download=None -> tries, no network
    msg = str(err.value)
    assert "'mnist'" in msg and "PAPERLIB_DATA_MIRROR" in msg
    assert str(mirror / "mnist" / "train-images-idx3-ubyte.gz") in msg or \
        str(root / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert "network disabled" in msg
    with pytest.raises(DataError, match="download=False"):
        load_dataset("elec2", root=root, mirror=mirror, download=False)
    assert _files(root) == []


def test_bad_download_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Second line of defence: a fetched file that fails verification is deleted."""

    def fake(url: str, known_hash: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("feat_1,target\n1.0,0\n")
        return dest

    monkeypatch.setattr(datasets, "_fetch", fake)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("weather", root=tmp_path, mirror="")
    assert _files(tmp_path) == []


def test_root_and_mirror_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERLIB_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", "")
    assert datasets.resolve_root() == tmp_path and datasets.resolve_root("x") == Path("x")
    assert datasets.resolve_mirror() is None
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", str(tmp_path / "m"))
    assert datasets.resolve_mirror() == tmp_path / "m" and datasets.resolve_mirror("") is None


# ------------------------------------------------------------------ mirror


@pytest.mark.mirror
def test_mnist_counts_and_cache(need_mirror: Callable[..., Path], session_data_root: Path
                                ) -> None:
    mirror = need_mirror(*MNIST_FILES)
    ds = load_dataset("mnist", root=session_data_root, mirror=mirror, download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == MNIST_TEST_COUNTS
    assert ds.source == "mirror" and not ds.lossy
    assert ds.checksums["mnist/train-images-idx3-ubyte"].startswith("ba891046")
    # The decoded cache now serves the data even without the mirror.
    again = load_dataset("mnist", root=session_data_root, mirror="", download=False)
    assert np.array_equal(again.x_train, ds.x_train) and again.meta == ds.meta


@pytest.mark.mirror
def test_fashion_mnist_counts(need_mirror: Callable[..., Path], session_data_root: Path) -> None:
    mirror = need_mirror(*[f.replace("mnist/", "fashion-mnist/") for f in MNIST_FILES])
    ds = load_dataset("fashion_mnist", root=session_data_root, mirror=mirror, download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10


@pytest.mark.mirror
def test_cifar10_jpeg(need_mirror: Callable[..., Path], session_data_root: Path) -> None:
    """Decodes 60000 JPEGs once (timed), then loads from the decoded cache."""
    mirror = need_mirror("cifar10/cifar10-jpeg.tar")
    t0 = time.perf_counter()
    ds = load_dataset("cifar10", root=session_data_root, mirror=mirror, download=False)
    t1 = time.perf_counter()
    cached = load_dataset("cifar10", root=session_data_root, mirror=mirror, download=False)
    t2 = time.perf_counter()
    print(f"cifar10: first load {t1 - t0:.1f} s, cached load {t2 - t1:.2f} s")
    assert ds.x_train.shape == (50000, 3, 32, 32) and ds.x_test.shape == (10000, 3, 32, 32)
    assert ds.input_shape == (3, 32, 32) and ds.x_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.lossy and ds.source == "mirror" and ds.meta["lossy"] is True
    means = ds.x_train.mean(axis=(0, 2, 3), dtype=np.float64) / 255.0
    assert np.allclose(means, [0.4913, 0.4821, 0.4465], atol=0.01)
    assert cached.lossy and np.array_equal(cached.y_test, ds.y_test)


@pytest.mark.mirror
def test_elec2_and_weather(need_mirror: Callable[..., Path], session_data_root: Path) -> None:
    mirror = need_mirror("elec2/elec.csv", "weather/weather.csv")
    elec = load_dataset("elec2", root=session_data_root, mirror=mirror, download=False)
    assert elec.x_train.shape == (45312, 6) and elec.x_train.dtype == np.float32
    assert elec.x_test.shape == (0, 6) and elec.y_test.shape == (0,) and elec.time_ordered
    assert set(np.unique(elec.y_train)) == {0, 1}
    weather = load_dataset("weather", root=session_data_root, mirror=mirror, download=False)
    assert weather.x_train.shape == (18159, 8) and weather.x_test.shape == (0, 8)
    assert set(np.unique(weather.y_train)) == {0, 1} and weather.n_classes == 2
    assert available_offline("weather", mirror=mirror, root=session_data_root)


@pytest.mark.mirror
def test_corrupt_mirror_file(need_mirror: Callable[..., Path], tmp_path: Path) -> None:
    src = need_mirror(*MNIST_FILES)
    mirror, root = tmp_path / "mirror", tmp_path / "root"
    (mirror / "mnist").mkdir(parents=True)
    for f in MNIST_FILES:
        shutil.copy(src / f, mirror / f)
    bad = mirror / "mnist" / "train-labels-idx1-ubyte.gz"
    payload = bytearray(gzip.decompress(bad.read_bytes()))
    payload[100:110] = bytes(b ^ 0xFF for b in payload[100:110])
    bad.write_bytes(gzip.compress(bytes(payload)))  # a valid gz of corrupted idx bytes
    actual = hashlib.sha256(payload).hexdigest()
    with pytest.raises(DataError) as err:
        load_dataset("mnist", root=root, mirror=mirror)
    msg = str(err.value)
    assert "'mnist'" in msg and str(bad) in msg and actual in msg
    assert "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5" in msg
    assert not root.exists() or _files(root) == []


@pytest.mark.mirror
def test_simulated_canonical_download(need_mirror: Callable[..., Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = need_mirror("elec2/elec.csv")
    calls: list[tuple[str, str]] = []

    def fake(url: str, known_hash: str, dest: Path) -> Path:
        calls.append((url, known_hash))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mirror / "elec2" / "elec.csv", dest)
        return dest

    monkeypatch.setattr(datasets, "_fetch", fake)
    ds = load_dataset("elec2", root=tmp_path, mirror="")
    assert ds.source == "canonical" and (tmp_path / "elec2" / "elec.csv").is_file()
    assert calls == [(datasets._STREAMS_URL + "elec.csv", "sha256:" + datasets._ELEC_SHA)]


@pytest.mark.mirror
def test_corrupt_cache_is_rebuilt(need_mirror: Callable[..., Path], tmp_path: Path) -> None:
    mirror = need_mirror("weather/weather.csv")
    first = load_dataset("weather", root=tmp_path, mirror=mirror)
    (cache,) = (tmp_path / "weather").glob("*.npz")
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cache.write_bytes(bytes(raw))
    again = load_dataset("weather", root=tmp_path, mirror=mirror)
    assert np.array_equal(again.x_train, first.x_train)
    assert [p.name for p in _files(tmp_path)] == [cache.name]
