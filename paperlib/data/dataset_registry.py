"""What every dataset is: its files (URLs, checksums, mirror layout), variants and decoders
from raw files to ``(x_train, y_train, x_test, y_test)`` arrays. :mod:`paperlib.data.datasets`
finds, verifies, caches and loads them (and re-exports :data:`DATASETS`)."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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
