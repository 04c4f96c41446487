"""mnist-seg: a semantic-segmentation set derived from MNIST. Each sample is a 2×2 mosaic of four
random digits (56×56, float32 in [0, 1]) with a per-pixel label map: the digit's class (0–9) where
its stroke is on (intensity > threshold), BACKGROUND (10) elsewhere — 11 classes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .datasets import load_mnist

BACKGROUND = 10
NUM_CLASSES = 11


@dataclass
class SegDataset:
    """Images (N, 1, H, W) float32 and label maps (N, H, W) int64."""
    images: np.ndarray
    masks: np.ndarray
    num_classes: int = NUM_CLASSES
    name: str = "mnist-seg"

    def __post_init__(self):
        if self.images.ndim != 4 or self.masks.ndim != 3 or \
                self.images.shape[:1] + self.images.shape[2:] != self.masks.shape:
            raise ValueError(f"SegDataset {self.name!r}: images must be (N, C, H, W) and masks "
                             f"(N, H, W), got {self.images.shape} and {self.masks.shape}")

    def __len__(self) -> int:
        return len(self.masks)

    def subset(self, index) -> "SegDataset":
        return SegDataset(self.images[index], self.masks[index], self.num_classes, self.name)


def make_mosaics(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator,
                 threshold: float = 0.5) -> SegDataset:
    """n mosaics from digits images (M, 1, h, w) in [0, 1] with labels (M,): four digits drawn
    at random (with replacement) per mosaic, placed row-major in a 2×2 grid."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1] != 1 or labels.shape != images.shape[:1]:
        raise ValueError(f"make_mosaics: expected images (M, 1, h, w) and labels (M,), got "
                         f"{images.shape} and {labels.shape}")
    if n < 1 or len(images) == 0:
        raise ValueError(f"make_mosaics: need n >= 1 and some digits, got n={n}, "
                         f"{len(images)} digits")
    h, w = images.shape[2:]
    pick = rng.integers(0, len(images), size=(n, 2, 2))
    tiles = images[pick, 0]                                    # (n, 2, 2, h, w)
    mosaic = tiles.transpose(0, 1, 3, 2, 4).reshape(n, 2 * h, 2 * w)
    classes = np.broadcast_to(labels[pick][:, :, None, :, None], (n, 2, h, 2, w))
    mask = np.where(mosaic > threshold, classes.reshape(n, 2 * h, 2 * w), BACKGROUND)
    return SegDataset(np.ascontiguousarray(mosaic[:, None], dtype=np.float32),
                      mask.astype(np.int64))


def load_mnist_seg(root, train: bool = True, n: Optional[int] = None, seed: int = 0,
                   threshold: float = 0.5, download: bool = False) -> SegDataset:
    """mnist-seg from the MNIST IDX files in root: n mosaics (default: a quarter of the split's
    digit count, so each digit appears about once: 15,000 train, 2,500 test), drawn reproducibly
    from seed; the test mosaics use test digits only."""
    digits = load_mnist(root, train=train, download=download)
    n = len(digits) // 4 if n is None else n
    rng = np.random.default_rng(seed + (0 if train else 1))
    return make_mosaics(digits.images, digits.labels, n, rng, threshold)
