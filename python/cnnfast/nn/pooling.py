"""Pooling, unpooling and upsampling layers over cnnfast.functional's pooling family (issue 4):
MaxPool1d/2d/3d (keeps its switches; a paired MaxUnpool reads them), MaxUnpool1d/2d/3d,
AvgPool*, LPPool*, AdaptiveAvgPool*, AdaptiveMaxPool*, GlobalAvgPool, Upsample.

SegNet / DeconvNet pairing: `pool = MaxPool2d(2)`, later `MaxUnpool2d(2, pool=pool)` unpools with
the switches `pool` recorded in its last forward (output size never guessed). MaxUnpool can also be
called as `unpool(x, indices)` with explicit switches. With `return_indices=True` (torch's argument
order: kernel_size, stride, padding, dilation, return_indices, ceil_mode) a max-pooling layer
returns `(y, switches)`, as torch returns (y, indices): the `Switches` hold torch's indices
(`.indices`) and the input size, and `unpool(y, switches)` takes them.
"""
from __future__ import annotations

from .._checks import check_bool
from ._ops import first, max_pool_backward, op
from .module import Module, saved


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        # stride None means the kernel size (torch stores it so)
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride
        self.dilation, self.ceil_mode = dilation, check_bool("ceil_mode", ceil_mode)
        self.return_indices = check_bool("return_indices", return_indices)
        self.switches = None  # always kept: backward and a paired MaxUnpool read them
        self._x = None

    def forward(self, x):
        y, self.switches = op(f"max_pool{self._nd}d")(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            return_indices=True)
        self._x = x
        return (y, self.switches) if self.return_indices else y

    def backward(self, grad_out):
        return max_pool_backward(self._nd, grad_out, saved(self._x, self), self.kernel_size,
                                 self.stride, self.padding, self.dilation, self.ceil_mode,
                                 self.switches)


class MaxPool1d(_MaxPoolNd):
    _nd = 1


class MaxPool2d(_MaxPoolNd):
    _nd = 2


class MaxPool3d(_MaxPoolNd):
    _nd = 3


class _MaxUnpoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, pool: _MaxPoolNd = None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        object.__setattr__(self, "pool", pool)  # a reference, not a sub-module
        self._ctx = None

    def forward(self, x, indices=None, output_size=None):
        if indices is None:
            if self.pool is None or self.pool.switches is None:
                raise ValueError(f"{type(self).__name__}: no indices given and no paired "
                                 f"MaxPool forward has run")
            indices = self.pool.switches
        self._ctx = (x, indices, output_size)
        return op(f"max_unpool{self._nd}d")(x, indices, self.kernel_size, self.stride,
                                            self.padding, output_size)

    def backward(self, grad_out):
        x, indices, output_size = saved(self._ctx, self)
        return first(op(f"max_unpool{self._nd}d_backward")(
            grad_out, x, indices, self.kernel_size, self.stride, self.padding, output_size))


class MaxUnpool1d(_MaxUnpoolNd):
    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    _nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    _nd = 3


class _Pool(Module):
    """A pooling layer calling `<name>(x, *args)` and `<name>_backward(grad_out, x, *args)`."""
    _name = ""

    def __init__(self, *args):
        super().__init__()
        self._args = args
        self._x = None

    def forward(self, x):
        self._x = x
        return op(self._name)(x, *self._args)

    def backward(self, grad_out):
        return first(op(self._name + "_backward")(grad_out, saved(self._x, self), *self._args))


def _pool_class(name, doc, init):
    return type(name, (_Pool,), {"__init__": init, "__doc__": doc})


def _avg_init(nd):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        _Pool.__init__(self, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)
        self._name = f"avg_pool{nd}d"
    return __init__


def _lp_init(nd):
    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        _Pool.__init__(self, norm_type, kernel_size, stride, ceil_mode)
        self._name = f"lp_pool{nd}d"
    return __init__


def _adaptive_init(kind, nd):
    def __init__(self, output_size):
        _Pool.__init__(self, output_size)
        self._name = f"adaptive_{kind}_pool{nd}d"
    return __init__


AvgPool1d = _pool_class("AvgPool1d", "1-D average pooling.", _avg_init(1))
AvgPool2d = _pool_class("AvgPool2d", "2-D average pooling.", _avg_init(2))
AvgPool3d = _pool_class("AvgPool3d", "3-D average pooling.", _avg_init(3))
LPPool1d = _pool_class("LPPool1d", "1-D power-average (L_p) pooling.", _lp_init(1))
LPPool2d = _pool_class("LPPool2d", "2-D power-average (L_p) pooling.", _lp_init(2))
LPPool3d = _pool_class("LPPool3d", "3-D power-average (L_p) pooling.", _lp_init(3))
AdaptiveAvgPool1d = _pool_class("AdaptiveAvgPool1d", "", _adaptive_init("avg", 1))
AdaptiveAvgPool2d = _pool_class("AdaptiveAvgPool2d", "", _adaptive_init("avg", 2))
AdaptiveAvgPool3d = _pool_class("AdaptiveAvgPool3d", "", _adaptive_init("avg", 3))


class _AdaptiveMaxPoolNd(Module):
    _nd = 2

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = check_bool("return_indices", return_indices)
        self.switches = None
        self._x = None

    def forward(self, x):
        y, self.switches = op(f"adaptive_max_pool{self._nd}d")(x, self.output_size,
                                                               return_indices=True)
        self._x = x
        return (y, self.switches) if self.return_indices else y

    def backward(self, grad_out):
        return first(op(f"adaptive_max_pool{self._nd}d_backward")(
            grad_out, saved(self._x, self), self.output_size, indices=self.switches))


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    _nd = 3


class GlobalAvgPool(_Pool):
    """Mean over all spatial positions: (N, C, *spatial) → (N, C, 1, ...) (spatial dims kept, as
    adaptive_avg_pool with output size 1; Flatten after it for (N, C))."""

    def __init__(self):
        super().__init__()
        self._name = "global_avg_pool"


class Upsample(_Pool):
    """Nearest / bilinear / trilinear upsampling (the decoder's "upsampling" layer)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__(size, scale_factor, mode, align_corners)
        self._name = "interpolate"
