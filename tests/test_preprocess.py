"""Preprocessing against formulas and naive loops: standardization, global and local contrast
normalization, ZCA whitening."""
from __future__ import annotations

import numpy as np
import pytest

from cnnfast.data import (Standardize, ZCAWhitening, global_contrast_normalize,
                          local_contrast_normalize)
from cnnfast.data.preprocess import gaussian_kernel1d


def test_standardize(rng):
    x = rng.standard_normal((50, 3, 4, 5)) * [[[2.0]], [[0.5]], [[7.0]]] + [[[1.0]], [[-3.0]], [[0.0]]]
    st = Standardize().fit(x)
    y = st(x)
    assert np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    assert np.allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-12)
    with pytest.raises(ValueError, match="fitted on 3 channels"):
        st(x[:, :2])
    with pytest.raises(RuntimeError, match="fit"):
        Standardize()(x)


def test_global_contrast_normalize(rng):
    x = rng.random((6, 2, 5, 4)) * 10
    y = global_contrast_normalize(x, scale=2.0, lam=0.5, eps=1e-8)
    for img, out in zip(x, y):  # eq. 12.3, image by image
        m = img.mean()
        want = 2.0 * (img - m) / max(1e-8, np.sqrt(0.5 + np.mean((img - m) ** 2)))
        assert np.allclose(out, want, rtol=1e-12, atol=1e-12)
    y0 = global_contrast_normalize(x)
    assert np.allclose(y0.mean(axis=(1, 2, 3)), 0) and np.allclose(y0.std(axis=(1, 2, 3)), 1)
    assert np.all(global_contrast_normalize(np.full((1, 1, 3, 3), 4.0)) == 0)  # eps: no NaN


def _lcn_ref(x, sigma, across, eps):
    """Naive: explicit 2-D Gaussian windows, weights renormalized inside the image."""
    n, c, h, w = x.shape
    k1 = gaussian_kernel1d(sigma)
    r = len(k1) // 2
    k2 = np.outer(k1, k1)

    def local_mean(a):
        out = np.zeros_like(a)
        for i in range(h):
            for j in range(w):
                acc, wsum = np.zeros(a.shape[:2]), 0.0
                for di in range(-r, r + 1):
                    for dj in range(-r, r + 1):
                        if 0 <= i + di < h and 0 <= j + dj < w:
                            acc += k2[di + r, dj + r] * a[:, :, i + di, j + dj]
                            wsum += k2[di + r, dj + r]
                out[:, :, i, j] = acc / wsum
        return out.mean(axis=1, keepdims=True) if across else out

    v = x - local_mean(x)
    s = np.sqrt(local_mean(v * v))
    cfloor = np.maximum(eps, s.mean(axis=(1, 2, 3), keepdims=True))
    return v / np.maximum(cfloor, s)


@pytest.mark.parametrize("across", [False, True])
@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0])  # 3.0: a kernel past the 7x9 image, cut
def test_local_contrast_normalize_vs_naive(rng, across, sigma):
    x = rng.random((2, 3, 7, 9)) * 5
    got = local_contrast_normalize(x, sigma=sigma, across_channels=across)
    assert np.allclose(got, _lcn_ref(x, sigma, across, 1e-4), rtol=1e-10, atol=1e-12)
    assert got.dtype == x.dtype
    f32 = local_contrast_normalize(x.astype(np.float32), sigma=sigma, across_channels=across)
    assert f32.dtype == np.float32 and np.allclose(f32, got, atol=1e-5)


def test_local_contrast_normalize_properties(rng):
    assert np.abs(local_contrast_normalize(np.full((1, 2, 6, 6), 3.0))).max() < 1e-9
    x = rng.random((1, 1, 8, 8))
    assert np.allclose(local_contrast_normalize(5 * x + 2), local_contrast_normalize(x))
    for sigma in (0, np.nan, np.inf, -1):
        with pytest.raises(ValueError, match="sigma must be finite and > 0"):
            local_contrast_normalize(x, sigma=sigma)
    # a huge sigma is a flat window over the image (it asked for 262 TiB before)
    flat = local_contrast_normalize(x, sigma=1e6)
    assert np.isfinite(flat).all() and np.allclose(flat, local_contrast_normalize(x, sigma=1e4),
                                                   atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        local_contrast_normalize(x[0])


def test_zca_whitening(rng):
    mix = rng.standard_normal((12, 12))
    x = (rng.standard_normal((4000, 12)) @ mix + 1.5).reshape(-1, 3, 2, 2)
    zca = ZCAWhitening(eps=0.0).fit(x)
    y = zca(x).reshape(len(x), -1)
    cov = np.cov(y, rowvar=False, bias=True)
    assert np.allclose(cov, np.eye(12), atol=1e-8)
    assert np.allclose(zca.matrix, zca.matrix.T)
    flat = x.reshape(len(x), -1)
    c = np.cov(flat, rowvar=False, bias=True)
    z2 = ZCAWhitening(eps=0.1).fit(x)  # W (C + eps I) W = I
    assert np.allclose(z2.matrix @ (c + 0.1 * np.eye(12)) @ z2.matrix, np.eye(12), atol=1e-8)
    with pytest.raises(ValueError, match="fitted on images"):
        zca(x[:, :2])
    with pytest.raises(RuntimeError, match="fit"):
        ZCAWhitening()(x)


def test_integer_pixels_come_back_float32(rng):
    # uint8 in, standardized values out: never wrapped back into uint8
    u8 = rng.integers(0, 256, (4, 2, 5, 5)).astype(np.uint8)
    x = u8.astype(np.float64)
    st = Standardize().fit(u8)
    got = st(u8)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, (x - x.mean((0, 2, 3), keepdims=True))
                               / x.std((0, 2, 3), keepdims=True), rtol=1e-5, atol=1e-5)
    g = global_contrast_normalize(u8)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, global_contrast_normalize(x), rtol=1e-5, atol=1e-5)


def test_fitting_refuses_empty_or_non_finite_sets(rng):
    x = rng.random((3, 2, 4, 4))
    for fit in (Standardize().fit, ZCAWhitening().fit):
        with pytest.raises(ValueError, match="no images to fit on"):
            fit(x[:0])
        bad = x.copy()
        bad[1, 0, 2, 2] = np.nan
        with pytest.raises(ValueError, match="NaN or infinite"):
            fit(bad)
