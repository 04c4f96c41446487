"""Max-unpooling, 1-D/2-D/3-D, and its backward: the decoder half of DeconvNet / SegNet.

``y = max_unpool2d(x, switches)`` is zero except ``y[n, c].flat[idx[n, c, j]] = x[n, c].flat[j]``.
Output size: a :class:`Switches` (from ``max_pool2d(..., return_indices=True)``) carries it; with
a raw index array give ``output_size`` or ``kernel_size`` (then PyTorch's default
``(in − 1)·stride − 2·padding + kernel``). An ``output_size`` inconsistent with the window
parameters, or any index outside the output plane, raises ValueError (checked before any write).
Overlapping windows that share a switch: the LAST writer in raster order of x wins (so
max_pool → max_unpool always gives the maxima in place, zeros elsewhere); the backward is the
exact adjoint: ``grad_x[j] = grad_out[idx[j]]`` for that last writer, 0 for the others.
"""
from __future__ import annotations

from .. import _core
from .._checks import INT64_MAX, as_float_array, check_ndim, int_tuple
from ._dispatch import on_device
from .pool import _LAYOUT, _variants
from .switches import Switches, indices_array


def _pooled_extent(n, k, s, p, ceil_mode):
    """What max pooling with (k, s, p) makes of extent n (pool.py's rule: no window may start
    past the left padding + input); 0 where the kernel does not fit."""
    if k > n + 2 * p:
        return 0
    o = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    return o - 1 if ceil_mode and (o - 1) * s >= n + p else o


def _output_size(x, nd, indices, kernel_size, stride, padding, output_size):
    in_sp = x.shape[2:]
    default = None
    if kernel_size is not None:
        k = int_tuple("kernel_size", kernel_size, nd, 1)
        s = k if stride is None else int_tuple("stride", stride, nd, 1)
        p = int_tuple("padding", padding, nd, 0)
        default = tuple((n - 1) * ss - 2 * pp + kk for n, kk, ss, pp in zip(in_sp, k, s, p))
    if output_size is not None:
        if isinstance(output_size, (tuple, list)) and len(output_size) == nd + 2:
            if tuple(output_size[:2]) != tuple(x.shape[:2]):
                raise ValueError(f"output_size {tuple(output_size)}: (N, C) must be the input's "
                                 f"{x.shape[:2]} (input {x.shape})")
            output_size = tuple(output_size)[2:]
        out = int_tuple("output_size", output_size, nd, 1)
        if default is not None:
            for i, (n, o, kk, ss, pp) in enumerate(zip(in_sp, out, k, s, p)):
                fits = [_pooled_extent(o, kk, ss, pp, ceil) for ceil in (False, True)]
                if n not in fits:
                    raise ValueError(
                        f"output_size {out} is inconsistent with kernel_size {k}, stride {s}, "
                        f"padding {p}: pooling it gives {fits[0]} (ceil_mode: {fits[1]}) along "
                        f"spatial dim {i}, not the input's {n} (input {x.shape})")
    if isinstance(indices, Switches):
        rk, rs, rp = indices.kernel_size, indices.stride, indices.padding
        if kernel_size is not None and rk is not None:  # both given: they must agree
            recorded = (int_tuple("Switches.kernel_size", rk, nd, 1),
                        int_tuple("Switches.stride", rk if rs is None else rs, nd, 1),
                        int_tuple("Switches.padding", 0 if rp is None else rp, nd, 0))
            if (k, s, p) != recorded:
                raise ValueError(f"kernel_size {k}, stride {s}, padding {p}: the Switches were "
                                 f"recorded by pooling with {recorded[0]}, {recorded[1]}, "
                                 f"{recorded[2]} (give the Switches alone)")
        if indices.input_shape[:2] != x.shape[:2]:
            raise ValueError(f"indices: Switches recorded input {indices.input_shape}, which "
                             f"does not match input {x.shape} in (N, C)")
        if output_size is not None and out != indices.output_size:
            raise ValueError(f"output_size {out} contradicts the Switches' recorded input "
                             f"{indices.input_shape}")
        return indices.output_size
    if output_size is not None:
        return out
    if default is None:
        raise ValueError("output_size: give a Switches, output_size or kernel_size (raw "
                         "indices alone cannot say the unpooled size)")
    if min(default) < 1 or max(default) > INT64_MAX:
        raise ValueError(f"kernel_size: default output size {default} for input {x.shape} "
                         f"is {'empty' if min(default) < 1 else 'past int64'}")
    return default


def _prepare(nd, x, indices, kernel_size, stride, padding, output_size, algo):
    x = as_float_array("input", x)
    check_ndim("input", x, nd + 2, _LAYOUT[nd])
    if algo not in ("auto", "ref"):
        raise ValueError(f"algo: expected one of ('auto', 'ref'), got {algo!r}")
    out = _output_size(x, nd, indices, kernel_size, stride, padding, output_size)
    idx = indices_array(indices, x.shape)
    return x, idx, (1,) * (3 - nd) + tuple(out)


@on_device
def _max_unpool(nd, x, indices, kernel_size=None, stride=None, padding=0, output_size=None,
                algo="auto"):
    """max-unpooling of x (N, C, *pooled) to the switches in `indices` (Switches or int64
    array): zeros except each value at its switch; shared switches: last writer wins."""
    x, idx, out = _prepare(nd, x, indices, kernel_size, stride, padding, output_size, algo)
    return _core.unpool_forward(x, idx, out, algo)


@on_device
def _max_unpool_backward(nd, grad_out, x, indices, kernel_size=None, stride=None, padding=0,
                         output_size=None, algo="auto"):
    """gradient of max-unpooling w.r.t. x: grad_out read back at each switch (0 for writers
    that a later one overwrote)."""
    x, idx, out = _prepare(nd, x, indices, kernel_size, stride, padding, output_size, algo)
    g = as_float_array("grad_out", grad_out, x.dtype)
    want = x.shape[:2] + out[3 - nd:]
    if g.shape != want:
        raise ValueError(f"grad_out: expected shape {want} (the unpooled output for input "
                         f"{x.shape}), got {g.shape}")
    return _core.unpool_backward(g, x, idx, out, algo)


max_unpool1d, max_unpool2d, max_unpool3d = _variants(_max_unpool, "max_unpool{}d")
max_unpool1d_backward, max_unpool2d_backward, max_unpool3d_backward = _variants(
    _max_unpool_backward, "max_unpool{}d_backward")

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d", "max_unpool1d_backward",
           "max_unpool2d_backward", "max_unpool3d_backward"]
