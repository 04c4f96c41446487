"""CUDA twins the layer API (cnnfast.nn on the device) needs beyond the convolution, pooling and
loss kernels: linear (through the conv2d engine as a 1x1 convolution on (N, in, 1, 1) views),
dropout / dropout2d (a counter-based mask drawn on the device from a seed the layer's `rng`
gives), the elementwise sums behind `DeviceArray + DeviceArray` / `+=` (residual sums, gradient
accumulation), and the argmax-accuracy count fit() keeps on the device.

The device dropout mask is float32 (N·C or size entries) holding the kept elements' scale
1/(1 - p) or 0, so dropout_backward is one product (its p is checked, not used)."""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._checks import check_float, check_needs
from ._array import DeviceArray, empty
from ._common import f32, i64
from ._ops_conv_family import conv2d_grads
from ..functional.linear import _prepare as _linear_prepare

_ONE, _NO_PAD = (1, 1), (0, 0, 0, 0)


# ---- linear: y = x·Wᵀ + b as conv2d of (N, in, 1, 1) with (out, in, 1, 1) --------------------------

def _linear_args(x, weight, bias):
    x, weight, bias = _linear_prepare(x, weight, bias, as_array=f32)  # the CPU op's checks
    n = math.prod(x.shape[:-1])
    return (x, x.reshape(n, x.shape[-1], 1, 1), weight.reshape(weight.shape + (1, 1)), bias,
            n)


def linear(x, weight, bias=None):
    x, x4, w4, bias, n = _linear_args(x, weight, bias)
    y = empty((n, w4.shape[0], 1, 1))
    _core.cuda_conv2d_forward(y, x4, w4, bias, _ONE, _NO_PAD, _ONE, 1, False)
    return y.reshape(x.shape[:-1] + (w4.shape[0],))


def linear_backward(grad_out, x, weight, bias=None, needs_input_grad=(True, True, True),
                    grad_weight_into=None, grad_bias_into=None):
    x, x4, w4, bias, n = _linear_args(x, weight, bias)
    need = check_needs(needs_input_grad, 3)
    g = f32("grad_out", grad_out)
    expected = x.shape[:-1] + (w4.shape[0],)
    if g.shape != expected:
        raise ValueError(f"grad_out: expected shape {expected} (the linear output for input "
                         f"{x.shape} and weight {tuple(w4.shape[:2])}), got {g.shape}")
    gx, gw, gb = conv2d_grads(g.reshape(n, w4.shape[0], 1, 1), x4, w4, bias, _ONE, _NO_PAD, _ONE,
                              1, need, x.shape, w4.shape[:2])
    return gx, _added_into("grad_weight_into", grad_weight_into, gw, weight), \
        _added_into("grad_bias_into", grad_bias_into, gb, bias)


def _added_into(name, into, grad, like):
    """into += grad, returned as the gradient (the host op's contract, its checks included);
    grad when into is None, None when the gradient was not asked for."""
    if into is None:
        return grad
    if like is None:
        raise ValueError(f"{name}: given but the layer has no bias")
    if not hasattr(type(into), "__cuda_array_interface__"):
        raise TypeError(f"{name}: expected a CUDA device array like the layer's parameters, got "
                        f"{type(into).__name__}")
    if tuple(into.shape) != tuple(like.shape) or not str(into.dtype).endswith("float32"):
        raise ValueError(f"{name}: expected shape {tuple(like.shape)} and dtype float32, got "
                         f"{tuple(into.shape)} {into.dtype}")
    if grad is None:
        return None
    into += grad
    return into


# ---- dropout ---------------------------------------------------------------------------------------

def _seed(rng) -> int:
    rng = np.random.default_rng() if rng is None else rng
    return int(rng.integers(0, 2**63, dtype=np.int64))


def _dropout(x, p, training, rng, channelwise):
    x = f32("input", x)
    p = check_float("p", p, 0.0, 1.0)
    if channelwise and x.ndim < 3:
        raise ValueError(f"input: expected at least 3-D (N, C, *spatial), got shape {x.shape}")
    outer = x.shape[0] * x.shape[1] if channelwise else x.size
    mask = empty((outer,))
    if not training or p == 0.0:
        p = 0.0  # an all-ones mask: every uniform draw is >= 0
    _core.cuda_dropout_mask(mask, p, _seed(rng) if p else 0)
    y = empty(x.shape)
    if x.size:
        _core.cuda_mul_grouped(y, x, mask, x.size // outer)
    return y, mask


def _dropout_backward(grad_out, mask, p, channelwise):
    g = f32("grad_out", grad_out)
    check_float("p", p, 0.0, 1.0)
    mask = f32("mask", mask)
    if channelwise and g.ndim < 3:
        raise ValueError(f"grad_out: expected at least 3-D (N, C, *spatial), got shape {g.shape}")
    outer = g.shape[0] * g.shape[1] if channelwise else g.size
    if mask.shape != (outer,):
        raise ValueError(f"mask: expected {outer} entries (one per "
                         f"{'(N, C) plane' if channelwise else 'element'} of grad_out "
                         f"{g.shape}), got shape {mask.shape}")
    dx = empty(g.shape)
    if g.size:
        _core.cuda_mul_grouped(dx, g, mask, g.size // outer)
    return dx


def dropout(x, p=0.5, training=True, rng=None):
    return _dropout(x, p, training, rng, channelwise=False)


def dropout_backward(grad_out, mask, p=0.5):
    return _dropout_backward(grad_out, mask, p, channelwise=False)


def dropout2d(x, p=0.5, training=True, rng=None):
    return _dropout(x, p, training, rng, channelwise=True)


def dropout2d_backward(grad_out, mask, p=0.5):
    return _dropout_backward(grad_out, mask, p, channelwise=True)


# ---- elementwise sums (DeviceArray + DeviceArray, +=) ----------------------------------------------

def _same(a: DeviceArray, b, op: str) -> DeviceArray:
    b = f32("right operand", b)
    f32("left operand", a)
    if a.shape != b.shape:
        raise ValueError(f"DeviceArray {op}: shapes {a.shape} and {b.shape} differ (no "
                         f"broadcasting on the device)")
    return b


def add(a: DeviceArray, b) -> DeviceArray:
    """a + b, a new array (float32, same shapes)."""
    b = _same(a, b, "+")
    out = empty(a.shape)
    _core.cuda_add_scaled(out, a, 1.0, b)
    return out


def add_(a: DeviceArray, b, alpha: float = 1.0) -> DeviceArray:
    """a += alpha·b in place; returns a."""
    b = _same(a, b, "+=")
    _core.cuda_add_scaled(a, a, float(alpha), b)
    return a


# ---- accuracy on the device ------------------------------------------------------------------------

def count_correct(count: DeviceArray, logits, target) -> None:
    """count (a 0-d int64 DeviceArray) += number of items whose argmax over dim 1 of logits
    (N, C, *) equals target (N, *) (numpy.argmax's tie and NaN rules). No synchronization."""
    logits = f32("logits", logits)
    if logits.ndim < 2:
        raise ValueError(f"logits: expected (N, C, *), got shape {logits.shape}")
    target = i64("target", target, (logits.shape[0],) + logits.shape[2:])
    _core.cuda_count_correct(count, logits, target)
