"""Argument checks shared by the CUDA twins: device arrays of the kernels' dtypes (float32; int64
for indices and targets), C-contiguous, viewed zero-copy; errors name the argument."""
from __future__ import annotations

import numpy as np

from ._array import DeviceArray, as_device_array

F32, I64 = np.dtype(np.float32), np.dtype(np.int64)


def f32(name: str, a, dtype=None) -> DeviceArray:
    """a float32, C-contiguous DeviceArray (dtype: the signature of the CPU ops' as_float_array;
    every CUDA array is float32, so it only has to agree)."""
    if type(a) is DeviceArray and a._dtype is F32 and a._strides is None and dtype is None:
        return a  # the hot path: one of our own float32 C-contiguous arrays
    d = as_device_array(a, name)
    if d.dtype != F32:
        raise TypeError(f"{name}: the CUDA kernels take float32, got {d.dtype}")
    if dtype is not None and np.dtype(dtype) != F32:
        raise TypeError(f"{name}: dtype {d.dtype} does not match the input's dtype {dtype}")
    if d._strides is not None:
        contiguous(name, d)
    return d


def i64(name: str, a, shape) -> DeviceArray:
    d = as_device_array(a, name)
    if d.dtype != I64:
        raise TypeError(f"{name}: device {name} must be int64, got {d.dtype} (convert it on the "
                        f"device in its own library first)")
    if d.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {d.shape}")
    contiguous(name, d)
    return d


def contiguous(name: str, d: DeviceArray) -> None:
    if d._strides is not None:
        raise ValueError(f"{name}: device array must be C-contiguous, got shape {d.shape} with "
                         f"strides {d.strides}")


def same_shape(name: str, a: DeviceArray, ref_name: str, ref_shape) -> None:
    if a.shape != tuple(ref_shape):
        raise ValueError(f"{name}: expected shape {tuple(ref_shape)} (the shape of {ref_name}), "
                         f"got {a.shape}")


def auto_only(algo) -> None:
    if algo != "auto":
        raise ValueError(f"algo: the CUDA backend runs one algorithm for this op; use 'auto', "
                         f"got {algo!r}")


# conv2d on the device: 'auto' / 'implicit' (the implicit GEMM) or Winograd F(m x m, 3x3) for
# 3x3 stride-1 layers ('winograd' picks the tile as the CPU does).
CONV2D_ALGOS = ("auto", "implicit", "winograd", "winograd_f2", "winograd_f4")


def conv2d_algo(algo) -> str:
    if algo not in CONV2D_ALGOS:
        cpu = " ('gemm', 'direct' and 'ref' are CPU algorithms)" if algo in (
            "gemm", "direct", "ref") else ""
        raise ValueError(f"algo: the CUDA backend's conv2d runs one of {CONV2D_ALGOS}; got "
                         f"{algo!r}{cpu}")
    return algo
