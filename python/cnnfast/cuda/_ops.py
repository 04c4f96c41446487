"""CUDA twins of cnnfast.functional's ops, with the same names and signatures, reached through
functional's dispatch (functional/_dispatch.py) when the array arguments are device arrays:
conv2d (+ fused bias/ReLU) and backward, relu, max/avg/adaptive pooling (1-D/2-D/3-D) with
switches, max-unpooling; conv1d / conv_transpose1d/2d in _ops_conv_family.py, batch norm and
cross-entropy in _ops_nn.py, linear / dropout (the layer API's) in _ops_layers.py. Arguments go
through the CPU ops' own shape checks; results are new DeviceArrays, parameter gradients zeros +
accumulation."""
from __future__ import annotations

import weakref

from .. import _core
from .._checks import check_bool, check_ndim, check_needs
from ..functional import conv as _conv, pool as _pool, unpool as _unpool
from ..functional.switches import Switches
from ._array import empty
from ._common import I64, auto_only, conv2d_algo, f32, i64, same_shape
from ._ops_conv_family import (_transposed_backward, _transposed_forward,  # noqa: F401
                               conv1d, conv1d_backward, conv2d_grads, conv3d, conv3d_backward)
from ._ops_layers import (dropout, dropout2d, dropout2d_backward,  # noqa: F401
                          dropout_backward, linear, linear_backward)
from ._ops_nn import (batch_norm, batch_norm_backward, cross_entropy,  # noqa: F401
                      cross_entropy_backward)


# ---- conv2d -------------------------------------------------------------------------------------

def _plain(v) -> bool:
    """An int, a str, or a tuple of ints (exact types: True and 1.0 must not hit a cache entry
    that 1 made)."""
    t = type(v)
    return t is int or t is str or (t is tuple and all(type(e) is int for e in v))


_conv_geometry = {}  # (shapes, stride, padding, dilation, groups) -> the checked geometry


def _conv_args(x, weight, bias, stride, padding, dilation, groups, algo):
    """_conv._prepare's checks and geometry; the geometry of shapes and plain arguments seen
    before comes from a cache (the per-call host cost of a small GPU op is mostly Python)."""
    conv2d_algo(algo)
    x = f32("input", x)
    weight = f32("weight", weight, x.dtype)
    bias = None if bias is None else f32("bias", bias, x.dtype)
    key = None
    if _plain(stride) and _plain(padding) and _plain(dilation) and type(groups) is int:
        key = (x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
               dilation, groups)
        hit = _conv_geometry.get(key)
        if hit is not None:
            return (x, weight, bias) + hit
    out = _conv._prepare(x, weight, bias, stride, padding, dilation, groups, algo, as_array=f32)
    if key is not None and len(_conv_geometry) < 1024:
        _conv_geometry[key] = out[3:]
    return out


def _conv_out_shape(x, weight, stride, pad, dilation):
    p = (x.shape[2] + pad[0] + pad[1] - dilation[0] * (weight.shape[2] - 1) - 1) // stride[0] + 1
    q = (x.shape[3] + pad[2] + pad[3] - dilation[1] * (weight.shape[3] - 1) - 1) // stride[1] + 1
    return (x.shape[0], weight.shape[0], p, q)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algo="auto",
           activation=None):
    act = _conv._activation(activation)
    x, weight, bias, stride, pad, dilation, groups = _conv_args(
        x, weight, bias, stride, padding, dilation, groups, algo)
    y = empty(_conv_out_shape(x, weight, stride, pad, dilation))
    _core.cuda_conv2d_forward(y, x, weight, bias, stride, pad, dilation, groups, act == "relu",
                              algo)
    return y


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=(True, True, True), algo="auto", activation=None,
                    output=None):
    act = _conv._activation(activation)
    x, weight, bias, stride, pad, dilation, groups = _conv_args(
        x, weight, bias, stride, padding, dilation, groups, algo)
    need = check_needs(needs_input_grad, 3)
    grad_out, output = _conv._grad_args(grad_out, output, x, weight, stride, pad, dilation, act,
                                        as_array=f32)
    if act == "relu":  # back through the fused ReLU first: grad_out where output > 0
        masked = empty(grad_out.shape)
        _core.cuda_relu_backward(masked, grad_out, output, True)
        grad_out = masked
    return conv2d_grads(grad_out, x, weight, bias, stride, pad, dilation, groups, need, x.shape,
                        weight.shape, algo)


# ---- relu ---------------------------------------------------------------------------------------

def relu(x):
    x = f32("input", x)
    y = empty(x.shape)
    _core.cuda_relu_forward(y, x)
    return y


def relu_backward(grad_out, x):
    x, grad_out = f32("input", x), f32("grad_out", grad_out)
    same_shape("grad_out", grad_out, "input", x.shape)
    dx = empty(x.shape)
    _core.cuda_relu_backward(dx, grad_out, x, False)
    return dx


# ---- pooling (the 3-D core; 1-D and 2-D have leading singleton dims) -----------------------------

_pool_geometry = {}  # (shape, nd, window arguments) -> _pool._window_args' result


def _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """_pool._window_args, cached for plain arguments (as _conv_args)."""
    if not (_plain(kernel_size) and (stride is None or _plain(stride)) and _plain(padding)
            and _plain(dilation) and type(ceil_mode) is bool):
        return _pool._window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    key = (x.shape, nd, kernel_size, stride, padding, dilation, ceil_mode)
    hit = _pool_geometry.get(key)
    if hit is None:
        hit = _pool._window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
        if len(_pool_geometry) < 1024:
            _pool_geometry[key] = hit
    return hit


def _input(x, nd, algo):
    auto_only(algo)
    x = f32("input", x)
    check_ndim("input", x, nd + 2, _pool._LAYOUT[nd])
    return x


def _grad(grad_out, x, want, what):
    g = f32("grad_out", grad_out)
    if g.shape != tuple(want):
        raise ValueError(f"grad_out: expected shape {tuple(want)} (the {what} output for input "
                         f"{x.shape}), got {g.shape}")
    return g


def _indices(indices, shape):
    return i64("indices", indices.indices if isinstance(indices, Switches) else indices, shape)


def _max_forward(x, win, ceil_mode, size, shape, with_indices):
    y = empty(shape)
    idx = empty(shape, I64) if with_indices else None
    _core.cuda_max_pool_forward(y, idx, x, *win, bool(ceil_mode), size)
    return y, idx


# Switches that _max_pool made -> their windows as _windows gives them. Their indices lie in
# those windows by construction, so the kernels' one-pass paths check that without the host
# waiting for the answer (cuda.h's from_pool); a Switches built from arrays, or by
# dataclasses.replace, is not in here.
_pool_made: "weakref.WeakKeyDictionary[Switches, tuple]" = weakref.WeakKeyDictionary()


def _max_backward(grad_out, x, win, ceil_mode, size, shape, indices, what):
    g = _grad(grad_out, x, shape, what)
    if indices is None:  # made here, for these windows
        idx, from_pool = _max_forward(x, win, ceil_mode, size, shape, True)[1], True
    else:
        idx = _indices(indices, shape)
        from_pool = (size is None and isinstance(indices, Switches)
                     and indices.input_shape == x.shape
                     and _pool_made.get(indices) == tuple(win) + (bool(ceil_mode),))
    dx = empty(x.shape)
    _core.cuda_max_pool_backward(dx, g, idx, *win, bool(ceil_mode), size, from_pool)
    return dx


def _max_pool(nd, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False, algo="auto"):
    x = _input(x, nd, algo)
    win, shape = _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    want_idx = check_bool("return_indices", return_indices)
    y, idx = _max_forward(x, win, ceil_mode, None, shape, want_idx)
    if not return_indices:
        return y
    sw = Switches(idx, x.shape, kernel_size=win[0][3 - nd:], stride=win[1][3 - nd:],
                  padding=win[2][3 - nd:], dilation=win[3][3 - nd:], ceil_mode=bool(ceil_mode))
    _pool_made[sw] = tuple(win) + (bool(ceil_mode),)
    return y, sw


def _max_pool_backward(nd, grad_out, x, kernel_size, stride=None, padding=0, dilation=1,
                       ceil_mode=False, indices=None, algo="auto"):
    x = _input(x, nd, algo)
    win, shape = _window_args(x, nd, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_backward(grad_out, x, win, ceil_mode, None, shape, indices, "max pooling")


def _avg_pool(nd, x, kernel_size, stride=None, padding=0, ceil_mode=False,
              count_include_pad=True, divisor_override=None, algo="auto"):
    x = _input(x, nd, algo)
    win, shape = _window_args(x, nd, kernel_size, stride, padding, 1, ceil_mode)
    include_pad = check_bool("count_include_pad", count_include_pad)
    y = empty(shape)
    _core.cuda_avg_pool_forward(y, x, *win[:3], bool(ceil_mode), None, include_pad,
                                _pool._divisor(divisor_override))
    return y


def _avg_pool_backward(nd, grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None, algo="auto"):
    x = _input(x, nd, algo)
    win, shape = _window_args(x, nd, kernel_size, stride, padding, 1, ceil_mode)
    g = _grad(grad_out, x, shape, "average pooling")
    include_pad = check_bool("count_include_pad", count_include_pad)
    dx = empty(x.shape)
    _core.cuda_avg_pool_backward(dx, g, *win[:3], bool(ceil_mode), None, include_pad,
                                 _pool._divisor(divisor_override))
    return dx


def _adaptive_avg_pool(nd, x, output_size, algo="auto"):
    x = _input(x, nd, algo)
    size, shape = _pool._adaptive_size(x, nd, output_size)
    y = empty(shape)
    _core.cuda_avg_pool_forward(y, x, *_pool._NO_WIN[:3], False, size, True, 0)
    return y


def _adaptive_avg_pool_backward(nd, grad_out, x, output_size, algo="auto"):
    x = _input(x, nd, algo)
    size, shape = _pool._adaptive_size(x, nd, output_size)
    g = _grad(grad_out, x, shape, "adaptive average pooling")
    dx = empty(x.shape)
    _core.cuda_avg_pool_backward(dx, g, *_pool._NO_WIN[:3], False, size, True, 0)
    return dx


def _adaptive_max_pool(nd, x, output_size, return_indices=False, algo="auto"):
    x = _input(x, nd, algo)
    size, shape = _pool._adaptive_size(x, nd, output_size)
    want_idx = check_bool("return_indices", return_indices)
    y, idx = _max_forward(x, _pool._NO_WIN, False, size, shape, want_idx)
    return (y, Switches(idx, x.shape)) if return_indices else y


def _adaptive_max_pool_backward(nd, grad_out, x, output_size, indices=None, algo="auto"):
    x = _input(x, nd, algo)
    size, shape = _pool._adaptive_size(x, nd, output_size)
    return _max_backward(grad_out, x, _pool._NO_WIN, False, size, shape, indices,
                         "adaptive max pooling")


# ---- max-unpooling -------------------------------------------------------------------------------

def _unpool_args(nd, x, indices, kernel_size, stride, padding, output_size, algo):
    x = _input(x, nd, algo)
    out = _unpool._output_size(x, nd, indices, kernel_size, stride, padding, output_size)
    return x, _indices(indices, x.shape), x.shape[:2] + tuple(out)


def _windows(nd, indices, shape):
    """The pooling windows that made Switches `indices` as 3-D triples (kernel, stride, padding,
    dilation, ceil_mode) when they unpool to `shape`: a hint for the kernels' one-pass paths."""
    if not isinstance(indices, Switches) or tuple(indices.input_shape[2:]) != tuple(shape[2:]):
        return None
    known = _pool_made.get(indices)
    if known is not None:
        return known
    win = (indices.kernel_size, indices.stride, indices.padding, indices.dilation)
    if any(v is None or len(v) != nd for v in win):
        return None
    return tuple((f,) * (3 - nd) + tuple(int(n) for n in v)
                 for v, f in zip(win, (1, 1, 0, 1))) + (bool(indices.ceil_mode),)


def _max_unpool(nd, x, indices, kernel_size=None, stride=None, padding=0, output_size=None,
                algo="auto"):
    x, idx, shape = _unpool_args(nd, x, indices, kernel_size, stride, padding, output_size, algo)
    y = empty(shape)
    win = _windows(nd, indices, shape)
    _core.cuda_max_unpool_forward(y, x, idx, win, win is not None and indices in _pool_made)
    return y


def _max_unpool_backward(nd, grad_out, x, indices, kernel_size=None, stride=None, padding=0,
                         output_size=None, algo="auto"):
    x, idx, shape = _unpool_args(nd, x, indices, kernel_size, stride, padding, output_size, algo)
    g = f32("grad_out", grad_out)
    if g.shape != shape:
        raise ValueError(f"grad_out: expected shape {shape} (the unpooled output for input "
                         f"{x.shape}), got {g.shape}")
    dx = empty(x.shape)
    win = _windows(nd, indices, shape)
    _core.cuda_max_unpool_backward(dx, g, idx, win, win is not None and indices in _pool_made)
    return dx

