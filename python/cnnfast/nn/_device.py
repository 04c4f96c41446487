"""Where a layer's arrays live: 'cpu' (NumPy) or 'cuda' (cnnfast.cuda.DeviceArray). The moves
Module.to(device) makes, the host copies state_dict returns and the in-place loads
load_state_dict does, for arrays on either side. Importing needs no GPU."""
from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "cuda")


def is_device_name(v) -> bool:
    return isinstance(v, str) and v in DEVICES


def check_device(device, what: str = "device") -> str:
    if not is_device_name(device):
        raise ValueError(f"{what}: expected 'cpu' or 'cuda', got {device!r}")
    return device


def require_cuda(what: str) -> None:
    """RuntimeError saying why when no CUDA device is usable (cuda.reason())."""
    from .. import cuda
    if not cuda.is_available():
        raise RuntimeError(f"{what}: device='cuda' needs a CUDA device: {cuda.reason()}")


def on_device(a) -> bool:
    """True for a CUDA device array (a DeviceArray or another library's CUDA array)."""
    if a is None or type(a) is np.ndarray:
        return False
    from ..cuda._array import is_device_array
    return is_device_array(a)


def move(a, device: str, what: str):
    """a on `device`: the array itself when already there, else one copy. Only float32 goes to
    the GPU (TypeError naming `what` otherwise)."""
    if a is None:
        return None
    if device == "cuda":
        if on_device(a):
            return a
        if a.dtype != np.float32:
            raise TypeError(f"{what}: the CUDA kernels take float32, got {a.dtype} (cast the "
                            f"module with .to(numpy.float32) first)")
        from .. import cuda
        return cuda.from_numpy(a)
    return a.to_numpy() if on_device(a) else a


def host_copy(a) -> np.ndarray:
    """A NumPy copy of a host or device array (state_dict)."""
    return a.to_numpy() if on_device(a) else np.array(a, copy=True)


def assign(dst, value) -> None:
    """dst[...] = value in place; dst on the host or the device, value a host array."""
    if not on_device(dst):
        dst[...] = value
        return
    from .. import _core
    src = np.ascontiguousarray(np.broadcast_to(np.asarray(value), dst.shape), dtype=dst.dtype)
    if src.nbytes:
        _core.cuda_copy_from_host(dst.data_ptr, src)
