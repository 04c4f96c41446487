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
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        if len(images) != len(labels):
            raise ValueError(f"images and labels differ in length: {images.shape} vs {labels.shape}")
        if len(images) == 0:
            raise ValueError("BatchLoader: the dataset is empty")
        if prefetch < 0:
            raise ValueError(f"prefetch: expected >= 0, got {prefetch}")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
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
            xb = np.ascontiguousarray(self.augment(xb, epoch_rng(self.seed, epoch, AUGMENT_STREAM, i)),
                                      dtype=self.dtype)
        return xb, yb

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
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
