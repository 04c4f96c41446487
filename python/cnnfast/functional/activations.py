"""Elementwise activations, softmax / log-softmax and dropout (C++ kernels) with backward twins.

relu/leaky_relu backward take the forward input; sigmoid/tanh/softmax/log_softmax backward take
the forward *output* (their derivatives are cheapest from it). Single-input ops return one array.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._checks import as_float_array, check_float, check_same_shape
from ._dispatch import on_device

_RELU, _LEAKY, _SIGMOID, _TANH = 0, 1, 2, 3


def _fwd(x, act, slope=0.0):
    return _core.activation_forward(as_float_array("input", x), act, slope)


def _bwd(grad_out, saved, saved_name, act, slope=0.0):
    saved = as_float_array(saved_name, saved)
    grad_out = as_float_array("grad_out", grad_out, saved.dtype)
    check_same_shape("grad_out", grad_out, saved_name, saved)
    return _core.activation_backward(grad_out, saved, act, slope)


@on_device
def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0)."""
    return _fwd(x, _RELU)


@on_device
def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _bwd(grad_out, x, "input", _RELU)


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """x if x > 0 else negative_slope·x."""
    return _fwd(x, _LEAKY, check_float("negative_slope", negative_slope))


def leaky_relu_backward(grad_out: np.ndarray, x: np.ndarray, negative_slope: float = 0.01):
    return _bwd(grad_out, x, "input", _LEAKY, check_float("negative_slope", negative_slope))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^−x)."""
    return _fwd(x, _SIGMOID)


def sigmoid_backward(grad_out: np.ndarray, output: np.ndarray) -> np.ndarray:
    """grad_out · y(1 − y), from the forward output y."""
    return _bwd(grad_out, output, "output", _SIGMOID)


def tanh(x: np.ndarray) -> np.ndarray:
    return _fwd(x, _TANH)


def tanh_backward(grad_out: np.ndarray, output: np.ndarray) -> np.ndarray:
    """grad_out · (1 − y²), from the forward output y."""
    return _bwd(grad_out, output, "output", _TANH)


def _as_ncs(name, x, dim):
    """x viewed as (outer, C, inner) around axis `dim` (no copy for contiguous x); None for an
    empty x (its result is empty too)."""
    if x.ndim < 1:
        raise ValueError(f"{name}: expected at least a 1-D array, got shape {x.shape}")
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim: expected an int, got {dim!r}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim: {dim} out of range for {name} of shape {x.shape}")
    d = int(dim) % x.ndim
    if x.size == 0:
        return None
    return x.reshape(int(np.prod(x.shape[:d])), x.shape[d], -1)


def softmax(x: np.ndarray, dim: int = 1) -> np.ndarray:
    """e^x / Σ e^x along `dim` (the class/channel axis; per pixel for (N, C, H, W))."""
    x = as_float_array("input", x)
    v = _as_ncs("input", x, dim)
    return x.copy() if v is None else _core.softmax_forward(v, False).reshape(x.shape)


def log_softmax(x: np.ndarray, dim: int = 1) -> np.ndarray:
    """x − log Σ e^x along `dim`, computed stably (max subtracted)."""
    x = as_float_array("input", x)
    v = _as_ncs("input", x, dim)
    return x.copy() if v is None else _core.softmax_forward(v, True).reshape(x.shape)


def _softmax_bwd(grad_out, output, dim, log):
    output = as_float_array("output", output)
    grad_out = as_float_array("grad_out", grad_out, output.dtype)
    check_same_shape("grad_out", grad_out, "output", output)
    g, y = _as_ncs("grad_out", grad_out, dim), _as_ncs("output", output, dim)
    return grad_out.copy() if g is None else _core.softmax_backward(g, y, log).reshape(
        output.shape)


def softmax_backward(grad_out: np.ndarray, output: np.ndarray, dim: int = 1) -> np.ndarray:
    """y · (grad_out − Σ grad_out · y), from the forward output y."""
    return _softmax_bwd(grad_out, output, dim, False)


def log_softmax_backward(grad_out: np.ndarray, output: np.ndarray, dim: int = 1) -> np.ndarray:
    """grad_out − e^y · Σ grad_out, from the forward output y = log_softmax(x)."""
    return _softmax_bwd(grad_out, output, dim, True)


def _dropout(x, p, training, rng, channelwise):
    x = as_float_array("input", x)
    p = check_float("p", p, 0.0, 1.0)
    if channelwise and x.ndim < 3:
        raise ValueError(f"input: expected at least 3-D (N, C, *spatial), got shape {x.shape}")
    outer = x.shape[0] * x.shape[1] if channelwise else x.size
    if not training or p == 0.0:
        return x.copy(), np.ones(outer, np.uint8)
    rng = np.random.default_rng() if rng is None else rng
    mask = (rng.random(outer) >= p).astype(np.uint8)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    if x.size == 0:  # an empty batch (or empty planes): nothing to scale
        return x.copy(), mask
    return _core.dropout_apply(x, mask, x.size // max(outer, 1), scale), mask


def _dropout_bwd(grad_out, mask, p, channelwise):
    grad_out = as_float_array("grad_out", grad_out)
    p = check_float("p", p, 0.0, 1.0)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 or mask.ndim != 1:
        raise TypeError("mask: expected the 1-D uint8 mask returned by the forward")
    mask = np.ascontiguousarray(mask)  # a reversed or strided view, copied as every input is
    if channelwise and grad_out.ndim < 3:
        raise ValueError(f"grad_out: expected at least 3-D (N, C, *spatial), got shape "
                         f"{grad_out.shape}")
    outer = grad_out.shape[0] * grad_out.shape[1] if channelwise else grad_out.size
    if mask.size != outer:
        raise ValueError(f"mask: expected {outer} entries (one per "
                         f"{'(N, C) plane' if channelwise else 'element'} of grad_out "
                         f"{grad_out.shape}), got {mask.size}")
    if grad_out.size == 0:
        return grad_out.copy()
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    return _core.dropout_apply(grad_out, mask, grad_out.size // mask.size, scale)


@on_device
def dropout(x: np.ndarray, p: float = 0.5, training: bool = True,
            rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Zeroes each element with probability p and scales the rest by 1/(1−p).

    Returns (y, mask): mask (x.size,) uint8 is what dropout_backward needs. Identity (all-ones
    mask) when not training or p == 0.
    """
    return _dropout(x, p, training, rng, channelwise=False)


@on_device
def dropout_backward(grad_out: np.ndarray, mask: np.ndarray, p: float = 0.5) -> np.ndarray:
    """grad_out · mask / (1 − p), with the forward's mask and p (an eval-mode forward is the
    identity: its backward is too — skip this, or pass p=0)."""
    return _dropout_bwd(grad_out, mask, p, channelwise=False)


@on_device
def dropout2d(x: np.ndarray, p: float = 0.5, training: bool = True,
              rng: Optional[np.random.Generator] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Zeroes whole channels (N, C) with probability p; returns (y, mask of N·C uint8)."""
    return _dropout(x, p, training, rng, channelwise=True)


@on_device
def dropout2d_backward(grad_out: np.ndarray, mask: np.ndarray, p: float = 0.5) -> np.ndarray:
    """As dropout_backward, with the (N·C,) mask of dropout2d."""
    return _dropout_bwd(grad_out, mask, p, channelwise=True)
