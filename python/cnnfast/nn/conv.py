"""Convolution layers: Conv1d/2d/3d, ConvTranspose1d/2d/3d, TiledConv2d, LocallyConnected2d.

Weights and biases have torch.nn's names, shapes and default init (kaiming_uniform(a=√5), bias
U(±1/√fan_in)); TiledConv2d weight (T_h, T_w, K, C, R, S) + bias (T_h, T_w, K); LocallyConnected2d
weight (P, Q, K, C, R, S) + bias (K, P, Q). Forward stores the input; backward returns dL/dx and
accumulates the parameter gradients.
"""
from __future__ import annotations

import math

import numpy as np

from .. import init
from .._checks import int_tuple, resolve_padding
from ._ops import op
from .module import Module, Parameter, accumulate, saved


# torch.nn.ConvNd's padding_mode -> cnnfast.functional.pad's mode ('zeros': the conv pads itself)
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                 "circular": "circular"}


def _counts(**named):
    """The channel / group counts as ints >= 1 (ValueError / TypeError naming the argument)."""
    return tuple(int_tuple(name, v, 1, 1)[0] for name, v in named.items())


class _ConvBase(Module):
    _op = ""  # functional name; its backward is `_op + "_backward"`

    def _make(self, weight_shape, bias_shape, fan_in, bias, dtype):
        self.weight = Parameter(np.empty(weight_shape, dtype))
        self.bias = Parameter(np.empty(bias_shape, dtype)) if bias else None
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # torch's default: U(±1/√fan_in)
        if self.bias is not None:
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)
        # what the op convolved (padded per padding_mode); output when the ReLU ran fused
        # (Conv2d.forward_relu); the layer's own input
        self._x = self._y = self._x_in = None

    def _kwargs(self):
        raise NotImplementedError

    def _check_input(self, x):
        want = self._in_channels
        shape = getattr(x, "shape", None)  # NumPy or device arrays (the ops dispatch)
        if shape is None or len(shape) < 2 or shape[1] != want:
            raise ValueError(f"{type(self).__name__}: expected input with {want} channels in "
                             f"dim 1, got shape {getattr(x, 'shape', None)}")

    def _padded(self, x):
        """The array the op convolves: x itself, or x padded per padding_mode (_ConvNd)."""
        self._x_in = x
        return x

    def _unpad_grad(self, gx):
        return gx

    def forward(self, x):
        self._check_input(x)
        x = self._padded(x)
        self._x, self._y = x, None
        b = None if self.bias is None else self.bias.data
        return op(self._op)(x, self.weight.data, b, **self._kwargs())

    def backward(self, grad_out):
        x = saved(self._x, self)
        b = None if self.bias is None else self.bias.data
        fused = {} if self._y is None else dict(activation="relu", output=self._y)
        gx, gw, gb = op(self._op + "_backward")(
            grad_out, x, self.weight.data, b, **self._kwargs(), **fused,
            needs_input_grad=(self.needs_input_grad, True, self.bias is not None))
        accumulate(self.weight, gw)
        accumulate(self.bias, gb)
        return None if gx is None else self._unpad_grad(gx)


class _ConvNd(_ConvBase):
    """torch's positional order: Conv (in, out, kernel_size, stride, padding, dilation, groups,
    bias, padding_mode); ConvTranspose (in, out, kernel_size, stride, padding, output_padding,
    groups, bias, dilation, padding_mode) — the subclasses' __init__. dtype is keyword-only."""
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", *, dtype=np.float32):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                    bias, 0, padding_mode, dtype)

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
               bias, output_padding, padding_mode, dtype):
        super().__init__()
        nd = self._nd
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode 'zeros' (as torch)")
        self.padding_mode = padding_mode
        ks = int_tuple("kernel_size", kernel_size, nd, 1)
        in_channels, out_channels, groups = _counts(in_channels=in_channels,
                                                    out_channels=out_channels, groups=groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, ks
        # tuples, as torch stores them (ported code reads conv.stride[0])
        self.stride = int_tuple("stride", stride, nd, 1)
        self.dilation = int_tuple("dilation", dilation, nd, 1)
        if isinstance(padding, str):
            self.padding = padding
        elif isinstance(padding, (tuple, list)) and len(padding) == 2 * nd:  # (before, after)s
            self.padding = tuple(padding)
        else:
            self.padding = int_tuple("padding", padding, nd, 0)
        self.groups = groups
        self.output_padding = int_tuple("output_padding", output_padding, nd, 0)
        if self._transposed:
            shape = (in_channels, out_channels // groups) + ks
        else:
            shape = (out_channels, in_channels // groups) + ks
        self._in_channels = in_channels
        if self._transposed:  # refused now, not at the first forward
            if isinstance(padding, str):
                raise ValueError(f"padding: {type(self).__name__} takes ints, not "
                                 f"{padding!r} (as torch)")
        else:
            resolve_padding(padding, (1,) * nd, ks, (1,) * nd, (1,) * nd)
        self._make(shape, (out_channels,), shape[1] * int(np.prod(ks)), bias, dtype)

    def _kwargs(self):
        kw = dict(stride=self.stride, padding=0 if self.padding_mode != "zeros" else self.padding,
                  dilation=self.dilation, groups=self.groups)
        if self._transposed:
            kw["output_padding"] = self.output_padding
        return kw

    def _pads(self, spatial):
        """torch.nn.functional.pad's amounts (last dim first) for self.padding on `spatial`."""
        nd = self._nd
        per_dim = resolve_padding(self.padding, spatial, self.kernel_size,
                                  int_tuple("stride", self.stride, nd, 1),
                                  int_tuple("dilation", self.dilation, nd, 1))
        return [v for d in reversed(range(nd)) for v in per_dim[2 * d:2 * d + 2]]

    def _padded(self, x):
        self._x_in = x
        if self.padding_mode == "zeros":
            return x
        from .. import functional as F
        return F.pad(x, self._pads(x.shape[2:]), PADDING_MODES[self.padding_mode])

    def _unpad_grad(self, gx):
        if self.padding_mode == "zeros":
            return gx
        from .. import functional as F
        x = saved(self._x_in, self)
        return F.pad_backward(gx, x, self._pads(x.shape[2:]), PADDING_MODES[self.padding_mode])

    def extra_repr(self):
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding not in (0, (0,) * nd):
            s += f", padding={self.padding}"
        if self._transposed and self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s  # torch's format


class Conv1d(_ConvNd):
    _nd, _op = 1, "conv1d"


class Conv2d(_ConvNd):
    _nd, _op = 2, "conv2d"

    def forward_relu(self, x):
        """relu(self.forward(x)) in one pass: the ReLU is the conv's fused epilogue. backward
        then takes dL/d(relu output) and masks it with the stored output (Sequential fuses a
        Conv2d directly followed by a ReLU this way)."""
        self._check_input(x)
        x = self._padded(x)
        b = None if self.bias is None else self.bias.data
        y = op(self._op)(x, self.weight.data, b, **self._kwargs(), activation="relu")
        self._x, self._y = x, y
        return y


class Conv3d(_ConvNd):
    _nd, _op = 3, "conv3d"


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros", *,
                 dtype=np.float32):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                    bias, output_padding, padding_mode, dtype)


class ConvTranspose1d(_ConvTransposeNd):
    _nd, _op = 1, "conv_transpose1d"


class ConvTranspose2d(_ConvTransposeNd):
    _nd, _op = 2, "conv_transpose2d"


class ConvTranspose3d(_ConvTransposeNd):
    _nd, _op = 3, "conv_transpose3d"


class TiledConv2d(_ConvBase):
    """Tiled convolution (Gregor & LeCun): T_h×T_w kernel banks rotated through space."""
    _op = "tiled_conv2d"

    def __init__(self, in_channels, out_channels, kernel_size, tiles, stride=1, padding=0,
                 dilation=1, bias=True, *, dtype=np.float32):
        super().__init__()
        r, s = int_tuple("kernel_size", kernel_size, 2, 1)
        th, tw = int_tuple("tiles", tiles, 2, 1)
        in_channels, out_channels = _counts(in_channels=in_channels, out_channels=out_channels)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self._in_channels = in_channels
        self._make((th, tw, out_channels, in_channels, r, s), (th, tw, out_channels),
                   in_channels * r * s, bias, dtype)

    def _kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)


class LocallyConnected2d(_ConvBase):
    """Unshared convolution: a separate kernel at each of the P×Q output positions."""
    _op = "locally_connected2d"

    def __init__(self, in_channels, out_channels, output_size, kernel_size, stride=1, padding=0,
                 dilation=1, bias=True, *, dtype=np.float32):
        super().__init__()
        r, s = int_tuple("kernel_size", kernel_size, 2, 1)
        p, q = int_tuple("output_size", output_size, 2, 1)
        in_channels, out_channels = _counts(in_channels=in_channels, out_channels=out_channels)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self._in_channels = in_channels
        self._make((p, q, out_channels, in_channels, r, s), (out_channels, p, q),
                   in_channels * r * s, bias, dtype)

    def _kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
