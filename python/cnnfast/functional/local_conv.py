"""Tiled convolution (Gregor & LeCun 2010) and locally connected layers, 1-, 2- and 3-D.

tiled_conv2d: weight (T_h, T_w, K, C, R, S) is a T_h×T_w grid of kernel banks rotated through
space; output (i, j) uses bank (i mod T_h, j mod T_w); bias (T_h, T_w, K):
    y[n, k, i, j] = b[i%T_h, j%T_w, k]
                    + Σ_{c,r,s} x[n, c, i·sh − pt + r·dh, j·sw − pl + s·dw] · w[i%T_h, j%T_w, k, c, r, s]
T = (1, 1) is conv2d; T = the output size is the locally connected layer.
locally_connected2d: weight (P, Q, K, C, R, S), one kernel per output location; bias (K, P, Q).
The 1-D / 3-D forms drop / add a spatial dimension everywhere. stride, padding (every conv2d form:
int, per-dim, (before, after) per dim, 'valid' | 'same' | 'full'), dilation as conv2d; no groups.
algo: 'gemm' runs one GEMM per bank over that bank's gathered columns, batched over images (the
locally connected layer's path); 'implicit' runs the conv engine's implicit-GEMM tile over each
bank's positions, reading windows straight from a padded image (its backward-data is the same
forward on grad_out at unit stride, else 'gemm'); 'auto' takes 'implicit' when every bank has many
positions per image (few banks), else 'gemm'; 'ref' the naive C++ loops. The Winograd names run
'gemm'; 'direct' is refused (ValueError), as by conv1d/conv3d.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _core
from .._checks import (PaddingArg, as_float_array, check_ndim, check_needs, int_tuple,
                       resolve_padding)
from .conv_family import check_algo, check_grad_out, check_kernel_fits, conv_out_size, expand3

_SP = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_KS = {1: ("S",), 2: ("R", "S"), 3: ("KD", "KH", "KW")}


def _layout(nd, lead):
    return "(" + ", ".join(lead + ("K", "C") + _KS[nd]) + ")"


def _prepare(nd, x, weight, bias, stride, padding, dilation, algo, per_location):
    x = as_float_array("input", x)
    weight = as_float_array("weight", weight, x.dtype)
    check_ndim("input", x, nd + 2, "(" + ", ".join(("N", "C") + _SP[nd]) + ")")
    lead = tuple(f"O{d}" for d in _SP[nd]) if per_location else tuple(f"T_{d.lower()}" for d in _SP[nd])
    check_ndim("weight", weight, 2 * nd + 2, _layout(nd, lead))
    tiles, (k, c), kernel = weight.shape[:nd], weight.shape[nd:nd + 2], weight.shape[nd + 2:]
    if min(tiles) < 1:
        raise ValueError(f"weight: tile sizes must be >= 1, got {tiles} (weight {weight.shape})")
    if min((k, c) + kernel) < 1:
        raise ValueError(f"weight: every dimension must be >= 1, got shape {weight.shape}")
    if c != x.shape[1]:
        raise ValueError(f"weight: expected C = {x.shape[1]} input channels (input {x.shape}) "
                         f"at position {nd + 1} of {_layout(nd, lead)}, got weight {weight.shape}")
    stride = int_tuple("stride", stride, nd, 1)
    dilation = int_tuple("dilation", dilation, nd, 1)
    pad = resolve_padding(padding, x.shape[2:], kernel, stride, dilation)
    check_kernel_fits(x, weight, x.shape[2:], kernel, pad, dilation)
    out = conv_out_size(x.shape[2:], kernel, stride, pad, dilation)
    if per_location and tuple(tiles) != out:
        raise ValueError(f"weight: its locations {tuple(tiles)} must equal the output size {out} "
                         f"(input {x.shape}, kernel {kernel}, stride {stride}, padding {pad}), "
                         f"got weight {weight.shape}")
    if bias is not None:
        bias = as_float_array("bias", bias, x.dtype)
        want = (k,) + out if per_location else tuple(tiles) + (k,)
        if bias.shape != want:
            raise ValueError(f"bias: expected shape {want} for weight {weight.shape}, got "
                             f"{bias.shape}")
    check_algo(algo)
    # The 3-D core's views (unit leading dims) and arguments.
    x5 = x.reshape(x.shape[:2] + (1,) * (3 - nd) + x.shape[2:])
    w8 = weight.reshape((1,) * (3 - nd) + tuple(tiles) + (k, c) + (1,) * (3 - nd) + kernel)
    b = None if bias is None else bias.reshape(
        ((k,) + (1,) * (3 - nd) + out) if per_location else ((1,) * (3 - nd) + bias.shape))
    core_args = (expand3(stride, nd, 1), (0, 0) * (3 - nd) + tuple(pad), expand3(dilation, nd, 1),
                 per_location)
    return x, weight, bias, x5, w8, b, core_args, (x.shape[0], k) + out


def _forward(nd, x, weight, bias, stride, padding, dilation, algo, per_location):
    x, _, _, x5, w8, b, args, out_shape = _prepare(nd, x, weight, bias, stride, padding,
                                                   dilation, algo, per_location)
    fn = _core.tiled_conv_forward_f32 if x.dtype == np.float32 else _core.tiled_conv_forward_f64
    return fn(x5, w8, b, *args, algo).reshape(out_shape)


def _backward(nd, grad_out, x, weight, bias, stride, padding, dilation, needs_input_grad, algo,
              per_location):
    x, weight, bias, x5, w8, b, args, out_shape = _prepare(nd, x, weight, bias, stride, padding,
                                                           dilation, algo, per_location)
    need = check_needs(needs_input_grad, 3)
    what = "locally_connected" if per_location else "tiled_conv"
    grad_out = check_grad_out(grad_out, out_shape, x.dtype, f"{what}{nd}d")
    gy5 = grad_out.reshape(out_shape[:2] + (1,) * (3 - nd) + out_shape[2:])
    fn = _core.tiled_conv_backward_f32 if x.dtype == np.float32 else _core.tiled_conv_backward_f64
    gx, gw, gb = fn(gy5, x5, w8, bias is not None, *args, need[0], need[1], need[2], algo)
    return (None if gx is None else gx.reshape(x.shape),
            None if gw is None else gw.reshape(weight.shape),
            None if gb is None else gb.reshape(bias.shape))


def tiled_conv1d(x, weight, bias=None, stride=1, padding: PaddingArg = 0, dilation=1,
                 algo: str = "auto") -> np.ndarray:
    """Tiled 1-D convolution: x (N, C, L), weight (T, K, C, S), bias (T, K)."""
    return _forward(1, x, weight, bias, stride, padding, dilation, algo, False)


def tiled_conv2d(x, weight, bias=None, stride=1, padding: PaddingArg = 0, dilation=1,
                 algo: str = "auto") -> np.ndarray:
    """Tiled 2-D convolution: x (N, C, H, W), weight (T_h, T_w, K, C, R, S), bias (T_h, T_w, K)."""
    return _forward(2, x, weight, bias, stride, padding, dilation, algo, False)


def tiled_conv3d(x, weight, bias=None, stride=1, padding: PaddingArg = 0, dilation=1,
                 algo: str = "auto") -> np.ndarray:
    """Tiled 3-D convolution: x (N, C, D, H, W), weight (T_d, T_h, T_w, K, C, KD, KH, KW)."""
    return _forward(3, x, weight, bias, stride, padding, dilation, algo, False)


def locally_connected1d(x, weight, bias=None, stride=1, padding: PaddingArg = 0, dilation=1,
                        algo: str = "auto") -> np.ndarray:
    """Locally connected 1-D layer: x (N, C, L), weight (L_out, K, C, S), bias (K, L_out)."""
    return _forward(1, x, weight, bias, stride, padding, dilation, algo, True)


def locally_connected2d(x, weight, bias=None, stride=1, padding: PaddingArg = 0, dilation=1,
                        algo: str = "auto") -> np.ndarray:
    """Locally connected 2-D layer: x (N, C, H, W), weight (P, Q, K, C, R, S), bias (K, P, Q)."""
    return _forward(2, x, weight, bias, stride, padding, dilation, algo, True)


def locally_connected3d(x, weight, bias=None, stride=1, padding: PaddingArg = 0, dilation=1,
                        algo: str = "auto") -> np.ndarray:
    """Locally connected 3-D layer: weight (OD, OH, OW, K, C, KD, KH, KW), bias (K, OD, OH, OW)."""
    return _forward(3, x, weight, bias, stride, padding, dilation, algo, True)


def _make_backward(nd, per_location, name):
    def backward(grad_out, x, weight, bias: Optional[np.ndarray] = None, stride=1,
                 padding: PaddingArg = 0, dilation=1, needs_input_grad=(True, True, True),
                 algo: str = "auto"):
        return _backward(nd, grad_out, x, weight, bias, stride, padding, dilation,
                         needs_input_grad, algo, per_location)
    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    backward.__doc__ = f"(grad_x, grad_weight, grad_bias) of {name} given grad_out = dL/dy."
    return backward


tiled_conv1d_backward = _make_backward(1, False, "tiled_conv1d")
tiled_conv2d_backward = _make_backward(2, False, "tiled_conv2d")
tiled_conv3d_backward = _make_backward(3, False, "tiled_conv3d")
locally_connected1d_backward = _make_backward(1, True, "locally_connected1d")
locally_connected2d_backward = _make_backward(2, True, "locally_connected2d")
locally_connected3d_backward = _make_backward(3, True, "locally_connected3d")
