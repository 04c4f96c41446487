"""Losses with backward twins: fused softmax + cross-entropy (C++; class weights, ignore_index,
label smoothing, per-pixel targets, an optional per-pixel weight map), NLL, MSE, BCE-with-logits.

input is (N, C) or (N, C, *spatial) logits; target is int (N,) or (N, *spatial). Reductions follow
PyTorch: 'mean' of a weighted loss divides by Σ w[target] over the non-ignored items. A
pixel_weight map (target's shape, U-Net's boundary weighting) multiplies each item's loss and does
not change that denominator. Backward functions return the gradient w.r.t. input.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _core
from .._checks import (as_float_array, check_float, check_reduction,
                       check_same_shape)
from ._dispatch import on_device


def _class_target(x, target, weight, pixel_weight):
    if not isinstance(target, np.ndarray) or target.dtype.kind not in "iu":
        raise TypeError(f"target: expected an integer numpy.ndarray of class indices, "
                        f"got {getattr(target, 'dtype', type(target).__name__)}")
    expected = (x.shape[0],) + x.shape[2:]
    if target.shape != expected:
        raise ValueError(f"target: expected shape {expected} for input {x.shape} "
                         f"(N, C, *spatial), got {target.shape}")
    if target.dtype == np.uint64 and target.size and target.max() > np.iinfo(np.int64).max:
        raise ValueError(f"target: class index {int(target.max())} is out of range for input "
                         f"{x.shape} (the class count is {x.shape[1]})")  # not wrapped negative
    target = np.require(target, dtype=np.int64, requirements=("C", "A"))
    if weight is not None:
        weight = as_float_array("weight", weight, x.dtype)
        if weight.shape != (x.shape[1],):
            raise ValueError(f"weight: expected shape ({x.shape[1]},) (one per class of input "
                             f"{x.shape}), got {weight.shape}")
    if pixel_weight is not None:
        pixel_weight = as_float_array("pixel_weight", pixel_weight, x.dtype)
        check_same_shape("pixel_weight", pixel_weight, "target", target)
    return target, weight, pixel_weight


def _denominator(target, weight, ignore_index, dtype):
    valid = target != ignore_index
    if weight is None:
        return float(np.count_nonzero(valid))
    return float(weight.astype(np.float64)[target[valid]].sum())


def _reduce(item_loss, reduction, denom):
    if reduction == "none":
        return item_loss
    total = item_loss.sum(dtype=np.float64)
    value = total if reduction == "sum" else (total / denom if denom != 0 else np.nan)
    return item_loss.dtype.type(value)


def _scalar_grad(grad_out) -> float:
    """grad_out of a reduced ('mean'/'sum') loss: one real number."""
    g = np.asarray(grad_out)
    if g.dtype.kind not in "iuf":
        raise TypeError(f"grad_out: expected a real number, got {grad_out!r}")
    if g.size != 1:
        raise ValueError(f"grad_out: a 'mean'/'sum' loss is a scalar, so grad_out must be one "
                         f"number, got shape {g.shape}")
    return float(g.reshape(()))


def _elementwise_grad(grad_out, x, reduction):
    """grad_out per element of x: target-shaped for 'none', else the scalar spread by the mean."""
    if reduction == "none":
        g = as_float_array("grad_out", np.asarray(grad_out, x.dtype), x.dtype)
        check_same_shape("grad_out", g, "input", x)
        return g
    g = _scalar_grad(grad_out)
    if reduction == "mean":
        g = g / x.size if x.size else float("nan")
    return x.dtype.type(g)


def _item_grad(grad_out, target, pixel_weight, reduction, denom, dtype):
    if reduction == "none":
        g = as_float_array("grad_out", np.asarray(grad_out, dtype), dtype)
        check_same_shape("grad_out", g, "target", target)
    else:
        scale = _scalar_grad(grad_out)
        if reduction == "mean":  # a mean over no weight (all ignored, zero weights) is NaN
            scale = scale / denom if denom != 0 else float("nan")
        g = np.full(target.shape, scale, dtype)
    if pixel_weight is not None:
        g = g * pixel_weight
    return np.require(g, dtype=dtype, requirements=("C", "A"))


def _ce_args(x, target, weight, ignore_index, reduction, label_smoothing, pixel_weight):
    x = as_float_array("input", x)
    if x.ndim < 2:
        raise ValueError(f"input: expected at least 2-D (N, C, *spatial), got shape {x.shape}")
    if x.shape[1] == 0:  # an empty batch or spatial dim is allowed: no items (mean NaN, sum 0)
        raise ValueError(f"input: needs at least one class (dim 1), got shape {x.shape}")
    target, weight, pixel_weight = _class_target(x, target, weight, pixel_weight)
    ls = check_float("label_smoothing", label_smoothing, 0.0, 1.0)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
    return x, target, weight, int(ignore_index), check_reduction(reduction), ls, pixel_weight


@on_device
def cross_entropy(x: np.ndarray, target: np.ndarray, weight: Optional[np.ndarray] = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0, pixel_weight: Optional[np.ndarray] = None,
                  return_lse: bool = False):
    """Softmax cross-entropy on logits, fused in one C++ pass (PyTorch's F.cross_entropy with
    class-index targets). With return_lse, returns (loss, lse) where lse = log Σ e^x per item,
    which cross_entropy_backward accepts to skip recomputing it."""
    x, target, weight, ii, red, ls, pw = _ce_args(x, target, weight, ignore_index, reduction,
                                                  label_smoothing, pixel_weight)
    item_loss, lse = _core.cross_entropy_forward(x, target, weight, ii, ls)
    if pw is not None:
        item_loss = item_loss * pw
    loss = _reduce(item_loss, red, _denominator(target, weight, ii, x.dtype))
    return (loss, lse) if return_lse else loss


@on_device
def cross_entropy_backward(grad_out, x: np.ndarray, target: np.ndarray,
                           weight: Optional[np.ndarray] = None, ignore_index: int = -100,
                           reduction: str = "mean", label_smoothing: float = 0.0,
                           pixel_weight: Optional[np.ndarray] = None,
                           lse: Optional[np.ndarray] = None) -> np.ndarray:
    """grad w.r.t. the logits; grad_out is a scalar (mean/sum) or target-shaped ('none')."""
    x, target, weight, ii, red, ls, pw = _ce_args(x, target, weight, ignore_index, reduction,
                                                  label_smoothing, pixel_weight)
    if lse is None:
        lse = _core.cross_entropy_forward(x, target, weight, ii, ls)[1]
    lse = as_float_array("lse", lse, x.dtype)
    check_same_shape("lse", lse, "target", target)
    g = _item_grad(grad_out, target, pw, red, _denominator(target, weight, ii, x.dtype), x.dtype)
    return _core.cross_entropy_backward(g, x, lse, target, weight, ii, ls)


def _nll_gather(x, target, ignore_index):
    valid = target != ignore_index
    if np.any(valid & ((target < 0) | (target >= x.shape[1]))):
        raise ValueError(f"target: class indices must be in [0, {x.shape[1]}) or ignore_index "
                         f"{ignore_index}")
    t = np.where(valid, target, 0)
    return valid, np.expand_dims(t, 1)


def nll_loss(x: np.ndarray, target: np.ndarray, weight: Optional[np.ndarray] = None,
             ignore_index: int = -100, reduction: str = "mean",
             pixel_weight: Optional[np.ndarray] = None):
    """−w[t]·x[t] per item on log-probabilities x (N, C, *)."""
    x, target, weight, ii, red, _, pw = _ce_args(x, target, weight, ignore_index, reduction, 0.0,
                                                 pixel_weight)
    valid, t = _nll_gather(x, target, ii)
    w = np.ones(x.shape[1], x.dtype) if weight is None else weight
    item = np.where(valid, -np.take_along_axis(x, t, 1)[:, 0] * w[t[:, 0]], 0).astype(x.dtype)
    if pw is not None:
        item = item * pw
    return _reduce(item, red, _denominator(target, weight, ii, x.dtype))


def nll_loss_backward(grad_out, x: np.ndarray, target: np.ndarray,
                      weight: Optional[np.ndarray] = None, ignore_index: int = -100,
                      reduction: str = "mean", pixel_weight: Optional[np.ndarray] = None):
    x, target, weight, ii, red, _, pw = _ce_args(x, target, weight, ignore_index, reduction, 0.0,
                                                 pixel_weight)
    valid, t = _nll_gather(x, target, ii)
    w = np.ones(x.shape[1], x.dtype) if weight is None else weight
    g = _item_grad(grad_out, target, pw, red, _denominator(target, weight, ii, x.dtype), x.dtype)
    gx = np.zeros_like(x)
    np.put_along_axis(gx, t, np.expand_dims(np.where(valid, -g * w[t[:, 0]], 0), 1), 1)
    return gx


def _pair(x, target):
    x = as_float_array("input", x)
    target = as_float_array("target", target, x.dtype)
    check_same_shape("target", target, "input", x)
    return x, target


def mse_loss(x: np.ndarray, target: np.ndarray, reduction: str = "mean"):
    x, target = _pair(x, target)
    reduction = check_reduction(reduction)
    if reduction == "none":
        return (x - target) ** 2
    # one threaded C++ pass (squares rounded in x's dtype, summed in float64), no temporaries
    total = _core.squared_error_sum(x, target)
    value = total if reduction == "sum" else (total / x.size if x.size else np.nan)
    return x.dtype.type(value)


def mse_loss_backward(grad_out, x: np.ndarray, target: np.ndarray, reduction: str = "mean",
                      needs_target_grad: bool = True):
    """(grad_input, grad_target); grad_target is None when needs_target_grad is False."""
    x, target = _pair(x, target)
    reduction = check_reduction(reduction)
    g = _elementwise_grad(grad_out, x, reduction)
    if reduction == "none":
        gx = (2 * (x - target) * g).astype(x.dtype)
    else:  # 2·(x − t)·g in one threaded pass (2·g is exact: the same rounding as NumPy's)
        gx = _core.squared_error_grad(x, target, float(2 * g))
    return gx, (-gx if needs_target_grad else None)


def _bce_args(x, target, weight, pos_weight):
    x, target = _pair(x, target)
    if weight is not None:
        weight = as_float_array("weight", weight, x.dtype)
        try:
            weight = np.broadcast_to(weight, x.shape)
        except ValueError:
            raise ValueError(f"weight: shape {weight.shape} does not broadcast to input "
                             f"{x.shape}") from None
    if pos_weight is not None:
        pos_weight = as_float_array("pos_weight", pos_weight, x.dtype)
        if x.ndim == 0:
            raise ValueError("pos_weight: needs an input with a class dim (at least 1-D)")
        if pos_weight.shape != (x.shape[-1],) and pos_weight.shape != (1,):
            raise ValueError(f"pos_weight: expected shape ({x.shape[-1]},) (the last dim of "
                             f"input {x.shape}), got {pos_weight.shape}")
    return x, target, weight, pos_weight


def binary_cross_entropy_with_logits(x, target, weight=None, reduction: str = "mean",
                                     pos_weight=None):
    """−w·[p·t·log σ(x) + (1 − t)·log(1 − σ(x))], computed stably (PyTorch's formula)."""
    x, target, weight, pw = _bce_args(x, target, weight, pos_weight)
    lw = 1 + (pw - 1) * target if pw is not None else 1
    softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)  # −log σ(x)
    item = ((1 - target) * x + lw * softplus_neg).astype(x.dtype)
    if weight is not None:
        item = item * weight
    return _reduce(item, check_reduction(reduction), float(x.size))


def binary_cross_entropy_with_logits_backward(grad_out, x, target, weight=None,
                                              reduction: str = "mean", pos_weight=None):
    """(grad_input, grad_target)."""
    x, target, weight, pw = _bce_args(x, target, weight, pos_weight)
    g = _elementwise_grad(grad_out, x, check_reduction(reduction))
    if weight is not None:
        g = g * weight
    lw = 1 + (pw - 1) * target if pw is not None else 1
    sig_neg = 0.5 * (1 - np.tanh(0.5 * x))  # σ(−x), stable
    softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
    gx = g * ((1 - target) - lw * sig_neg)
    gt = g * (-x + ((pw - 1) * softplus_neg if pw is not None else 0))
    return gx.astype(x.dtype), np.asarray(gt, x.dtype)
