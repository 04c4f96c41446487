"""1-D and 3-D convolution and transposed convolution (1-, 2-, 3-D), each with its backward.

conv1d / conv3d have conv2d's contract (cross-correlation, PyTorch semantics):
    y[n, k, o] = b[k] + Σ_{c, t} x[n, g·C/G + c, o·stride − pad_before + t·dilation] · w[k, c, t]
conv1d runs on conv2d's engine (a (N, C, 1, L) view, no copy). conv3d with a (KD, 3, 3) kernel
at unit stride in height and width runs Winograd F(4x4,3x3) or F(2x2,3x3) (by plane size, as
conv2d; 'winograd_f2' / 'winograd_f4' force one) forward and backward-data (the depth taps
summed in its transformed-domain GEMMs; algo 'auto' where it pays, 'winograd' always, which
also needs unit stride and padding <= dilation·(k−1) on every axis for backward-data). Otherwise
conv3d's forward and weight gradient run an implicit GEMM read straight from the padded volume
(algo 'auto' where it fits, 'implicit' always; backward-data at unit stride: the same forward on
grad_out with flipped filters; strided, groups 1: one such GEMM per stride phase, as conv2d), the
rest and algo 'gemm' vol2col + GEMM; 'ref' is the naive twin.

conv_transpose{1,2,3}d(x, weight, bias, stride, padding, output_padding, groups, dilation) is the
adjoint of convolution, as PyTorch's: weight is (C_in, C_out/groups, *kernel), output extent
(in − 1)·stride − pad_before − pad_after + dilation·(k − 1) + output_padding + 1. It runs on the
conv engines (forward = conv backward-data). Its padding takes ints only (an int, one int per
dimension, or (before, after) per dimension); output_padding must be < stride.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._checks import (PaddingArg, as_float_array, check_ndim, check_needs, int_tuple,
                       resolve_padding)
from ._dispatch import on_device

_ALGOS = ("auto", "gemm", "implicit", "winograd", "winograd_f2", "winograd_f4", "ref")
_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
_KLAYOUT = {1: "(K, C/groups, S)", 2: "(K, C/groups, R, S)", 3: "(K, C/groups, KD, KH, KW)"}
_TLAYOUT = {1: "(C_in, C_out/groups, S)", 2: "(C_in, C_out/groups, R, S)",
            3: "(C_in, C_out/groups, KD, KH, KW)"}


def check_groups(groups) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups: expected an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups: must be >= 1, got {groups}")
    return int(groups)


def check_algo(algo) -> None:
    if algo not in _ALGOS:
        raise ValueError(f"algo: expected one of {_ALGOS}, got {algo!r}")


def check_kernel_fits(x, weight, in_size, kernel, pad, dilation) -> None:
    for axis, (size, k, d) in enumerate(zip(in_size, kernel, dilation)):
        before, after = pad[2 * axis], pad[2 * axis + 1]
        if size + before + after < (k - 1) * d + 1:
            raise ValueError(
                f"weight: kernel {tuple(kernel)} with dilation {tuple(dilation)} spans "
                f"{(k - 1) * d + 1} along spatial dim {axis}, larger than the padded input "
                f"({size} + {before} + {after}) of input {x.shape}")


def conv_out_size(in_size, kernel, stride, pad, dilation) -> Tuple[int, ...]:
    return tuple((i + pad[2 * a] + pad[2 * a + 1] - d * (k - 1) - 1) // s + 1
                 for a, (i, k, s, d) in enumerate(zip(in_size, kernel, stride, dilation)))


def expand3(vals, nd, fill):
    """A per-dimension tuple of an nd-D op as the 3-D core's (leading dims get `fill`)."""
    return (fill,) * (3 - nd) + tuple(vals)


def check_grad_out(grad_out, expected, dtype, what, as_array=as_float_array):
    grad_out = as_array("grad_out", grad_out, dtype)
    if grad_out.shape != tuple(expected):
        raise ValueError(f"grad_out: expected shape {tuple(expected)} (the {what} output), "
                         f"got {grad_out.shape}")
    return grad_out


# ---- conv1d / conv3d --------------------------------------------------------------------------

def _prepare_conv(nd, x, weight, bias, stride, padding, dilation, groups, algo,
                  as_array=as_float_array):
    """Validated arguments (as_array: the CUDA twins pass their device-array check)."""
    x = as_array("input", x)
    weight = as_array("weight", weight, x.dtype)
    check_ndim("input", x, nd + 2, _LAYOUT[nd])
    check_ndim("weight", weight, nd + 2, _KLAYOUT[nd])
    groups = check_groups(groups)
    k, cg = weight.shape[:2]
    if min(weight.shape) < 1:
        raise ValueError(f"weight: every dimension must be >= 1, got shape {weight.shape}")
    if x.shape[1] < 1:
        raise ValueError(f"input: needs at least one channel, got shape {x.shape}")
    c = x.shape[1]
    if c % groups or k % groups:
        raise ValueError(f"groups={groups} must divide both the input channels C={c} "
                         f"(input {x.shape}) and the output channels K={k} (weight {weight.shape})")
    if cg * groups != c:
        raise ValueError(f"weight: expected C/groups = {c // groups} input channels per group "
                         f"(input {x.shape}, groups={groups}), got weight {weight.shape}")
    if bias is not None:
        bias = as_array("bias", bias, x.dtype)
        if bias.shape != (k,):
            raise ValueError(f"bias: expected shape ({k},) (one per output channel of weight "
                             f"{weight.shape}), got {bias.shape}")
    stride = int_tuple("stride", stride, nd, 1)
    dilation = int_tuple("dilation", dilation, nd, 1)
    pad = resolve_padding(padding, x.shape[2:], weight.shape[2:], stride, dilation)
    check_kernel_fits(x, weight, x.shape[2:], weight.shape[2:], pad, dilation)
    check_algo(algo)
    return x, weight, bias, stride, pad, dilation, groups


def _conv1d_core(x, weight, stride, pad, dilation):
    """The (N, C, 1, L) / (K, C/g, 1, S) views and conv2d arguments of a 1-D convolution."""
    return (x[:, :, None, :], weight[:, :, None, :], (1, stride[0]), (0, 0) + tuple(pad),
            (1, dilation[0]))


@on_device
def conv1d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride=1,
           padding: PaddingArg = 0, dilation=1, groups: int = 1, algo: str = "auto") -> np.ndarray:
    """1-D convolution of x (N, C, L) with weight (K, C/groups, S) → (N, K, L_out).

    padding: int, (both,), (before, after), 'valid' | 'same' | 'full' (as conv2d)."""
    x, weight, bias, stride, pad, dilation, groups = _prepare_conv(
        1, x, weight, bias, stride, padding, dilation, groups, algo)
    x4, w4, st, pd, dl = _conv1d_core(x, weight, stride, pad, dilation)
    fn = _core.conv2d_forward_f32 if x.dtype == np.float32 else _core.conv2d_forward_f64
    return fn(x4, w4, bias, st, pd, dl, groups, algo)[:, :, 0, :]


@on_device
def conv1d_backward(grad_out, x, weight, bias=None, stride=1, padding: PaddingArg = 0,
                    dilation=1, groups: int = 1, needs_input_grad=(True, True, True),
                    algo: str = "auto"):
    """(grad_x, grad_weight, grad_bias) of conv1d given grad_out (N, K, L_out)."""
    x, weight, bias, stride, pad, dilation, groups = _prepare_conv(
        1, x, weight, bias, stride, padding, dilation, groups, algo)
    need = check_needs(needs_input_grad, 3)
    out = conv_out_size(x.shape[2:], weight.shape[2:], stride, pad, dilation)
    grad_out = check_grad_out(grad_out, (x.shape[0], weight.shape[0]) + out, x.dtype, "conv1d")
    x4, w4, st, pd, dl = _conv1d_core(x, weight, stride, pad, dilation)
    fn = _core.conv2d_backward_f32 if x.dtype == np.float32 else _core.conv2d_backward_f64
    gx, gw, gb = fn(grad_out[:, :, None, :], x4, w4, bias is not None, st, pd, dl, groups,
                    need[0], need[1], need[2], algo)
    return (None if gx is None else gx[:, :, 0, :], None if gw is None else gw[:, :, 0, :], gb)


@on_device
def conv3d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride=1,
           padding: PaddingArg = 0, dilation=1, groups: int = 1, algo: str = "auto") -> np.ndarray:
    """3-D convolution of x (N, C, D, H, W) with weight (K, C/groups, KD, KH, KW).

    padding: int, (d, h, w), (front, back, top, bottom, left, right), 'valid' | 'same' | 'full'."""
    x, weight, bias, stride, pad, dilation, groups = _prepare_conv(
        3, x, weight, bias, stride, padding, dilation, groups, algo)
    fn = _core.conv3d_forward_f32 if x.dtype == np.float32 else _core.conv3d_forward_f64
    return fn(x, weight, bias, stride, pad, dilation, groups, algo)


@on_device
def conv3d_backward(grad_out, x, weight, bias=None, stride=1, padding: PaddingArg = 0,
                    dilation=1, groups: int = 1, needs_input_grad=(True, True, True),
                    algo: str = "auto"):
    """(grad_x, grad_weight, grad_bias) of conv3d given grad_out (N, K, OD, OH, OW)."""
    x, weight, bias, stride, pad, dilation, groups = _prepare_conv(
        3, x, weight, bias, stride, padding, dilation, groups, algo)
    need = check_needs(needs_input_grad, 3)
    out = conv_out_size(x.shape[2:], weight.shape[2:], stride, pad, dilation)
    grad_out = check_grad_out(grad_out, (x.shape[0], weight.shape[0]) + out, x.dtype, "conv3d")
    fn = _core.conv3d_backward_f32 if x.dtype == np.float32 else _core.conv3d_backward_f64
    return fn(grad_out, x, weight, bias is not None, stride, pad, dilation, groups,
              need[0], need[1], need[2], algo)


# ---- transposed convolution ---------------------------------------------------------------------

def _transposed_padding(padding, nd):
    if isinstance(padding, str):
        raise ValueError(f"padding: transposed convolution takes ints (an int, {nd} ints or "
                         f"{2 * nd} ints (before, after)), not {padding!r}")
    return resolve_padding(padding, (1,) * nd, (1,) * nd, (1,) * nd, (1,) * nd)


def _prepare_transposed(nd, x, weight, bias, stride, padding, output_padding, groups, dilation,
                        algo, as_array=as_float_array):
    x = as_array("input", x)
    weight = as_array("weight", weight, x.dtype)
    check_ndim("input", x, nd + 2, _LAYOUT[nd].replace("C,", "C_in,"))
    check_ndim("weight", weight, nd + 2, _TLAYOUT[nd])
    groups = check_groups(groups)
    if min(weight.shape) < 1:
        raise ValueError(f"weight: every dimension must be >= 1, got shape {weight.shape}")
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(f"weight: expected C_in = {c_in} (input {x.shape}) as the first "
                         f"dimension of {_TLAYOUT[nd]}, got weight {weight.shape}")
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels C_in={c_in} "
                         f"(input {x.shape})")
    c_out = weight.shape[1] * groups
    if bias is not None:
        bias = as_array("bias", bias, x.dtype)
        if bias.shape != (c_out,):
            raise ValueError(f"bias: expected shape ({c_out},) (C_out of weight {weight.shape} "
                             f"with groups={groups}), got {bias.shape}")
    stride = int_tuple("stride", stride, nd, 1)
    dilation = int_tuple("dilation", dilation, nd, 1)
    out_pad = int_tuple("output_padding", output_padding, nd, 0)
    if any(o >= s for o, s in zip(out_pad, stride)):
        raise ValueError(f"output_padding: must be smaller than stride {stride}, got {out_pad}")
    pad = _transposed_padding(padding, nd)
    out = tuple((i - 1) * s - pad[2 * a] - pad[2 * a + 1] + d * (k - 1) + o + 1
                for a, (i, k, s, d, o) in enumerate(
                    zip(x.shape[2:], weight.shape[2:], stride, dilation, out_pad)))
    if min(x.shape[2:]) < 1 or min(out) < 1:
        raise ValueError(f"input {x.shape}, weight {weight.shape}, stride {stride}, padding "
                         f"{pad}: transposed output size {out} must be >= 1 everywhere")
    check_algo(algo)
    return x, weight, bias, stride, pad, out_pad, dilation, groups, (x.shape[0], c_out) + out


def _transposed_core(nd, x, weight, stride, pad, out_pad, dilation):
    """Views and arguments of the 2-D (nd <= 2) or 3-D core."""
    if nd == 1:
        return (x[:, :, None, :], weight[:, :, None, :], (1,) + stride, (0, 0) + pad,
                (0,) + out_pad, (1,) + dilation)
    return x, weight, stride, pad, out_pad, dilation


@on_device
def _transposed_forward(nd, x, weight, bias, stride, padding, output_padding, groups, dilation,
                        algo):
    x, weight, bias, stride, pad, out_pad, dilation, groups, out_shape = _prepare_transposed(
        nd, x, weight, bias, stride, padding, output_padding, groups, dilation, algo)
    core = 3 if nd == 3 else 2
    fn = getattr(_core, f"conv_transpose{core}d_forward_{'f32' if x.dtype == np.float32 else 'f64'}")
    xc, wc, st, pd, op, dl = _transposed_core(nd, x, weight, stride, pad, out_pad, dilation)
    return fn(xc, wc, bias, st, pd, op, dl, groups, algo).reshape(out_shape)


@on_device
def _transposed_backward(nd, grad_out, x, weight, bias, stride, padding, output_padding, groups,
                         dilation, needs_input_grad, algo):
    x, weight, bias, stride, pad, out_pad, dilation, groups, out_shape = _prepare_transposed(
        nd, x, weight, bias, stride, padding, output_padding, groups, dilation, algo)
    need = check_needs(needs_input_grad, 3)
    grad_out = check_grad_out(grad_out, out_shape, x.dtype, f"conv_transpose{nd}d")
    core = 3 if nd == 3 else 2
    fn = getattr(_core, f"conv_transpose{core}d_backward_{'f32' if x.dtype == np.float32 else 'f64'}")
    xc, wc, st, pd, op, dl = _transposed_core(nd, x, weight, stride, pad, out_pad, dilation)
    gyc = grad_out[:, :, None, :] if nd == 1 else grad_out
    gx, gw, gb = fn(gyc, xc, wc, bias is not None, st, pd, op, dl, groups, need[0], need[1],
                    need[2], algo)
    return (None if gx is None else gx.reshape(x.shape),
            None if gw is None else gw.reshape(weight.shape), gb)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algo: str = "auto") -> np.ndarray:
    """Transposed 1-D convolution of x (N, C_in, L) with weight (C_in, C_out/groups, S)."""
    return _transposed_forward(1, x, weight, bias, stride, padding, output_padding, groups,
                               dilation, algo)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algo: str = "auto") -> np.ndarray:
    """Transposed 2-D convolution of x (N, C_in, H, W) with weight (C_in, C_out/groups, R, S)."""
    return _transposed_forward(2, x, weight, bias, stride, padding, output_padding, groups,
                               dilation, algo)


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, algo: str = "auto") -> np.ndarray:
    """Transposed 3-D convolution of x (N, C_in, D, H, W) with weight (C_in, C_out/groups, ...)."""
    return _transposed_forward(3, x, weight, bias, stride, padding, output_padding, groups,
                               dilation, algo)


def conv_transpose1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0,
                              output_padding=0, groups=1, dilation=1,
                              needs_input_grad=(True, True, True), algo: str = "auto"):
    """(grad_x, grad_weight, grad_bias) of conv_transpose1d."""
    return _transposed_backward(1, grad_out, x, weight, bias, stride, padding, output_padding,
                                groups, dilation, needs_input_grad, algo)


def conv_transpose2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0,
                              output_padding=0, groups=1, dilation=1,
                              needs_input_grad=(True, True, True), algo: str = "auto"):
    """(grad_x, grad_weight, grad_bias) of conv_transpose2d."""
    return _transposed_backward(2, grad_out, x, weight, bias, stride, padding, output_padding,
                                groups, dilation, needs_input_grad, algo)


def conv_transpose3d_backward(grad_out, x, weight, bias=None, stride=1, padding=0,
                              output_padding=0, groups=1, dilation=1,
                              needs_input_grad=(True, True, True), algo: str = "auto"):
    """(grad_x, grad_weight, grad_bias) of conv_transpose3d."""
    return _transposed_backward(3, grad_out, x, weight, bias, stride, padding, output_padding,
                                groups, dilation, needs_input_grad, algo)
