"""cnnfast.functional — ops on NumPy arrays, PyTorch-shaped; each `f` has an `f_backward` twin.

Conventions: NCHW activations, OIHW weights; float32 (fast path) or float64; other dtypes or
mixed dtypes raise TypeError; bad shapes/parameters raise ValueError naming the argument.
`f_backward(grad_out, <forward inputs>, ..., needs_input_grad=...)` returns the gradients of the
forward's array inputs in order (None where not requested or not applicable).
"""
from .conv import conv2d, conv2d_backward
from . import interpolate as _interpolate_mod, pool as _pool_mod, unpool as _unpool_mod
from .interpolate import interpolate, interpolate_backward
from .pool import *  # noqa: F401,F403  max/avg/lp/adaptive/global pooling (1-D/2-D/3-D) + backward
from .switches import Switches
from .unpool import *  # noqa: F401,F403  max_unpool1d/2d/3d + backward

__all__ = ["conv2d", "conv2d_backward"]
__all__ += _pool_mod.__all__ + _unpool_mod.__all__ + _interpolate_mod.__all__
