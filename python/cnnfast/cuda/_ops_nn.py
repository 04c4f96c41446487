"""CUDA twins of batch_norm and cross_entropy (and their backward) with the CPU ops' names and
signatures, plus the SGD / Adam updates behind cnnfast.cuda.sgd_step / adam_step. Losses with
reduction 'mean' / 'sum' come back as 0-d DeviceArrays (reduced on the device; float(loss) copies
the value to the host); their backward takes grad_out as a number or a 0-d DeviceArray."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._checks import check_float, check_min_ndim, check_needs, check_reduction
from ._array import empty, zeros
from ._common import f32, i64, same_shape
from ._runtime import require


def _channel_vec(name, v, x, writable=False):
    if v is None:
        return None
    v = f32(name, v)
    if v.shape != (x.shape[1],):
        raise ValueError(f"{name}: expected shape ({x.shape[1]},) (one per channel of input "
                         f"{x.shape}), got {v.shape}")
    if writable and v.readonly:
        raise ValueError(f"{name}: device array is read-only (updated in place)")
    return v


# ---- batch norm ----------------------------------------------------------------------------------

def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, return_stats=False):
    x = f32("input", x)
    check_min_ndim("input", x, 2, "(N, C, *)")
    rm = _channel_vec("running_mean", running_mean, x, writable=True)
    rv = _channel_vec("running_var", running_var, x, writable=True)
    weight, bias = _channel_vec("weight", weight, x), _channel_vec("bias", bias, x)
    if not training and (rm is None or rv is None):
        raise ValueError("running_mean/running_var: required when training=False")
    if training and x.size // x.shape[1] < 2:
        raise ValueError(f"input: batch norm in training needs more than one value per channel, "
                         f"got shape {x.shape}")
    momentum = check_float("momentum", momentum, 0.0, 1.0)
    eps = check_float("eps", eps, 0.0, open_min=True)
    y, mean, invstd = empty(x.shape), empty((x.shape[1],)), empty((x.shape[1],))
    _core.cuda_batch_norm_forward(y, mean, invstd, x, weight, bias, rm, rv, bool(training),
                                  momentum, eps)
    return (y, mean, invstd) if return_stats else y


def batch_norm_backward(grad_out, x, running_mean, running_var, weight=None, bias=None,
                        training=False, eps=1e-5, needs_input_grad=(True, True, True),
                        stats=None):
    x = f32("input", x)
    check_min_ndim("input", x, 2, "(N, C, *)")
    grad_out = f32("grad_out", grad_out)
    same_shape("grad_out", grad_out, "input", x.shape)
    weight, bias = _channel_vec("weight", weight, x), _channel_vec("bias", bias, x)
    need = check_needs(needs_input_grad, 3)
    eps = check_float("eps", eps, 0.0, open_min=True)
    if stats is None:  # what the forward used: batch statistics, or the running ones in eval
        rm = None if training else running_mean
        rv = None if training else running_var
        _, mean, invstd = batch_norm(x, rm, rv, training=training, eps=eps, return_stats=True)
    else:
        mean, invstd = (_channel_vec(n, v, x) for n, v in zip(("mean", "invstd"), stats))
    c = (x.shape[1],)
    dx = empty(x.shape) if need[0] else None
    dgamma = zeros(c) if need[1] and weight is not None else None
    dbeta = zeros(c) if need[2] and bias is not None else None
    _core.cuda_batch_norm_backward(dx, dgamma, dbeta, grad_out, x, weight, mean, invstd,
                                   bool(training))
    return dx, dgamma, dbeta


# ---- softmax cross-entropy -----------------------------------------------------------------------

def _ce_args(x, target, weight, ignore_index, reduction, label_smoothing, pixel_weight):
    x = f32("input", x)
    check_min_ndim("input", x, 2, "(N, C, *spatial)")
    target = i64("target", target, (x.shape[0],) + x.shape[2:])
    weight = _channel_vec("weight", weight, x)
    if pixel_weight is not None:
        pixel_weight = f32("pixel_weight", pixel_weight)
        same_shape("pixel_weight", pixel_weight, "target", target.shape)
    ls = check_float("label_smoothing", label_smoothing, 0.0, 1.0)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an int, got {ignore_index!r}")
    return x, target, weight, int(ignore_index), check_reduction(reduction), ls, pixel_weight


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, pixel_weight=None, return_lse=False):
    x, target, weight, ii, red, ls, pw = _ce_args(x, target, weight, ignore_index, reduction,
                                                  label_smoothing, pixel_weight)
    item_loss, lse = empty(target.shape), empty(target.shape)
    _core.cuda_cross_entropy_forward(item_loss, lse, x, target, weight, pw, ii, ls)
    loss = item_loss
    if red != "none":
        loss = empty(())
        _core.cuda_cross_entropy_reduce(loss, item_loss, target, weight, x.shape[1], ii,
                                        red == "mean")
    return (loss, lse) if return_lse else loss


def cross_entropy_backward(grad_out, x, target, weight=None, ignore_index=-100,
                           reduction="mean", label_smoothing=0.0, pixel_weight=None, lse=None):
    x, target, weight, ii, red, ls, pw = _ce_args(x, target, weight, ignore_index, reduction,
                                                  label_smoothing, pixel_weight)
    if lse is None:
        lse = empty(target.shape)
        _core.cuda_cross_entropy_forward(empty(target.shape), lse, x, target, weight, None, ii, ls)
    else:
        lse = f32("lse", lse)
        same_shape("lse", lse, "target", target.shape)
    grads, grad_dev, grad_value = None, None, 0.0
    if red == "none":
        grads = f32("grad_out", grad_out)
        same_shape("grad_out", grads, "target", target.shape)
    elif getattr(grad_out, "_cnnfast_device_array", False) or hasattr(
            grad_out, "__cuda_array_interface__"):
        grad_dev = f32("grad_out", grad_out)
        same_shape("grad_out", grad_dev, "the reduced loss", ())
    else:
        grad_value = check_float("grad_out", grad_out)
    item_grad = empty(target.shape)
    _core.cuda_cross_entropy_item_grad(item_grad, grads, grad_dev, grad_value, pw, target, weight,
                                       x.shape[1], ii, red == "mean")
    dx = empty(x.shape)
    _core.cuda_cross_entropy_backward(dx, item_grad, x, lse, target, weight, ii, ls)
    return dx


# ---- optimizer updates ---------------------------------------------------------------------------

def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    require()
    _core.cuda_sgd_step(f32("param", p), f32("grad", grad), None if buf is None else
                        f32("momentum_buffer", buf), float(lr), float(momentum), float(dampening),
                        float(weight_decay), bool(nesterov), bool(first))


def adam_step(p, grad, m, v, max_v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    require()
    _core.cuda_adam_step(f32("param", p), f32("grad", grad), f32("exp_avg", m),
                         f32("exp_avg_sq", v), None if max_v is None else
                         f32("max_exp_avg_sq", max_v), int(step), float(lr), float(beta1),
                         float(beta2), float(eps), float(weight_decay), bool(decoupled))
