"""Interpolation (the "upsampling" layer of encoder–decoders) and its backward, PyTorch's rules.

Per spatial dim with scale = in/out (or 1/scale_factor when scale_factor is given):
  nearest: y[o] = x[min(floor(o·scale), in − 1)] (from the sizes: floor(o·in/out) in integers,
           exact where a float product would round just below an integer)
  linear (align_corners=False): src = max((o + 0.5)·scale − 0.5, 0); where out = in along a
           dim, a copy whatever scale_factor says (PyTorch's rule for its linear modes)
  linear (align_corners=True):  src = o·(in − 1)/(out − 1)
  y[o] = (1 − λ)·x[i0] + λ·x[i1], i0 = floor(src), i1 = min(i0 + 1, in − 1), λ = src − i0;
bilinear / trilinear are the products of the per-dim weights.
PyTorch's 2-D nearest alone (not its 1-D or 3-D) also copies where out = in and takes o // 2
where out = 2·in whatever scale_factor says; here nearest always follows the rule above.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .. import _core
from .._checks import INT64_MAX, as_float_array, check_bool, int_tuple

_MODES = {"nearest": None, "linear": 1, "bilinear": 2, "trilinear": 3}


def _prepare(x, size, scale_factor, mode, align_corners, algo):
    x = as_float_array("input", x)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"input: expected (N, C) + 1 to 3 spatial dims, got shape {x.shape}")
    nd = x.ndim - 2
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {tuple(_MODES)}, got {mode!r}")
    if _MODES[mode] not in (None, nd):
        raise ValueError(f"mode: {mode!r} needs {_MODES[mode]} spatial dims, input {x.shape} "
                         f"has {nd}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners: only valid for linear modes, not 'nearest'")
    if align_corners is not None:
        check_bool("align_corners", align_corners)
    if algo not in ("auto", "ref"):
        raise ValueError(f"algo: expected one of ('auto', 'ref'), got {algo!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("size / scale_factor: give exactly one of them")
    in_sp = x.shape[2:]
    scales = [0.0] * nd
    if size is not None:
        out = int_tuple("size", size, nd, 1)
    else:
        def number(v):
            return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
        sf = (scale_factor,) * nd if number(scale_factor) else scale_factor
        if not (isinstance(sf, Sequence) and len(sf) == nd and all(number(v) for v in sf)):
            raise TypeError(f"scale_factor: expected a number or a tuple of {nd}, "
                            f"got {scale_factor!r}")
        sf = tuple(float(v) for v in sf)
        if not all(math.isfinite(v) and v > 0 for v in sf):
            raise ValueError(f"scale_factor: every value must be finite and > 0, got {sf}")
        out = tuple(int(math.floor(n * v)) for n, v in zip(in_sp, sf))
        if any(v > INT64_MAX for v in out):
            raise ValueError(f"scale_factor: {sf} on input {x.shape} gives output dims {out}, "
                             f"past int64")
        scales = [1.0 / v for v in sf]
        if any(v < 1 for v in out):
            raise ValueError(f"scale_factor: {sf} on input {x.shape} gives output dims {out}; "
                             f"every one must be >= 1")
    kind = "nearest" if mode == "nearest" else "linear"
    pad = 3 - nd
    return (x, (1,) * pad + tuple(int(v) for v in out), (0.0,) * pad + tuple(scales), kind,
            bool(align_corners))


def interpolate(x, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                algo: str = "auto") -> np.ndarray:
    """Resize x (N, C, *spatial) to `size` or by `scale_factor` with mode 'nearest', 'linear'
    (1-D), 'bilinear' (2-D) or 'trilinear' (3-D); align_corners as PyTorch (linear modes)."""
    x, out, scales, kind, align = _prepare(x, size, scale_factor, mode, align_corners, algo)
    return _core.interpolate_forward(x, out, scales, kind, align, algo)


def interpolate_backward(grad_out, x, size=None, scale_factor=None, mode: str = "nearest",
                         align_corners=None, algo: str = "auto") -> np.ndarray:
    """Gradient of interpolate w.r.t. x (each output's weights scattered back to its taps)."""
    x, out, scales, kind, align = _prepare(x, size, scale_factor, mode, align_corners, algo)
    g = as_float_array("grad_out", grad_out, x.dtype)
    want = x.shape[:2] + out[3 - (x.ndim - 2):]
    if g.shape != want:
        raise ValueError(f"grad_out: expected shape {want} (the interpolate output for input "
                         f"{x.shape}), got {g.shape}")
    return _core.interpolate_backward(g, x, out, scales, kind, align, algo)


__all__ = ["interpolate", "interpolate_backward"]
