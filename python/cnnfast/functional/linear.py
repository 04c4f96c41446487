"""Fully connected layer y = x · Wᵀ + b (PyTorch's F.linear) on the packed GEMM, and its backward.

x is (*, in) with any leading dims, weight (out, in), bias (out,). Device arrays run the CUDA
twin (cnnfast.cuda._ops_layers: a 1x1 convolution on the conv2d engine).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._checks import as_float_array, check_needs
from ._dispatch import on_device


def _prepare(x, weight, bias, as_array=as_float_array):
    """Checked arrays; as_array converts each (the CUDA twin passes its device-array check)."""
    x = as_array("input", x)
    weight = as_array("weight", weight, x.dtype)
    if x.ndim < 1:  # leading dims may be empty (an empty batch gives an empty output)
        raise ValueError(f"input: expected at least 1-D (*, in_features), got shape {x.shape}")
    if weight.ndim != 2 or weight.size == 0:
        raise ValueError(f"weight: expected a non-empty 2-D array (out_features, in_features), "
                         f"got shape {weight.shape}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"input: last dim {x.shape[-1]} (input {x.shape}) does not match "
                         f"in_features {weight.shape[1]} of weight {weight.shape}")
    if bias is not None:
        bias = as_array("bias", bias, x.dtype)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias: expected shape ({weight.shape[0]},) for weight "
                             f"{weight.shape}, got {bias.shape}")
    return x, weight, bias


@on_device
def linear(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None) -> np.ndarray:
    x, weight, bias = _prepare(x, weight, bias)
    y = _core.linear_forward(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))


@on_device
def linear_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray,
                    bias: Optional[np.ndarray] = None, needs_input_grad=(True, True, True),
                    grad_weight_into: Optional[np.ndarray] = None,
                    grad_bias_into: Optional[np.ndarray] = None
                    ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """(grad_input, grad_weight, grad_bias); grad_bias is None without bias.

    grad_weight_into / grad_bias_into: existing arrays of the weight's / bias's shape and dtype
    (C-contiguous, writeable) that the gradient is *added into* in place and returned as it — a
    layer's accumulated .grad, without a fresh array and a second pass over a large weight.
    """
    x, weight, bias = _prepare(x, weight, bias)
    need = check_needs(needs_input_grad, 3)
    grad_out = as_float_array("grad_out", grad_out, x.dtype)
    expected = x.shape[:-1] + (weight.shape[0],)
    if grad_out.shape != expected:
        raise ValueError(f"grad_out: expected shape {expected} (the linear output for input "
                         f"{x.shape} and weight {weight.shape}), got {grad_out.shape}")
    for name, into, like in (("grad_weight_into", grad_weight_into, weight),
                             ("grad_bias_into", grad_bias_into, bias)):
        if into is None:
            continue
        if not isinstance(into, np.ndarray):
            raise TypeError(f"{name}: expected a numpy array, got {type(into).__name__}")
        if like is None:
            raise ValueError(f"{name}: given but the layer has no bias")
        if into.shape != like.shape or into.dtype != like.dtype:
            raise ValueError(f"{name}: expected shape {like.shape} and dtype {like.dtype}, got "
                             f"{into.shape} {into.dtype}")
        if not (into.flags.c_contiguous and into.flags.writeable):
            raise ValueError(f"{name}: must be C-contiguous and writeable")
    gx, gw, gb = _core.linear_backward(grad_out.reshape(-1, weight.shape[0]),
                                       x.reshape(-1, x.shape[-1]), weight, bias is not None,
                                       need[0], need[1], need[2], grad_weight_into,
                                       grad_bias_into)
    return (None if gx is None else gx.reshape(x.shape)), gw, gb
