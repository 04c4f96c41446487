"""Dataset readers: IDX (gzip/raw, magic and size checks, huge declared dims refused before any
allocation), MNIST on small files and on the shared copy, CIFAR-10 binary batches (wrong sizes),
the digits CSV, checksum-verified downloads (file:// only)."""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tracemalloc

import numpy as np
import pytest

from cnnfast.data import (load_cifar10, load_digits, load_mnist, read_cifar10_batch, read_idx,
                          write_idx)
from helpers import write_mnist_like
from cnnfast.data.datasets import (MNIST_FILES, Dataset, _sklearn_digits_csv, download_file,
                                   read_digits_csv, upscale_to_mnist_layout)

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..",
                            "shared", "data", "mnist")


def _handmade_idx(arr: np.ndarray, code: int, dtype: str) -> bytes:
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(dtype).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_handmade(tmp_path, rng, gz):
    img = rng.integers(0, 256, (5, 3, 7), dtype=np.uint8)
    data = _handmade_idx(img, 0x08, "u1")
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    got = read_idx(path)
    assert got.dtype == np.uint8 and np.array_equal(got, img)
    f = rng.standard_normal((4, 6))
    path.write_bytes(_handmade_idx(f, 0x0E, ">f8"))
    assert np.array_equal(read_idx(path), f)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_write_read_roundtrip(tmp_path, rng, dtype):
    a = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    for name in ("a.gz", "a.raw"):
        write_idx(tmp_path / name, a)
        b = read_idx(tmp_path / name)
        assert b.dtype == a.dtype and np.array_equal(a, b)


def test_idx_errors_name_the_file(tmp_path, rng):
    good = _handmade_idx(rng.integers(0, 256, (2, 3, 3), dtype=np.uint8), 0x08, "u1")
    cases = {
        "short": (b"\x00\x00", "too short"),
        "magic": (b"\x01\x02" + good[2:], "bad IDX magic"),
        "type": (good[:2] + b"\x07" + good[3:], "bad IDX magic"),
        "header": (good[:9], "truncated IDX header"),
        "payload": (good[:-1], "size mismatch"),
        "extra": (good + b"\x00", "size mismatch"),
    }
    for name, (data, msg) in cases.items():
        p = tmp_path / f"{name}.idx"
        p.write_bytes(data)
        with pytest.raises(ValueError, match=msg) as e:
            read_idx(p)
        assert str(p) in str(e.value)
    p = tmp_path / "trunc.gz"
    p.write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match="trunc.gz"):
        read_idx(p)
    p = tmp_path / "ok.idx"
    p.write_bytes(good)
    with pytest.raises(ValueError, match="2 dimensions"):
        read_idx(p, ndim=2)
    with pytest.raises(ValueError, match="does not match"):
        read_idx(p, shape=(None, 4, 3))
    with pytest.raises(FileNotFoundError, match="missing.idx"):
        read_idx(tmp_path / "missing.idx")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_huge_declared_dims_never_allocate(tmp_path, gz):
    """A header declaring ~2^96 bytes (or just more than the file can hold) is refused from the
    header and the file size alone: no payload is read, nothing of that size allocated."""
    for dims, code in (((2**32 - 1,) * 3, 0x0E), ((60000, 28, 28), 0x08)):
        data = struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(">3I", *dims) + b"\1" * 64
        p = tmp_path / ("huge.idx.gz" if gz else "huge.idx")
        p.write_bytes(gzip.compress(data) if gz else data)
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="size mismatch") as e:
                read_idx(p)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert str(p) in str(e.value) and peak < 2**20, peak


def test_idx_gzip_bomb_reads_only_what_the_header_declares(tmp_path):
    """A small header (3 labels) over a gzip stream that inflates to 64 MiB: the reader stops
    after the declared bytes + 1 instead of inflating the whole stream into memory."""
    p = tmp_path / "bomb.idx.gz"
    with gzip.open(p, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, 3))
        for _ in range(64):
            f.write(b"\0" * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="size mismatch"):
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_cifar_batch_sizes(tmp_path):
    for size in (0, 3073 * 2 + 1, 3073 - 1):
        p = tmp_path / "b.bin"
        p.write_bytes(b"\0" * size)
        with pytest.raises(ValueError, match="3073-byte"):
            read_cifar10_batch(p)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_small(tmp_path, rng, gz):
    root = write_mnist_like(str(tmp_path), rng, gz=gz)
    tr = load_mnist(root)
    te = load_mnist(root, train=False)
    raw = read_idx(os.path.join(root, "train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert tr.images.shape == (40, 1, 28, 28) and tr.images.dtype == np.float32
    assert np.array_equal(tr.images[:, 0], raw.astype(np.float32) / 255)
    assert tr.labels.dtype == np.int64 and len(te) == 12


def test_load_mnist_mismatch_and_missing(tmp_path, rng):
    root = write_mnist_like(str(tmp_path), rng)
    write_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"), np.zeros(39, np.uint8) + 3)
    with pytest.raises(ValueError, match="40 images but .*39 labels"):
        load_mnist(root)
    write_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"), np.full(40, 12, np.uint8))
    with pytest.raises(ValueError, match="label 12 out of range"):
        load_mnist(root)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(str(tmp_path / "nothing"))
    write_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"), np.full(40, 3, np.uint8))
    # a header that reshapes the same bytes: 40 images of 14x56 instead of 28x28
    write_idx(os.path.join(root, "train-images-idx3-ubyte.gz"),
              rng.integers(0, 256, (40, 14, 56), dtype=np.uint8))
    with pytest.raises(ValueError, match="images of 14x56, expected square ones"):
        load_mnist(root)
    for bad in (None, 3):
        with pytest.raises(TypeError, match="root must be a path"):
            load_mnist(bad)
        with pytest.raises(TypeError, match="root must be a path"):
            load_cifar10(bad)


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason=f"no MNIST copy at {SHARED_MNIST}")
def test_shared_mnist():
    for name, md5 in MNIST_FILES.items():  # the shared copy is the published one
        with open(os.path.join(SHARED_MNIST, name), "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == md5, name
    te = load_mnist(SHARED_MNIST, train=False)
    assert te.images.shape == (10000, 1, 28, 28)
    assert np.bincount(te.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                               1009]
    assert 0.0 == te.images.min() and te.images.max() == 1.0
    labels = read_idx(os.path.join(SHARED_MNIST, "train-labels-idx1-ubyte.gz"), shape=(60000,))
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                                            5949]


def test_cifar10_batches(tmp_path, rng):
    base = tmp_path / "cifar-10-batches-bin"
    base.mkdir()
    want = {}
    for name, n in [("data_batch_%d.bin" % i, 3) for i in range(1, 6)] + [("test_batch.bin", 4)]:
        labels = rng.integers(0, 10, n).astype(np.uint8)
        img = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        (base / name).write_bytes(np.concatenate([labels[:, None], img.reshape(n, -1)], 1).tobytes())
        want[name] = (img, labels)
    img, lab = read_cifar10_batch(base / "test_batch.bin")
    assert np.array_equal(img, want["test_batch.bin"][0]) and np.array_equal(lab, want["test_batch.bin"][1])
    tr = load_cifar10(tmp_path)
    assert tr.images.shape == (15, 3, 32, 32) and tr.classes[0] == "airplane"
    assert np.array_equal(tr.images[3:6], want["data_batch_2.bin"][0] / np.float32(255))
    assert len(load_cifar10(base, train=False)) == 4
    (base / "test_batch.bin").write_bytes(b"\x00" * 3072)
    with pytest.raises(ValueError, match="test_batch.bin.*3073-byte"):
        load_cifar10(tmp_path, train=False)
    (base / "test_batch.bin").write_bytes(b"\x0b" + b"\x00" * 3072)
    with pytest.raises(ValueError, match="label 11"):
        load_cifar10(tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10(tmp_path / "none")


def test_digits_csv_parser(tmp_path, rng):
    pix = rng.integers(0, 17, (10, 64))
    lab = np.arange(10)
    path = tmp_path / "digits.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, np.concatenate([pix, lab[:, None]], 1), delimiter=",", fmt="%.1f")
    img, labels = read_digits_csv(path)
    assert np.array_equal(img, pix.reshape(10, 8, 8)) and np.array_equal(labels, lab)
    tr, te = load_digits(path=path), load_digits(train=False, path=path)
    assert len(tr) == 8 and len(te) == 2 and tr.images.shape[1:] == (1, 28, 28)
    assert sorted(np.concatenate([tr.labels, te.labels]).tolist()) == lab.tolist()
    small = load_digits(path=path, mnist_layout=False)
    assert small.images.shape[1:] == (1, 8, 8) and small.images.max() <= 1.0
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="65 columns"):
        read_digits_csv(bad)


def test_upscale_keeps_constant_and_border(rng):
    const = np.full((2, 8, 8), 0.5)
    up = upscale_to_mnist_layout(const)
    assert np.allclose(up[:, 4:24, 4:24], 0.5) and up[:, :4].max() == 0 and up[:, :, 24:].max() == 0
    img = rng.random((3, 8, 8))
    up = upscale_to_mnist_layout(img)
    assert np.isclose(up[:, 4:24, 4:24].min(), img.min(), atol=0.2)
    assert up.max() <= img.max() + 1e-6  # interpolation never overshoots


@pytest.mark.skipif(_sklearn_digits_csv() is None, reason="scikit-learn (digits data) not installed")
def test_embedded_digits():
    tr, te = load_digits(), load_digits(train=False)
    assert len(tr) + len(te) == 1797 and len(te) == 359
    for fraction in (0, 1, 1.5, -0.2, float("nan")):
        with pytest.raises(ValueError, match="test_fraction"):
            load_digits(test_fraction=fraction)
    assert np.bincount(np.concatenate([tr.labels, te.labels])).min() >= 170


def test_download_checksums(tmp_path, rng):
    src = tmp_path / "src.bin"
    payload = rng.integers(0, 256, 1000, dtype=np.uint8).tobytes()
    src.write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        download_file([src.as_uri()], str(dest), "0" * 32)
    assert not dest.exists() and not (tmp_path / "out").exists()  # no partial file, no folder
    download_file([(tmp_path / "absent").as_uri(), src.as_uri()], str(dest), md5)
    assert dest.read_bytes() == payload


def test_dataset_checks_its_arrays():
    with pytest.raises(TypeError, match="images must be a numpy array"):
        Dataset([[1]], np.array([1]))
    with pytest.raises(TypeError, match="labels must be integer class indices, got float64"):
        Dataset(np.zeros((2, 1, 3, 3), np.float32), np.array([0.0, 1.5]))
