"""Checksummed, mirror-aware dataset loaders.

:func:`load_dataset` returns a :class:`Dataset` of numpy arrays for one of ``mnist``,
``fashion_mnist``, ``cifar10``, ``elec2``, ``weather`` and ``digits``.

Where the raw files come from, in order:

1. the **data root** (``root=``, else ``$PAPERLIB_DATA_ROOT``, else ``<repo>/data`` in a source
   checkout, else ``pooch.os_cache("paperlib")``): earlier downloads and the decoded-array cache;
2. the **mirror** (``mirror=``, else ``$PAPERLIB_DATA_MIRROR``), a folder laid out like the
   project's offline mirror (``mnist/train-images-idx3-ubyte.gz``, ``cifar10/cifar10-jpeg.tar``,
   ``elec2/elec.csv`` ...). Mirror files are read in place, never copied into the root;
3. the **canonical online source**, downloaded into the root with :func:`pooch.retrieve`.

Checksum policy: MNIST-family idx files are checked by the sha256 of their *decompressed*
bytes (mirrors re-gzip them); the CIFAR-10 JPEG tar and the stream csv files by the sha256 of the
file; canonical downloads additionally by pooch's md5/sha256 check. Any mismatch or missing file
raises :class:`DataError` with one message that says how to fix it.

Decoded-array cache: after the first successful load the arrays are written (temp file +
:func:`os.replace`, so a crash never leaves a half-written cache) to
``<root>/<folder>/<dataset>-<variant>-<digest>.npz``, where ``digest`` is derived from the
*expected* checksums of the source files. Because a source is only ever decoded after it matched
those checksums, the digest names exactly the bytes the cache came from: a different source
version (a changed checksum table) gets a different cache name, so stale caches are never read.
A cache hit therefore trusts the cache instead of re-hashing the (up to 90 MB) source on every
process start; the cache's own integrity is checked by zip's CRC-32 on read and by the digest
stored inside it, and an unreadable cache is deleted and rebuilt from the source.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paperlib.data.dataset_registry import (  # noqa: F401  (re-exported: the registry of this module)
    _CIFAR_JPEG_SHA,
    _ELEC_SHA,
    _STREAMS_URL,
    _WEATHER_SHA,
    CIFAR10_CLASSES,
    DATASETS,
    Arrays,
    _File,
    _Spec,
    _Variant,
)

log = logging.getLogger(__name__)

ENV_ROOT = "PAPERLIB_DATA_ROOT"
ENV_MIRROR = "PAPERLIB_DATA_MIRROR"
_CACHE_FORMAT = 1


class DataError(RuntimeError):
    """A dataset is missing, corrupt or cannot be fetched; the message says how to fix it."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """One dataset as numpy arrays (read-only; copy before modifying).

    Attributes:
        name: registry name, e.g. ``"mnist"``.
        x_train, x_test: images ``(N, C, H, W)`` uint8 in ``[0, 255]`` (``digits``: float32 in
            ``[0, 1]``), or tabular rows ``(N, F)`` float32, raw and unscaled.
        y_train, y_test: labels ``(N,)`` int64 in ``[0, n_classes)``.
        n_classes: number of classes.
        input_shape: shape of one input, ``(C, H, W)`` or ``(F,)``.
        source: ``"canonical"`` (official files, downloaded or found in the data root),
            ``"mirror"`` (read from the mirror) or ``"bundled"`` (ships with a package).
        lossy: True when the pixels differ from the canonical release (the CIFAR-10 JPEG copy).
        description: what the data is; citation: the reference to cite.
        checksums: ``{relative file: sha256}`` of the verified source bytes.
        time_ordered: True for streams (elec2, weather): every row is in ``x_train``/``y_train``
            in arrival order and ``x_test``/``y_test`` are empty ``(0, F)`` / ``(0,)`` arrays.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    input_shape: tuple[int, ...]
    source: str
    lossy: bool = False
    description: str = ""
    citation: str = ""
    checksums: dict[str, str] = field(default_factory=dict)
    time_ordered: bool = False

    @property
    def meta(self) -> dict[str, Any]:
        """JSON-serialisable provenance: name, source, lossy flag, shapes, checksums.

        >>> load_dataset("digits").meta["shapes"]["x_train"]
        [1347, 1, 8, 8]
        """
        arrays = {"x_train": self.x_train, "y_train": self.y_train,
                  "x_test": self.x_test, "y_test": self.y_test}
        return {
            "name": self.name,
            "source": self.source,
            "lossy": self.lossy,
            "n_classes": int(self.n_classes),
            "input_shape": list(self.input_shape),
            "shapes": {k: list(v.shape) for k, v in arrays.items()},
            "checksums": dict(self.checksums),
            "time_ordered": self.time_ordered,
            "citation": self.citation,
        }


# --------------------------------------------------------------------------- locations


def resolve_root(root: str | Path | None = None) -> Path:
    """The data root: ``root``, else ``$PAPERLIB_DATA_ROOT``, else ``<repo>/data`` in a source
    checkout (a ``data/`` folder and ``pyproject.toml`` next to ``paperlib/``), else the user
    cache ``pooch.os_cache("paperlib")``."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(ENV_ROOT, "")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent.parent
    if (repo / "data").is_dir() and (repo / "pyproject.toml").is_file():
        return repo / "data"
    import pooch

    return Path(pooch.os_cache("paperlib"))


def resolve_mirror(mirror: str | Path | None = None) -> Path | None:
    """The mirror folder: ``mirror``, else ``$PAPERLIB_DATA_MIRROR``; ``""`` means none."""
    value = os.environ.get(ENV_MIRROR, "") if mirror is None else str(mirror)
    return Path(value).expanduser() if value else None


def _fetch(url: str, known_hash: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` with a hash check (pooch writes via a temp file).

    The single network entry point: tests monkeypatch it to simulate being offline.
    """
    import pooch

    return Path(pooch.retrieve(url, known_hash=known_hash, fname=dest.name,
                               path=dest.parent, progressbar=False))


# --------------------------------------------------------------------------- verification


def _digests(path: Path, gunzip: bool) -> tuple[str, str]:
    """``(sha256, md5)`` of the file, or of its decompressed bytes when ``gunzip``."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _verify(spec: _Spec, f: _File, path: Path, where: str) -> str:
    """Check ``path`` against ``f``'s checksum; return its sha256 or raise :class:`DataError`."""
    what = "sha256 of the decompressed bytes" if f.gunzip else "sha256"
    try:
        sha, md5 = _digests(path, f.gunzip)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(
            f"dataset {spec.name!r}: cannot read {path} ({type(exc).__name__}: {exc}). "
            f"{_fix_corrupt(path, where)}") from exc
    if f.sha256 is not None and sha != f.sha256:
        bad = (f.sha256, sha)
    elif f.sha256 is None and f.md5 is not None and md5 != f.md5:
        what, bad = "md5", (f.md5, md5)
    else:
        return sha
    raise DataError(
        f"dataset {spec.name!r}: checksum mismatch for {path} ({what}): expected {bad[0]}, "
        f"got {bad[1]}. {_fix_corrupt(path, where)}")


def _fix_corrupt(path: Path, where: str) -> str:
    if where == "mirror":
        return (f"Fix: replace the corrupt mirror file {path} with an intact copy, or set "
                f"{ENV_MIRROR}=<dir> to an intact mirror (or unset it and go online).")
    return (f"Fix: delete {path} so that it is fetched again (from the mirror set by "
            f"{ENV_MIRROR}=<dir>, or downloaded when online).")


# --------------------------------------------------------------------------- decoded cache


def _cache_path(spec: _Spec, variant: _Variant, root: Path) -> Path:
    return root / spec.folder / f"{spec.name}-{variant.tag}-{variant.digest}.npz"


def _read_cache(path: Path, variant: _Variant) -> tuple[Arrays, dict[str, Any]] | None:
    """Arrays and stored metadata from a decoded cache, or None (deleting it) if unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"][()]))
            if info.get("digest") != variant.digest or info.get("format") != _CACHE_FORMAT:
                raise ValueError("cache digest/format mismatch")
            arrays = (z["x_train"], z["y_train"], z["x_test"], z["y_test"])
        return arrays, info
    except Exception as exc:  # noqa: BLE001 - any unreadable cache is rebuilt
        log.warning("discarding unreadable cache %s (%s)", path, exc)
        path.unlink(missing_ok=True)
        return None


def _write_cache(path: Path, arrays: Arrays, info: dict[str, Any]) -> None:
    """Write the npz atomically: a temp file in the same folder, then :func:`os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2],
                     y_test=arrays[3], info=np.array(json.dumps(info)))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; caches are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- loading


def _locate(spec: _Spec, variant: _Variant, root: Path, mirror: Path | None
            ) -> tuple[dict[str, tuple[Path, str]], list[Path]]:
    """Find each file in the root (``"root"``) or the mirror; also return the paths tried."""
    found: dict[str, tuple[Path, str]] = {}
    tried: list[Path] = []
    for f in variant.files:
        candidates = [(root / spec.folder / f.name, "root")]
        if mirror is not None:
            candidates.append((mirror / spec.folder / f.name, "mirror"))
        for path, where in candidates:
            tried.append(path)
            if path.is_file():
                found[f.name] = (path, where)
                break
    return found, tried


def _download(spec: _Spec, variant: _Variant, root: Path, found: dict[str, tuple[Path, str]],
              tried: list[Path]) -> dict[str, tuple[Path, str]]:
    """Fetch the variant's missing files into the root; raise :class:`DataError` on failure."""
    out = dict(found)
    for f in variant.files:
        if f.name in out:
            continue
        dest = root / spec.folder / f.name
        assert f.url is not None and f.download_hash is not None
        try:
            out[f.name] = (_fetch(f.url, f.download_hash, dest), "root")
        except Exception as exc:  # noqa: BLE001 - network/hash errors all become DataError
            raise DataError(_missing_message(spec, tried, f"{f.url} ({type(exc).__name__}: "
                                             f"{exc})", root)) from exc
    return out


def _missing_message(spec: _Spec, tried: list[Path], download: str | None, root: Path) -> str:
    looked = ", ".join(str(p) for p in tried)
    how = (f"could not be downloaded from {download}" if download
           else "downloading was not allowed (download=False) or no canonical URL exists")
    layout = " or ".join(", ".join(f"{spec.folder}/{f.name}" for f in v.files)
                         for v in spec.variants)
    return (f"dataset {spec.name!r}: required files not found (looked for {looked}) and {how}. "
            f"Fix: set {ENV_MIRROR}=<dir> to a mirror folder holding {layout}, or go online so "
            f"the canonical files are downloaded into {root}.")


def _build(spec: _Spec, variant: _Variant, files: dict[str, tuple[Path, str]], root: Path
           ) -> Dataset:
    """Verify every file, decode, write the cache and wrap the arrays in a :class:`Dataset`."""
    checksums: dict[str, str] = {}
    for f in variant.files:
        path, where = files[f.name]
        sha = _verify(spec, f, path, where)
        checksums[f"{spec.folder}/{f.name.removesuffix('.gz') if f.gunzip else f.name}"] = sha
    from_mirror = any(where == "mirror" for _, where in files.values())
    source = variant.mirror_source if from_mirror else variant.root_source
    try:
        arrays = variant.decode({name: p for name, (p, _) in files.items()})
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"dataset {spec.name!r}: verified files {sorted(files)} could not be "
                        f"decoded ({type(exc).__name__}: {exc}); please report this.") from exc
    info = {"format": _CACHE_FORMAT, "digest": variant.digest, "source": source,
            "checksums": checksums}
    _write_cache(_cache_path(spec, variant, root), arrays, info)
    return _wrap(spec, variant, arrays, info)


def _wrap(spec: _Spec, variant: _Variant | None, arrays: Arrays, info: dict[str, Any]) -> Dataset:
    for a in arrays:
        a.setflags(write=False)
    return Dataset(
        name=spec.name, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3],
        n_classes=spec.n_classes, input_shape=spec.input_shape, source=info["source"],
        lossy=bool(variant is not None and variant.lossy), description=spec.description,
        citation=spec.citation, checksums=dict(info["checksums"]),
        time_ordered=spec.time_ordered)


def _spec(name: str) -> _Spec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, *, root: str | Path | None = None, mirror: str | Path | None = None,
                 download: bool | None = None) -> Dataset:
    """Load a dataset, verifying checksums and caching the decoded arrays.

    Args:
        name: one of :data:`DATASETS` (``mnist``, ``fashion_mnist``, ``cifar10``, ``elec2``,
            ``weather``, ``digits``).
        root: data root for downloads and decoded caches (see :func:`resolve_root`).
        mirror: offline mirror folder (see :func:`resolve_mirror`); ``""`` disables it.
        download: ``None`` (default): decoded cache, then root, then mirror, then the canonical
            download. ``False``: never touch the network. ``True``: prefer the canonical
            source: skip the mirror (e.g. to get the lossless CIFAR-10 while a JPEG mirror is set).

    Raises:
        DataError: a file is missing and cannot be downloaded, or fails its checksum.

    >>> ds = load_dataset("digits")
    >>> ds.x_train.shape, ds.x_test.shape, ds.source
    ((1347, 1, 8, 8), (450, 1, 8, 8), 'bundled')
    """
    spec = _spec(name)
    if spec.bundled is not None:
        return _wrap(spec, None, spec.bundled(), {"source": "bundled", "checksums": {}})
    root_dir = resolve_root(root)
    mirror_dir = None if download is True else resolve_mirror(mirror)
    variants = [v for v in spec.variants if download is not True or v.downloadable]
    for variant in variants:
        cached = _read_cache(_cache_path(spec, variant, root_dir), variant)
        if cached is not None:
            return _wrap(spec, variant, *cached)
    tried_all: list[Path] = []
    partial: dict[_Variant, dict[str, tuple[Path, str]]] = {}
    for variant in variants:
        found, tried = _locate(spec, variant, root_dir, mirror_dir)
        if len(found) == len(variant.files):
            return _build(spec, variant, found, root_dir)
        partial[variant] = found
        tried_all += [p for p in tried if p not in tried_all]
    downloadable = [v for v in variants if v.downloadable]
    if download is False or not downloadable:
        raise DataError(_missing_message(spec, tried_all, None, root_dir))
    variant = downloadable[0]
    files = _download(spec, variant, root_dir, partial[variant], tried_all)
    try:
        return _build(spec, variant, files, root_dir)
    except DataError:
        for f in variant.files:  # never keep a freshly downloaded file that failed verification
            if f.name not in partial[variant]:
                files[f.name][0].unlink(missing_ok=True)
        raise


def available_offline(name: str, mirror: str | Path | None = None,
                      root: str | Path | None = None) -> bool:
    """True when ``name`` loads without the network: bundled, decoded cache, or every raw file of
    some variant in the root or the mirror (existence only; checksums are checked on load).

    >>> available_offline("digits")
    True
    """
    spec = _spec(name)
    if spec.bundled is not None:
        return True
    root_dir, mirror_dir = resolve_root(root), resolve_mirror(mirror)
    for variant in spec.variants:
        if _cache_path(spec, variant, root_dir).is_file():
            return True
        found, _ = _locate(spec, variant, root_dir, mirror_dir)
        if len(found) == len(variant.files):
            return True
    return False
