"""CUDA twins of conv1d, conv3d and conv_transpose1d/2d/3d (and their backward) on the
implicit-GEMM kernels: conv1d is conv2d on (N, C, 1, L) views; conv3d has its own kernels on the
same tiles (conv3d.cu). A transposed convolution is the adjoint of the convolution from its output
to its input, whose weight layout (K = C_in, C_out/groups, ...) it shares: its forward is that
convolution's data gradient, its input gradient that convolution's forward, its weight gradient
that convolution's weight gradient with input and output swapped."""
from __future__ import annotations

from .. import _core
from .._checks import check_needs
from ..functional import conv_family as _fam
from ._array import empty, zeros
from ._common import auto_only, f32


def _view4(a):
    """(N, C, L) as (N, C, 1, L); 4-D arrays as they are."""
    return a if a.ndim == 4 else a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])


def _geometry2d(nd, stride, pad, dilation):
    if nd == 2:
        return tuple(stride), tuple(pad), tuple(dilation)
    return (1,) + tuple(stride), (0, 0) + tuple(pad), (1,) + tuple(dilation)


def conv2d_grads(g4, x4, w4, bias, st, pd, dl, groups, need, x_shape, w_shape, algo="auto"):
    """(grad_input, grad_weight, grad_bias) of the conv2d of x4 with w4 given grad_out g4 (4-D
    views), reshaped back to the op's shapes; None where not requested (or no bias)."""
    dx = dw = db = None
    if need[0]:
        dx = empty(x4.shape)
        _core.cuda_conv2d_backward_data(dx, g4, w4, st, pd, dl, groups, algo)
        dx = dx.reshape(x_shape)
    if need[1] or (need[2] and bias is not None):
        dw = zeros(w4.shape) if need[1] else None
        db = zeros(bias.shape) if need[2] and bias is not None else None
        _core.cuda_conv2d_backward_weight(dw, db, g4, x4, list(w4.shape), st, pd, dl, groups,
                                          algo)
        dw = None if dw is None else dw.reshape(w_shape)
    return dx, dw, db


def _conv1d_args(x, weight, bias, stride, padding, dilation, groups, algo):
    auto_only(algo)
    x, weight, bias, stride, pad, dilation, groups = _fam._prepare_conv(
        1, x, weight, bias, stride, padding, dilation, groups, algo, as_array=f32)
    out = (x.shape[0], weight.shape[0]) + _fam.conv_out_size(x.shape[2:], weight.shape[2:],
                                                             stride, pad, dilation)
    return x, weight, bias, _geometry2d(1, stride, pad, dilation), groups, out


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    x, weight, bias, (st, pd, dl), groups, out = _conv1d_args(x, weight, bias, stride, padding,
                                                              dilation, groups, algo)
    y = empty(out)
    _core.cuda_conv2d_forward(_view4(y), _view4(x), _view4(weight), bias, st, pd, dl, groups,
                              False)
    return y


def conv1d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=(True, True, True), algo="auto"):
    x, weight, bias, (st, pd, dl), groups, out = _conv1d_args(x, weight, bias, stride, padding,
                                                              dilation, groups, algo)
    need = check_needs(needs_input_grad, 3)
    grad_out = _fam.check_grad_out(grad_out, out, x.dtype, "conv1d", as_array=f32)
    return conv2d_grads(_view4(grad_out), _view4(x), _view4(weight), bias, st, pd, dl, groups,
                        need, x.shape, weight.shape)


def _conv3d_args(x, weight, bias, stride, padding, dilation, groups, algo):
    auto_only(algo)
    x, weight, bias, stride, pad, dilation, groups = _fam._prepare_conv(
        3, x, weight, bias, stride, padding, dilation, groups, algo, as_array=f32)
    out = (x.shape[0], weight.shape[0]) + _fam.conv_out_size(x.shape[2:], weight.shape[2:],
                                                             stride, pad, dilation)
    return x, weight, bias, (tuple(stride), tuple(pad), tuple(dilation)), groups, out


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, algo="auto"):
    x, weight, bias, (st, pd, dl), groups, out = _conv3d_args(x, weight, bias, stride, padding,
                                                              dilation, groups, algo)
    y = empty(out)
    _core.cuda_conv3d_forward(y, x, weight, bias, st, pd, dl, groups, False)
    return y


def conv3d_grads(grad_out, x, weight, bias, st, pd, dl, groups, need):
    """(grad_input, grad_weight, grad_bias) of a conv3d; None where not requested (or no bias)."""
    dx = dw = db = None
    if need[0]:
        dx = empty(x.shape)
        _core.cuda_conv3d_backward_data(dx, grad_out, weight, st, pd, dl, groups)
    if need[1] or (need[2] and bias is not None):
        dw = zeros(weight.shape) if need[1] else None
        db = zeros(bias.shape) if need[2] and bias is not None else None
        _core.cuda_conv3d_backward_weight(dw, db, grad_out, x, list(weight.shape), st, pd, dl,
                                          groups)
    return dx, dw, db


def conv3d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                    needs_input_grad=(True, True, True), algo="auto"):
    x, weight, bias, (st, pd, dl), groups, out = _conv3d_args(x, weight, bias, stride, padding,
                                                              dilation, groups, algo)
    need = check_needs(needs_input_grad, 3)
    grad_out = _fam.check_grad_out(grad_out, out, x.dtype, "conv3d", as_array=f32)
    return conv3d_grads(grad_out, x, weight, bias, st, pd, dl, groups, need)


def _transposed_args(nd, x, weight, bias, stride, padding, output_padding, groups, dilation,
                     algo):
    auto_only(algo)
    x, weight, bias, stride, pad, _, dilation, groups, out = _fam._prepare_transposed(
        nd, x, weight, bias, stride, padding, output_padding, groups, dilation, algo,
        as_array=f32)
    # output_padding only lengthens `out`; the convolution from out back to x has x's size
    # because output_padding < stride (checked), so the bindings' shape re-checks hold.
    if nd == 3:
        return x, weight, bias, (tuple(stride), tuple(pad), tuple(dilation)), groups, out, out
    y4 = out if nd == 2 else out[:2] + (1, out[2])
    return x, weight, bias, _geometry2d(nd, stride, pad, dilation), groups, out, y4


def _transposed_forward(nd, x, weight, bias=None, stride=1, padding=0, output_padding=0,
                        groups=1, dilation=1, algo="auto"):
    x, weight, bias, (st, pd, dl), groups, out, y4 = _transposed_args(
        nd, x, weight, bias, stride, padding, output_padding, groups, dilation, algo)
    y = empty(y4)
    if nd == 3:
        _core.cuda_conv3d_backward_data(y, x, weight, st, pd, dl, groups)
    else:
        _core.cuda_conv2d_backward_data(y, _view4(x), _view4(weight), st, pd, dl, groups)
    if bias is not None:
        _core.cuda_bias_add(y, bias)
    return y.reshape(out)


def _transposed_backward(nd, grad_out, x, weight, bias=None, stride=1, padding=0,
                         output_padding=0, groups=1, dilation=1,
                         needs_input_grad=(True, True, True), algo="auto"):
    x, weight, bias, (st, pd, dl), groups, out, y4 = _transposed_args(
        nd, x, weight, bias, stride, padding, output_padding, groups, dilation, algo)
    need = check_needs(needs_input_grad, 3)
    grad_out = _fam.check_grad_out(grad_out, out, x.dtype, f"conv_transpose{nd}d", as_array=f32)
    if nd == 3:  # the adjoint conv3d: dx its forward of grad_out, dw its weight gradient
        dx, dw, _ = conv3d_grads(x, grad_out, weight, None, st, pd, dl, groups,
                                 (False, need[1], False))
        if need[0]:
            dx = empty(x.shape)
            _core.cuda_conv3d_forward(dx, grad_out, weight, None, st, pd, dl, groups, False)
        db = None
        if need[2] and bias is not None:
            db = zeros(bias.shape)
            _core.cuda_bias_grad(db, grad_out)
        return dx, dw, db
    g4, x4, w4 = grad_out.reshape(y4), _view4(x), _view4(weight)
    dx = dw = db = None
    if need[0]:  # the adjoint of the adjoint: conv2d forward of grad_out
        dx = empty(x4.shape)
        _core.cuda_conv2d_forward(dx, g4, w4, None, st, pd, dl, groups, False)
        dx = dx.reshape(x.shape)
    if need[1]:  # the conv2d's weight gradient, its "output gradient" being x
        dw = zeros(w4.shape)
        _core.cuda_conv2d_backward_weight(dw, None, x4, g4, list(w4.shape), st, pd, dl, groups)
        dw = dw.reshape(weight.shape)
    if need[2] and bias is not None:
        db = zeros(bias.shape)
        _core.cuda_bias_grad(db, g4)
    return dx, dw, db
