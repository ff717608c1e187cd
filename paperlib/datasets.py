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
import io
import json
import logging
import os
import pickle
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ENV_ROOT = "PAPERLIB_DATA_ROOT"
ENV_MIRROR = "PAPERLIB_DATA_MIRROR"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_CACHE_FORMAT = 1
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _File:
    """One raw file of a dataset variant.

    ``sha256`` is of the decompressed bytes when ``gunzip`` (idx files), else of the file.
    ``url``/``download_hash`` describe the canonical download (pooch ``known_hash`` syntax).
    """

    name: str
    sha256: str | None = None
    md5: str | None = None
    gunzip: bool = False
    url: str | None = None
    download_hash: str | None = None


@dataclass(frozen=True)
class _Variant:
    """One way to obtain a dataset: its raw files and a decoder ``{name: path} -> arrays``.

    ``mirror_source``/``root_source`` are the :attr:`Dataset.source` labels when a file came from
    the mirror / from the data root.
    """

    tag: str
    files: tuple[_File, ...]
    decode: Callable[[dict[str, Path]], Arrays]
    lossy: bool = False
    mirror_source: str = "mirror"
    root_source: str = "canonical"

    @property
    def downloadable(self) -> bool:
        return all(f.url is not None for f in self.files)

    @property
    def digest(self) -> str:
        """Short digest of the expected checksums: names the decoded cache."""
        keys = [f"{f.name}:{f.sha256 or f.md5}" for f in self.files]
        return hashlib.sha256("|".join(keys).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Spec:
    """Registry entry: everything :func:`load_dataset` needs to know about one dataset."""

    name: str
    folder: str
    n_classes: int
    input_shape: tuple[int, ...]
    description: str
    citation: str
    variants: tuple[_Variant, ...] = ()
    time_ordered: bool = False
    bundled: Callable[[], Arrays] | None = None

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3


def _idx_files(base_url: str, md5s: dict[str, str], sha256s: dict[str, str]) -> tuple[_File, ...]:
    return tuple(
        _File(f"{stem}.gz", sha256=sha256s[stem], md5=md5s[stem], gunzip=True,
              url=base_url + f"{stem}.gz", download_hash=f"md5:{md5s[stem]}")
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


# --------------------------------------------------------------------------- decoders


def _read_idx(raw: bytes) -> np.ndarray:
    """Parse an idx file (big-endian header, uint8 payload) into an array.

    >>> _read_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
    [7, 8, 9]
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def _decode_idx(paths: dict[str, Path]) -> Arrays:
    def read(stem: str) -> np.ndarray:
        return _read_idx(gzip.decompress(paths[f"{stem}.gz"].read_bytes()))

    x_tr, x_te = read("train-images-idx3-ubyte"), read("t10k-images-idx3-ubyte")
    return (x_tr[:, None].copy(), read("train-labels-idx1-ubyte").astype(np.int64),
            x_te[:, None].copy(), read("t10k-labels-idx1-ubyte").astype(np.int64))


def _decode_cifar_python(paths: dict[str, Path]) -> Arrays:
    """Parse the canonical pickled batches of ``cifar-10-python.tar.gz`` (md5-verified)."""
    xs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    ys: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    batches = [(f"data_batch_{i}", "train") for i in range(1, 6)] + [("test_batch", "test")]
    with tarfile.open(paths["cifar-10-python.tar.gz"], "r:gz") as tar:
        for batch, split in batches:
            member = tar.extractfile(f"cifar-10-batches-py/{batch}")
            if member is None:
                raise ValueError(f"missing member {batch}")
            d = pickle.load(member, encoding="bytes")  # noqa: S301 - md5-verified official file
            xs[split].append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys[split].append(np.asarray(d[b"labels"], dtype=np.int64))
    return (np.concatenate(xs["train"]), np.concatenate(ys["train"]),
            np.concatenate(xs["test"]), np.concatenate(ys["test"]))


def _decode_cifar_jpeg(paths: dict[str, Path]) -> Arrays:
    """Decode ``cifar10-images/{train,test}/<class>/NNNN.jpg`` straight from the tar with PIL.

    Members are read in sorted path order (split, class, file), so the result is deterministic;
    class folder names map to the canonical (alphabetical) CIFAR-10 label order.
    """
    from PIL import Image

    label_of = {c: i for i, c in enumerate(sorted(CIFAR10_CLASSES))}
    out: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    with tarfile.open(paths["cifar10-jpeg.tar"], "r:") as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".jpg")),
                         key=lambda m: m.name)
        for m in members:
            parts = m.name.split("/")
            split, cls = parts[-3], parts[-2]
            if split not in out or cls not in label_of:
                raise ValueError(f"unexpected member {m.name}")
            fh = tar.extractfile(m)
            assert fh is not None
            with Image.open(io.BytesIO(fh.read())) as img:
                out[split][0].append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            out[split][1].append(label_of[cls])

    def stack(split: str) -> tuple[np.ndarray, np.ndarray]:
        imgs, labels = out[split]
        return np.stack(imgs).transpose(0, 3, 1, 2).copy(), np.asarray(labels, dtype=np.int64)

    return (*stack("train"), *stack("test"))


def _csv_decoder(filename: str, features: tuple[str, ...], label: str) -> Callable[..., Arrays]:
    def decode(paths: dict[str, Path]) -> Arrays:
        import pandas as pd

        df = pd.read_csv(paths[filename])
        missing = [c for c in (*features, label) if c not in df.columns]
        if missing:
            raise ValueError(f"columns {missing} not in {list(df.columns)}")
        x = df[list(features)].to_numpy(dtype=np.float32)
        y = _binary_labels(df[label].to_numpy())
        return x, y, np.zeros((0, len(features)), np.float32), np.zeros((0,), np.int64)

    return decode


def _binary_labels(values: np.ndarray) -> np.ndarray:
    """Map ``UP``/``DOWN``, ``True``/``False`` or ``1``/``0`` labels to int64 1/0.

    >>> _binary_labels(np.array(["UP", "DOWN", "up"], dtype=object)).tolist()
    [1, 0, 1]
    >>> _binary_labels(np.array([1.0, 0.0])).tolist()
    [1, 0]
    """
    if values.dtype.kind in "OUS":
        mapping = {"up": 1, "down": 0, "1": 1, "0": 0, "true": 1, "false": 0}
        return np.asarray([mapping[str(v).strip().lower()] for v in values], dtype=np.int64)
    return values.astype(np.int64)


def _load_digits() -> Arrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    return x_tr, y_tr, x_te, y_te


_MNIST_SHA = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_SHA = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_FASHION_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
_STREAMS_URL = "https://raw.githubusercontent.com/scikit-multiflow/streaming-datasets/master/"
_ELEC_SHA = "cdf901433885f29eca6911f70c0eeafb50d90596c879c30c5b99f5a2e8e734ff"
_WEATHER_SHA = "3c38f05bdc5c4cb115f122414c66976e3662c875d96d7199d9e47fc46aff150e"
_CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_JPEG_SHA = "422ff28bb00ba2a6bdaa5b5779a4824532c0ffe4ab2bbbf6c9ff90f6390b69b8"
_ELEC_FEATURES = ("period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
_WEATHER_FEATURES = tuple(f"feat_{i}" for i in range(1, 9))

DATASETS: dict[str, _Spec] = {
    "mnist": _Spec(
        "mnist", "mnist", 10, (1, 28, 28),
        "MNIST handwritten digits: 60000 train + 10000 test, 28x28 grey, 10 classes.",
        "LeCun, Bottou, Bengio & Haffner (1998), Gradient-based learning applied to document "
        "recognition, Proc. IEEE 86(11).",
        (_Variant("idx", _idx_files("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                    _MNIST_MD5, _MNIST_SHA), _decode_idx),)),
    "fashion_mnist": _Spec(
        "fashion_mnist", "fashion-mnist", 10, (1, 28, 28),
        "Fashion-MNIST (Zalando, MIT licence): 60000 + 10000, 28x28 grey, 10 classes.",
        "Xiao, Rasul & Vollgraf (2017), Fashion-MNIST: a novel image dataset for benchmarking "
        "machine learning algorithms, arXiv:1708.07747.",
        (_Variant("idx", _idx_files("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                                    _FASHION_MD5, _FASHION_SHA), _decode_idx),)),
    "cifar10": _Spec(
        "cifar10", "cifar10", 10, (3, 32, 32),
        "CIFAR-10: 50000 + 10000 32x32 RGB images, 10 classes. The mirror's copy is JPEG "
        "(quality ~75, 4:2:0) and therefore LOSSY; results from it must say so.",
        "Krizhevsky (2009), Learning Multiple Layers of Features from Tiny Images, tech. report, "
        "University of Toronto.",
        (_Variant("python", (_File("cifar-10-python.tar.gz", md5=_CIFAR_MD5,
                                   url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                                   download_hash=f"md5:{_CIFAR_MD5}"),),
                  _decode_cifar_python, mirror_source="canonical"),
         _Variant("jpeg", (_File("cifar10-jpeg.tar", sha256=_CIFAR_JPEG_SHA),),
                  _decode_cifar_jpeg, lossy=True, root_source="mirror"))),
    "elec2": _Spec(
        "elec2", "elec2", 2, (6,),
        "Electricity (NSW market) concept-drift stream: 45312 half-hourly rows in time order, "
        "6 features, label 1 = price up.",
        "Harries (1999), SPLICE-2 comparative evaluation: Electricity pricing, tech. report, "
        "UNSW; via scikit-multiflow (Montiel et al. 2018, JMLR 19(72)).",
        (_Variant("csv", (_File("elec.csv", sha256=_ELEC_SHA, url=_STREAMS_URL + "elec.csv",
                                download_hash=f"sha256:{_ELEC_SHA}"),),
                  _csv_decoder("elec.csv", _ELEC_FEATURES, "class")),),
        time_ordered=True),
    "weather": _Spec(
        "weather", "weather", 2, (8,),
        "NOAA weather, Bellevue, Nebraska 1949-1999: 18159 daily rows in time order, "
        "8 features, label 1 = rain.",
        "Elwell & Polikar (2011), Incremental learning of concept drift in nonstationary "
        "environments, IEEE Trans. Neural Networks 22(10); via scikit-multiflow.",
        (_Variant("csv", (_File("weather.csv", sha256=_WEATHER_SHA,
                                url=_STREAMS_URL + "weather.csv",
                                download_hash=f"sha256:{_WEATHER_SHA}"),),
                  _csv_decoder("weather.csv", _WEATHER_FEATURES, "target")),),
        time_ordered=True),
    "digits": _Spec(
        "digits", "digits", 10, (1, 8, 8),
        "scikit-learn's bundled 8x8 digits (1797 images, 10 classes), scaled to [0, 1]; "
        "stratified 75/25 split with random_state=0.",
        "Alpaydin & Kaynak (1998), Optical Recognition of Handwritten Digits, UCI ML "
        "Repository; bundled with scikit-learn.",
        bundled=_load_digits),
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
    repo = Path(__file__).resolve().parent.parent
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
