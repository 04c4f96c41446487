"""Normalization layers: BatchNorm1d/2d/3d (torch.nn names: weight, bias, running_mean,
running_var, num_batches_tracked), LocalResponseNorm (AlexNet), GlobalContrastNorm and
LocalContrastNorm (the chapter's contrast normalization; no parameters)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import functional as F
from .module import Module, Parameter, accumulate, saved


class _BatchNorm(Module):
    _ndims = (2, 3)  # accepted input ranks

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._ctx = None

    def _use_batch_stats(self):
        return self.training or not self.track_running_stats

    def forward(self, x):
        shape = getattr(x, "shape", None)  # NumPy or device arrays (F.batch_norm dispatches)
        if shape is None or len(shape) not in self._ndims or shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(map(str, self._ndims))}"
                             f"-D input with {self.num_features} channels in dim 1, got shape "
                             f"{getattr(x, 'shape', None)}")
        batch = self._use_batch_stats()
        momentum = self.momentum
        rm = rv = None  # tracked stats: updated in training, used in eval
        counting = self.track_running_stats and self.training
        if self.track_running_stats:
            rm, rv = self._buffers["running_mean"], self._buffers["running_var"]
            if counting and momentum is None:  # cumulative moving average, as torch
                momentum = 1.0 / float(self._buffers["num_batches_tracked"] + 1)
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        y, mean, invstd = F.batch_norm(x, rm, rv, w, b, training=batch,
                                       momentum=momentum or 0.0, eps=self.eps, return_stats=True)
        if counting:  # after the op: a refused batch (one value a channel) is not counted
            self._buffers["num_batches_tracked"] += 1
        self._ctx = (x, batch, mean, invstd)
        return y

    def backward(self, grad_out):
        x, batch, mean, invstd = saved(self._ctx, self)
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        gx, gw, gb = F.batch_norm_backward(grad_out, x, None, None, w, b, training=batch,
                                           eps=self.eps, stats=(mean, invstd))
        accumulate(self.weight, gw)
        accumulate(self.bias, gb)
        return gx

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _ndims = (4,)


class BatchNorm3d(_BatchNorm):
    _ndims = (5,)


class LocalResponseNorm(Module):
    """b_c = a_c / (k + α/n · Σ_{c' near c} a_{c'}²)^β across `size` neighbouring channels."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self._ctx = None

    def forward(self, x):
        y, scale = F.local_response_norm(x, self.size, self.alpha, self.beta, self.k,
                                         return_scale=True)
        self._ctx = (x, scale)
        return y

    def backward(self, grad_out):
        x, scale = saved(self._ctx, self)
        return F.local_response_norm_backward(grad_out, x, self.size, self.alpha, self.beta,
                                              self.k, scale=scale)


class GlobalContrastNorm(Module):
    """Per image: s·(x − mean) / max(ε, √(λ + var)) (Goodfellow et al., eq. 12.3)."""

    def __init__(self, scale: float = 1.0, lam: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.scale, self.lam, self.eps = scale, lam, eps
        self._x = None

    def forward(self, x):
        self._x = x
        return F.global_contrast_norm(x, self.scale, self.lam, self.eps)

    def backward(self, grad_out):
        return F.global_contrast_norm_backward(grad_out, saved(self._x, self), self.scale,
                                               self.lam, self.eps)


class LocalContrastNorm(Module):
    """Gaussian-weighted local mean subtraction and division by the local standard deviation,
    per channel or across channels (Jarrett et al. 2009)."""

    def __init__(self, kernel_size: int = 9, sigma: float = 2.0, across_channels: bool = False,
                 eps: float = 1e-4):
        super().__init__()
        self.kernel_size, self.sigma = kernel_size, sigma
        self.across_channels, self.eps = across_channels, eps
        self._x = None

    def _kw(self):
        return dict(kernel_size=self.kernel_size, sigma=self.sigma,
                    across_channels=self.across_channels, eps=self.eps)

    def forward(self, x):
        self._x = x
        return F.local_contrast_norm(x, **self._kw())

    def backward(self, grad_out):
        return F.local_contrast_norm_backward(grad_out, saved(self._x, self), **self._kw())
