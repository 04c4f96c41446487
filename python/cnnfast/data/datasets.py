"""Dataset readers: MNIST / Fashion-MNIST (IDX), CIFAR-10 (binary batches), scikit-learn's 8x8 digits.

Every loader returns a `Dataset`: images float32 (N, C, H, W) scaled to [0, 1], labels int64 (N,).
`download=True` fetches the official files and checks their published MD5 before use.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .idx import read_idx


@dataclass
class Dataset:
    """Images (N, C, H, W) float32 and labels (N,) int64, with the class names."""
    images: np.ndarray
    labels: np.ndarray
    classes: List[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self):
        for what, a in (("images", self.images), ("labels", self.labels)):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"Dataset {self.name!r}: {what} must be a numpy array, got "
                                f"{type(a).__name__}")
        if self.labels.dtype.kind not in "iu":
            raise TypeError(f"Dataset {self.name!r}: labels must be integer class indices, got "
                            f"{self.labels.dtype}")
        if self.images.ndim != 4 or self.labels.ndim != 1 or len(self.images) != len(self.labels):
            raise ValueError(f"Dataset {self.name!r}: images must be (N, C, H, W) and labels (N,), "
                             f"got {self.images.shape} and {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "Dataset":
        return Dataset(self.images[index], self.labels[index], self.classes, self.name)


MNIST_FILES = {  # name -> published MD5
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# The official locations first; the second MNIST URL is the mirror torchvision uses.
MNIST_URLS = ("http://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/")
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def md5sum(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(urls: Sequence[str], dest: str, md5: str) -> None:
    """Fetches the first URL that works into `dest` (atomically), verifying the MD5. A folder
    made for it is removed again when every URL fails (and it is still empty)."""
    folder = os.path.dirname(os.path.abspath(dest))
    made = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(dest)), suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                shutil.copyfileobj(resp, out)
            got = md5sum(tmp)
            if got != md5:
                raise ValueError(f"checksum mismatch: md5 {got}, expected {md5}")
            os.replace(tmp, dest)
            return
        except Exception as e:  # try the next mirror, report all failures at the end
            errors.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    if made:
        try:
            os.rmdir(folder)
        except OSError:
            pass
    raise RuntimeError(f"could not download {os.path.basename(dest)}:\n  " + "\n  ".join(errors))


def _find(root: str, name: str) -> Optional[str]:
    """The gzip file or its decompressed twin (MNIST files are often stored un-gzipped)."""
    for cand in (name, name[:-3], name[:-3].replace("-idx", ".idx")):
        p = os.path.join(root, cand)
        if os.path.isfile(p):
            return p
    return None


def _data_root(name: str, root) -> str:
    if not isinstance(root, (str, bytes, os.PathLike)):
        raise TypeError(f"{name}: root must be a path to the data folder, got "
                        f"{type(root).__name__}")
    return os.fsdecode(root)


def _load_idx_pair(root, files, prefix, urls, download, name, classes) -> Dataset:
    root = _data_root(name, root)
    paths = []
    for kind in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
        fname = f"{prefix}-{kind}"
        p = _find(root, fname)
        if p is None and download:
            p = os.path.join(root, fname)
            download_file([u + fname for u in urls], p, files[fname])
        if p is None:
            raise FileNotFoundError(f"{name}: {fname} not found in {root!r} "
                                    f"(pass download=True or --data-dir pointing at the IDX files)")
        paths.append(p)
    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(f"{paths[0]}, {paths[1]}: expected uint8 IDX data, got "
                         f"{images.dtype} and {labels.dtype}")
    if len(images) != len(labels):
        raise ValueError(f"{paths[0]} has {len(images)} images but {paths[1]} has "
                         f"{len(labels)} labels")
    if images.shape[1] != images.shape[2]:  # with the counts equal, a header that lies shows
        raise ValueError(f"{paths[0]}: images of {images.shape[1]}x{images.shape[2]}, expected "
                         f"square ones (28x28 in {name})")
    if labels.size and labels.max() >= len(classes):
        raise ValueError(f"{paths[1]}: label {int(labels.max())} out of range 0..{len(classes) - 1}")
    x = (images.astype(np.float32) / 255.0)[:, None]
    return Dataset(x, labels.astype(np.int64), list(classes), name)


def load_mnist(root, train: bool = True, download: bool = False) -> Dataset:
    """MNIST from `root` (the four IDX files, .gz or raw)."""
    return _load_idx_pair(root, MNIST_FILES, "train" if train else "t10k", MNIST_URLS, download,
                          "mnist", [str(i) for i in range(10)])


def load_fashion_mnist(root, train: bool = True, download: bool = False) -> Dataset:
    return _load_idx_pair(root, FASHION_MNIST_FILES, "train" if train else "t10k",
                          FASHION_MNIST_URLS, download, "fashion-mnist", FASHION_CLASSES)


CIFAR10_RECORD = 1 + 3 * 32 * 32  # label byte, then R, G, B planes of 32x32


def read_cifar10_batch(path) -> Tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: (uint8 images (N, 3, 32, 32), uint8 labels (N,))."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) == 0 or len(data) % CIFAR10_RECORD:
        raise ValueError(f"{path}: size {len(data)} is not a positive multiple of the "
                         f"{CIFAR10_RECORD}-byte CIFAR-10 record")
    rec = np.frombuffer(data, np.uint8).reshape(-1, CIFAR10_RECORD)
    labels = rec[:, 0].copy()
    if labels.max() >= 10:
        raise ValueError(f"{path}: label {int(labels.max())} out of range 0..9 (not a CIFAR-10 "
                         f"binary batch?)")
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _extract_cifar10(archive: str, root: str) -> None:
    wanted = {f"{CIFAR10_DIR}/{n}" for n in
              ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"]}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name in wanted and member.isfile():  # never extract arbitrary paths
                src = tar.extractfile(member)
                os.makedirs(os.path.join(root, CIFAR10_DIR), exist_ok=True)
                with open(os.path.join(root, member.name), "wb") as out:
                    shutil.copyfileobj(src, out)


def load_cifar10(root, train: bool = True, download: bool = False) -> Dataset:
    """CIFAR-10 binary version from `root` (or `root/cifar-10-batches-bin`)."""
    root = _data_root("cifar10", root)
    names = ["data_batch_%d.bin" % i for i in range(1, 6)] if train else ["test_batch.bin"]
    base = root if os.path.isfile(os.path.join(root, names[0])) else os.path.join(root, CIFAR10_DIR)
    if not os.path.isfile(os.path.join(base, names[0])) and download:
        archive = os.path.join(root, os.path.basename(CIFAR10_URL))
        if not os.path.isfile(archive) or md5sum(archive) != CIFAR10_MD5:
            download_file([CIFAR10_URL], archive, CIFAR10_MD5)
        _extract_cifar10(archive, root)
        base = os.path.join(root, CIFAR10_DIR)
    parts = []
    for n in names:
        p = os.path.join(base, n)
        if not os.path.isfile(p):
            raise FileNotFoundError(f"cifar10: {n} not found in {root!r} or {base!r} "
                                    f"(pass download=True)")
        parts.append(read_cifar10_batch(p))
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return Dataset(x, y, list(CIFAR10_CLASSES), "cifar10")


def _sklearn_digits_csv() -> Optional[str]:
    """Path of the digits CSV that scikit-learn ships, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = os.path.join(loc, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(p):
            return p
    return None


def read_digits_csv(path) -> Tuple[np.ndarray, np.ndarray]:
    """The UCI optdigits test set as scikit-learn stores it: rows of 64 pixels (0..16) + label."""
    path = os.fspath(path)
    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as f:
        try:
            table = np.loadtxt(f, delimiter=",", ndmin=2)
        except ValueError as e:
            raise ValueError(f"{path}: not a digits CSV ({e})") from None
    if table.shape[1] != 65:
        raise ValueError(f"{path}: expected 65 columns (8x8 pixels + label), got {table.shape[1]}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixel values must be 0..16 and labels 0..9")
    return pixels.reshape(-1, 8, 8), labels.astype(np.int64)


def upscale_to_mnist_layout(img8: np.ndarray) -> np.ndarray:
    """(N, 8, 8) -> (N, 28, 28): bilinear to 20x20, centred with a 4-pixel border like MNIST."""
    n = img8.shape[0]
    pos = (np.arange(20) + 0.5) * (8 / 20) - 0.5  # sample centres in source pixel units
    pos = np.clip(pos, 0, 7)
    i0 = np.minimum(np.floor(pos).astype(int), 6)
    t = pos - i0
    rows = img8[:, i0] * (1 - t)[None, :, None] + img8[:, i0 + 1] * t[None, :, None]
    full = rows[:, :, i0] * (1 - t) + rows[:, :, i0 + 1] * t
    out = np.zeros((n, 28, 28), np.float32)
    out[:, 4:24, 4:24] = full
    return out


def load_digits(train: bool = True, path=None, test_fraction: float = 0.2,
                mnist_layout: bool = True) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images), split 80/20 by a fixed permutation.

    `path`: a digits CSV (default: the copy inside the installed scikit-learn, the optional
    extra `cnnfast[digits]`). `mnist_layout`: upscale to 28x28 so MNIST models (LeNet-5) apply.
    """
    if path is None:
        path = _sklearn_digits_csv()
        if path is None:
            raise ImportError("the digits dataset ships with scikit-learn: "
                              "pip install 'cnnfast[digits]' (or scikit-learn)")
    if not 0 < test_fraction < 1:  # also refuses NaN
        raise ValueError(f"load_digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    pixels, labels = read_digits_csv(path)
    order = np.random.default_rng(1797).permutation(len(labels))  # fixed split, any seed
    n_test = int(round(len(labels) * test_fraction))
    idx = order[n_test:] if train else order[:n_test]
    img = pixels[idx].astype(np.float32) / 16.0
    img = upscale_to_mnist_layout(img) if mnist_layout else img
    return Dataset(img[:, None].astype(np.float32), labels[idx], [str(i) for i in range(10)],
                   "digits")


DATASETS = {"digits": None, "mnist": load_mnist, "fashion-mnist": load_fashion_mnist,
            "cifar10": load_cifar10}


def load_dataset(name: str, root=None, train: bool = True, download: bool = False) -> Dataset:
    """By name: 'digits' (embedded default), 'mnist', 'fashion-mnist', 'cifar10'."""
    if name not in DATASETS:
        raise ValueError(f"dataset: expected one of {sorted(DATASETS)}, got {name!r}")
    if name == "digits":
        return load_digits(train)
    if root is None:
        raise ValueError(f"dataset {name!r} needs a data directory (root / --data-dir)")
    return DATASETS[name](root, train=train, download=download)
