"""Batch augmentations for images (B, C, H, W): random crop with padding, horizontal flip,
random translation. Each is a callable `aug(xb, rng) -> new batch`; the input is not modified."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


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
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1 or padding < 0:
            raise ValueError(f"RandomCrop: size must be >= 1 and padding >= 0, got size={size!r}, "
                             f"padding={padding}")
        self.padding = int(padding)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomCrop", xb)
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
        if max_shift < 0:
            raise ValueError(f"RandomTranslation: max_shift must be >= 0, got {max_shift}")
        self.max_shift = int(max_shift)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomTranslation", xb)
        m = self.max_shift
        padded = np.pad(xb, ((0, 0), (0, 0), (m, m), (m, m)))
        dy = rng.integers(-m, m + 1, len(xb))
        dx = rng.integers(-m, m + 1, len(xb))
        # Shifting the content by +d = reading the window that starts d pixels earlier.
        return crop_batch(padded, m - dy, m - dx, xb.shape[2], xb.shape[3])


class RandomHorizontalFlip:
    """Mirrors each image left-right with probability p."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch("RandomHorizontalFlip", xb)
        flip = rng.random(len(xb)) < self.p
        out = xb.copy()
        out[flip] = xb[flip][..., ::-1]
        return out


class Compose:
    """Applies augmentations in order, all drawing from the same generator."""

    def __init__(self, augmentations: Sequence[Callable]):
        self.augmentations = list(augmentations)

    def __call__(self, xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for aug in self.augmentations:
            xb = aug(xb, rng)
        return xb
