"""NumPy references (float64, loops over taps or output positions) for the convolution family,
written from the definitions, independently of each other and of the C++ code.

conv (N-D):  y[n, k, o] = b[k] + Σ_{c, t} x̃[n, g·Cg + c, o·s + t·d] · w[k, c, t]      (x̃ zero-padded)
transposed:  ỹ[n, g·Cog + co, i·s + t·d] += x[n, g·Cig + ci, i] · w[g·Cig + ci, co, t],
             then y = ỹ[pad_before : pad_before + out]   (the scatter form of the adjoint)
tiled:       y[n, k, o] = Σ_{c, t} x̃[n, c, o·s + t·d] · w[o mod T, k, c, t] + bias
"""
from __future__ import annotations

import itertools

import numpy as np


def out_size(in_size, kernel, stride, pad, dilation):
    return tuple((i + pad[2 * a] + pad[2 * a + 1] - d * (k - 1) - 1) // s + 1
                 for a, (i, k, s, d) in enumerate(zip(in_size, kernel, stride, dilation)))


def _pad(x, pad):
    nd = x.ndim - 2
    return np.pad(x, ((0, 0), (0, 0)) + tuple((pad[2 * a], pad[2 * a + 1]) for a in range(nd)))


def _window(t, o, stride, dilation):
    """Slices of the padded input read by tap t at output positions o (ranges), per dim."""
    return tuple(slice(ti * d, ti * d + (n - 1) * s + 1, s) for ti, n, s, d in
                 zip(t, o, stride, dilation))


def conv(x, w, b=None, stride=None, pad=None, dilation=None, groups=1):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pad = pad or (0,) * (2 * nd)
    N, C = x.shape[:2]
    K, Cg = w.shape[:2]
    G, Kg = groups, K // groups
    out = out_size(x.shape[2:], w.shape[2:], stride, pad, dilation)
    xp = _pad(x, pad)
    xg = xp.reshape((N, G, Cg) + xp.shape[2:])
    wg = w.reshape((G, Kg, Cg) + w.shape[2:])
    y = np.zeros((N, G, Kg) + out)
    for t in itertools.product(*(range(k) for k in w.shape[2:])):
        win = xg[(slice(None),) * 3 + _window(t, out, stride, dilation)]
        y += np.einsum("ngc...,gkc->ngk...", win, wg[(slice(None),) * 3 + t])
    y = y.reshape((N, K) + out)
    if b is not None:
        y += np.asarray(b, np.float64).reshape((K,) + (1,) * nd)
    return y


def conv_backward(gy, x, w, stride=None, pad=None, dilation=None, groups=1):
    """(grad_x, grad_w, grad_b)."""
    gy, x, w = (np.asarray(a, np.float64) for a in (gy, x, w))
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pad = pad or (0,) * (2 * nd)
    N = x.shape[0]
    K, Cg = w.shape[:2]
    G, Kg = groups, K // groups
    out = gy.shape[2:]
    xp = _pad(x, pad)
    xg = xp.reshape((N, G, Cg) + xp.shape[2:])
    wg = w.reshape((G, Kg, Cg) + w.shape[2:])
    gyg = gy.reshape((N, G, Kg) + out)
    gxp, gw = np.zeros_like(xg), np.zeros_like(wg)
    for t in itertools.product(*(range(k) for k in w.shape[2:])):
        idx = (slice(None),) * 3 + _window(t, out, stride, dilation)
        gxp[idx] += np.einsum("ngk...,gkc->ngc...", gyg, wg[(slice(None),) * 3 + t])
        win = xg[idx]
        gw[(slice(None),) * 3 + t] = np.einsum("ngkp,ngcp->gkc",
                                                gyg.reshape(gyg.shape[:3] + (int(np.prod(out)),)),
                                                win.reshape(win.shape[:3] + (int(np.prod(out)),)))
    crop = tuple(slice(pad[2 * a], pad[2 * a] + x.shape[2 + a]) for a in range(nd))
    gx = gxp.reshape(xp.shape)[(slice(None), slice(None)) + crop]
    return gx, gw.reshape(w.shape), gy.sum(axis=(0,) + tuple(range(2, nd + 2)))


def conv_transpose(x, w, b=None, stride=None, pad=None, output_padding=None, dilation=None,
                   groups=1):
    """Scatter form: every input element adds its kernel-weighted footprint to the output."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pad, op = pad or (0,) * (2 * nd), output_padding or (0,) * nd
    N, Cin = x.shape[:2]
    Cog, ker, G = w.shape[1], w.shape[2:], groups
    full = tuple((i - 1) * s + d * (k - 1) + 1 + o
                 for i, k, s, d, o in zip(x.shape[2:], ker, stride, dilation, op))
    yt = np.zeros((N, G, Cog) + full)
    xg = x.reshape((N, G, Cin // G) + x.shape[2:])
    wg = w.reshape((G, Cin // G, Cog) + ker)
    for t in itertools.product(*(range(k) for k in ker)):
        idx = (slice(None),) * 3 + _window(t, x.shape[2:], stride, dilation)
        yt[idx] += np.einsum("ngc...,gco->ngo...", xg, wg[(slice(None),) * 3 + t])
    out = tuple(f - pad[2 * a] - pad[2 * a + 1] for a, f in enumerate(full))
    y = yt.reshape((N, G * Cog) + full)[(slice(None), slice(None)) + tuple(
        slice(pad[2 * a], pad[2 * a] + out[a]) for a in range(nd))]
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape((-1,) + (1,) * nd)
    return y


def tiled(x, w, b=None, stride=None, pad=None, dilation=None, per_location=False):
    """Tiled (or, with per_location, locally connected) convolution by a loop over outputs."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pad = pad or (0,) * (2 * nd)
    tiles, K, ker = w.shape[:nd], w.shape[nd], w.shape[nd + 2:]
    out = out_size(x.shape[2:], ker, stride, pad, dilation)
    xp = _pad(x, pad)
    y = np.zeros((x.shape[0], K) + out)
    for o in itertools.product(*(range(n) for n in out)):
        bank = tuple(oi % ti for oi, ti in zip(o, tiles))
        patch = xp[(slice(None), slice(None)) + tuple(
            slice(oi * s, oi * s + (k - 1) * d + 1, d) for oi, s, k, d in
            zip(o, stride, ker, dilation))]
        taps = int(np.prod(ker))  # (an empty batch reshapes too)
        y[(slice(None), slice(None)) + o] = np.einsum("ncp,kcp->nk",
                                                      patch.reshape(patch.shape[:2] + (taps,)),
                                                      w[bank].reshape(K, patch.shape[1], taps))
        if b is not None:
            y[(slice(None), slice(None)) + o] += (np.asarray(b)[(slice(None),) + o]
                                                  if per_location else np.asarray(b)[bank])
    return y


def tiled_backward(gy, x, w, stride=None, pad=None, dilation=None, per_location=False):
    """(grad_x, grad_w, grad_b) of tiled(...)."""
    gy, x, w = (np.asarray(a, np.float64) for a in (gy, x, w))
    nd = x.ndim - 2
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pad = pad or (0,) * (2 * nd)
    tiles, K, ker = w.shape[:nd], w.shape[nd], w.shape[nd + 2:]
    out = gy.shape[2:]
    xp = _pad(x, pad)
    gxp, gw = np.zeros_like(xp), np.zeros_like(w)
    gb = np.zeros((K,) + out) if per_location else np.zeros(tuple(tiles) + (K,))
    for o in itertools.product(*(range(n) for n in out)):
        bank = tuple(oi % ti for oi, ti in zip(o, tiles))
        win = (slice(None), slice(None)) + tuple(
            slice(oi * s, oi * s + (k - 1) * d + 1, d) for oi, s, k, d in
            zip(o, stride, ker, dilation))
        g = gy[(slice(None), slice(None)) + o]  # (N, K)
        gxp[win] += np.einsum("nk,kc...->nc...", g, w[bank])
        gw[bank] += np.einsum("nk,nc...->kc...", g, xp[win])
        if per_location:
            gb[(slice(None),) + o] += g.sum(0)
        else:
            gb[bank] += g.sum(0)
    crop = tuple(slice(pad[2 * a], pad[2 * a] + x.shape[2 + a]) for a in range(nd))
    return gxp[(slice(None), slice(None)) + crop], gw, gb
