"""Kernels without supervised training (cnnfast.unsupervised, cnnfast.init): patch extraction
and normalization, ZCA on patches, k-means recovering known centres, Gabor orientations from the
Fourier peak, random kernels, layer-wise autoencoder pretraining, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

import cnnfast
from cnnfast import init, nn
from cnnfast.functional import conv2d
from cnnfast.unsupervised import (ZCAWhitening, extract_patches, kmeans, kmeans_kernels,
                                  normalize_patches, pretrain_layerwise)


def _smooth_images(rng, n, c, h, w):
    """Random images with spatially correlated pixels (a 3x3 box blur of noise)."""
    x = rng.random((n, c, h + 2, w + 2))
    return sum(x[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9


def test_extract_patches_are_crops(rng):
    n, c, h, w = 5, 2, 9, 7
    # every pixel encodes (image, channel, row, col), so a patch tells where it came from
    code = (np.arange(n)[:, None, None, None] * 1e6 + np.arange(c)[None, :, None, None] * 1e4
            + np.arange(h)[None, None, :, None] * 100 + np.arange(w)[None, None, None, :])
    seed = int(rng.integers(1 << 30))
    p = extract_patches(code, (3, 4), 200, seed)
    assert p.shape == (200, c, 3, 4) and p.dtype == np.float64
    first = p[:, 0, 0, 0]
    img, row, col = (first // 1e6).astype(int), (first % 1e4 // 100).astype(int), \
        (first % 100).astype(int)
    for k in range(len(p)):
        assert np.array_equal(p[k], code[img[k], :, row[k]:row[k] + 3, col[k]:col[k] + 4])
    assert len(set(zip(img, row, col))) > 50  # positions really vary
    assert row.max() == h - 3 and col.max() == w - 4  # the last valid positions are drawn
    assert np.array_equal(extract_patches(code, (3, 4), 200, seed), p)  # seeded


def test_normalize_patches_formula(rng):
    p = rng.random((40, 2, 3, 3)) * rng.random((40, 1, 1, 1)) * 5
    eps = 0.3
    out = normalize_patches(p, eps)
    flat = p.reshape(40, -1)
    want = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + eps)
    np.testing.assert_allclose(out.reshape(40, -1), want, rtol=1e-12, atol=1e-12)
    assert np.all(normalize_patches(np.full((2, 1, 3, 3), 0.7), 0.0) == 0)  # flat: no NaN


def test_zca_whitened_patches_have_identity_covariance(rng):
    patches = extract_patches(_smooth_images(rng, 30, 1, 16, 16), 5, 4000,
                              int(rng.integers(1 << 30)))
    for normalized in (False, True):
        x = normalize_patches(patches, 0.01) if normalized else patches
        raw = x.reshape(len(x), -1)
        raw_cov = np.cov(raw, rowvar=False, bias=True)
        assert np.max(np.abs(raw_cov / raw_cov[0, 0] - np.eye(25))) > 0.3  # correlated input
        zca = ZCAWhitening(eps=1e-9).fit(x)
        white = zca(x).reshape(len(x), -1)
        cov = np.cov(white, rowvar=False, bias=True)
        d = white.shape[1]
        # per-patch normalization removes the mean: that one direction has no variance left
        want = np.eye(d) - np.ones((d, d)) / d if normalized else np.eye(d)
        assert np.max(np.abs(cov - want)) < 1e-3, normalized
        # ZCA is the symmetric whitening: the closest whitened data to the input
        assert np.allclose(zca.matrix, zca.matrix.T)


def _match(found, centres):
    """Largest distance from a true centre to its nearest found centroid."""
    d = np.linalg.norm(found[:, None, :] - centres[None, :, :], axis=2)
    assert len(set(np.argmin(d, axis=0))) == len(centres), "two centres share a centroid"
    return float(np.max(np.min(d, axis=0)))


def test_kmeans_recovers_centres(rng):
    k, d, per = 6, 10, 80
    centres = rng.standard_normal((k, d)) * 5
    labels = np.repeat(np.arange(k), per)
    points = centres[labels] + 0.3 * rng.standard_normal((k * per, d))
    order = rng.permutation(len(points))
    found, assigned = kmeans(points[order], k, seed=int(rng.integers(1 << 30)), n_init=3)
    assert _match(found, centres) < 0.25  # noise of a mean: 0.3 * sqrt(d / per) ~ 0.1
    # the assignment is the true partition (up to renaming)
    pairs = set(zip(labels[order], assigned))
    assert len(pairs) == k


def test_spherical_kmeans_recovers_directions(rng):
    k, d, per = 5, 12, 60
    dirs = rng.standard_normal((k, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    labels = np.repeat(np.arange(k), per)
    scales = rng.uniform(0.5, 4.0, (k * per, 1))  # lengths vary: only directions cluster
    points = scales * (dirs[labels] + 0.05 * rng.standard_normal((k * per, d)))
    found, assigned = kmeans(points, k, spherical=True, seed=int(rng.integers(1 << 30)),
                             n_init=3)
    assert np.allclose(np.linalg.norm(found, axis=1), 1.0)
    assert _match(found, dirs) < 0.05
    assert len(set(zip(labels, assigned))) == k


def test_kmeans_reseeds_empty_clusters(rng):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.repeat(centres, 50, axis=0) + 0.1 * rng.standard_normal((150, 2))
    # two initial centroids sit on one cluster and one is far from everything: clusters empty
    start = np.array([[0.1, 0.0], [-0.1, 0.0], [1000.0, 1000.0]])
    found, assigned = kmeans(points, 3, init=start)
    assert np.all(np.bincount(assigned, minlength=3) > 0)
    assert _match(found, centres) < 0.1
    found_s, assigned_s = kmeans(points + 20.0, 3, spherical=True, init=start)
    assert np.all(np.isfinite(found_s)) and np.all(np.bincount(assigned_s, minlength=3) > 0)


def _fourier_peak(kernel, pad=128):
    """(angle in [0, pi), radius in cycles/pixel) of the peak of |FFT| of a 2-D kernel."""
    mag = np.abs(np.fft.fft2(kernel, (pad, pad)))
    fy, fx = np.unravel_index(np.argmax(mag), mag.shape)
    fy, fx = (fy + pad // 2) % pad - pad // 2, (fx + pad // 2) % pad - pad // 2  # signed bins
    return math.atan2(fy, fx) % math.pi, math.hypot(fx, fy) / pad


def test_gabor_kernels_orientation_and_scale():
    n_or, n_sc, size = 8, 3, 15
    bank = init.gabor_kernels(n_or, n_sc, size, min_wavelength=4.0)
    assert bank.shape == (n_or * n_sc, 1, size, size) and bank.dtype == np.float32
    flat = bank.reshape(len(bank), -1).astype(np.float64)
    assert np.allclose(np.linalg.norm(flat, axis=1), 1, atol=1e-6)
    assert np.allclose(flat.mean(axis=1), 0, atol=1e-6)
    wavelengths = np.geomspace(4.0, size, n_sc)
    for s in range(n_sc):
        for k in range(n_or):
            angle, radius = _fourier_peak(bank[s * n_or + k, 0].astype(np.float64))
            want = k * math.pi / n_or
            diff = abs((angle - want + math.pi / 2) % math.pi - math.pi / 2)
            assert diff < math.radians(6), (s, k, math.degrees(angle))
            if s == 0:  # the finest scale's carrier dominates its spectrum
                assert abs(1 / radius - wavelengths[s]) < 0.15 * wavelengths[s]
    radii = [np.mean([_fourier_peak(bank[s * n_or + k, 0])[1] for k in range(n_or)])
             for s in range(n_sc)]
    assert radii[0] > radii[1] > radii[2]  # coarser scales, lower frequencies


def test_random_and_edge_kernels(rng):
    w = init.random_kernels(7, 3, (5, 4), rng=rng)
    assert w.shape == (7, 3, 5, 4) and w.dtype == np.float32
    flat = w.reshape(7, -1).astype(np.float64)
    assert np.allclose(np.linalg.norm(flat, axis=1), 1, atol=1e-6)
    assert np.allclose(flat.mean(axis=1), 0, atol=1e-6)
    assert np.linalg.matrix_rank(flat) == 7  # distinct draws
    e = init.edge_kernels()
    img = np.zeros((1, 1, 6, 6), np.float32)
    img[..., 3:] = 1.0  # a vertical edge: Sobel-x responds, Sobel-y does not
    out = conv2d(img, e)
    assert np.abs(out[0, 0]).max() > 1 and np.abs(out[0, 1]).max() == 0


def test_kmeans_kernels_shape_norm_and_seed(rng):
    images = _smooth_images(rng, 20, 2, 12, 12).astype(np.float32)
    seed = int(rng.integers(1 << 30))
    for spherical in (True, False):
        w = kmeans_kernels(images, 6, 5, n_patches=500, spherical=spherical, iters=10, seed=seed)
        assert w.shape == (6, 2, 5, 5) and w.dtype == np.float32
        assert np.allclose(np.linalg.norm(w.reshape(6, -1), axis=1), 1, atol=1e-5)
        assert np.array_equal(w, kmeans_kernels(images, 6, 5, n_patches=500,
                                                spherical=spherical, iters=10, seed=seed))
        out = conv2d(images, w)  # ready for Conv2d
        assert out.shape == (20, 6, 8, 8) and np.all(np.isfinite(out))


def test_kmeans_kernel_responds_like_its_whitened_centroid(rng, isa):
    """conv2d with a k-means kernel W c on a normalized patch p gives ‖W c‖⁻¹ (c·zca(p) + b):
    the centroid's response to the whitened patch, up to a per-kernel constant."""
    images = _smooth_images(rng, 12, 2, 10, 10)
    seed, k, size, n = int(rng.integers(1 << 30)), 5, 4, 600
    kernels = kmeans_kernels(images, k, size, n_patches=n, iters=8, seed=seed)
    patches = normalize_patches(extract_patches(images, size, n, seed))
    zca = ZCAWhitening(0.01).fit(patches)
    white = zca(patches).reshape(n, -1)
    centroids, _ = kmeans(white, k, spherical=True, iters=8, seed=seed)
    response = conv2d(patches, kernels)[:, :, 0, 0]  # (n, K): one output pixel per patch
    scale = np.linalg.norm(centroids @ zca.matrix, axis=1)
    offset = response * scale - white @ centroids.T  # must not depend on the patch
    assert np.max(np.std(offset, axis=0)) < 1e-9 * np.max(np.abs(white @ centroids.T))


def _row_energy(w):
    """Fraction of a zero-mean 2-D kernel's energy that is a function of the row alone."""
    rows = w.mean(axis=1, keepdims=True) * np.ones_like(w)
    return float(np.sum(rows ** 2) / np.sum(w ** 2))


def test_kmeans_kernels_find_the_patterns(rng):
    """Images of full-length horizontal or vertical strokes: among the k-means kernels are
    purely horizontal and purely vertical ones (random kernels are neither)."""
    images = np.zeros((60, 1, 16, 16))
    for i, img in enumerate(images):
        lines = np.zeros(16)
        lines[rng.choice(16, 4, replace=False)] = 1.0
        img[0] = lines[:, None] if i % 2 else lines[None, :]  # rows or columns lit
    images += 0.02 * rng.standard_normal(images.shape)
    # whitened: the kernel W c also carries the whitened noise of near-flat patches. Over 60
    # seeds the whitened minimum read 0.73-0.99 (median 0.89) and one CI run drew 0.685, so the
    # bar sits at 0.6: still far above random kernels (typically 0.35, checked below).
    for whiten, least in ((False, 0.95), (True, 0.6)):
        w = kmeans_kernels(images, 10, 5, n_patches=3000, whiten=whiten,
                           seed=int(rng.integers(1 << 30)))[:, 0].astype(np.float64)
        assert max(_row_energy(k) for k in w) > least, whiten
        assert max(_row_energy(k.T) for k in w) > least, whiten
    rand = init.random_kernels(10, 1, 5, rng=rng)[:, 0].astype(np.float64)
    assert max(_row_energy(k) for k in rand) < 0.75  # typical: 0.35


def test_pretrain_layerwise_lowers_reconstruction_error(rng):
    cnnfast.set_num_threads(1)
    init.seed(int(rng.integers(1 << 30)))
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Tanh(), nn.Flatten(),
                          nn.Linear(6 * 3 * 3, 10))
    keys = list(model.state_dict())
    w0 = model[0].weight.data.copy()
    # standardized: on the raw images (all positive, std 0.1) 3 % of seeds drew 4 conv units
    # whose negative bias the ReLU kept at 0 on every pixel, so no gradient reached the conv
    data = _smooth_images(rng, 48, 1, 14, 14)
    data = ((data - data.mean()) / data.std()).astype(np.float32)
    # 8 epochs: over 200 seeds the worst after/before ratio was 0.42 (99th percentile 0.34), so
    # the 0.5 bar holds and still fails when nothing is learned
    records = pretrain_layerwise(model, data, epochs=8, batch_size=16, lr=0.02,
                                 seed=int(rng.integers(1 << 30)))
    assert [r["layer"] for r in records] == ["0", "3"]
    for r in records:
        assert r["error_after"] < 0.5 * r["error_before"], r
        assert len(r["epoch_losses"]) == 8 and r["epoch_losses"][-1] < r["epoch_losses"][0]
    assert list(model.state_dict()) == keys  # decoders are not added to the model
    assert not np.array_equal(model[0].weight.data, w0)
    assert model(data[:2]).shape == (2, 10)  # still a working classifier


def test_pretrain_keeps_lower_layers_frozen(rng):
    """Training the second conv must leave the first untouched: the first conv ends exactly
    where pretraining a model that stops below the second conv leaves it."""
    cnnfast.set_num_threads(1)
    init.seed(int(rng.integers(1 << 30)))
    full = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1))
    lower = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
    lower.load_state_dict({k: v for k, v in full.state_dict().items() if k.startswith("0.")})
    data = _smooth_images(rng, 16, 1, 8, 8).astype(np.float32)
    seed = int(rng.integers(1 << 30))
    rec_full = pretrain_layerwise(full, data, epochs=2, batch_size=8, lr=0.01, seed=seed)
    rec_lower = pretrain_layerwise(lower, data, epochs=2, batch_size=8, lr=0.01, seed=seed)
    assert np.array_equal(full[0].weight.data, lower[0].weight.data)
    assert np.array_equal(full[0].bias.data, lower[0].bias.data)
    assert rec_full[0]["error_after"] == rec_lower[0]["error_after"]
    assert rec_full[1]["error_after"] < rec_full[1]["error_before"]


def test_bad_input(rng):
    images = rng.random((4, 1, 8, 8))
    with pytest.raises(ValueError, match=r"size: patch \(9, 9\) larger than the images \(4, 1, 8, 8\)"):
        extract_patches(images, 9, 10)
    with pytest.raises(ValueError, match="n: expected an int >= 1"):
        extract_patches(images, 3, 0)
    with pytest.raises(ValueError, match=r"images: expected non-empty images \(N, C, H, W\), got \(8, 8\)"):
        extract_patches(images[0, 0], 3, 5)
    with pytest.raises(TypeError, match="images: expected float32 or float64, got int64"):
        extract_patches(np.ones((2, 1, 8, 8), np.int64), 3, 5)
    with pytest.raises(TypeError, match="size"):
        extract_patches(images, "3", 5)
    with pytest.raises(ValueError, match=r"n_clusters: 11 clusters need at least 11 points, got points \(10, 2\)"):
        kmeans(rng.random((10, 2)), 11)
    with pytest.raises(ValueError, match="points: contain NaN"):
        kmeans(np.array([[0.0, np.nan], [1.0, 1.0]]), 1)
    with pytest.raises(ValueError, match=r"points: expected a non-empty \(n, d\) array, got \(10,\)"):
        kmeans(rng.random(10), 2)
    with pytest.raises(ValueError, match=r"init: expected initial centroids \(2, 2\)"):
        kmeans(rng.random((10, 2)), 2, init=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_patches: need at least n_kernels=8 patches, got 5"):
        kmeans_kernels(images, 8, 3, n_patches=5)
    with pytest.raises(ValueError, match="n_kernels"):
        kmeans_kernels(images, 0, 3)
    with pytest.raises(ValueError, match="n_orientations: expected an int >= 1, got 0"):
        init.gabor_kernels(0, 1, 7)
    with pytest.raises(ValueError, match="min_wavelength"):
        init.gabor_kernels(4, 2, 5, min_wavelength=9.0)
    with pytest.raises(ValueError, match="n_kernels"):
        init.random_kernels(0, 1, 3)
    with pytest.raises(ValueError, match="eps: must be >= 0"):
        normalize_patches(rng.random((3, 4)), -1.0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(TypeError, match="model: expected a cnnfast.nn.Sequential, got Conv2d"):
        pretrain_layerwise(model[0], images.astype(np.float32))
    with pytest.raises(ValueError, match="model: has no Conv2d layer"):
        pretrain_layerwise(nn.Sequential(nn.Flatten()), images.astype(np.float32))
    with pytest.raises(ValueError, match=r"data: the first Conv2d expects 1 channels, got images \(4, 2, 8, 8\)"):
        pretrain_layerwise(model, rng.random((4, 2, 8, 8)).astype(np.float32))
    with pytest.raises(ValueError, match="epochs"):
        pretrain_layerwise(model, images.astype(np.float32), epochs=0)


def test_audit_refusals_and_warnings():
    """kmeans warns when the points cannot fill k centroids; pretrain_layerwise refuses nested
    convs it would skip and a non-finite lr, and takes padding='valid'; init refuses NaN-making
    Gabor parameters and a bool slope, and leaves an empty tensor alone."""
    from cnnfast.unsupervised import pretrain_layerwise
    with pytest.warns(RuntimeWarning, match="only 2 distinct centroids of k=5"):
        kmeans(np.repeat([[0.0, 0.0], [1.0, 1.0]], 5, axis=0), 5)
    data = np.random.default_rng(0).random((8, 1, 8, 8))
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 3, dtype=np.float64), nn.ReLU()),
                           nn.Conv2d(1, 2, 3, dtype=np.float64))
    with pytest.raises(ValueError, match=r"nested modules \(0.0\)"):
        pretrain_layerwise(nested, data)
    flat = nn.Sequential(nn.Conv2d(1, 2, 3, padding="valid", dtype=np.float64), nn.ReLU())
    for lr in (math.nan, math.inf, 0.0):
        with pytest.raises(ValueError, match="lr: must be finite"):
            pretrain_layerwise(flat, data, lr=lr)
    assert pretrain_layerwise(flat, data, batch_size=4)[0]["layer"] == "0"
    for kw in (dict(sigma=0), dict(wavelength=0), dict(sigma=math.nan), dict(gamma=math.nan)):
        with pytest.raises(ValueError):
            init.gabor_bank(**kw)
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", True)
    assert init.calculate_gain("leaky_relu", np.float32(0.2)) == pytest.approx(
        math.sqrt(2 / 1.04))
    empty = np.empty((0, 3), np.float32)
    assert init.orthogonal_(empty) is empty
