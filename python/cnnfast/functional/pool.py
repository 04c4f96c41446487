"""Pooling, 1-D/2-D/3-D: max (with switches), average, Lp, adaptive and global; each with a
``_backward`` twin returning the input gradient.

Along each spatial dim, output o pools the taps ``o·stride − padding + t·dilation`` (t < kernel)
that fall inside the input (padding is implicit: −inf for max, excluded or counted as zero for
avg). ``ceil_mode`` adds a last partial window when it starts inside the input or its left
padding. Adaptive windows are ``[floor(o·in/out), ceil((o+1)·in/out))``. Max keeps the FIRST
maximum in raster order (a NaN wins and propagates); its indices are int64, flat within each
(N, C) plane of the input (PyTorch's convention). ``return_indices=True`` returns a
:class:`Switches` (indices + the input shape), which :func:`max_unpool2d` etc. accept directly.
1-D and 2-D run through the same 3-D core with singleton leading dims.

Where PyTorch differs: it picks the LAST NaN of a window as the index; it accepts, in ceil_mode,
a (dilated) kernel larger than the padded input (a first window overhanging the input), which
is a ValueError here as for every other mode; its lp_pool scales a partial ceil_mode window by
kernel size / taps inside (it is avg pooling times the kernel size), while this lp_pool sums
the taps inside.
"""
from __future__ import annotations

import functools
import inspect
import math

import numpy as np

from .. import _core
from .._checks import INT64_MAX, as_float_array, check_bool, check_ndim, int_tuple
from ._dispatch import on_device
from .switches import Switches, indices_array

_ALGOS = ("auto", "ref")
_LAYOUT = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def _input(x, nd: int, algo: str) -> np.ndarray:
    x = as_float_array("input", x)
    check_ndim("input", x, nd + 2, _LAYOUT[nd])
    if algo not in _ALGOS:
        raise ValueError(f"algo: expected one of {_ALGOS}, got {algo!r}")
    return x


def _grad(grad_out, x: np.ndarray, want: tuple, what: str) -> np.ndarray:
    g = as_float_array("grad_out", grad_out, x.dtype)
    if g.shape != tuple(want):
        raise ValueError(f"grad_out: expected shape {tuple(want)} (the {what} output for input "
                         f"{x.shape}), got {g.shape}")
    return g


def _pad3(v, fill):
    return (fill,) * (3 - len(v)) + tuple(v)


def _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Validated (kernel, stride, pad, dilation) as 3-tuples plus the pooled shape."""
    k = int_tuple("kernel_size", kernel_size, nd, 1)
    s = k if stride is None else int_tuple("stride", stride, nd, 1)
    p = int_tuple("padding", padding, nd, 0)
    d = int_tuple("dilation", dilation, nd, 1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode: expected a bool, got {ceil_mode!r}")
    out = []
    for i, (n, kk, ss, pp, dd) in enumerate(zip(x.shape[2:], k, s, p, d)):
        if 2 * pp > kk:
            raise ValueError(f"padding {p} must be at most half of kernel_size {k}")
        ext = (kk - 1) * dd + 1
        if ext > n + 2 * pp:
            dil = f" (dilation {d})" if any(v != 1 for v in d) else ""
            raise ValueError(f"kernel_size {k}{dil} spans {ext} along spatial dim {i}, "
                             f"larger than the padded input {n} + 2·{pp} of input {x.shape}")
        o = (n + 2 * pp - ext + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (o - 1) * ss >= n + pp:
            o -= 1
        for j in {0, min(1, o - 1), o - 1}:  # only these can miss the input (pool_params.cpp)
            start = j * ss - pp
            first = -(start // dd) if start < 0 else 0  # the first tap at or past 0
            if first >= kk or start + first * dd >= n:
                raise ValueError(f"padding {p} / dilation {d}: output {j} along spatial dim {i} "
                                 f"of input {x.shape} pools a window that lies entirely in the "
                                 f"padding (kernel_size {k}, stride {s})")
        out.append(o)
    shape = x.shape[:2] + tuple(out)
    return (_pad3(k, 1), _pad3(s, 1), _pad3(p, 0), _pad3(d, 1)), shape


def _adaptive_size(x, nd, output_size):
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        output_size = (int(output_size),) * nd
    if not (isinstance(output_size, (tuple, list)) and len(output_size) == nd):
        raise TypeError(f"output_size: expected an int or a tuple of {nd} ints/None, "
                        f"got {output_size!r}")
    size = tuple(n if o is None else o for o, n in zip(output_size, x.shape[2:]))
    size = int_tuple("output_size", size, nd, 1)
    return _pad3(size, 1), x.shape[:2] + size


def _variants(core, name: str):
    """max_pool1d/2d/3d etc.: `core(nd, ...)` with nd bound, keeping core's signature."""
    out = {}
    sig = inspect.signature(core)
    sig = sig.replace(parameters=list(sig.parameters.values())[1:])

    def wrap(nd, public):
        def f(*a, **kw):
            try:
                return core(nd, *a, **kw)
            except TypeError as e:  # a bad call names the public function, not the core
                prefix = f"{core.__qualname__}() "
                if str(e).startswith(prefix):
                    raise TypeError(f"{public}() {str(e)[len(prefix):]}") from None
                raise
        return f

    for nd in (1, 2, 3):
        f = functools.update_wrapper(wrap(nd, name.format(nd)), core)
        f.__name__ = f.__qualname__ = name.format(nd)
        f.__signature__ = sig
        f.__doc__ = f"{nd}-D " + (core.__doc__ or "").strip()
        out[nd] = f
    return out[1], out[2], out[3]


# ---- max ----------------------------------------------------------------------------------------

@on_device
def _max_pool(nd, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False, algo="auto"):
    """max pooling of x (N, C, *spatial). return_indices=True returns (y, Switches)."""
    x = _input(x, nd, algo)
    win, _ = _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    want_idx = check_bool("return_indices", return_indices)
    y, idx = _core.pool_max_forward(x, *win, bool(ceil_mode), None, want_idx, algo)
    if not return_indices:
        return y
    return y, Switches(idx, x.shape, kernel_size=win[0][3 - nd:], stride=win[1][3 - nd:],
                       padding=win[2][3 - nd:], dilation=win[3][3 - nd:], ceil_mode=bool(ceil_mode))


@on_device
def _max_pool_backward(nd, grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False, indices=None, algo="auto"):
    """gradient of max pooling w.r.t. x: grad_out scattered to the switches (indices or a
    Switches from the forward; recomputed from x when None). Shared switches add up."""
    x = _input(x, nd, algo)
    win, shape = _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    g = _grad(grad_out, x, shape, "max pooling")
    if indices is None:
        indices = _core.pool_max_forward(x, *win, bool(ceil_mode), None, True, algo)[1]
    idx = indices_array(indices, shape)
    return _core.pool_max_backward(g, x, idx, *win, bool(ceil_mode), None, algo)


max_pool1d, max_pool2d, max_pool3d = _variants(_max_pool, "max_pool{}d")
max_pool1d_backward, max_pool2d_backward, max_pool3d_backward = _variants(
    _max_pool_backward, "max_pool{}d_backward")


# ---- average --------------------------------------------------------------------------------------

def _divisor(divisor_override) -> int:
    if divisor_override is None:
        return 0
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)):
        raise TypeError(f"divisor_override: expected an int or None, got {divisor_override!r}")
    if not 1 <= divisor_override <= INT64_MAX:
        raise ValueError(f"divisor_override: must be >= 1 and fit in int64, got {divisor_override}")
    return int(divisor_override)


@on_device
def _avg_pool(nd, x, kernel_size, stride=None, padding=0, ceil_mode=False,
              count_include_pad=True, divisor_override=None, algo="auto"):
    """average pooling of x (N, C, *spatial): window sum / (window size counting padding if
    count_include_pad, else the in-input count; divisor_override replaces both)."""
    x = _input(x, nd, algo)
    win, _ = _window_args(x, nd, kernel_size, stride, padding, 1, ceil_mode)
    include_pad = check_bool("count_include_pad", count_include_pad)
    return _core.pool_avg_forward(x, *win[:3], bool(ceil_mode), None, include_pad,
                                  _divisor(divisor_override), algo)


@on_device
def _avg_pool_backward(nd, grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None, algo="auto"):
    """gradient of average pooling w.r.t. x."""
    x = _input(x, nd, algo)
    win, shape = _window_args(x, nd, kernel_size, stride, padding, 1, ceil_mode)
    g = _grad(grad_out, x, shape, "average pooling")
    include_pad = check_bool("count_include_pad", count_include_pad)
    return _core.pool_avg_backward(g, x, *win[:3], bool(ceil_mode), None, include_pad,
                                   _divisor(divisor_override), algo)


avg_pool1d, avg_pool2d, avg_pool3d = _variants(_avg_pool, "avg_pool{}d")
avg_pool1d_backward, avg_pool2d_backward, avg_pool3d_backward = _variants(
    _avg_pool_backward, "avg_pool{}d_backward")


# ---- Lp -------------------------------------------------------------------------------------------

def _norm(norm_type) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.integer,
                                                                 np.floating)):
        raise TypeError(f"norm_type: expected a number, got {norm_type!r}")
    if not (math.isfinite(norm_type) and norm_type > 0):
        raise ValueError(f"norm_type: must be finite and > 0, got {norm_type}")
    return float(norm_type)


def _lp_sum(nd, x, p, kernel_size, stride, ceil_mode, algo):
    """Window sums of (|x| / scale)^p, with scale = max |x| (1 when that is 0 or not finite):
    every term is ≤ 1, so |x|^p cannot overflow (x = 10, p = 40 would be inf in float32) and
    underflows only where a window's values are tiny next to the tensor's largest."""
    win, shape = _window_args(x, nd, kernel_size, stride, 0, 1, ceil_mode)
    scaled = np.abs(x)
    top = scaled.max() if scaled.size else 0
    scale = x.dtype.type(top if np.isfinite(top) and top > 0 else 1)
    np.divide(scaled, scale, out=scaled)
    s = _core.pool_avg_forward(scaled ** x.dtype.type(p), *win[:3], bool(ceil_mode), None, True,
                               1, algo)
    return win, shape, scale, scaled, s


def _lp_pool(nd, x, norm_type, kernel_size, stride=None, ceil_mode=False, algo="auto"):
    """Lp pooling of x (N, C, *spatial): (Σ_window |x|^p)^(1/p) — p = 2 is L2 pooling, p → ∞
    approaches max pooling of |x|. Computed as scale · (Σ (|x|/scale)^p)^(1/p), so a large p
    does not overflow. (PyTorch sums x^p without |·| or scale: equal for even p or x ≥ 0 where
    x^p stays finite.)"""
    x = _input(x, nd, algo)
    p = _norm(norm_type)
    _, _, scale, _, s = _lp_sum(nd, x, p, kernel_size, stride, ceil_mode, algo)
    return s ** x.dtype.type(1.0 / p) * scale


def _lp_pool_backward(nd, grad_out, x, norm_type, kernel_size, stride=None, ceil_mode=False,
                      algo="auto"):
    """gradient of Lp pooling w.r.t. x: Σ over windows of grad · s^(1/p−1) · |y|^(p−1)·sign(x),
    y = x / scale and s the window's Σ|y|^p (the scale cancels); zero where s or x is zero.
    A window holding NaN gives NaN to all its inputs, as torch's autograd does."""
    x = _input(x, nd, algo)
    p = _norm(norm_type)
    win, shape, _, scaled, s = _lp_sum(nd, x, p, kernel_size, stride, ceil_mode, algo)
    g = _grad(grad_out, x, shape, "Lp pooling")
    with np.errstate(divide="ignore", invalid="ignore"):
        gs = np.where(s == 0, 0, g * s ** x.dtype.type(1.0 / p - 1.0)).astype(x.dtype)
        spread = _core.pool_avg_backward(np.ascontiguousarray(gs), x, *win[:3], bool(ceil_mode),
                                         None, True, 1, algo)
        dx = np.where(scaled > 0, spread * scaled ** x.dtype.type(p - 1.0) * np.sign(x),
                      0 * spread)  # 0, or NaN from a NaN window
    return dx.astype(x.dtype)


lp_pool1d, lp_pool2d, lp_pool3d = _variants(_lp_pool, "lp_pool{}d")
lp_pool1d_backward, lp_pool2d_backward, lp_pool3d_backward = _variants(
    _lp_pool_backward, "lp_pool{}d_backward")


# ---- adaptive and global --------------------------------------------------------------------------

_NO_WIN = ((1, 1, 1), (1, 1, 1), (0, 0, 0), (1, 1, 1))


@on_device
def _adaptive_avg_pool(nd, x, output_size, algo="auto"):
    """adaptive average pooling of x (N, C, *spatial) to output_size (int, or tuple whose None
    entries keep the input size): windows [floor(o·in/out), ceil((o+1)·in/out))."""
    x = _input(x, nd, algo)
    size, _ = _adaptive_size(x, nd, output_size)
    return _core.pool_avg_forward(x, *_NO_WIN[:3], False, size, True, 0, algo)


@on_device
def _adaptive_avg_pool_backward(nd, grad_out, x, output_size, algo="auto"):
    """gradient of adaptive average pooling w.r.t. x."""
    x = _input(x, nd, algo)
    size, shape = _adaptive_size(x, nd, output_size)
    g = _grad(grad_out, x, shape, "adaptive average pooling")
    return _core.pool_avg_backward(g, x, *_NO_WIN[:3], False, size, True, 0, algo)


@on_device
def _adaptive_max_pool(nd, x, output_size, return_indices=False, algo="auto"):
    """adaptive max pooling of x (N, C, *spatial) to output_size; return_indices=True returns
    (y, Switches) for max_unpool."""
    x = _input(x, nd, algo)
    size, _ = _adaptive_size(x, nd, output_size)
    want_idx = check_bool("return_indices", return_indices)
    y, idx = _core.pool_max_forward(x, *_NO_WIN, False, size, want_idx, algo)
    return (y, Switches(idx, x.shape)) if return_indices else y


@on_device
def _adaptive_max_pool_backward(nd, grad_out, x, output_size, indices=None, algo="auto"):
    """gradient of adaptive max pooling w.r.t. x (indices recomputed from x when None)."""
    x = _input(x, nd, algo)
    size, shape = _adaptive_size(x, nd, output_size)
    g = _grad(grad_out, x, shape, "adaptive max pooling")
    if indices is None:
        indices = _core.pool_max_forward(x, *_NO_WIN, False, size, True, algo)[1]
    return _core.pool_max_backward(g, x, indices_array(indices, shape), *_NO_WIN, False, size,
                                   algo)


adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = _variants(
    _adaptive_avg_pool, "adaptive_avg_pool{}d")
adaptive_avg_pool1d_backward, adaptive_avg_pool2d_backward, adaptive_avg_pool3d_backward = (
    _variants(_adaptive_avg_pool_backward, "adaptive_avg_pool{}d_backward"))
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = _variants(
    _adaptive_max_pool, "adaptive_max_pool{}d")
adaptive_max_pool1d_backward, adaptive_max_pool2d_backward, adaptive_max_pool3d_backward = (
    _variants(_adaptive_max_pool_backward, "adaptive_max_pool{}d_backward"))


def _spatial_dims(x) -> int:
    if not hasattr(x, "shape"):  # NumPy or device arrays
        raise TypeError(f"input: expected an array (N, C, *spatial), got {type(x).__name__}")
    if len(x.shape) not in (3, 4, 5):
        raise ValueError(f"input: expected (N, C) + 1 to 3 spatial dims, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    return len(x.shape) - 2


def global_avg_pool(x, algo="auto") -> np.ndarray:
    """Mean over all spatial dims of x (N, C, *spatial) → (N, C, 1, ...) (spatial dims kept)."""
    return _adaptive_avg_pool(_spatial_dims(x), x, 1, algo)


def global_avg_pool_backward(grad_out, x, algo="auto") -> np.ndarray:
    return _adaptive_avg_pool_backward(_spatial_dims(x), grad_out, x, 1, algo)


def global_max_pool(x, return_indices=False, algo="auto"):
    """Max over all spatial dims of x (N, C, *spatial) → (N, C, 1, ...); optionally Switches."""
    return _adaptive_max_pool(_spatial_dims(x), x, 1, return_indices, algo)


def global_max_pool_backward(grad_out, x, indices=None, algo="auto") -> np.ndarray:
    return _adaptive_max_pool_backward(_spatial_dims(x), grad_out, x, 1, indices, algo)


__all__ = ["max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward", "max_pool3d",
           "max_pool3d_backward", "avg_pool1d", "avg_pool1d_backward", "avg_pool2d",
           "avg_pool2d_backward", "avg_pool3d", "avg_pool3d_backward", "lp_pool1d",
           "lp_pool1d_backward", "lp_pool2d", "lp_pool2d_backward", "lp_pool3d",
           "lp_pool3d_backward", "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_avg_pool3d",
           "adaptive_avg_pool3d_backward", "adaptive_max_pool1d", "adaptive_max_pool1d_backward",
           "adaptive_max_pool2d", "adaptive_max_pool2d_backward", "adaptive_max_pool3d",
           "adaptive_max_pool3d_backward", "global_avg_pool", "global_avg_pool_backward",
           "global_max_pool", "global_max_pool_backward", "Switches"]
