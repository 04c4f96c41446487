"""Batch augmentations for images (B, C, H, W): random crop with padding, horizontal flip,
random translation. Each is a callable `aug(xb, rng) -> new batch`; the input is not modified."""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

from .._checks import check_int


def _generator(rng) -> np.random.Generator:
    """rng itself, or a Generator seeded with it (an int, a SeedSequence, None)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_batch(name: str, xb: np.ndarray) -> None:
    if not isinstance(xb, np.ndarray) or xb.ndim != 4:
        raise ValueError(f"{name}: expected a batch (B, C, H, W), got "
                         f"{getattr(xb, 'shape', type(xb).__name__)}")


def crop_batch(padded: np.ndarray, top: np.ndarray, left: np.ndarray, h: int, w: int) -> np.ndarray:
    """Per-sample window: out[i] = padded[i, :, top[i]:top[i]+h, left[i]:left[i]+w]."""
    out = np.empty(padded.shape[:2] + (h, w), padded.dtype)
    for i in range(len(padded)):
        out[i] = padded[i, :, top[i]:top[i] + h, left[i]:left[i] + w]
    return out


class RandomCrop:
    """Pads each side by `padding` (zeros) and crops a random `size` window per image."""

    def __init__(self, size, padding: int = 0):
        pair = (size, size) if isinstance(size, numbers.Number) else size
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"RandomCrop: size must be an int or a pair (h, w), got {size!r}")
        self.size = tuple(check_int("RandomCrop: size", v, 1) for v in pair)
        self.padding = check_int("RandomCrop: padding", padding, 0)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomCrop", xb)
        rng = _generator(rng)
        p = self.padding
        padded = np.pad(xb, ((0, 0), (0, 0), (p, p), (p, p))) if p else xb
        (h, w), (ph, pw) = self.size, padded.shape[2:]
        if h > ph or w > pw:
            raise ValueError(f"RandomCrop: crop {self.size} larger than the padded image {(ph, pw)}")
        top = rng.integers(0, ph - h + 1, len(xb))
        left = rng.integers(0, pw - w + 1, len(xb))
        return crop_batch(padded, top, left, h, w)


class RandomTranslation:
    """Shifts each image by a random whole number of pixels in [-max_shift, max_shift] along each
    axis, filling with zeros; the size is kept."""

    def __init__(self, max_shift: int):
        self.max_shift = check_int("RandomTranslation: max_shift", max_shift, 0)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomTranslation", xb)
        rng = _generator(rng)
        m = self.max_shift
        padded = np.pad(xb, ((0, 0), (0, 0), (m, m), (m, m)))
        dy = rng.integers(-m, m + 1, len(xb))
        dx = rng.integers(-m, m + 1, len(xb))
        # Shifting the content by +d = reading the window that starts d pixels earlier.
        return crop_batch(padded, m - dy, m - dx, xb.shape[2], xb.shape[3])


class RandomHorizontalFlip:
    """Mirrors each image left-right with probability p."""

    def __init__(self, p: float = 0.5):
        if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomHorizontalFlip", xb)
        flip = _generator(rng).random(len(xb)) < self.p
        out = xb.copy()
        out[flip] = xb[flip][..., ::-1]
        return out


class Compose:
    """Applies augmentations in order, all drawing from the same generator."""

    def __init__(self, augmentations: Sequence[Callable]):
        if callable(augmentations) or not isinstance(augmentations, Sequence):
            raise TypeError(f"Compose: expected a list of augmentations, got "
                            f"{type(augmentations).__name__} (wrap a single one in a list)")
        bad = [a for a in augmentations if not callable(a)]
        if bad:
            raise TypeError(f"Compose: not callable: {bad!r}")
        self.augmentations = list(augmentations)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rng = _generator(rng)  # one generator for all of them, also when given a seed
        for aug in self.augmentations:
            xb = aug(xb, rng)
        return xb
