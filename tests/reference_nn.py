"""NumPy float64 references for the layer ops, written from the formulas (independent of the
C++ kernels): activations, softmax, batch norm, LRN, GCN/LCN, cross-entropy and friends."""
from __future__ import annotations

import numpy as np


def f64(a):
    return np.asarray(a, np.float64)


def leaky_relu(x, slope):
    x = f64(x)
    return np.where(x > 0, x, slope * x)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-f64(x)))


def softmax(x, dim=1):
    x = f64(x)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim=1):
    x = f64(x)
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


def batch_norm(x, mean, var, gamma, beta, eps):
    x = f64(x)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - f64(mean).reshape(shape)) / np.sqrt(f64(var).reshape(shape) + eps)
    if gamma is not None:
        y = y * f64(gamma).reshape(shape)
    if beta is not None:
        y = y + f64(beta).reshape(shape)
    return y


def lrn(x, size, alpha, beta, k):
    x = f64(x)
    C = x.shape[1]
    out = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        s = k + alpha / size * (x[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / s ** beta
    return out


def gcn(x, s, lam, eps):
    x = f64(x)
    axes = tuple(range(1, x.ndim))
    d = x - x.mean(axis=axes, keepdims=True)
    den = np.maximum(eps, np.sqrt(lam + (d ** 2).mean(axis=axes, keepdims=True)))
    return s * d / den


def _gauss_matrix(n, taps):
    r = len(taps) // 2
    g = np.zeros((n, n))
    for i in range(n):
        for j in range(max(0, i - r), min(n, i + r + 1)):
            g[i, j] = taps[j - i + r]
    return g / g.sum(axis=1, keepdims=True)


def lcn(x, taps, across, eps):
    """Local contrast norm with the window as explicit (H, H) and (W, W) row-normalized matrices."""
    x = f64(x)
    gh, gw = _gauss_matrix(x.shape[2], taps), _gauss_matrix(x.shape[3], taps)
    G = lambda p: gh @ p @ gw.T  # noqa: E731  (broadcasts over leading dims)
    m = G(x.mean(axis=1, keepdims=True)) if across else G(x)
    v = x - m
    s2 = G((v ** 2).mean(axis=1, keepdims=True)) if across else G(v ** 2)
    return v / np.maximum(eps, np.sqrt(s2))


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0,
                  pixel_weight=None):
    """PyTorch's definition: (1 − ε)·NLL(w) + ε/C·Σ_c w_c·(−logp_c), mean over Σ w[t]."""
    lp = log_softmax(x, 1)
    C = x.shape[1]
    w = np.ones(C) if weight is None else f64(weight)
    valid = target != ignore_index
    t = np.where(valid, target, 0)
    nll = -np.take_along_axis(lp, t[:, None], 1)[:, 0] * w[t]
    smooth = -(lp * w.reshape((1, C) + (1,) * (x.ndim - 2))).sum(axis=1)
    item = np.where(valid, (1 - smoothing) * nll + smoothing / C * smooth, 0.0)
    if pixel_weight is not None:
        item = item * f64(pixel_weight)
    if reduction == "none":
        return item
    if reduction == "sum":
        return item.sum()
    return item.sum() / w[t][valid].sum()


def _reduce(item, reduction, denom):
    if reduction == "none":
        return item
    return item.sum() if reduction == "sum" else (item.sum() / denom if denom else np.nan)


def nll_loss(x, target, weight=None, ignore_index=-100, reduction="mean", pixel_weight=None):
    """−w[t]·x[t] per item of log-probabilities x; 'mean' divides by Σ w[t] (non-ignored)."""
    x = f64(x)
    w = np.ones(x.shape[1]) if weight is None else f64(weight)
    valid = target != ignore_index
    t = np.where(valid, target, 0)
    item = np.where(valid, -np.take_along_axis(x, t[:, None], 1)[:, 0] * w[t], 0.0)
    if pixel_weight is not None:
        item = item * f64(pixel_weight)
    return _reduce(item, reduction, w[t][valid].sum())


def mse_loss(x, target, reduction="mean"):
    return _reduce((f64(x) - f64(target)) ** 2, reduction, f64(x).size)


def bce_with_logits(x, target, weight=None, reduction="mean", pos_weight=None):
    """−w·[p·t·log σ(x) + (1 − t)·log(1 − σ(x))] per element."""
    x, t = f64(x), f64(target)
    p = 1.0 if pos_weight is None else f64(pos_weight)
    log_sig = -np.logaddexp(0, -x)     # log σ(x)
    log_1m_sig = -np.logaddexp(0, x)   # log(1 − σ(x))
    item = -(p * t * log_sig + (1 - t) * log_1m_sig)
    if weight is not None:
        item = item * f64(weight)
    return _reduce(item, reduction, x.size)
