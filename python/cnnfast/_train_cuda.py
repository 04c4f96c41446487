"""The GPU half of cnnfast.train (fit / evaluate / predict with device='cuda'): the data stays
NumPy on the host and each batch is copied to the device once (one from_numpy for the images,
one for the targets); the model was moved with .to('cuda'). Metrics stay on the device: each
batch's loss is copied (device to device, 4 bytes) into a per-epoch buffer and correct
predictions are counted by a kernel, so the host waits for the GPU only every `SYNC_EVERY`
batches (progress bar) and at the end of the epoch, where the sums are formed in the same order
and precision as the CPU loop (the same history for the same per-batch values)."""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

from . import _core, cuda
from .cuda._ops_layers import count_correct
from .metrics import confusion_matrix
from .train import batch_weights

SYNC_EVERY = 50  # batches between progress-bar refreshes (one small device -> host copy each)


class _Tally:
    """Per-batch losses (slots of a device buffer) and a device count of correct targets."""

    def __init__(self, batches: int):
        self.losses = cuda.empty((max(batches, 1),))
        self.correct = cuda.zeros((), np.int64)
        self.sizes, self.weights, self.targets = [], [], 0

    def add(self, logits, yd, value, n_images: int, weight: float, counted: int) -> None:
        """One batch: its loss (device scalar), images, weight in the set's mean loss and
        targets that count for accuracy (train.batch_weights)."""
        i = len(self.sizes)
        if i == self.losses.shape[0]:  # more batches than announced: grow (copy) the buffer
            grown = cuda.empty((2 * i,))
            _core.cuda_copy_on_device(grown.data_ptr, self.losses.data_ptr, 4 * i)
            self.losses = grown
        if value is not None:
            _core.cuda_copy_on_device(self.losses.data_ptr + 4 * i, _scalar(value).data_ptr, 4)
        count_correct(self.correct, logits, yd)
        self.sizes.append(n_images)
        self.weights.append(weight)
        self.targets += counted

    def read(self, with_loss: bool = True):
        """(weighted loss sum, correct, per-batch loss values): one synchronization."""
        vals = self.losses.to_numpy()[:len(self.sizes)] if with_loss else ()
        loss_sum = 0.0
        for v, w in zip(vals, self.weights):  # as the CPU loop: float(value) * weight, in order
            if w > 0:
                loss_sum += float(v) * w
        return loss_sum, int(self.correct.to_numpy()), vals

    def mean(self, loss_sum: float) -> float:
        total = sum(self.weights)
        return loss_sum / total if total > 0 else float("nan")

    def accuracy(self, correct: int) -> float:
        return correct / self.targets if self.targets else float("nan")


def _scalar(value):
    d = cuda.as_device_array(value, "loss")
    if d.shape != () or d.dtype != np.float32:
        raise ValueError(f"loss: fit on the GPU needs a scalar float32 loss (reduction 'mean' or "
                         f"'sum'), got shape {d.shape} dtype {d.dtype}")
    return d


def _check_finite(vals, sizes, epoch: int) -> None:
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
        i = int(bad[0])
        raise FloatingPointError(f"epoch {epoch + 1}: the loss became {float(vals[i])} after "
                                 f"{sum(sizes[:i])} images (learning rate too high?)")


def to_device(xb: np.ndarray, yb: np.ndarray):
    return cuda.from_numpy(xb), cuda.from_numpy(yb)


def train_epoch(model, loss, optimizer, loader, epoch: int, progress) -> Dict[str, float]:
    tally = _Tally(len(loader))
    t0 = time.perf_counter()
    for xb, yb in loader.epoch(epoch):
        xd, yd = to_device(xb, yb)
        optimizer.zero_grad()
        logits = model(xd)
        value = loss(logits, yd)
        model.backward(loss.backward())
        optimizer.step()
        tally.add(logits, yd, value, len(yb), *batch_weights(loss, yb))
        stats = None
        if progress.bar is not None and len(tally.sizes) % SYNC_EVERY == 0:
            loss_sum, correct, vals = tally.read()
            _check_finite(vals, tally.sizes, epoch)
            seen = sum(tally.sizes)
            stats = {"loss": tally.mean(loss_sum), "accuracy": tally.accuracy(correct),
                     "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}
        progress.update(stats)
    loss_sum, correct, vals = tally.read()  # waits for the epoch's last kernels
    elapsed = time.perf_counter() - t0
    _check_finite(vals, tally.sizes, epoch)
    seen = sum(tally.sizes)
    return {"loss": tally.mean(loss_sum), "accuracy": tally.accuracy(correct),
            "images_per_s": seen / max(elapsed, 1e-9), "time_s": elapsed}


def evaluate(model, x, y, loss, batch_size: int, num_classes: Optional[int]):
    """(correct, weighted loss sum, confusion matrix or None, total weight, targets counted) of
    eval-mode batches (train.batch_weights)."""
    n_batches = -(-len(y) // batch_size)
    tally = _Tally(n_batches)
    conf = None if num_classes is None else np.zeros((num_classes, num_classes), np.int64)
    for i in range(0, len(y), batch_size):
        xb = np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)
        yb = np.ascontiguousarray(y[i:i + batch_size], dtype=np.int64)
        xd, yd = to_device(xb, yb)
        logits = model(xd)
        tally.add(logits, yd, None if loss is None else loss(logits, yd), len(yb),
                  *batch_weights(loss, yb))
        if conf is not None:  # per-class scores need the predictions on the host
            conf += confusion_matrix(np.argmax(logits.to_numpy(), axis=1), yb, num_classes,
                                     getattr(loss, "ignore_index", -100))
    loss_sum, correct, _ = tally.read(with_loss=loss is not None)
    return correct, loss_sum, conf, sum(tally.weights), tally.targets


def predict(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    outs = [model(cuda.from_numpy(np.ascontiguousarray(images[i:i + batch_size],
                                                       dtype=np.float32))).to_numpy()
            for i in range(0, len(images), batch_size)]
    return np.concatenate(outs)
