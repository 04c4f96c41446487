"""A host stand-in for the CUDA backend, for machines without a GPU: `cuda.empty` allocates host
memory (NaN-poisoned) behind real DeviceArrays, the copies are memmoves, and each `_core.cuda_*`
kernel the layer API calls runs the CPU op on NumPy views of that memory. It checks the Python
side of the device path (Module.to, dispatch, optimizers on device state, fit's device loop and
its device-side metrics) end to end; the kernels themselves are covered by the GPU tests.
Use `install(monkeypatch)` (tests/test_cuda_layers.py); nothing here touches a real device."""
from __future__ import annotations

import ctypes

import numpy as np

import cnnfast.functional as F
from cnnfast import _core, cuda
from cnnfast.cuda import _runtime


POISON = True  # fill new buffers with NaN bytes (off: timing the Python side alone)


class FakeBuffer:
    def __init__(self, nbytes):
        self.mem = np.empty(max(int(nbytes), 1), np.uint8)
        if POISON:
            self.mem.fill(0xFF)  # 0xFFFFFFFF: a float32 NaN
        self.ptr = self.mem.ctypes.data
        self.nbytes = int(nbytes)


def view(d, dtype=None):
    """The NumPy view of a (fake) DeviceArray; None stays None."""
    if d is None:
        return None
    dt = np.dtype(dtype or d.dtype)
    n = int(np.prod(d.shape, dtype=np.int64)) * dt.itemsize
    if n == 0:
        return np.zeros(d.shape, dt)
    raw = (ctypes.c_uint8 * n).from_address(d.data_ptr)
    return np.frombuffer(raw, np.uint8).view(dt).reshape(d.shape)


def _as_linear(x, w, st, pd, groups):
    """A 1x1 convolution of (N, C, 1, 1) (the device Linear): run F.linear, as the CPU Linear
    does, so the stand-in's results equal the CPU's bit for bit."""
    return (len(x.shape) == 4 and x.shape[2:] == (1, 1) and w.shape[2:] == (1, 1)
            and tuple(st) == (1, 1) and tuple(pd) == (0, 0, 0, 0) and groups == 1)


def _conv_fwd(y, x, w, b, st, pd, dl, groups, relu, algo="auto"):
    if _as_linear(x, w, st, pd, groups) and not relu:
        out = F.linear(view(x)[:, :, 0, 0], view(w)[:, :, 0, 0], view(b))
        view(y)[...] = out[:, :, None, None]
        return
    view(y)[...] = F.conv2d(view(x), view(w), view(b), st, pd, dl, groups, algo=algo,
                            activation="relu" if relu else None)


def _conv_bwd_data(dx, g, w, st, pd, dl, groups, algo="auto"):
    if _as_linear(dx, w, st, pd, groups):
        x2 = np.zeros(dx.shape[:2], np.float32)
        gx = F.linear_backward(view(g)[:, :, 0, 0], x2, view(w)[:, :, 0, 0], None,
                               needs_input_grad=(True, False, False))[0]
        view(dx)[...] = gx[:, :, None, None]
        return
    xd = np.zeros(dx.shape, np.float32)
    view(dx)[...] = F.conv2d_backward(view(g), xd, view(w), None, st, pd, dl, groups,
                                      needs_input_grad=(True, False, False), algo=algo)[0]


def _conv_bwd_weight(dw, db, g, x, wshape, st, pd, dl, groups, algo="auto"):
    w = np.zeros(wshape, np.float32)
    b = np.zeros(wshape[0], np.float32) if db is not None else None
    if _as_linear(x, w, st, pd, groups):
        _, gw, gb = F.linear_backward(view(g)[:, :, 0, 0], view(x)[:, :, 0, 0], w[:, :, 0, 0], b,
                                      needs_input_grad=(False, dw is not None, db is not None))
        gw = None if gw is None else gw[:, :, None, None]
    else:
        _, gw, gb = F.conv2d_backward(view(g), view(x), w, b, st, pd, dl, groups,
                                      needs_input_grad=(False, dw is not None, db is not None),
                                      algo=algo)
    if dw is not None:
        view(dw)[...] += gw
    if db is not None:
        view(db)[...] += gb


def _max_pool_fwd(y, idx, x, k, s, p, d, ceil, size):
    yy, ii = _core.pool_max_forward(view(x), k, s, p, d, ceil, size, True, "auto")
    view(y)[...] = yy
    if idx is not None:
        view(idx)[...] = ii


# (kernel, from_pool) of each call of a kernel that reads switches: the trust rule of cuda/_ops.py
SWITCH_READS = []


def _max_pool_bwd(dx, dy, idx, k, s, p, d, ceil, size, from_pool=False):
    SWITCH_READS.append(("max_pool_backward", from_pool))
    xd = np.zeros(dx.shape, np.float32)
    view(dx)[...] = _core.pool_max_backward(view(dy), xd, view(idx), k, s, p, d, ceil, size,
                                            "auto")


def _unpool_out(big):
    return (1,) * (5 - len(big.shape)) + tuple(big.shape[2:])


def _unpool_fwd(y, x, idx, windows=None, from_pool=False):
    SWITCH_READS.append(("max_unpool_forward", from_pool))
    view(y)[...] = _core.unpool_forward(view(x), view(idx), _unpool_out(y), "auto")


def _unpool_bwd(dx, dy, idx, windows=None, from_pool=False):
    SWITCH_READS.append(("max_unpool_backward", from_pool))
    xd = np.zeros(dx.shape, np.float32)
    view(dx)[...] = _core.unpool_backward(view(dy), xd, view(idx), _unpool_out(dy), "auto")


def _avg_fwd(y, x, k, s, p, ceil, size, cip, div):
    view(y)[...] = _core.pool_avg_forward(view(x), k, s, p, ceil, size, cip, div, "auto")


def _avg_bwd(dx, dy, k, s, p, ceil, size, cip, div):
    xd = np.zeros(dx.shape, np.float32)
    view(dx)[...] = _core.pool_avg_backward(view(dy), xd, k, s, p, ceil, size, cip, div, "auto")


def _bn_fwd(y, mean, invstd, x, gamma, beta, rm, rv, training, momentum, eps):
    out, m, s = F.batch_norm(view(x), view(rm), view(rv), view(gamma), view(beta),
                             training=training, momentum=momentum, eps=eps, return_stats=True)
    view(y)[...], view(mean)[...], view(invstd)[...] = out, m, s


def _bn_bwd(dx, dgamma, dbeta, dy, x, gamma, mean, invstd, training):
    g = view(gamma)
    b = None if dbeta is None else np.zeros(view(dbeta).shape, np.float32)
    gx, gw, gb = F.batch_norm_backward(view(dy), view(x), None, None, g, b, training=training,
                                       stats=(view(mean), view(invstd)))
    if dx is not None:
        view(dx)[...] = gx
    if dgamma is not None:
        view(dgamma)[...] += gw
    if dbeta is not None:
        view(dbeta)[...] += gb


def _denominator(target, weight, C, ii):
    t = target.reshape(-1)
    keep = t != ii
    return float(weight[t[keep]].sum(dtype=np.float64)) if weight is not None else float(keep.sum())


def _ce_fwd(loss, lse, x, t, w, pw, ii, ls):
    items, l_ = F.cross_entropy(view(x), view(t), view(w), ii, "none", ls, view(pw),
                                return_lse=True)
    view(loss)[...], view(lse)[...] = items, l_


def _ce_reduce(out, loss, t, w, C, ii, mean):
    total = float(view(loss).sum(dtype=np.float64))
    view(out)[...] = total / _denominator(view(t), view(w), C, ii) if mean else total


def _ce_item_grad(item_grad, gi, gs, gval, pw, t, w, C, ii, mean):
    g = view(gi) if gi is not None else (view(gs) if gs is not None else np.float32(gval))
    g = np.broadcast_to(g, t.shape).astype(np.float64)
    if pw is not None:
        g = g * view(pw)
    view(item_grad)[...] = g / _denominator(view(t), view(w), C, ii) if mean else g


def _ce_bwd(dx, item_grad, x, lse, t, w, ii, ls):
    view(dx)[...] = F.cross_entropy_backward(view(item_grad), view(x), view(t), view(w), ii,
                                             "none", ls, None, lse=view(lse))


def _dropout_mask(mask, p, seed):
    u = np.random.default_rng(seed).random(mask.shape[0])
    view(mask)[...] = np.where(u >= p, 0.0 if p >= 1 else 1.0 / (1.0 - p), 0.0)


def _count_correct(count, logits, target):
    view(count)[...] += int(np.sum(np.argmax(view(logits), axis=1) == view(target)))


def _bias_add(y, b):
    v = view(y)
    v += view(b).reshape((1, -1) + (1,) * (v.ndim - 2))


def _bias_grad(db, dy):
    """Σ over images and positions, summed as the CPU convolutions sum their bias gradient (a
    NumPy float32 sum rounds differently: the transposed convs' biases drifted ~1e-6 in 2 epochs)."""
    v = view(dy)
    nd, c = v.ndim - 2, v.shape[1]
    backward = {1: F.conv1d_backward, 2: F.conv2d_backward, 3: F.conv3d_backward}[nd]
    x, w = np.zeros(v.shape, v.dtype), np.zeros((c, 1) + (1,) * nd, v.dtype)  # depthwise 1x1
    gb = backward(v, x, w, np.zeros(c, v.dtype), groups=c,
                  needs_input_grad=(False, False, True))[2]
    view(db)[...] += gb


def _mul_grouped(y, x, m, group):
    view(y)[...] = (view(x).reshape(-1, group) * view(m)[:, None]).reshape(x.shape)


KERNELS = {
    "cuda_conv2d_forward": _conv_fwd, "cuda_conv2d_backward_data": _conv_bwd_data,
    "cuda_conv2d_backward_weight": _conv_bwd_weight,
    "cuda_relu_forward": lambda y, x: view(y).__setitem__(..., F.relu(view(x))),
    "cuda_relu_backward": lambda dx, dy, s, _: view(dx).__setitem__(
        ..., np.where(view(s) > 0, view(dy), np.float32(0))),
    "cuda_max_pool_forward": _max_pool_fwd, "cuda_max_pool_backward": _max_pool_bwd,
    "cuda_max_unpool_forward": _unpool_fwd, "cuda_max_unpool_backward": _unpool_bwd,
    "cuda_avg_pool_forward": _avg_fwd, "cuda_avg_pool_backward": _avg_bwd,
    "cuda_batch_norm_forward": _bn_fwd, "cuda_batch_norm_backward": _bn_bwd,
    "cuda_cross_entropy_forward": _ce_fwd, "cuda_cross_entropy_reduce": _ce_reduce,
    "cuda_cross_entropy_item_grad": _ce_item_grad, "cuda_cross_entropy_backward": _ce_bwd,
    "cuda_sgd_step": lambda p, g, buf, *a: _core.sgd_step(view(p), view(g), view(buf), *a),
    "cuda_adam_step": lambda p, g, m, v, mx, *a: _core.adam_step(view(p), view(g), view(m),
                                                                 view(v), view(mx), *a),
    "cuda_add_scaled": lambda out, a, alpha, b: view(out).__setitem__(
        ..., view(a) + np.float32(alpha) * view(b)),
    "cuda_bias_add": _bias_add, "cuda_bias_grad": _bias_grad,
    "cuda_mul_grouped": _mul_grouped, "cuda_dropout_mask": _dropout_mask,
    "cuda_count_correct": _count_correct,
    "CudaBuffer": FakeBuffer,
    "cuda_copy_from_host": lambda dst, src: ctypes.memmove(
        dst, np.ascontiguousarray(src).ctypes.data, src.nbytes),
    "cuda_copy_to_host": lambda dst, src: ctypes.memmove(dst.ctypes.data, src, dst.nbytes),
    "cuda_copy_on_device": lambda dst, src, n: ctypes.memmove(dst, src, n),
    "cuda_fill_bytes": lambda dst, byte, n: ctypes.memset(dst, byte, n),
    "cuda_synchronize": lambda: None,
}


def install(monkeypatch) -> None:
    """Routes cnnfast.cuda to the host stand-in for one test (monkeypatch undoes it)."""
    SWITCH_READS.clear()
    for name, fn in KERNELS.items():
        monkeypatch.setattr(_core, name, fn, raising=False)
    monkeypatch.setattr(_runtime, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(_runtime, "current_device", lambda: 0)
    from cnnfast.cuda import _array
    monkeypatch.setattr(_array, "current_device", lambda: 0)
