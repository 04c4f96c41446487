"""Is there a usable CUDA device? Asked lazily (never at import, so `import cnnfast` works on
machines without a GPU or driver) and cached; `require()` raises a clear RuntimeError saying why
not, before anything touches the device."""
from __future__ import annotations

import functools

from .. import _core

NOT_BUILT = ("cnnfast was built without its CUDA backend (no CUDA compiler found at build time, "
             "or CNNFAST_CUDA=OFF)")


@functools.lru_cache(maxsize=None)
def _device_info() -> dict:
    if not _core.cuda_built():
        return {"found": False, "count": 0, "device": -1, "name": "", "reason": NOT_BUILT}
    return dict(_core.cuda_device_info())


def device_info() -> dict:
    """found, count, device, name, compute_capability, total_memory, driver/runtime versions,
    reason (why no device was found; '' when one was)."""
    return dict(_device_info())


def is_available() -> bool:
    """True when the CUDA backend is built AND a usable device is present (see reason())."""
    return bool(_device_info()["found"])


def reason() -> str:
    """Why is_available() is False ('' when it is True)."""
    return "" if is_available() else _device_info()["reason"]


def require() -> None:
    if not is_available():
        raise RuntimeError(f"cnnfast.cuda: no CUDA device: {reason()}")


def current_device() -> int:
    return max(int(_device_info().get("device", 0)), 0)
