"""Convolution kernels without labels: random patches, per-patch contrast normalization, ZCA
whitening, k-means (standard or spherical) whose centroids become a conv weight (K, C, R, S)
(Coates, Lee & Ng 2011), and greedy layer-wise convolutional-autoencoder pretraining (each
Conv2d trained alone as conv → transposed conv on the features of the frozen layers below).

Arrays are NumPy, images (N, C, H, W); the statistics (normalization, whitening, k-means) run in
float64 and kernels come back in the images' dtype. Random and hand-designed kernels are in
cnnfast.init (random_kernels, gabor_kernels, edge_kernels); ZCA whitening is
cnnfast.data.ZCAWhitening, used here on patches (n, C, R, S).
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import init, nn, optim
from ._checks import check_int, int_tuple
from .data.preprocess import ZCAWhitening, _out_dtype

__all__ = ["extract_patches", "normalize_patches", "ZCAWhitening", "kmeans", "kmeans_kernels",
           "pretrain_layerwise"]


def _check_images(name: str, images) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(images).__name__}")
    if images.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64, got {images.dtype}")
    if images.ndim != 4 or images.size == 0:
        raise ValueError(f"{name}: expected non-empty images (N, C, H, W), got {images.shape}")
    return images


def extract_patches(images: np.ndarray, size, n: int, seed: int = 0) -> np.ndarray:
    """n patches (n, C, R, S) cut from images (N, C, H, W) at uniformly random images and
    positions (drawn from `seed`); size is an int or (R, S) with R <= H and S <= W."""
    _check_images("images", images)
    r, s = int_tuple("size", size, 2, 1)
    n = check_int("n", n, 1)
    num, c, h, w = images.shape
    if r > h or s > w:
        raise ValueError(f"size: patch ({r}, {s}) larger than the images {images.shape}")
    g = np.random.default_rng(seed)
    idx, top, left = g.integers(0, num, n), g.integers(0, h - r + 1, n), g.integers(0, w - s + 1, n)
    rows = top[:, None] + np.arange(r)  # (n, R)
    cols = left[:, None] + np.arange(s)  # (n, S)
    # fancy indexing (n,1,1) x (n,R,1) x (n,1,S) on an (N, H, W, C) view -> (n, R, S, C)
    patches = images.transpose(0, 2, 3, 1)[idx[:, None, None], rows[:, :, None], cols[:, None, :]]
    return np.ascontiguousarray(patches.transpose(0, 3, 1, 2))


def normalize_patches(patches: np.ndarray, eps: float = 0.01) -> np.ndarray:
    """Contrast normalization of each patch p (n, ...): (p − mean(p)) / sqrt(var(p) + eps).
    eps (in squared pixel units, images in [0, 1]) keeps flat patches from being amplified into
    noise (Coates et al. use 10 for pixels in [0, 255])."""
    if not isinstance(patches, np.ndarray) or patches.ndim < 2 or patches.size == 0:
        raise ValueError(f"patches: expected a non-empty array (n, ...), got "
                         f"{getattr(patches, 'shape', type(patches).__name__)}")
    if eps < 0:
        raise ValueError(f"eps: must be >= 0, got {eps}")
    flat = patches.reshape(len(patches), -1).astype(np.float64)
    centred = flat - flat.mean(axis=1, keepdims=True)
    out = centred / np.sqrt(centred.var(axis=1, keepdims=True) + eps + 1e-300)
    return out.reshape(patches.shape).astype(_out_dtype(patches))


def _squared_distances(x: np.ndarray, c: np.ndarray, x_sq: np.ndarray) -> np.ndarray:
    """(n, k) squared Euclidean distances of points x (n, d) to centroids c (k, d), one matmul."""
    d = x_sq[:, None] - 2.0 * (x @ c.T) + np.sum(c * c, axis=1)[None, :]
    return np.maximum(d, 0.0)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _kmeans_pp(x: np.ndarray, k: int, x_sq: np.ndarray, g: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability
    proportional to the squared distance to the nearest centre chosen so far."""
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[g.integers(len(x))]
    nearest = _squared_distances(x, centres[:1], x_sq)[:, 0]
    for j in range(1, k):
        total = nearest.sum()
        i = g.choice(len(x), p=nearest / total) if total > 0 else g.integers(len(x))
        centres[j] = x[i]
        nearest = np.minimum(nearest, _squared_distances(x, centres[j:j + 1], x_sq)[:, 0])
    return centres


def kmeans(points: np.ndarray, n_clusters: int, spherical: bool = False, iters: int = 30,
           seed: int = 0, tol: float = 1e-6, init: Optional[np.ndarray] = None,
           n_init: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """k-means on points (n, d); returns (centroids (k, d), labels (n,)). Seeding: k-means++
    drawn from `seed` (the best of `n_init` seedings: lowest sum of squared distances, or
    highest sum of similarities when spherical), or the given initial centroids `init` (k, d).

    Standard: assign to the nearest centroid (squared distances by one matmul), centroid = mean.
    Spherical (Coates & Ng 2012): centroids have unit norm, assign to the largest dot product,
    centroid = normalized sum of its points. An empty cluster is re-seeded with the point that
    is currently worst served (largest distance / smallest similarity to its centroid), so all
    k centroids stay in use. Stops after `iters` iterations or when no centroid moves by more
    than tol (relative to the data's scale).
    """
    if not isinstance(points, np.ndarray) or points.ndim != 2 or points.size == 0:
        raise ValueError(f"points: expected a non-empty (n, d) array, got "
                         f"{getattr(points, 'shape', type(points).__name__)}")
    k = check_int("n_clusters", n_clusters, 1)
    iters = check_int("iters", iters, 1)
    if k > len(points):
        raise ValueError(f"n_clusters: {k} clusters need at least {k} points, got "
                         f"points {points.shape}")
    x = points.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("points: contain NaN or infinity")
    n_init = check_int("n_init", n_init, 1)
    g = np.random.default_rng(seed)
    x_sq = np.sum(x * x, axis=1)
    if init is not None:
        c = np.array(init, dtype=np.float64)
        if c.shape != (k, x.shape[1]):
            raise ValueError(f"init: expected initial centroids ({k}, {x.shape[1]}) for "
                             f"points {points.shape}, got {c.shape}")
        return _distinct(*_lloyd(x, x_sq, c, spherical, iters, tol)[:2])
    best = None
    for _ in range(n_init):
        c = _kmeans_pp(_unit_rows(x) if spherical else x, k,
                       np.ones(len(x)) if spherical else x_sq, g)
        run = _lloyd(x, x_sq, c, spherical, iters, tol)
        if best is None or run[2] < best[2]:
            best = run
    return _distinct(best[0], best[1])


def _distinct(centroids, labels):
    """(centroids, labels), with a warning when some centroids coincide: the points hold fewer
    than k distinct values, so not all k can be in use."""
    distinct = len(np.unique(centroids, axis=0))
    if distinct < len(centroids):
        warnings.warn(f"kmeans: only {distinct} distinct centroids of k={len(centroids)}: the "
                      f"points hold fewer than k distinct values", RuntimeWarning, stacklevel=3)
    return centroids, labels


def _lloyd(x, x_sq, c, spherical, iters, tol):
    """Lloyd iterations from centroids c (k, d); returns (centroids, labels, misfit), misfit
    the sum of squared distances (standard) or minus the sum of similarities (spherical)."""
    k = len(c)
    scale = max(float(np.sqrt(x_sq.mean())), 1e-300)
    for _ in range(iters):
        if spherical:
            c = _unit_rows(c)
        labels, misfit = _assign(x, x_sq, c, spherical)
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(c)
        np.add.at(sums, labels, x)
        new = _unit_rows(sums) if spherical else sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            worst = np.argsort(misfit)[::-1][:len(empty)]
            new[empty] = _unit_rows(x[worst]) if spherical else x[worst]
        moved = float(np.max(np.linalg.norm(new - c, axis=1)))
        c = new
        if len(empty) == 0 and moved <= tol * (1.0 if spherical else scale):
            break
    labels, misfit = _assign(x, x_sq, c, spherical)
    return c, labels, float(misfit.sum())


def _assign(x, x_sq, c, spherical):
    """Each point's cluster (n,) and misfit (n,): its squared distance to the nearest centroid,
    or minus its largest similarity (dot product) when spherical — one matmul either way."""
    if spherical:
        score = x @ c.T  # (n, k)
        labels = np.argmax(score, axis=1)
        return labels, -score[np.arange(len(x)), labels]
    dist = _squared_distances(x, c, x_sq)
    labels = np.argmin(dist, axis=1)
    return labels, dist[np.arange(len(x)), labels]


def kmeans_kernels(images: np.ndarray, n_kernels: int, size=5, n_patches: int = 10000,
                   spherical: bool = True, whiten: bool = True, norm_eps: float = 0.01,
                   zca_eps: float = 0.01, iters: int = 30, seed: int = 0) -> np.ndarray:
    """First-layer kernels (n_kernels, C, R, S) learned without labels (Coates et al. 2011):
    random patches → contrast normalization → ZCA whitening (optional) → k-means (spherical by
    default). Centroids live in whitened space; a centroid c dotted with a whitened patch
    W(p − μ) equals (W c)·p − c·Wμ, so the kernel returned is W c (W is symmetric): a Conv2d
    with it responds to a (normalized) patch p as the centroid does to its whitened version, up
    to a per-kernel bias. Each kernel is
    scaled to unit L2 norm (like cnnfast.init.random_kernels/gabor_kernels); dtype = images'."""
    _check_images("images", images)
    k = check_int("n_kernels", n_kernels, 1)
    n_patches = check_int("n_patches", n_patches, 1)
    if n_patches < k:
        raise ValueError(f"n_patches: need at least n_kernels={k} patches, got {n_patches}")
    patches = normalize_patches(extract_patches(images, size, n_patches, seed).astype(np.float64),
                                norm_eps)
    x = patches.reshape(n_patches, -1)
    zca = None
    if whiten:
        zca = ZCAWhitening(zca_eps).fit(patches)
        x = zca(patches).reshape(n_patches, -1)
    centroids, _ = kmeans(x, k, spherical=spherical, iters=iters, seed=seed)
    if zca is not None:
        centroids = centroids @ zca.matrix  # W c for every centroid (W symmetric)
    kernels = _unit_rows(centroids).reshape((k,) + patches.shape[1:])
    return kernels.astype(_out_dtype(images))


# ---- greedy layer-wise pretraining --------------------------------------------------------

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)


def _decoder_for(conv: "nn.Conv2d", in_hw: Tuple[int, int], out_hw: Tuple[int, int],
                 g: np.random.Generator):
    """ConvTranspose2d mapping the conv's output (K, P, Q) back onto its input (C, H, W),
    initialized like torch's default from g (so a run is fixed by pretrain_layerwise's seed)."""
    padding = 0 if conv.padding == "valid" else conv.padding
    if isinstance(padding, str) or (isinstance(padding, tuple) and len(padding) != 2):
        raise ValueError(f"pretrain_layerwise: a Conv2d with padding={conv.padding!r} is not "
                         f"supported (its decoder needs the same padding on both sides: use "
                         f"an int or (pad_h, pad_w))")
    stride = int_tuple("stride", conv.stride, 2, 1)
    pad = int_tuple("padding", padding, 2, 0)
    dil = int_tuple("dilation", conv.dilation, 2, 1)
    ks = conv.kernel_size
    out_pad = tuple(in_hw[i] - ((out_hw[i] - 1) * stride[i] - 2 * pad[i] + dil[i] * (ks[i] - 1)
                                + 1) for i in range(2))
    dec = nn.ConvTranspose2d(conv.out_channels, conv.in_channels, ks, stride, pad, out_pad,
                             conv.groups, True, dil, dtype=conv.weight.dtype)
    init.kaiming_uniform_(dec.weight, a=math.sqrt(5), rng=g)
    fan_in = dec.weight.shape[1] * ks[0] * ks[1]
    init.uniform_(dec.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), rng=g)
    return dec


def _features(layers: List, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The output of the frozen modules `layers` (eval mode) for all of x, in batches."""
    outs = []
    for i in range(0, len(x), batch_size):
        h = x[i:i + batch_size]
        for m in layers:
            m.eval()
            h = m(h)
        outs.append(np.asarray(h))
    return np.concatenate(outs)


def _reconstruction_error(encoder, decoder, feats, batch_size) -> float:
    total = 0.0
    for i in range(0, len(feats), batch_size):
        xb = feats[i:i + batch_size]
        rec = decoder(encoder(xb))
        total += float(np.sum((rec.astype(np.float64) - xb) ** 2))
    return total / feats.size


def pretrain_layerwise(model: "nn.Sequential", data: np.ndarray, epochs: int = 1,
                       batch_size: int = 64, lr: float = 1e-3, seed: int = 0
                       ) -> List[Dict[str, object]]:
    """Greedy layer-wise unsupervised pretraining of the Conv2d layers of `model` (Lee et al.
    2009, as convolutional autoencoders), bottom-up: for each Conv2d, in order, the modules
    below it are frozen and give its input features h; the conv (with the activation module
    right after it, if any) is the encoder, a fresh ConvTranspose2d with the same geometry the
    decoder, and both are trained with Adam for `epochs` epochs on the MSE ‖dec(enc(h)) − h‖².
    Only the conv's weight and bias are kept in the model; the decoder is discarded.
    Fine-tune the whole model supervised afterwards (cnnfast.train.fit).

    data: images (N, C, H, W) in the model's dtype (labels not needed). Returns one record per
    conv layer: {'layer': its name in the model, 'error_before', 'error_after' (mean squared
    reconstruction error over `data` before/after training), 'epoch_losses'}.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model: expected a cnnfast.nn.Sequential, got {type(model).__name__}")
    _check_images("data", data)
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    if not 0 < lr < np.inf:  # NaN too
        raise ValueError(f"lr: must be finite and > 0, got {lr}")
    names = list(model._modules.keys())
    layers = list(model._modules.values())
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    nested = [f"{names[i]}.{n}" for i, m in enumerate(layers) if m._modules
              for n, sub in m.named_modules() if isinstance(sub, nn.Conv2d)]
    if nested:  # they would be left untrained, silently
        raise ValueError(f"model: Conv2d layers inside nested modules ({', '.join(nested)}) "
                         f"are not pretrained layer-wise; flatten the Sequential (only its "
                         f"direct Conv2d children are)")
    if not convs:
        raise ValueError("model: has no Conv2d layer to pretrain")
    first = layers[convs[0]]
    if data.shape[1] != first.in_channels:
        raise ValueError(f"data: the first Conv2d expects {first.in_channels} channels, got "
                         f"images {data.shape}")
    g = np.random.default_rng(seed)
    records = []
    was_training = model.training
    for i in convs:
        conv = layers[i]
        feats = _features(layers[:i], data, batch_size)
        act = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], _ACTIVATIONS) \
            else None
        encoder = nn.Sequential(conv, act) if act is not None else nn.Sequential(conv)
        encoder.train()
        probe = encoder(feats[:1])
        decoder = _decoder_for(conv, feats.shape[2:], probe.shape[2:], g)
        params = list(encoder.parameters()) + list(decoder.parameters())
        opt = optim.Adam(params, lr=lr)
        loss = nn.MSELoss()
        before = _reconstruction_error(encoder, decoder, feats, batch_size)
        epoch_losses = []
        for _ in range(epochs):
            order = g.permutation(len(feats))
            total = 0.0
            for j in range(0, len(order), batch_size):
                xb = np.ascontiguousarray(feats[order[j:j + batch_size]])
                opt.zero_grad()
                value = float(loss(decoder(encoder(xb)), xb))
                encoder.backward(decoder.backward(loss.backward()))
                opt.step()
                total += value * len(xb)
            epoch_losses.append(total / len(order))
        records.append({"layer": names[i], "error_before": before,
                        "error_after": _reconstruction_error(encoder, decoder, feats, batch_size),
                        "epoch_losses": epoch_losses})
    model.train(was_training)
    return records
