"""Activation and dropout layers: ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Dropout,
Dropout2d (C++ kernels). Dropout draws its mask from `rng` (default: a fresh Generator) in
training mode and is the identity in eval mode.

`inplace` is taken with torch's meaning of the result (ported code that writes
`nn.ReLU(inplace=True)` runs unchanged), but the result is always a new array: the input is not
overwritten (the layer keeps it for backward).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import functional as F
from .._checks import check_bool
from .module import Module, saved


class ReLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool("inplace", inplace)
        self._x = None

    def forward(self, x):
        self._x = x
        return F.relu(x)

    def backward(self, grad_out):
        return F.relu_backward(grad_out, saved(self._x, self))


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = check_bool("inplace", inplace)
        self._x = None

    def forward(self, x):
        self._x = x
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad_out):
        return F.leaky_relu_backward(grad_out, saved(self._x, self), self.negative_slope)


class _FromOutput(Module):
    """Activations whose backward needs only the forward output."""
    _fwd = _bwd = None

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self._y = type(self)._fwd(x)
        return self._y

    def backward(self, grad_out):
        return type(self)._bwd(grad_out, saved(self._y, self, "output"))


class Sigmoid(_FromOutput):
    _fwd, _bwd = F.sigmoid, F.sigmoid_backward


class Tanh(_FromOutput):
    _fwd, _bwd = F.tanh, F.tanh_backward


class Softmax(Module):
    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim
        self._y = None

    def forward(self, x):
        self._y = F.softmax(x, self.dim)
        return self._y

    def backward(self, grad_out):
        return F.softmax_backward(grad_out, saved(self._y, self, "output"), self.dim)


class LogSoftmax(Softmax):
    def forward(self, x):
        self._y = F.log_softmax(x, self.dim)
        return self._y

    def backward(self, grad_out):
        return F.log_softmax_backward(grad_out, saved(self._y, self, "output"), self.dim)


class Dropout(Module):
    _fwd, _bwd = F.dropout, F.dropout_backward

    def __init__(self, p: float = 0.5, inplace: bool = False, *,
                 rng: Optional[np.random.Generator] = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p: dropout probability must be in [0, 1], got {p}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        self.p = p
        self.inplace = check_bool("inplace", inplace)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        y, self._mask = type(self)._fwd(x, self.p, True, self.rng)
        return y

    def backward(self, grad_out):
        if self._mask is None:
            return grad_out
        return type(self)._bwd(grad_out, self._mask, self.p)


class Dropout2d(Dropout):
    """Zeroes whole channels (N, C, *spatial) — spatial dropout."""
    _fwd, _bwd = F.dropout2d, F.dropout2d_backward
