"""DeviceArray: an N-d array in CUDA device memory, either owned (cnnfast allocated it) or a
zero-copy view of another library's array (CuPy, PyTorch, Numba, ... through
``__cuda_array_interface__`` or DLPack). It exposes both protocols itself, so those libraries wrap
cnnfast's results without a copy. Host <-> device transfers are explicit only (from_numpy,
to_numpy): ``np.asarray(device_array)`` raises. cnnfast queues all its work on the legacy default
CUDA stream; the protocols' stream handshakes make producers' and consumers' work ordered."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .. import _core
from ._runtime import current_device, require

DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "float16", "int64", "int32", "int16",
                                     "int8", "uint8", "bool"))
_DL_CODE = {"i": 0, "u": 1, "f": 2, "b": 6}  # DLPack dtype codes by NumPy kind
_DL_DEVICE_NAMES = {1: "the CPU", 2: "a CUDA device", 3: "CUDA pinned host memory",
                    13: "CUDA managed memory"}
_DL_CUDA, _DL_CUDA_MANAGED = 2, 13


def _c_strides(shape, itemsize) -> Tuple[int, ...]:
    out, acc = [], itemsize
    for n in reversed(shape):
        out.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(out))


def _check_dtype(dtype, what: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in DTYPES:
        raise TypeError(f"{what}: dtype {dt} is not supported on the device "
                        f"(supported: {', '.join(str(d) for d in DTYPES)})")
    return dt


class DeviceArray:
    """An array in CUDA device memory. Create with cnnfast.cuda.empty / zeros / from_numpy, or
    wrap another library's device array with as_device_array / from_dlpack (zero-copy)."""
    _cnnfast_device_array = True  # what the C++ bindings look for
    __slots__ = ("_owner", "_ptr", "_shape", "_dtype", "_strides", "_readonly", "_device_id",
                 "__weakref__")

    def __init__(self, *args, **kwargs):
        raise TypeError("DeviceArray: create one with cnnfast.cuda.empty, zeros, from_numpy, "
                        "as_device_array or from_dlpack")

    @classmethod
    def _make(cls, owner, ptr: int, shape, dtype, strides=None, readonly=False,
              device_id: Optional[int] = None) -> "DeviceArray":
        self = object.__new__(cls)
        self._owner = owner  # keeps the memory alive (a buffer, a DLPack holder, a foreign array)
        self._ptr = int(ptr)
        self._shape = tuple(int(n) for n in shape)
        self._dtype = _check_dtype(dtype, "DeviceArray")
        if any(n < 0 for n in self._shape):
            raise ValueError(f"DeviceArray: negative dimension in shape {self._shape}")
        if strides is not None:
            strides = tuple(int(s) for s in strides)
            if len(strides) != len(self._shape):
                raise ValueError(f"DeviceArray: strides {strides} do not match shape {self._shape}")
            if self._is_c(strides):
                strides = None
        self._strides = strides  # None: C-contiguous
        self._readonly = bool(readonly)
        self._device_id = device_id
        return self

    @classmethod
    def _trusted(cls, owner, ptr: int, shape: Tuple[int, ...], dtype: np.dtype, readonly=False,
                 device_id: Optional[int] = None) -> "DeviceArray":
        """_make without the checks, for callers holding a C-contiguous layout, a tuple of ints
        >= 0 and a supported np.dtype (empty, reshape: the per-op hot path)."""
        self = object.__new__(cls)
        self._owner, self._ptr, self._shape, self._dtype = owner, ptr, shape, dtype
        self._strides, self._readonly, self._device_id = None, readonly, device_id
        return self

    def _is_c(self, strides) -> bool:
        want = _c_strides(self._shape, self._dtype.itemsize)
        return self.size == 0 or all(n == 1 or s == w
                                     for n, s, w in zip(self._shape, strides, want))

    # ---- metadata -----------------------------------------------------------------------------
    shape = property(lambda self: self._shape)
    dtype = property(lambda self: self._dtype)
    ndim = property(lambda self: len(self._shape))
    size = property(lambda self: math.prod(self._shape))
    itemsize = property(lambda self: self._dtype.itemsize)
    nbytes = property(lambda self: self.size * self._dtype.itemsize)
    data_ptr = property(lambda self: self._ptr, doc="the device address of element 0")
    readonly = property(lambda self: self._readonly)
    is_c_contiguous = property(lambda self: self._strides is None)

    @property
    def strides(self) -> Tuple[int, ...]:
        """In bytes, as NumPy's."""
        return self._strides or _c_strides(self._shape, self.itemsize)

    @property
    def device_id(self) -> int:
        return current_device() if self._device_id is None else self._device_id

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d DeviceArray")
        return self._shape[0]

    def __repr__(self) -> str:
        layout = "" if self._strides is None else f", strides={self._strides}"
        return f"DeviceArray(shape={self._shape}, dtype={self._dtype}{layout}, device=cuda)"

    # ---- transfers and views ---------------------------------------------------------------------
    def _require_contiguous(self, what: str) -> None:
        if self._strides is not None:
            raise ValueError(f"{what}: needs a C-contiguous device array, got shape {self._shape} "
                             f"with strides {self._strides} (make it contiguous in its library)")

    def to_numpy(self) -> np.ndarray:
        """A host copy (waits for the queued kernels that write this array)."""
        self._require_contiguous("to_numpy")
        out = np.empty(self._shape, self._dtype)
        if out.nbytes:
            require()
            _core.cuda_copy_to_host(out, self._ptr)
        return out

    def item(self):
        if self.size != 1:
            raise ValueError(f"item: only a one-element array converts, got shape {self._shape}")
        return self.to_numpy().reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def reshape(self, *shape) -> "DeviceArray":
        """A view with another shape (one entry may be -1); C-contiguous arrays only."""
        self._require_contiguous("reshape")
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = tuple(map(int, shape))
        if shape.count(-1) == 1:
            rest = math.prod(n for n in shape if n != -1)
            if rest == 0 or self.size % rest:
                raise ValueError(f"reshape: cannot reshape {self._shape} into {shape}")
            shape = tuple(self.size // rest if n == -1 else n for n in shape)
        if math.prod(shape) != self.size or min(shape, default=0) < 0:
            raise ValueError(f"reshape: cannot reshape {self._shape} into {shape}")
        return DeviceArray._trusted(self._owner, self._ptr, shape, self._dtype, self._readonly,
                                    self._device_id)

    def copy(self) -> "DeviceArray":
        """A new owned, C-contiguous copy on the device."""
        self._require_contiguous("copy")
        out = empty(self._shape, self._dtype)
        if self.nbytes:
            _core.cuda_copy_on_device(out.data_ptr, self._ptr, self.nbytes)
        return out

    # ---- arithmetic the layer API needs (float32, equal shapes, no broadcasting) -----------------
    def __add__(self, other):
        """self + other for two float32 device arrays of one shape (a residual sum)."""
        if not is_device_array(other):
            return NotImplemented
        from ._ops_layers import add
        return add(self, other)

    def __iadd__(self, other):
        """self += other in place (gradient accumulation)."""
        if not is_device_array(other):
            return NotImplemented
        from ._ops_layers import add_
        return add_(self, other)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a cnnfast.cuda.DeviceArray lives in GPU memory: copy it to the host "
                        "explicitly with .to_numpy()")

    # ---- interoperability ---------------------------------------------------------------------
    @property
    def __cuda_array_interface__(self) -> dict:
        """Version 3; the data is valid on the legacy default stream (stream 1)."""
        typestr = self._dtype.str
        return {"shape": self._shape, "typestr": typestr, "descr": [("", typestr)],
                "data": (self._ptr, self._readonly), "strides": self._strides, "version": 3,
                "stream": 1}

    def __dlpack_device__(self) -> Tuple[int, int]:
        return (_DL_CUDA, self.device_id)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule ("dltensor", DLPack 0.8 layout) viewing this array; it keeps the
        array's memory alive until the consumer releases it. stream: the consumer's stream
        (None or 1: the legacy default stream, nothing to do; -1: no synchronization; any other:
        that stream waits for cnnfast's queued work)."""
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"__dlpack__: cannot export to device {tuple(dl_device)} without a "
                              f"copy; the array is on {self.__dlpack_device__()}")
        if copy:
            return self.copy().__dlpack__(stream=stream)
        if stream is not None and stream not in (-1, 1):
            if isinstance(stream, bool) or not isinstance(stream, int) or stream == 0:
                raise ValueError(f"__dlpack__: stream must be None, -1 or a CUDA stream handle "
                                 f"(1 legacy default, 2 per-thread default), got {stream!r}")
            require()
            _core.cuda_publish_to_stream(stream)
        isz = self.itemsize
        strides = None if self._strides is None else [s // isz for s in self._strides]
        return _core.dlpack_export(self._ptr, list(self._shape), strides,
                                   _DL_CODE[self._dtype.kind], 8 * isz, _DL_CUDA, self.device_id,
                                   self)


# ---- constructors -----------------------------------------------------------------------------

_F32 = np.dtype(np.float32)


def _owned(shape: Tuple[int, ...], dt: np.dtype) -> DeviceArray:
    """A new owned C-contiguous array; shape: a tuple of non-negative ints (trusted)."""
    require()
    buf = _core.CudaBuffer(math.prod(shape) * dt.itemsize)
    return DeviceArray._trusted(buf, buf.ptr, shape, dt, False, current_device())


def empty(shape, dtype=np.float32) -> DeviceArray:
    """An uninitialized owned device array (NaN-poisoned while the test suite runs)."""
    if type(shape) is tuple and (dtype is np.float32 or dtype is _F32):  # the ops' own calls
        for n in shape:
            if type(n) is not int or n < 0:
                break
        else:
            return _owned(shape, _F32)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))
    dt = _check_dtype(dtype, "empty")
    if min(shape, default=0) < 0:
        raise ValueError(f"empty: negative dimension in shape {shape}")
    return _owned(shape, dt)


def zeros(shape, dtype=np.float32) -> DeviceArray:
    out = empty(shape, dtype)
    if out.nbytes:
        _core.cuda_fill_bytes(out.data_ptr, 0, out.nbytes)
    return out


def from_numpy(a: np.ndarray) -> DeviceArray:
    """A device copy of the NumPy array a (any layout; the copy is C-contiguous)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    _check_dtype(a.dtype, "from_numpy")
    a = np.require(a, requirements=("C", "A"))
    out = empty(a.shape, a.dtype)
    if a.nbytes:
        _core.cuda_copy_from_host(out.data_ptr, a)
    return out


def to_numpy(a) -> np.ndarray:
    return as_device_array(a, "to_numpy").to_numpy()


def _from_cuda_array_interface(obj, what: str) -> DeviceArray:
    cai = obj.__cuda_array_interface__
    try:
        shape, typestr, (ptr, readonly) = tuple(cai["shape"]), cai["typestr"], cai["data"]
    except (KeyError, TypeError, ValueError) as e:
        raise TypeError(f"{what}: malformed __cuda_array_interface__ ({e!r})") from None
    if cai.get("mask") is not None:
        raise ValueError(f"{what}: masked device arrays are not supported")
    dtype = _check_dtype(typestr, what)
    stream = cai.get("stream")
    if stream is not None:
        if isinstance(stream, bool) or not isinstance(stream, int) or stream == 0:
            raise ValueError(f"{what}: invalid __cuda_array_interface__ stream {stream!r}")
        if stream != 1:
            require()
            _core.cuda_wait_for_stream(stream)  # our stream waits for the producer's
    return DeviceArray._make(obj, ptr or 0, shape, dtype, cai.get("strides"), bool(readonly))


def _dtype_from_dlpack(code: int, bits: int, what: str) -> np.dtype:
    kind = {0: "i", 1: "u", 2: "f", 6: "b"}.get(code)
    if kind is None or bits % 8:
        raise TypeError(f"{what}: DLPack dtype (code {code}, {bits} bits) is not supported")
    return _check_dtype("bool" if kind == "b" else f"{kind}{bits // 8}", what)


def from_dlpack(obj) -> DeviceArray:
    """A zero-copy DeviceArray of a CUDA array exposing __dlpack__ (PyTorch CUDA tensors, CuPy,
    JAX, ...) or of a legacy DLPack capsule. Host arrays raise TypeError (use from_numpy)."""
    if isinstance(obj, DeviceArray):
        return obj
    if type(obj).__name__ == "PyCapsule":
        capsule = obj
    else:
        if not hasattr(obj, "__dlpack__"):
            raise TypeError(f"from_dlpack: {type(obj).__name__} does not support DLPack "
                            f"(no __dlpack__)")
        if hasattr(obj, "__dlpack_device__"):
            kind = int(obj.__dlpack_device__()[0])
            if kind not in (_DL_CUDA, _DL_CUDA_MANAGED):
                raise TypeError(f"from_dlpack: the {type(obj).__name__} is on "
                                f"{_DL_DEVICE_NAMES.get(kind, f'DLPack device type {kind}')}, "
                                f"not a CUDA device (copy host arrays with from_numpy)")
        capsule = obj.__dlpack__(stream=1)  # we consume on the legacy default stream
    holder, ptr, shape, strides, (code, bits, _), (kind, dev) = _core.dlpack_import(capsule)
    if kind not in (_DL_CUDA, _DL_CUDA_MANAGED):
        raise TypeError(f"from_dlpack: the capsule is on "
                        f"{_DL_DEVICE_NAMES.get(kind, f'DLPack device type {kind}')}, not a CUDA "
                        f"device (copy host arrays with from_numpy)")
    dtype = _dtype_from_dlpack(code, bits, "from_dlpack")
    byte_strides = None if strides is None else [s * dtype.itemsize for s in strides]
    return DeviceArray._make(holder, ptr, shape, dtype, byte_strides, False, dev)


def is_device_array(obj) -> bool:
    """DeviceArray, or another library's CUDA array (CUDA array interface / CUDA DLPack device)."""
    if getattr(obj, "_cnnfast_device_array", False):
        return True
    try:
        if hasattr(obj, "__cuda_array_interface__"):
            return True
    except Exception:  # a CUDA array refusing export (a torch tensor requiring grad):
        return True    # as_device_array then raises the library's own explanation
    dl = getattr(obj, "__dlpack_device__", None)
    if dl is None or isinstance(obj, np.ndarray):
        return False
    try:
        return int(dl()[0]) in (_DL_CUDA, _DL_CUDA_MANAGED)
    except Exception:  # a foreign object's protocol failing is "not a device array"
        return False


def as_device_array(obj, what: str = "input") -> DeviceArray:
    """obj itself if a DeviceArray, else a zero-copy DeviceArray view of a foreign CUDA array.
    NumPy arrays raise TypeError: host -> device copies are explicit (from_numpy)."""
    if isinstance(obj, DeviceArray):
        return obj
    if isinstance(obj, np.ndarray):
        raise TypeError(f"{what}: a NumPy (host) array; copy it to the device explicitly with "
                        f"cnnfast.cuda.from_numpy")
    if hasattr(obj, "__cuda_array_interface__"):
        return _from_cuda_array_interface(obj, what)
    if is_device_array(obj):
        return from_dlpack(obj)
    raise TypeError(f"{what}: expected a CUDA device array (cnnfast.cuda.DeviceArray, or an "
                    f"object with __cuda_array_interface__ or CUDA DLPack), got "
                    f"{type(obj).__name__}")
