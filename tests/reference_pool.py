"""NumPy references for pooling, unpooling and interpolation, from the formulas, in float64.

Along a spatial dim of length n, output o of a pooling with kernel k, stride s, padding p,
dilation d reads the taps o·s − p + t·d (t < k) that lie in [0, n); its count_include_pad size is
min(o·s − p + k, n + p) − (o·s − p). Adaptive: taps floor(o·n/m) .. ceil((o+1)·n/m) − 1.
Outputs: floor((n + 2p − d(k−1) − 1)/s) + 1, or ceil, dropping a last window that starts past
n + p − 1. Max takes the first maximum in raster order; indices are flat per (N, C) plane.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def windows(n, k, s, p, d=1, ceil_mode=False):
    """Per output: (taps inside the input, size counting padding)."""
    res = []
    for o in range(out_size(n, k, s, p, d, ceil_mode)):
        start = o * s - p
        taps = [start + t * d for t in range(k) if 0 <= start + t * d < n]
        res.append((taps, min(start + k, n + p) - start))
    return res


def adaptive_windows(n, m):
    return [(list(range(o * n // m, -(-(o + 1) * n // m))), None) for o in range(m)]


def _outputs(x, wins):
    """Yields (out_index, flat indices of the window's taps in the plane, taps per dim)."""
    spatial = x.shape[2:]
    for o in itertools.product(*[range(len(w)) for w in wins]):
        taps = [wins[d][o[d]][0] for d in range(len(wins))]
        flat = np.ravel_multi_index(np.ix_(*taps), spatial).ravel()
        yield o, flat, taps


def max_pool(x, wins):
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    planes = x.reshape(n, c, int(np.prod(x.shape[2:])))  # (empty N or C too)
    y = np.empty((n, c) + tuple(len(w) for w in wins))
    idx = np.empty(y.shape, np.int64)
    for o, flat, _ in _outputs(x, wins):
        vals = planes[:, :, flat]
        a = np.argmax(vals, axis=2)  # first maximum
        y[(slice(None), slice(None)) + o] = np.take_along_axis(vals, a[..., None], 2)[..., 0]
        idx[(slice(None), slice(None)) + o] = flat[a]
    return y, idx


def max_pool_backward(g, x_shape, idx):
    n, c = x_shape[:2]
    dx = np.zeros((n, c, int(np.prod(x_shape[2:]))))
    for i in range(n):
        for j in range(c):
            np.add.at(dx[i, j], idx[i, j].ravel(), np.asarray(g, np.float64)[i, j].ravel())
    return dx.reshape(x_shape)


def _avg_divisors(wins, count_include_pad, divisor_override):
    for o in itertools.product(*[range(len(w)) for w in wins]):
        if divisor_override:
            yield o, divisor_override
        elif count_include_pad and wins[0][0][1] is not None:
            yield o, math.prod(wins[d][o[d]][1] for d in range(len(wins)))
        else:
            yield o, math.prod(len(wins[d][o[d]][0]) for d in range(len(wins)))


def avg_pool(x, wins, count_include_pad=True, divisor_override=None):
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    planes = x.reshape(n, c, int(np.prod(x.shape[2:])))  # (empty N or C too)
    y = np.empty((n, c) + tuple(len(w) for w in wins))
    div = dict(_avg_divisors(wins, count_include_pad, divisor_override))
    for o, flat, _ in _outputs(x, wins):
        y[(slice(None), slice(None)) + o] = planes[:, :, flat].sum(2) / div[o]
    return y


def avg_pool_backward(g, x_shape, wins, count_include_pad=True, divisor_override=None):
    n, c = x_shape[:2]
    dx = np.zeros((n, c, int(np.prod(x_shape[2:]))))
    div = dict(_avg_divisors(wins, count_include_pad, divisor_override))
    g = np.asarray(g, np.float64)
    for o, flat, _ in _outputs(np.empty(x_shape), wins):
        dx[:, :, flat] += (g[(slice(None), slice(None)) + o] / div[o])[..., None]
    return dx.reshape(x_shape)


def lp_pool(x, p, wins):
    return avg_pool(np.abs(np.asarray(x, np.float64)) ** p, wins, divisor_override=1) ** (1 / p)


def max_unpool(x, idx, out_spatial):
    n, c = x.shape[:2]
    y = np.zeros((n, c, int(np.prod(out_spatial))))
    xf = np.asarray(x, np.float64).reshape(n, c, int(np.prod(x.shape[2:])))
    idf = idx.reshape(xf.shape)
    for i in range(n):
        for j in range(c):
            for k in range(xf.shape[2]):  # raster order: the last writer wins
                y[i, j, idf[i, j, k]] = xf[i, j, k]
    return y.reshape((n, c) + tuple(out_spatial))


def max_unpool_backward(g, idx, x_shape):
    """The adjoint of max_unpool: dx[j] = g[idx[j]] for the last writer j of each index, else 0."""
    n, c = x_shape[:2]
    m = int(np.prod(x_shape[2:]))
    gf = np.asarray(g, np.float64).reshape(n, c, int(np.prod(g.shape[2:])))
    idf = idx.reshape(n, c, m)
    dx = np.zeros((n, c, m))
    for i in range(n):
        for j in range(c):
            last = {int(v): k for k, v in enumerate(idf[i, j])}  # raster order: last one kept
            for v, k in last.items():
                dx[i, j, k] = gf[i, j, v]
    return dx.reshape(x_shape)


def interp_matrix(n_in, n_out, mode, align_corners, scale=None):
    """(n_out, n_in) weights along one dim."""
    a = np.zeros((n_out, n_in))
    if mode == "nearest":  # from the sizes: floor(o * n_in / n_out) exactly, in integers
        for o in range(n_out):
            i = int(math.floor(o * scale)) if scale else o * n_in // n_out
            a[o, min(i, n_in - 1)] = 1
        return a
    if n_out == n_in and not align_corners:  # the same size: a copy, whatever the scale
        return np.eye(n_in)
    if align_corners:
        sc = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        sc = scale if scale else n_in / n_out
    for o in range(n_out):
        src = o * sc if align_corners else max((o + 0.5) * sc - 0.5, 0.0)
        i0 = min(int(src), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = min(max(src - i0, 0.0), 1.0)
        a[o, i0] += 1 - lam
        a[o, i1] += lam
    return a


def interpolate(x, mats):
    y = np.asarray(x, np.float64)
    for d, a in enumerate(mats):
        y = np.moveaxis(np.tensordot(a, np.moveaxis(y, 2 + d, 0), axes=(1, 0)), 0, 2 + d)
    return y


def interpolate_backward(g, mats):
    return interpolate(g, [a.T for a in mats])
