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


def location(v) -> Optional[str]:
    """'host' for a NumPy array, 'device' for a CUDA device array, None for anything else."""
    if isinstance(v, np.ndarray):
        return "host"
    if v is None or isinstance(v, _SCALARS):
        return None
    if isinstance(v, Switches):
        return location(v.indices)
    from ..cuda._array import is_device_array  # light: no device call
    return "device" if is_device_array(v) else None


_PLAIN = frozenset((np.ndarray, type(None), bool, int, float, str, tuple))  # never device
_DEVICE_TYPE = []  # [cnnfast.cuda.DeviceArray] once imported: the fast exact-type test


def _any_device(values) -> bool:
    for v in values:  # a plain loop: no generator frame on every op call
        t = type(v)
        if t not in _PLAIN and ((_DEVICE_TYPE and t is _DEVICE_TYPE[0])
                                or location(v) == "device"):
            return True
    return False


def _any_host(values) -> bool:
    for v in values:
        t = type(v)
        if t is np.ndarray:
            return True
        if t not in _PLAIN and (not _DEVICE_TYPE or t is not _DEVICE_TYPE[0]) \
                and location(v) == "host":
            return True
    return False


def on_device(fn):
    """Decorates a CPU op so that device inputs run its CUDA twin (cnnfast.cuda._ops.<name>).
    The device path costs two scans of the arguments (no signature binding unless arrays are
    mixed, which raises) and a cached look-up of the twin."""
    sig = inspect.signature(fn)
    public = fn.__name__.lstrip("_")
    twin = []

    @functools.wraps(fn)
    def op(*args, **kwargs):
        if not (_any_device(args) or (kwargs and _any_device(kwargs.values()))):
            return fn(*args, **kwargs)
        if _any_host(args) or (kwargs and _any_host(kwargs.values())):
            named = sig.bind(*args, **kwargs).arguments
            host = [k for k, v in named.items() if location(v) == "host"]
            dev = [k for k, v in named.items() if location(v) == "device"]
            raise TypeError(f"{public}: mixes CUDA device arrays ({', '.join(dev)}) with NumPy "
                            f"host arrays ({', '.join(host)}); put all arrays on one side "
                            f"(cnnfast.cuda.from_numpy / DeviceArray.to_numpy)")
        if not twin:
            from ..cuda import _ops, _array
            twin.append(getattr(_ops, fn.__name__))
            _DEVICE_TYPE[:] = [_array.DeviceArray]
        return twin[0](*args, **kwargs)

    return op
