"""Argument checking shared by every op: dtypes, array-ness, int tuples, padding forms.

Errors name the argument and show what was expected and what was given.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(name: str, a, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """The array itself if float32/float64, C-contiguous and aligned, else one explicit copy.

    TypeError for non-arrays, other dtypes, or a dtype different from `dtype`.
    """
    if type(a) is np.ndarray and (a.dtype is dtype or (dtype is None and a.dtype in FLOAT_DTYPES)):
        flags = a.flags  # the common case, without np.require's ~5 us (57 calls a LeNet step)
        if flags.c_contiguous and flags.aligned:
            return a
    if isinstance(a, (np.ma.MaskedArray, np.matrix)):  # a mask the kernels would ignore
        raise TypeError(f"{name}: {type(a).__name__} is not supported (a mask or matrix "
                        f"semantics would be ignored); pass a plain numpy.ndarray "
                        f"(numpy.asarray, or .filled() for a masked array)")
    if not isinstance(a, np.ndarray):
        from .cuda._array import is_device_array
        if is_device_array(a):
            raise TypeError(f"{name}: a CUDA device array, but this op has no CUDA kernel (the "
                            f"ops that do are listed in cnnfast.cuda's docstring); copy it to "
                            f"the host with .to_numpy()")
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype must be float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name}: dtype {a.dtype} does not match the input's dtype {dtype}")
    # C-contiguous AND aligned (ascontiguousarray alone keeps a misaligned buffer, which the
    # kernels must not read through a float pointer): copies only when needed.
    return np.require(a, requirements=("C", "A"))


def check_ndim(name: str, a: np.ndarray, ndim: int, layout: str) -> None:
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array {layout}, got shape {a.shape}")


def _is_int(v) -> bool:
    if type(v) is int:  # the common case, before the (slow) ABC check
        return True
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


INT64_MAX = 2**63 - 1


def int_tuple(name: str, v, n: int, minimum: int) -> Tuple[int, ...]:
    """An int or a length-n sequence of ints, each >= minimum and within int64."""
    if type(v) is int and minimum <= v <= INT64_MAX:  # the common case, checked in one step
        return (v,) * n
    if _is_int(v):
        vals = (int(v),) * n
    elif isinstance(v, Sequence) and not isinstance(v, str) and len(v) == n and all(
            _is_int(e) for e in v):
        vals = tuple(int(e) for e in v)
    else:
        raise TypeError(f"{name}: expected an int or a tuple of {n} ints, got {v!r}")
    if any(e < minimum for e in vals):
        raise ValueError(f"{name}: every value must be >= {minimum}, got {vals}")
    if any(e > INT64_MAX for e in vals):
        raise ValueError(f"{name}: every value must fit in int64 (at most 2**63 - 1), got {vals}")
    return vals


def check_int(name: str, v, minimum: int) -> int:
    """One int option of at least `minimum` (a bool or a float — which int() would cut down
    silently — is refused): ValueError naming it."""
    if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {v!r}")
    return int(v)


def check_bool(name: str, v) -> bool:
    """A flag: a bool (or NumPy bool), not any object Python would call truthy."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {v!r}")
    return bool(v)


PaddingArg = Union[int, str, Sequence[int]]


def resolve_padding(padding: PaddingArg, in_size: Sequence[int], kernel: Sequence[int],
                    stride: Sequence[int], dilation: Sequence[int]) -> Tuple[int, ...]:
    """Explicit (before, after) padding per spatial dim, flattened: (b0, a0, b1, a1, ...).

    padding: int; a tuple of one int per dim (symmetric); a tuple of two ints per dim
    (before, after — for 2-D (top, bottom, left, right)); or 'valid' (none), 'same'
    (output = ceil(input / stride), any extra on the after side as TensorFlow does), 'full'
    (every partial overlap: (k - 1) * dilation on both sides).
    """
    nd = len(in_size)
    ext = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * nd)
        if padding == "full":
            return tuple(v for e in ext for v in (e - 1, e - 1))
        if padding == "same":
            out = []
            for i, e, s in zip(in_size, ext, stride):
                total = max((-(-i // s) - 1) * s + e - i, 0)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(f"padding: expected 'valid', 'same', 'full' or ints, got {padding!r}")
    if _is_int(padding):
        vals = (int(padding),) * (2 * nd)
    elif isinstance(padding, Sequence) and all(_is_int(e) for e in padding) and len(padding) in (
            nd, 2 * nd):
        vals = tuple(int(e) for e in padding)
        if len(vals) == nd:
            vals = tuple(v for e in vals for v in (e, e))
    else:
        raise TypeError(f"padding: expected an int, a tuple of {nd} or {2 * nd} ints, or "
                        f"'valid'/'same'/'full', got {padding!r}")
    if any(v < 0 for v in vals):
        raise ValueError(f"padding: must be >= 0, got {vals}")
    if any(v > INT64_MAX for v in vals):
        raise ValueError(f"padding: every value must fit in int64 (at most 2**63 - 1), got {vals}")
    return vals


def check_needs(needs_input_grad, n: int) -> Tuple[bool, ...]:
    if not (isinstance(needs_input_grad, Sequence) and len(needs_input_grad) == n):
        raise TypeError(f"needs_input_grad: expected a tuple of {n} bools, got {needs_input_grad!r}")
    return tuple(bool(v) for v in needs_input_grad)


def check_float(name: str, v, minimum: Optional[float] = None, maximum: Optional[float] = None,
                open_min: bool = False) -> float:
    """A real number (not bool) within [minimum, maximum] (or (minimum, ...] if open_min)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {v!r}")
    v = float(v)
    if minimum is not None and (v < minimum or (open_min and v == minimum)):
        raise ValueError(f"{name}: must be {'>' if open_min else '>='} {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {v}")
    return v


def check_same_shape(name: str, a: np.ndarray, ref_name: str, ref: np.ndarray) -> None:
    if a.shape != ref.shape:
        raise ValueError(f"{name}: expected shape {ref.shape} (the shape of {ref_name}), "
                         f"got {a.shape}")


def check_min_ndim(name: str, a: np.ndarray, ndim: int, layout: str) -> None:
    if a.ndim < ndim:
        raise ValueError(f"{name}: expected at least {ndim}-D {layout}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: must not be empty, got shape {a.shape}")


def check_batch_layout(name: str, a: np.ndarray, ndim: int, layout: str) -> None:
    """At least `ndim` dims; an empty batch (dim 0 of size 0) is allowed, every other dim must be
    >= 1 (no channels or no features is an error)."""
    if a.ndim < ndim:
        raise ValueError(f"{name}: expected at least {ndim}-D {layout}, got shape {a.shape}")
    if 0 in a.shape[1:]:
        raise ValueError(f"{name}: every dimension but the batch must be >= 1, got shape "
                         f"{a.shape}")


def check_reduction(reduction) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction
