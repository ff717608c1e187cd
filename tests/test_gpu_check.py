"""The GPU script's CPU dry run, and the offline bundle's size rule and loading."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from paperlib.data.datasets import load_dataset
from paperlib.repro import bundle
from paperlib.repro.gpu_check import PART_BYTES, main, pack


def test_gpu_check_dry_run(tmp_path: Path, need_mirror: Callable[..., Path],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``make gpu-check DRY_RUN=1`` on one notebook: runs, figures, manifest, archive."""
    need_mirror("mnist/train-images-idx3-ubyte.gz")
    monkeypatch.setenv("PAPERLIB_DATA_MIRROR", str(need_mirror()))
    out, figs = tmp_path / "out", tmp_path / "figures"
    assert main(["--smoke", "--notebooks", "06_bandit_dynamics", "--workers", "1",
                 "--renderer", "exec", "--out", str(out), "--figures-dir", str(figs),
                 "--results", str(tmp_path / "results")]) == 0
    manifest = json.loads((figs / "GPU_CHECK.json").read_text())
    assert manifest["profile"] == "smoke" and manifest["device"].startswith("cpu")
    assert manifest["policy"]["tf32"] is False
    row = manifest["notebooks"]["06_bandit_dynamics"]
    assert row["runs"] == 1 and row["steps"] > 0 and row["renderer"] == "exec"
    assert manifest["total_seconds"] >= manifest["grid_seconds"] > 0
    assert (figs / "06_bandit_dynamics_arms.png").is_file()
    parts = sorted(out.glob("paperlib-smoke.tar.gz.part*"))
    assert 1 <= len(parts) <= 8 and all(p.stat().st_size <= PART_BYTES for p in parts)
    archive = tmp_path / "all.tar.gz"
    archive.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert any(n.endswith("GPU_CHECK.json") for n in names)
    assert any(n.endswith("summary.json") or "results" in n for n in names)


def test_pack_splits_into_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("paperlib.repro.gpu_check.PART_BYTES", 1000)
    f = tmp_path / "noise.bin"
    f.write_bytes(np.random.default_rng(0).integers(0, 256, 3500, dtype=np.uint8).tobytes())
    parts = pack([f], tmp_path / "out", "x", tmp_path)
    assert len(parts) == 4 and max(p.stat().st_size for p in parts) <= 1000
    monkeypatch.setattr("paperlib.repro.gpu_check.MAX_PARTS", 2)
    with pytest.raises(RuntimeError, match="more than 2 parts"):
        pack([f], tmp_path / "out2", "x", tmp_path)


def test_data_bundle_sizes_and_loading(tmp_path: Path, need_mirror: Callable[..., Path]) -> None:
    """A bundle of decoded arrays loads through the data layer (``PAPERLIB_DATA_ROOT``), a
    subset says so in its source, and a bundle over the size rule is refused."""
    mirror = need_mirror("weather/weather.csv")
    root = tmp_path / "root"
    full = load_dataset("weather", root=root, mirror=mirror)
    out = tmp_path / "bundle"
    files = bundle.data_bundle(out, ["weather"], root=root)
    assert bundle.check_sizes(out) == sum(f.stat().st_size for f in files) <= bundle.MAX_CARRY
    with np.load(files[0]) as z:  # compressed, so smaller than the plain cache
        assert z["x_train"].dtype == full.x_train.dtype
    assert files[0].stat().st_size < next(root.rglob("*.npz")).stat().st_size
    loaded = load_dataset("weather", root=out, mirror="", download=False)
    np.testing.assert_array_equal(loaded.x_train, full.x_train)
    np.testing.assert_array_equal(loaded.y_train, full.y_train)
    sub = tmp_path / "subset"
    bundle.data_bundle(sub, ["weather"], root=root, subsets={"weather": (1000, 0)})
    small = load_dataset("weather", root=sub, mirror="", download=False)
    assert len(small.y_train) == 1000 and "subset" in small.source
    assert np.bincount(small.y_train).tolist() == pytest.approx(
        (np.bincount(full.y_train) * 1000 / len(full.y_train)).round().tolist(), abs=1)
    with pytest.raises(bundle.BundleError, match="over the"):
        bundle.data_bundle(tmp_path / "too_big", ["weather"], root=root, max_bytes=1000)
