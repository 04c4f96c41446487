"""Normalization ops with backward twins (C++ kernels): batch norm (train/eval), local response
norm (AlexNet, across channels), global and local contrast normalization (the chapter's GCN/LCN).

Activations are (N, C, *spatial); per-channel vectors are (C,).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._checks import (as_float_array, check_batch_layout, check_float, check_ndim, check_needs,
                       check_same_shape, int_tuple)
from ._dispatch import on_device


def _channel_vec(name, v, x):
    if v is None:
        return None
    v = as_float_array(name, v, x.dtype)
    if v.shape != (x.shape[1],):
        raise ValueError(f"{name}: expected shape ({x.shape[1]},) (one per channel of input "
                         f"{x.shape}), got {v.shape}")
    return v


@on_device
def batch_norm(x: np.ndarray, running_mean: Optional[np.ndarray], running_var: Optional[np.ndarray],
               weight: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
               return_stats: bool = False):
    """PyTorch's F.batch_norm over x (N, C, *). In training, running_mean / running_var (if given)
    are updated in place with the unbiased batch variance. With return_stats, returns
    (y, mean, invstd): the statistics used, which batch_norm_backward accepts as `stats`."""
    x = as_float_array("input", x)
    check_batch_layout("input", x, 2, "(N, C, *)")
    rm, rv = running_mean, running_var
    for name, v in (("running_mean", rm), ("running_var", rv)):
        if v is not None and (not isinstance(v, np.ndarray) or not v.flags.c_contiguous
                              or not v.flags.aligned):
            raise TypeError(f"{name}: expected an aligned, C-contiguous numpy.ndarray (updated in "
                            f"place: a copy would drop the update)")
    rm, rv = _channel_vec("running_mean", rm, x), _channel_vec("running_var", rv, x)
    weight, bias = _channel_vec("weight", weight, x), _channel_vec("bias", bias, x)
    if not training and (rm is None or rv is None):
        raise ValueError("running_mean/running_var: required when training=False")
    if training and x.size // x.shape[1] < 2:
        raise ValueError(f"input: batch norm in training needs more than one value per channel, "
                         f"got shape {x.shape}")
    y, mean, invstd = _core.batch_norm_forward(x, weight, bias, rm, rv, bool(training),
                                               check_float("momentum", momentum, 0.0, 1.0),
                                               check_float("eps", eps, 0.0, open_min=True))
    return (y, mean, invstd) if return_stats else y


@on_device
def batch_norm_backward(grad_out: np.ndarray, x: np.ndarray, running_mean: Optional[np.ndarray],
                        running_var: Optional[np.ndarray], weight: Optional[np.ndarray] = None,
                        bias: Optional[np.ndarray] = None, training: bool = False,
                        eps: float = 1e-5, needs_input_grad=(True, True, True),
                        stats: Optional[Tuple[np.ndarray, np.ndarray]] = None):
    """(grad_input, grad_weight, grad_bias). `stats` = (mean, invstd) from the forward (else
    recomputed: batch statistics in training, running ones in eval)."""
    x = as_float_array("input", x)
    check_batch_layout("input", x, 2, "(N, C, *)")
    grad_out = as_float_array("grad_out", grad_out, x.dtype)
    check_same_shape("grad_out", grad_out, "input", x)
    weight, bias = _channel_vec("weight", weight, x), _channel_vec("bias", bias, x)
    need = check_needs(needs_input_grad, 3)
    eps = check_float("eps", eps, 0.0, open_min=True)
    if stats is None:
        axes = (0,) + tuple(range(2, x.ndim))
        if training:
            mean = x.mean(axis=axes, dtype=np.float64)
            var = x.var(axis=axes, dtype=np.float64)
        else:
            mean = np.asarray(_channel_vec("running_mean", running_mean, x), np.float64)
            var = np.asarray(_channel_vec("running_var", running_var, x), np.float64)
        stats = (mean.astype(x.dtype), (1.0 / np.sqrt(var + eps)).astype(x.dtype))
    if (not isinstance(stats, (tuple, list)) or len(stats) != 2
            or any(v is None for v in stats)):
        got = (tuple(type(v).__name__ for v in stats) if isinstance(stats, (tuple, list))
               else type(stats).__name__)
        raise TypeError(f"stats: expected (mean, invstd), two arrays of shape ({x.shape[1]},) "
                        f"from batch_norm(..., return_stats=True), got {got}")
    mean, invstd = (_channel_vec(n, v, x) for n, v in zip(("mean", "invstd"), stats))
    return _core.batch_norm_backward(grad_out, x, weight, mean, invstd, bool(training), need[0],
                                     need[1] and weight is not None, need[2] and bias is not None)


def _lrn_args(x, size, alpha, beta, k):
    x = as_float_array("input", x)
    check_batch_layout("input", x, 2, "(N, C, *)")
    size = int_tuple("size", size, 1, 1)[0]
    return (x, size, check_float("alpha", alpha), check_float("beta", beta),
            check_float("k", k, 0.0, open_min=True))


def local_response_norm(x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0, return_scale: bool = False):
    """y = x / (k + α/size · Σ_{window of `size` channels} x²)^β (PyTorch's local_response_norm).
    With return_scale, returns (y, scale) for local_response_norm_backward."""
    x, size, alpha, beta, k = _lrn_args(x, size, alpha, beta, k)
    y, scale = _core.lrn_forward(x, size, alpha, beta, k)
    return (y, scale) if return_scale else y


def local_response_norm_backward(grad_out: np.ndarray, x: np.ndarray, size: int,
                                 alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                                 scale: Optional[np.ndarray] = None) -> np.ndarray:
    x, size, alpha, beta, k = _lrn_args(x, size, alpha, beta, k)
    grad_out = as_float_array("grad_out", grad_out, x.dtype)
    check_same_shape("grad_out", grad_out, "input", x)
    if scale is None:
        scale = _core.lrn_forward(x, size, alpha, beta, k)[1]
    scale = as_float_array("scale", scale, x.dtype)
    check_same_shape("scale", scale, "input", x)
    return _core.lrn_backward(grad_out, x, scale, size, alpha, beta)


def _gcn_args(x, scale, lam, eps):
    x = as_float_array("input", x)
    check_batch_layout("input", x, 2, "(N, *)")
    return (x, check_float("scale", scale), check_float("lam", lam, 0.0),
            check_float("eps", eps, 0.0))


def global_contrast_norm(x: np.ndarray, scale: float = 1.0, lam: float = 0.0,
                         eps: float = 1e-8) -> np.ndarray:
    """Per image: y = s·(x − mean) / max(ε, sqrt(λ + mean((x − mean)²)))  (Goodfellow et al. 12.3)."""
    x, scale, lam, eps = _gcn_args(x, scale, lam, eps)
    if lam == 0.0 and eps == 0.0:
        raise ValueError("lam/eps: at least one must be > 0 (else constant images divide by 0)")
    if x.shape[0] == 0:
        return x.copy()
    return _core.global_contrast_norm_forward(x, scale, lam, eps)


def global_contrast_norm_backward(grad_out: np.ndarray, x: np.ndarray, scale: float = 1.0,
                                  lam: float = 0.0, eps: float = 1e-8) -> np.ndarray:
    x, scale, lam, eps = _gcn_args(x, scale, lam, eps)
    grad_out = as_float_array("grad_out", grad_out, x.dtype)
    check_same_shape("grad_out", grad_out, "input", x)
    if lam == 0.0 and eps == 0.0:
        raise ValueError("lam/eps: at least one must be > 0 (else constant images divide by 0)")
    if x.shape[0] == 0:
        return grad_out.copy()
    return _core.global_contrast_norm_backward(grad_out, x, scale, lam, eps)


def gaussian_taps(kernel_size: int, sigma: float) -> np.ndarray:
    """The 1-D Gaussian window (kernel_size,) float64, summing to 1, used by local_contrast_norm."""
    r = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2
    t = np.exp(-0.5 * (r / sigma) ** 2)
    return t / t.sum()


def _lcn_args(x, kernel_size, sigma, across_channels, eps):
    x = as_float_array("input", x)
    check_ndim("input", x, 4, "(N, C, H, W)")
    check_batch_layout("input", x, 4, "(N, C, H, W)")
    kernel_size = int_tuple("kernel_size", kernel_size, 1, 1)[0]
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size: must be odd, got {kernel_size}")
    sigma = check_float("sigma", sigma, 0.0, open_min=True)
    eps = check_float("eps", eps, 0.0, open_min=True)
    # Taps farther out than the image reaches never weigh a pixel (the window is renormalized
    # over the in-bounds taps), so a window wider than 2·max(H, W) − 1 is cut to that: the same
    # result without building a window of 2^31 taps.
    kernel_size = min(kernel_size, 2 * max(x.shape[2], x.shape[3], 1) - 1)
    return x, gaussian_taps(kernel_size, sigma), bool(across_channels), eps


def local_contrast_norm(x: np.ndarray, kernel_size: int = 9, sigma: float = 2.0,
                        across_channels: bool = False, eps: float = 1e-4) -> np.ndarray:
    """Jarrett et al.'s local contrast normalization on x (N, C, H, W): subtract the
    Gaussian-weighted local mean G(x), divide by max(ε, sqrt(G(v²))). G is per channel, or of the
    channel mean when across_channels; its window is normalized by the in-bounds taps at borders."""
    x, taps, across, eps = _lcn_args(x, kernel_size, sigma, across_channels, eps)
    return _core.local_contrast_norm_forward(x, taps, across, eps)


def local_contrast_norm_backward(grad_out: np.ndarray, x: np.ndarray, kernel_size: int = 9,
                                 sigma: float = 2.0, across_channels: bool = False,
                                 eps: float = 1e-4) -> np.ndarray:
    x, taps, across, eps = _lcn_args(x, kernel_size, sigma, across_channels, eps)
    grad_out = as_float_array("grad_out", grad_out, x.dtype)
    check_same_shape("grad_out", grad_out, "input", x)
    return _core.local_contrast_norm_backward(grad_out, x, taps, across, eps)
