"""Identity, Flatten and Linear (torch.nn names and layouts: Linear.weight is (out, in))."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import init
from .._checks import int_tuple
from .module import Module, Parameter, accumulate, saved


class Identity(Module):
    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out


class Flatten(Module):
    """Merges dims start_dim..end_dim (default: all but the batch dim), as torch.nn.Flatten."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim
        self._shape = None

    def forward(self, x):
        nd = len(x.shape)
        span = max(nd, 1)  # torch: a 0-d input flattens as one dim
        dims = []
        for name in ("start_dim", "end_dim"):
            d = getattr(self, name)
            if not -span <= d < span:
                raise ValueError(f"Flatten: {name} {d} is out of range for an input of shape "
                                 f"{tuple(x.shape)}")
            dims.append(d % span)
        s, e = dims
        if s > e:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim "
                             f"{self.end_dim} for an input of shape {tuple(x.shape)}")
        self._shape = x.shape
        # the merged size spelled out: numpy cannot infer -1 for an empty batch (0, C, H, W)
        merged = int(np.prod(x.shape[s:e + 1], dtype=np.int64)) if nd else 1
        return x.reshape(tuple(x.shape[:s]) + (merged,) + tuple(x.shape[e + 1:]))

    def backward(self, grad_out):
        return grad_out.reshape(saved(self._shape, self, "input shape"))


def _grad_target(param):
    """param's existing gradient when an op can add into it in place (host: a C-contiguous
    writeable array of the parameter's shape and dtype; device: any), else None."""
    g = None if param is None else param._grad
    if type(g) is np.ndarray and not (g.shape == param.data.shape and g.dtype == param.data.dtype
                                      and g.flags.c_contiguous and g.flags.writeable):
        return None
    return g


class Linear(Module):
    """y = x·Wᵀ + b on the packed GEMM; x is (*, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32):
        super().__init__()
        in_features = int_tuple("in_features", in_features, 1, 1)[0]
        out_features = int_tuple("out_features", out_features, 1, 1)[0]
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype))
        self.bias = Parameter(np.empty(out_features, dtype)) if bias else None
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound)
        self._x = None

    def forward(self, x):
        shape = getattr(x, "shape", None)  # NumPy or device arrays (F.linear dispatches)
        if shape is None or len(shape) < 1 or shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input (*, {self.in_features}), got shape "
                             f"{getattr(x, 'shape', None)}")
        self._x = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_out):
        b = None if self.bias is None else self.bias.data
        # Existing gradients are added into in place by the GEMM (VGG's 25088x4096 classifier:
        # one pass over 400 MB instead of a fresh array plus a += pass).
        gw_into, gb_into = _grad_target(self.weight), _grad_target(self.bias)
        gx, gw, gb = F.linear_backward(grad_out, saved(self._x, self), self.weight.data, b,
                                       needs_input_grad=(self.needs_input_grad, True,
                                                         self.bias is not None),
                                       grad_weight_into=gw_into, grad_bias_into=gb_into)
        for param, into, grad in ((self.weight, gw_into, gw), (self.bias, gb_into, gb)):
            if into is None:
                accumulate(param, grad)
            elif param is not None:  # added into in place
                param.has_grad = True
        return gx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"
