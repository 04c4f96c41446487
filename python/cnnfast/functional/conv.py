"""2-D convolution (cross-correlation, as PyTorch's conv2d) and its backward.

    y[n, k, i, j] = b[k] + Σ_{c, r, s} x[n, g·C/G + c, i·sh − pt + r·dh, j·sw − pl + s·dw] · w[k, c, r, s]

with g = k // (K/G) and zeros outside the input.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._checks import (PaddingArg, as_float_array, check_ndim, check_needs, int_tuple,
                       resolve_padding)
from ._dispatch import on_device

_ALGOS = ("auto", "gemm", "implicit", "direct", "winograd", "winograd_f2", "winograd_f4", "ref")
_ACTIVATIONS = (None, "relu")


def _activation(activation) -> str:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    return activation or "none"


def _prepare(x, weight, bias, stride, padding, dilation, groups, algo, as_array=as_float_array):
    """Validated arguments; as_array checks and converts each array (the CUDA twin passes its
    device-array check, everything else here only reads shapes)."""
    x = as_array("input", x)
    weight = as_array("weight", weight, x.dtype)
    check_ndim("input", x, 4, "(N, C, H, W)")
    check_ndim("weight", weight, 4, "(K, C/groups, R, S)")
    if bias is not None:
        bias = as_array("bias", bias, x.dtype)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias: expected shape ({weight.shape[0]},) (one per output "
                             f"channel of weight {weight.shape}), got {bias.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"groups: expected an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups: must be >= 1, got {groups}")
    n, c, h, w_ = x.shape
    k, cg, r, s = weight.shape
    if min(k, cg, r, s) < 1:
        raise ValueError(f"weight: every dimension must be >= 1, got shape {weight.shape}")
    if c < 1:
        raise ValueError(f"input: needs at least one channel, got shape {x.shape}")
    if c % groups or k % groups:
        raise ValueError(f"groups={groups} must divide both the input channels C={c} "
                         f"(input {x.shape}) and the output channels K={k} (weight {weight.shape})")
    if cg * groups != c:
        raise ValueError(f"weight: expected C/groups = {c // groups} input channels per group "
                         f"(input {x.shape}, groups={groups}), got weight {weight.shape}")
    stride = int_tuple("stride", stride, 2, 1)
    dilation = int_tuple("dilation", dilation, 2, 1)
    pad = resolve_padding(padding, (h, w_), (r, s), stride, dilation)
    for axis, (size, before, after, kk, d) in enumerate(
            ((h, pad[0], pad[1], r, dilation[0]), (w_, pad[2], pad[3], s, dilation[1]))):
        if size + before + after < (kk - 1) * d + 1:
            raise ValueError(
                f"weight: kernel {weight.shape[2:]} with dilation {dilation} spans "
                f"{(kk - 1) * d + 1} along spatial dim {axis}, larger than the padded input "
                f"({size} + {before} + {after}) of input {x.shape}")
    if algo not in _ALGOS:
        raise ValueError(f"algo: expected one of {_ALGOS}, got {algo!r}")
    return x, weight, bias, stride, pad, dilation, groups


def _grad_args(grad_out, output, x, weight, stride, pad, dilation, act, as_array=as_float_array):
    """grad_out (and, for activation='relu', the forward output) checked against the output shape."""
    grad_out = as_array("grad_out", grad_out, x.dtype)
    p = (x.shape[2] + pad[0] + pad[1] - dilation[0] * (weight.shape[2] - 1) - 1) // stride[0] + 1
    q = (x.shape[3] + pad[2] + pad[3] - dilation[1] * (weight.shape[3] - 1) - 1) // stride[1] + 1
    expected = (x.shape[0], weight.shape[0], p, q)
    if grad_out.shape != expected:
        raise ValueError(f"grad_out: expected shape {expected} (the conv2d output for input "
                         f"{x.shape} and weight {weight.shape}), got {grad_out.shape}")
    if act == "relu":
        if output is None:
            raise ValueError("output: activation='relu' needs the forward output y (the ReLU's "
                             "gradient is taken where y > 0)")
        output = as_array("output", output, x.dtype)
        if output.shape != expected:
            raise ValueError(f"output: expected shape {expected} (the conv2d output), got "
                             f"{output.shape}")
    elif output is not None:
        raise ValueError("output: only used with activation='relu'")
    return grad_out, output


@on_device
def conv2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
           stride=1, padding: PaddingArg = 0, dilation=1, groups: int = 1,
           algo: str = "auto", activation: Optional[str] = None) -> np.ndarray:
    """2-D convolution of x (N, C, H, W) with weight (K, C/groups, R, S) → (N, K, P, Q).

    stride, dilation: int or (h, w). padding: int, (h, w), (top, bottom, left, right), or
    'valid' | 'same' (output = ceil(input/stride), extra padding bottom/right) | 'full'
    (output = input + (k−1)·dilation at stride 1). algo: 'auto' (fastest for the shape) |
    'gemm' (im2col + packed GEMM) | 'implicit' (forward and weight gradient read straight
    from the padded image, no im2col; backward-data at unit stride with padding <=
    dilation·(k−1) runs the same forward on grad_out with flipped filters, otherwise (groups 1)
    one such GEMM per stride phase over the taps that reach it — 'auto' takes that where every
    phase has taps and its filter panel is small, as in conv_transpose k4 s2; grouped strided
    layers run 'gemm') |
    'direct' (padded planes: register-blocked channel x output tiles for groups 1 at stride 1,
    dilation 1 — few-channel layers like LeNet's C1; row kernels otherwise — depthwise) |
    'winograd' (3x3, stride 1: F(4x4,3x3) from 48 of its tiles an image up, else F(2x2,3x3);
    'winograd_f2' / 'winograd_f4' force the tile; a dilated layer split into
    dilation_h·dilation_w phases; backward-data also needs padding <= 2·dilation; the weight
    gradient runs Winograd on undilated layers, 'gemm' on dilated ones) | 'ref' (naive twin).
    On device arrays (the CUDA backend): 'auto' / 'implicit' (implicit GEMM) or 'winograd',
    'winograd_f2', 'winograd_f4' (3x3 stride 1, any padding and dilation, all three passes).
    activation: None or 'relu' — fused epilogue y = relu(conv + bias), applied while each output
    tile is still in cache; differentiate it with conv2d_backward(..., activation='relu',
    output=y).
    """
    act = _activation(activation)
    x, weight, bias, stride, pad, dilation, groups = _prepare(
        x, weight, bias, stride, padding, dilation, groups, algo)
    fn = _core.conv2d_forward_f32 if x.dtype == np.float32 else _core.conv2d_forward_f64
    return fn(x, weight, bias, stride, pad, dilation, groups, algo, act)


@on_device
def conv2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray,
                    bias: Optional[np.ndarray] = None, stride=1, padding: PaddingArg = 0,
                    dilation=1, groups: int = 1, needs_input_grad=(True, True, True),
                    algo: str = "auto", activation: Optional[str] = None,
                    output: Optional[np.ndarray] = None
                    ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients (grad_x, grad_weight, grad_bias) of conv2d given grad_out = dL/dy.

    grad_bias is None when bias is None; any gradient whose needs_input_grad flag is False is
    None and not computed. With activation='relu' (the forward was conv2d(..., activation='relu')),
    pass that forward's result as `output`: grad_out is taken where output > 0 and 0 elsewhere
    (the ReLU's gradient, PyTorch's convention at 0), then back through the convolution.
    """
    act = _activation(activation)
    x, weight, bias, stride, pad, dilation, groups = _prepare(
        x, weight, bias, stride, padding, dilation, groups, algo)
    need = check_needs(needs_input_grad, 3)
    grad_out, output = _grad_args(grad_out, output, x, weight, stride, pad, dilation, act)
    fn = _core.conv2d_backward_f32 if x.dtype == np.float32 else _core.conv2d_backward_f64
    return fn(grad_out, x, weight, bias is not None, stride, pad, dilation, groups,
              need[0], need[1], need[2], algo, act, output)
