"""Inputs for an offline GPU node, built on a CPU machine (``make gpu-bundle``).

An offline GPU node has a CUDA PyTorch, numpy, pandas, seaborn and scikit-learn, but no
network and no papermill, nbformat or pooch. ``make gpu-bundle`` writes ``gpu_bundle/``:

- ``wheels/``: papermill, nbformat, pooch, ipykernel and their dependencies as wheels for
  CPython 3.12 on manylinux x86_64 (``pip download``); the GPU script installs them with
  ``pip install --no-index --target``. Optional: without them the notebooks are rendered by
  executing their code cells directly (:mod:`paperlib.repro.gpu_check`).
- ``data-main/``: decoded arrays (uint8 images, compressed npz) of MNIST, Fashion-MNIST, Elec2
  and Weather in the data layer's own cache layout (``<folder>/<name>-<variant>-<digest>.npz``),
  so ``PAPERLIB_DATA_ROOT=gpu_bundle/data-main`` loads them with no other change.
- ``data-cifar10/``: a stratified subset of CIFAR-10 (:data:`CIFAR10_SUBSET` training and test
  images, seed 0), because all 60,000 images (about 160 MiB compressed) do not fit in one
  64 MiB carry. Its ``source`` says so, and every figure's footnote names the subset.
- ``BUNDLE.json``: every file and its size.

Each data folder must fit in :data:`MAX_CARRY` bytes together with the repository, because the
device tool carries at most 64 MiB per call; :func:`check_sizes` enforces the rule.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from paperlib.data import datasets as D

MiB = 1 << 20
#: Largest carried folder (one device call carries at most 64 MiB with the repository).
MAX_CARRY = 64 * MiB
#: CIFAR-10 images kept in the bundle: (train, test), stratified by class.
CIFAR10_SUBSET = (15000, 3000)
MAIN_DATASETS = ("mnist", "fashion_mnist", "elec2", "weather")
WHEEL_PACKAGES = ("papermill", "nbformat", "pooch", "ipykernel")
#: Packages the offline node's image already has (device notes, KINDS.md): their wheels are
#: dropped from the bundle, which is installed with ``pip install --no-deps``.
NODE_HAS = ("attrs", "certifi", "charset_normalizer", "click", "idna", "packaging", "psutil",
            "pygments", "python_dateutil", "pyyaml", "requests", "tqdm", "typing_extensions",
            "urllib3", "six")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64",
             "manylinux1_x86_64")


class BundleError(RuntimeError):
    """A bundle is over its size limit or cannot be built."""


def _cache_file(name: str, root: Path) -> Path:
    """The decoded cache of ``name`` under ``root``, decoding it first if needed."""
    spec = D._spec(name)
    D.load_dataset(name, root=root)
    for variant in spec.variants:
        path = D._cache_path(spec, variant, root)
        if path.is_file():
            return path
    raise BundleError(f"dataset {name!r} has no decoded cache under {root}")


def _subset(arrays: dict[str, np.ndarray], train: int, test: int) -> dict[str, np.ndarray]:
    from paperlib.data.streams import stratified_indices

    rng = np.random.default_rng(0)
    tr = stratified_indices(arrays["y_train"], train, rng)
    te = stratified_indices(arrays["y_test"], test, rng)
    return {"x_train": arrays["x_train"][tr], "y_train": arrays["y_train"][tr],
            "x_test": arrays["x_test"][te], "y_test": arrays["y_test"][te]}


def data_bundle(out: str | Path, names: Sequence[str], *, root: str | Path | None = None,
                subsets: Mapping[str, tuple[int, int]] | None = None,
                max_bytes: int = MAX_CARRY) -> list[Path]:
    """Write the decoded arrays of ``names`` as compressed npz files under ``out`` in the data
    layer's cache layout; ``subsets`` maps a name to ``(n_train, n_test)`` stratified counts.
    Raises :class:`BundleError` when the folder exceeds ``max_bytes``."""
    out, root_dir = Path(out), D.resolve_root(root)
    written = []
    for name in names:
        src = _cache_file(name, root_dir)
        with np.load(src, allow_pickle=False) as z:
            info = json.loads(str(z["info"][()]))
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        if subsets and name in subsets:
            n_train, n_test = subsets[name]
            arrays = _subset(arrays, n_train, n_test)
            info["source"] = (f"{info['source']}; subset {len(arrays['y_train']):,} train / "
                              f"{len(arrays['y_test']):,} test images, GPU bundle, seed 0")
        dest = out / src.relative_to(root_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays, info=np.array(json.dumps(info)))
        tmp.replace(dest)
        written.append(dest)
    check_sizes(out, max_bytes)
    return written


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def check_sizes(folder: str | Path, max_bytes: int = MAX_CARRY) -> int:
    """Total bytes under ``folder``; :class:`BundleError` when over ``max_bytes``."""
    total = folder_bytes(folder)
    if total > max_bytes:
        raise BundleError(f"{folder} holds {total / MiB:.1f} MiB, over the {max_bytes / MiB:.0f} "
                          f"MiB a device call can carry; take a smaller subset")
    return total


def wheel_bundle(out: str | Path, packages: Sequence[str] = WHEEL_PACKAGES,
                 python_version: str = "3.12", skip: Sequence[str] = NODE_HAS) -> list[Path]:
    """``pip download`` ``packages`` and their dependencies as binary wheels for CPython
    ``python_version`` on manylinux x86_64 into ``out``, then drop the wheels of ``skip``
    (already on the node); return the wheel files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
           "--python-version", python_version, "--implementation", "cp", "-d", str(out)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run([*cmd, *packages], check=True)
    for whl in out.glob("*.whl"):
        if whl.name.split("-")[0].lower() in skip:
            whl.unlink()
    return sorted(out.glob("*.whl"))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paperlib.repro.bundle", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="gpu_bundle")
    ap.add_argument("--no-wheels", action="store_true")
    ap.add_argument("--cifar10", default=f"{CIFAR10_SUBSET[0]},{CIFAR10_SUBSET[1]}",
                    help="CIFAR-10 subset: train,test images")
    args = ap.parse_args(argv)
    out = Path(args.out)
    n_train, n_test = (int(v) for v in args.cifar10.split(","))
    record: dict[str, dict[str, int]] = {}
    if not args.no_wheels:
        wheel_bundle(out / "wheels")
    data_bundle(out / "data-main", MAIN_DATASETS)
    data_bundle(out / "data-cifar10", ["cifar10"], subsets={"cifar10": (n_train, n_test)})
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        record[folder.name] = {str(p.relative_to(folder)): p.stat().st_size
                               for p in sorted(folder.rglob("*")) if p.is_file()}
        print(f"{folder.name:<14} {folder_bytes(folder) / MiB:6.1f} MiB "
              f"({len(record[folder.name])} files)")
    (out / "BUNDLE.json").write_text(json.dumps(
        {"cifar10_subset": [n_train, n_test], "files": record}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
