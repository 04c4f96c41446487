"""Where an op runs, decided by where its array arguments live: NumPy arrays -> the CPU kernels;
CUDA device arrays (cnnfast.cuda.DeviceArray, or any object exposing __cuda_array_interface__ or
a CUDA __dlpack_device__: CuPy arrays, PyTorch CUDA tensors, ...) -> the CUDA twin of the same
name in cnnfast.cuda._ops. Host and device arrays mixed in one call: TypeError naming both sides.
Ops without a CUDA twin are not decorated; a device array reaching them fails their array check.
"""
from __future__ import annotations

import functools
import inspect
from typing import Optional

import numpy as np

from .switches import Switches

_SCALARS = (bool, int, float, complex, str, bytes, tuple, list, dict, np.generic)
_device_array_type = None  # cnnfast.cuda.DeviceArray once location() has imported it


def location(v) -> Optional[str]:
    """'host' for a NumPy array, 'device' for a CUDA device array, None for anything else."""
    global _device_array_type
    if type(v) is _device_array_type:
        return "device"
    if isinstance(v, np.ndarray):
        return "host"
    if v is None or isinstance(v, _SCALARS):
        return None
    if isinstance(v, Switches):
        return location(v.indices)
    from ..cuda._array import DeviceArray, is_device_array  # light: no device call
    _device_array_type = DeviceArray
    return "device" if is_device_array(v) else None


_PLAIN = frozenset((np.ndarray, type(None), bool, int, float, str, tuple))  # never device


def _any_device(values) -> bool:
    for v in values:  # a plain loop: no generator frame on every op call
        t = type(v)
        if t is _device_array_type or (t not in _PLAIN and location(v) == "device"):
            return True
    return False


def _any_host(values) -> bool:
    for v in values:
        t = type(v)
        if t is np.ndarray or (t not in _PLAIN and t is not _device_array_type
                               and location(v) == "host"):
            return True
    return False


_OPS = []


def _twins():
    """cnnfast.cuda._ops, imported once (a `from ..cuda import _ops` costs ~1 us a call)."""
    if not _OPS:
        from ..cuda import _ops
        _OPS.append(_ops)
    return _OPS[0]


def on_device(fn):
    """Decorates a CPU op so that device inputs run its CUDA twin (cnnfast.cuda._ops.<name>).
    The device path costs two scans of the arguments (no signature binding unless arrays are
    mixed, which raises) and a cached look-up of the twin."""
    sig = inspect.signature(fn)
    public = fn.__name__.lstrip("_")

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if not (_any_device(args) or (kwargs and _any_device(kwargs.values()))):
            return fn(*args, **kwargs)
        if not (_any_host(args) or (kwargs and _any_host(kwargs.values()))):
            return getattr(_twins(), fn.__name__)(*args, **kwargs)  # no signature binding
        named = sig.bind(*args, **kwargs).arguments
        host = [k for k, v in named.items() if location(v) == "host"]
        if host:
            dev = [k for k, v in named.items() if location(v) == "device"]
            raise TypeError(f"{public}: mixes CUDA device arrays ({', '.join(dev)}) with NumPy "
                            f"host arrays ({', '.join(host)}); put all arrays on one side "
                            f"(cnnfast.cuda.from_numpy / DeviceArray.to_numpy)")
        return getattr(_twins(), fn.__name__)(*args, **kwargs)

    return op
