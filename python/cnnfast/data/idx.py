"""IDX file reader (MNIST, Fashion-MNIST): gzip or raw, magic number and size checked.

Layout: a 4-byte magic (0, 0, type code, number of dims), one big-endian uint32 per dim, then the
row-major payload. Every error names the file and what was expected.
"""
from __future__ import annotations

import gzip
import os
from typing import Optional, Sequence

import numpy as np

# IDX type code -> big-endian dtype of the payload.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MAX_DEFLATE_RATIO = 1032  # no deflate stream expands more than ~1032:1


def _header(data: bytes, path: str, ndim: Optional[int],
            shape: Optional[Sequence[Optional[int]]]):
    """(dtype, dims, header length, total bytes the header declares) of IDX bytes that hold at
    least the header (whole or not: a short one raises)."""
    if len(data) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, code, nd = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0 or code not in IDX_DTYPES or nd == 0:
        raise ValueError(f"{path}: bad IDX magic number 0x{data[:4].hex()} (expected "
                         f"0x0000TTDD with type TT in {sorted(hex(c) for c in IDX_DTYPES)})")
    if ndim is not None and nd != ndim:
        raise ValueError(f"{path}: expected an IDX file with {ndim} dimensions, the header says {nd}")
    header = 4 + 4 * nd
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", nd, 4))
    if shape is not None:
        if len(shape) != nd or any(w is not None and w != d for w, d in zip(shape, dims)):
            raise ValueError(f"{path}: IDX shape {dims} does not match the expected {tuple(shape)}")
    dtype = IDX_DTYPES[code]
    count = 1
    for d in dims:
        count *= d  # Python ints: no overflow
    return dtype, dims, header, header + count * dtype.itemsize


def parse_idx(data: bytes, path: str = "<bytes>", ndim: Optional[int] = None,
              shape: Optional[Sequence[Optional[int]]] = None) -> np.ndarray:
    """Decodes IDX bytes. `ndim` / `shape` (None entries = any size) are checked if given."""
    dtype, dims, header, want = _header(data, path, ndim, shape)
    if len(data) != want:
        raise ValueError(f"{path}: IDX size mismatch: header {dims} of {dtype} needs {want} bytes, "
                         f"the file has {len(data)}")
    arr = np.frombuffer(data, dtype, (want - header) // dtype.itemsize, header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, ndim: Optional[int] = None,
             shape: Optional[Sequence[Optional[int]]] = None) -> np.ndarray:
    """Reads an IDX file (gzip-compressed or raw). ValueError naming the file on any mismatch.

    The header is read first and the size it declares checked against the file (exactly for a
    raw file; at most what a gzip file of that size can hold) before the payload is read, so a
    header declaring huge dimensions never makes it allocate more than the file can back."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such IDX file")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) == 4:
                head += f.read(4 * head[3])  # the dims (at most 255 of them)
            _, dims, header, want = _header(head, path, ndim, shape)
            limit = _MAX_DEFLATE_RATIO * size + 1024 if gz else size
            if want > limit:
                raise ValueError(f"{path}: IDX size mismatch: header {dims} needs {want} bytes, "
                                 f"the file has {size}{' (gzip)' if gz else ''}")
            data = head + f.read(want - header + 1)  # one byte more: trailing data is an error
    except (OSError, EOFError) as e:  # truncated or corrupt gzip stream
        raise ValueError(f"{path}: cannot read IDX data ({e})") from None
    return parse_idx(data, path, ndim, shape)


def write_idx(path, arr: np.ndarray, compress: Optional[bool] = None) -> None:
    """Writes `arr` as IDX (gzip if `compress`, default: when the name ends in .gz)."""
    path = os.fspath(path)
    arr = np.asarray(arr)
    codes = {v.newbyteorder("=") if v.itemsize > 1 else v: k for k, v in IDX_DTYPES.items()}
    if arr.dtype not in codes or arr.ndim == 0:
        raise TypeError(f"write_idx: unsupported array {arr.dtype} with shape {arr.shape}")
    big = arr.astype(IDX_DTYPES[codes[arr.dtype]], copy=False)
    payload = (bytes([0, 0, codes[arr.dtype], arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
               + np.ascontiguousarray(big).tobytes())
    if compress is None:
        compress = path.endswith(".gz")
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(payload)
