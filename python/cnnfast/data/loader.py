"""Mini-batch iterator: per-epoch shuffling, optional augmentation, background prefetch.

Randomness is a pure function of (seed, epoch, batch index), so the batches of epoch e are the
same whether training ran straight through or resumed from a checkpoint, and whatever order the
prefetch thread produced them in.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from .._checks import check_int

Batch = Tuple[np.ndarray, np.ndarray]  # images (B, C, H, W) float32/64, labels (B,) int64


def epoch_rng(seed: int, epoch: int, stream: int, batch: int = 0) -> np.random.Generator:
    """The generator for one purpose (stream) of one epoch/batch of a seeded run."""
    return np.random.default_rng([seed, epoch, stream, batch])


SHUFFLE_STREAM, AUGMENT_STREAM = 1, 2


class BatchLoader:
    """Iterate `for xb, yb in loader.epoch(e)`; `len(loader)` is the number of batches.

    images (N, C, H, W), labels (N,). `augment(xb, rng) -> xb` is applied per batch with its
    own generator. `prefetch` batches are prepared ahead on a background thread (0 = inline).
    Batches of images come as `dtype` (float32, or float64 for a float64 model).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
                 shuffle: bool = True, seed: int = 0,
                 augment: Optional[Callable[[np.ndarray, np.random.Generator], np.ndarray]] = None,
                 drop_last: bool = False, prefetch: int = 2, dtype=np.float32):
        batch_size, seed, prefetch = (check_int(name, v, low) for name, v, low in (
            ("batch_size", batch_size, 1), ("seed", seed, 0), ("prefetch", prefetch, 0)))
        for name, a in (("images", images), ("labels", labels)):
            if not isinstance(a, np.ndarray) or a.ndim == 0:
                raise TypeError(f"BatchLoader: {name}: expected a numpy array (N, ...), got "
                                f"{type(a).__name__}")
        if labels.dtype.kind not in "iu":  # a float label would be cut to an int silently
            raise TypeError(f"BatchLoader: labels: expected integer class indices, got "
                            f"{labels.dtype}")
        if augment is not None and not callable(augment):
            raise TypeError(f"BatchLoader: augment: expected a callable (xb, rng) -> xb, got "
                            f"{type(augment).__name__}")
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length: {images.shape} vs {labels.shape}")
        if len(images) == 0:
            raise ValueError("BatchLoader: the dataset is empty")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.augment, self.drop_last, self.prefetch = augment, drop_last, prefetch
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {self.dtype}")

    def __len__(self) -> int:
        n, b = len(self.labels), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> np.ndarray:
        n = len(self.labels)
        if not self.shuffle:
            return np.arange(n)
        return epoch_rng(self.seed, epoch, SHUFFLE_STREAM).permutation(n)

    def _make_batch(self, epoch: int, i: int, order: np.ndarray) -> Batch:
        idx = order[i * self.batch_size:(i + 1) * self.batch_size]
        xb = np.ascontiguousarray(self.images[idx], dtype=self.dtype)
        yb = np.asarray(self.labels[idx], dtype=np.int64)
        if self.augment is not None:
            out = self.augment(xb, epoch_rng(self.seed, epoch, AUGMENT_STREAM, i))
            if not isinstance(out, np.ndarray) or out.ndim != xb.ndim or len(out) != len(xb):
                raise ValueError(f"BatchLoader: augment returned "
                                 f"{getattr(out, 'shape', type(out).__name__)} for a batch of "
                                 f"shape {xb.shape}: expected the same number of images")
            xb = np.ascontiguousarray(out, dtype=self.dtype)
        return xb, yb

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        epoch = check_int("epoch", epoch, 0)
        order = self.order(epoch)
        nb = len(self)
        if self.prefetch == 0:
            for i in range(nb):
                yield self._make_batch(epoch, i, order)
            return
        q: "queue.Queue" = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:  # False once the consumer has gone
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            try:
                for i in range(nb):
                    if not put(self._make_batch(epoch, i, order)):
                        return
                put(None)
            except BaseException as e:  # hand the error to the consumer
                put(e)

        worker = threading.Thread(target=produce, daemon=True, name="cnnfast-prefetch")
        worker.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:  # consumer stopped early (break / exception): let the producer exit
            stop.set()
            worker.join()

    def __iter__(self) -> Iterator[Batch]:
        return self.epoch(0)
