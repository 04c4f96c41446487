"""Preprocessing of image sets (N, C, H, W): standardization, global and local contrast
normalization (Goodfellow, Bengio & Courville, sec. 12.2.1.1), ZCA whitening.

Fitted transforms (`Standardize`, `ZCAWhitening`) learn their statistics on the training set with
`fit` and are applied to any set with `__call__`. All computations run in float64; results
keep a floating input's dtype (integer pixels come back float32).
"""
from __future__ import annotations

import numpy as np


def _check_images(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"{name}: expected images (N, C, H, W), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    return x


def _check_fit_images(name: str, x) -> np.ndarray:
    """Images to learn statistics from: at least one, all finite (a NaN would poison them)."""
    _check_images(name, x)
    if len(x) == 0:
        raise ValueError(f"{name}: no images to fit on, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: the images hold NaN or infinite values")
    return x


def _out_dtype(x: np.ndarray) -> np.dtype:
    """The result's dtype: x's when floating, else float32 (uint8 pixels standardized into
    uint8 would wrap)."""
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)


class Standardize:
    """Per-channel (x - mean) / std with the training set's statistics."""

    def __init__(self, eps: float = 1e-8):
        self.eps = eps
        self.mean = self.std = None

    def fit(self, x: np.ndarray) -> "Standardize":
        x = _check_fit_images("Standardize.fit", x).astype(np.float64)
        self.mean = x.mean(axis=(0, 2, 3), keepdims=True)[0]
        self.std = x.std(axis=(0, 2, 3), keepdims=True)[0]
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_images("Standardize", x)
        if self.mean is None:
            raise RuntimeError("Standardize: call fit(train_images) first")
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"Standardize: fitted on {self.mean.shape[0]} channels, got {x.shape}")
        return ((x - self.mean) / np.maximum(self.std, self.eps)).astype(_out_dtype(x))


def global_contrast_normalize(x: np.ndarray, scale: float = 1.0, lam: float = 0.0,
                              eps: float = 1e-8) -> np.ndarray:
    """Per image: X' = s (X - mean) / max(eps, sqrt(lam + mean((X - mean)^2)))  (eq. 12.3)."""
    _check_images("global_contrast_normalize", x)
    xd = x.astype(np.float64)
    centred = xd - xd.mean(axis=(1, 2, 3), keepdims=True)
    contrast = np.sqrt(lam + np.mean(centred ** 2, axis=(1, 2, 3), keepdims=True))
    return (scale * centred / np.maximum(eps, contrast)).astype(_out_dtype(x))


def gaussian_kernel1d(sigma: float, max_radius: int = None) -> np.ndarray:
    """exp(-t²/2σ²) for |t| <= 3σ (at least 1, at most max_radius), summing to 1."""
    radius = max(1, int(np.ceil(3 * sigma)))
    if max_radius is not None:
        radius = min(radius, max_radius)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable zero-padded filtering of the last two axes with the 1-D kernel k."""
    r = len(k) // 2
    h, w = x.shape[-2:]
    pad = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(r, r), (r, r)])
    rows = sum(k[j] * pad[..., j:j + h, :] for j in range(len(k)))
    return sum(k[j] * rows[..., :, j:j + w] for j in range(len(k)))


def local_contrast_normalize(x: np.ndarray, sigma: float = 2.0, across_channels: bool = False,
                             eps: float = 1e-4) -> np.ndarray:
    """Subtracts the Gaussian-weighted local mean and divides by the Gaussian-weighted local
    standard deviation (Jarrett et al. 2009): v = x - m, y = v / max(c, s) with s the local
    standard deviation of v and c = max(eps, mean of s over the image). Near the borders the
    weights are renormalized over the pixels inside the image. `across_channels` pools the local
    statistics over all channels (one mean/std map per image) instead of per channel."""
    _check_images("local_contrast_normalize", x)
    if not 0 < sigma < np.inf:
        raise ValueError(f"local_contrast_normalize: sigma must be finite and > 0, got {sigma}")
    xd = x.astype(np.float64)
    # Taps past the image's extent only ever meet the zero padding, and the weights are
    # renormalized per pixel, so a kernel cut there gives the same result (sigma=1e6 asked for
    # 262 TiB before).
    k = gaussian_kernel1d(sigma, max_radius=max(x.shape[-2:]) - 1)
    norm = _blur(np.ones(x.shape[-2:]), k)  # sum of in-image weights per pixel

    def local_mean(a):
        m = _blur(a, k) / norm
        return m.mean(axis=1, keepdims=True) if across_channels else m

    v = xd - local_mean(xd)
    s = np.sqrt(np.maximum(local_mean(v * v), 0.0))
    c = np.maximum(eps, s.mean(axis=(1, 2, 3), keepdims=True))
    return (v / np.maximum(c, s)).astype(_out_dtype(x))


class ZCAWhitening:
    """x -> (x - mean) W with W = U diag(1 / sqrt(S + eps)) U^T from the training covariance
    U S U^T: decorrelated features that stay as close to the input as possible."""

    def __init__(self, eps: float = 1e-2):
        if eps < 0:
            raise ValueError(f"ZCAWhitening: eps must be >= 0, got {eps}")
        self.eps = eps
        self.mean = self.matrix = None

    def fit(self, x: np.ndarray) -> "ZCAWhitening":
        _check_fit_images("ZCAWhitening.fit", x)
        flat = x.reshape(len(x), -1).astype(np.float64)
        self.mean = flat.mean(axis=0)
        centred = flat - self.mean
        cov = centred.T @ centred / len(flat)
        s, u = np.linalg.eigh(cov)
        self.matrix = (u / np.sqrt(np.maximum(s, 0.0) + self.eps)) @ u.T
        self.shape = x.shape[1:]
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_images("ZCAWhitening", x)
        if self.matrix is None:
            raise RuntimeError("ZCAWhitening: call fit(train_images) first")
        if x.shape[1:] != self.shape:
            raise ValueError(f"ZCAWhitening: fitted on images {self.shape}, got {x.shape}")
        flat = x.reshape(len(x), -1).astype(np.float64) - self.mean
        return (flat @ self.matrix).reshape(x.shape).astype(_out_dtype(x))
