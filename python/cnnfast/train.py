"""Training loop: `fit` (epochs of shuffled, augmented mini-batches with progress, validation,
scheduler, callbacks and atomic .npz checkpoints with exact resume) and `evaluate`.

Targets are class labels (N,) or per-pixel label maps (N, H, W) (segmentation, e.g. a
`cnnfast.data.SegDataset`); 'accuracy' is the fraction of correct targets (pixel accuracy for
label maps). With `num_classes`, validation also reports the mean and per-class IoU.

Works with any model/loss/optimizer following the cnnfast.nn contract: `logits = model(x)`,
`model.backward(grad_logits)`, `model.train()/eval()/state_dict()/load_state_dict()`;
`value = loss(logits, labels)`, `loss.backward() -> grad_logits`; `optimizer.zero_grad()/step()/
state_dict()/load_state_dict()`; optional `scheduler.step()/state_dict()/load_state_dict()`.

device='cuda' (fit, evaluate, predict) runs the model on the GPU (cnnfast.cuda): the model is
moved there with .to('cuda') and stays there afterwards; the data stays NumPy on the host and
each batch is copied once; loss and accuracy are kept on the device and read back rarely (see
_train_cuda.py). device='cpu' (fit's default) is the NumPy path unchanged.

Reproducibility: every random draw is a function of (seed, epoch, purpose): shuffling and
augmentation through the BatchLoader; dropout through the `rng` generator of each layer that has
one, `np.random` and the library's seeding hooks (SEED_HOOKS), all reseeded at each epoch start. Checkpoints are taken
at epoch ends, so resuming from one gives exactly the run that was never interrupted.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .checkpoint import load_checkpoint, save_checkpoint
from .data.datasets import Dataset
from .data.loader import BatchLoader
from .data.mnist_seg import SegDataset
from .metrics import confusion_matrix, segmentation_scores

DROPOUT_STREAM = 3
HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_mean_iou", "val_iou",
                "images_per_s", "time_s", "lr")
DataArg = Union[Dataset, SegDataset, Tuple[np.ndarray, np.ndarray]]


# Seeding hooks of the layer library, used when present: (module, function).
SEED_HOOKS = (("cnnfast.init", "seed"), ("cnnfast.nn", "manual_seed"), ("cnnfast", "manual_seed"))


def _global_seed(seed: int) -> None:
    """Seeds np.random's global state and the layer library's generators that exist."""
    np.random.seed(seed % 2**32)
    for module, func in SEED_HOOKS:
        owner = sys.modules.get(module)
        if owner is not None and callable(getattr(owner, func, None)):
            getattr(owner, func)(seed)


def seed_everything(seed: int) -> None:
    """Call before building the model so that its initialization is fixed by `seed`."""
    _global_seed(int(np.random.SeedSequence([int(seed), 0]).generate_state(1)[0]))


def _seed_epoch(model, seed: int, epoch: int) -> None:
    """Reseeds the global generators and every layer's own `rng` (e.g. Dropout's) for one epoch."""
    _global_seed(int(np.random.SeedSequence([seed, epoch, DROPOUT_STREAM]).generate_state(1)[0]))
    modules = model.named_modules() if hasattr(model, "named_modules") else [("", model)]
    for i, (_, module) in enumerate(modules):
        if isinstance(getattr(module, "rng", None), np.random.Generator):
            module.rng = np.random.default_rng([seed, epoch, DROPOUT_STREAM, i])


def _as_arrays(name: str, data: DataArg) -> Tuple[np.ndarray, np.ndarray]:
    if isinstance(data, Dataset):
        return data.images, data.labels
    if isinstance(data, SegDataset):
        return data.images, data.masks
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if x.ndim < 2 or y.ndim < 1 or len(x) != len(y):
            raise ValueError(f"{name}: expected (images (N, ...), labels (N,) or label maps "
                             f"(N, H, W)), got shapes {x.shape} and {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{name}: labels must be integers, got {y.dtype}")
        return x, y
    raise TypeError(f"{name}: expected a cnnfast.data.Dataset, SegDataset or an (images, labels) "
                    f"pair, got {type(data).__name__}")


def _current_lr(optimizer) -> Optional[float]:
    groups = getattr(optimizer, "param_groups", None)
    try:
        return float(groups[0]["lr"])
    except (TypeError, KeyError, IndexError):
        return None


def _place(model, device, what: str) -> str:
    """Checks `device` ('cpu' / 'cuda'; None: where the model is) and moves the model there
    (only when it is elsewhere: a model on the CPU is left untouched by device='cpu')."""
    from .nn import _device
    current = getattr(model, "device", "cpu")
    if device is None:
        return current if current in _device.DEVICES else "cpu"
    _device.check_device(device, f"{what}: device")
    if device == "cuda":
        _device.require_cuda(what)
    if device != current:
        if not callable(getattr(model, "to", None)):
            raise TypeError(f"{what}: device={device!r} needs a model with .to(device) (a "
                            f"cnnfast.nn.Module), got {type(model).__name__}")
        model.to(device)
    return device


def _batch_size(what: str, batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"{what}: batch_size: expected an int >= 1, got {batch_size!r}")
    return int(batch_size)


def _input_dtype(model) -> np.dtype:
    """float64 for a model whose parameters are float64 (Module.to(np.float64)), else float32."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    data = getattr(first, "data", None)
    return np.dtype(np.float64) if getattr(data, "dtype", None) == np.float64 else np.dtype(np.float32)


def predict(model, images: np.ndarray, batch_size: int = 256, device=None) -> np.ndarray:
    """Logits for all images, in eval mode, in batches (device: 'cpu', 'cuda' or None = where
    the model is; the logits come back as NumPy). The model's train/eval mode is restored."""
    batch_size = _batch_size("predict", batch_size)
    was_training = getattr(model, "training", None)
    model.eval()
    try:
        if _place(model, device, "predict") == "cuda":
            from . import _train_cuda
            return _train_cuda.predict(model, images, batch_size)
        dtype = _input_dtype(model)
        outs = [np.asarray(model(np.ascontiguousarray(images[i:i + batch_size], dtype=dtype)))
                for i in range(0, len(images), batch_size)]
        return np.concatenate(outs)
    finally:
        if was_training:
            model.train()


def batch_weights(loss, yb: np.ndarray) -> Tuple[float, int]:
    """(the weight of a batch's mean loss in the whole set's mean, its targets that count for
    accuracy). CrossEntropyLoss / NLLLoss with reduction 'mean' average over Σ w[target] of the
    targets not ignored, so the set's loss is torch's mean over the whole set (weighting batches
    by their images was not, with class weights or ignored targets); other losses weight a batch
    by its images. Targets equal to the loss's ignore_index (-100 without one) are not counted
    for accuracy: no prediction can match them."""
    ignore = getattr(loss, "ignore_index", -100)
    valid = yb != ignore
    counted = int(np.count_nonzero(valid))
    if not hasattr(loss, "ignore_index") or getattr(loss, "reduction", "mean") != "mean":
        return float(len(yb)), counted
    w = getattr(loss, "weight", None)
    if w is None:
        return float(counted), counted
    from .nn import _device
    w = _device.host_copy(w) if _device.on_device(w) else np.asarray(w)
    return float(np.asarray(w, np.float64)[yb[valid]].sum()), counted


def evaluate(model, data: DataArg, loss=None, batch_size: int = 256,
             num_classes: Optional[int] = None, device=None) -> Dict[str, Any]:
    """{'accuracy' (of labels, or of pixels for label maps; targets equal to the loss's
    ignore_index are not counted), 'loss' (the loss's mean over the whole set, as one batch of
    everything would give — see batch_weights; NaN without a loss), 'n' (images)} in eval mode;
    with num_classes also 'mean_iou' and 'iou' (per class, NaN where a class is neither in the
    targets nor predicted; see cnnfast.metrics). The model's train/eval mode is restored
    afterwards when it exposes `.training`. device: 'cpu', 'cuda' or None (where the model
    is)."""
    x, y = _as_arrays("evaluate: data", data)
    batch_size = _batch_size("evaluate", batch_size)
    on_gpu = _place(model, device, "evaluate") == "cuda"
    dtype = _input_dtype(model)
    was_training = getattr(model, "training", None)
    model.eval()
    correct, total_loss, weight, counted = 0, 0.0, 0.0, 0
    ignore = getattr(loss, "ignore_index", -100)
    conf = None if num_classes is None else np.zeros((num_classes, num_classes), np.int64)
    if on_gpu:
        from . import _train_cuda
        correct, total_loss, conf, weight, counted = _train_cuda.evaluate(
            model, x, y, loss, batch_size, num_classes)
    for i in range(0, 0 if on_gpu else len(y), batch_size):
        xb = np.ascontiguousarray(x[i:i + batch_size], dtype=dtype)
        yb = np.asarray(y[i:i + batch_size], dtype=np.int64)
        logits = np.asarray(model(xb))
        pred = np.argmax(logits, axis=1)
        correct += int(np.sum(pred == yb))
        w, c = batch_weights(loss, yb)
        counted += c
        if conf is not None:
            conf += confusion_matrix(pred, yb, num_classes, ignore)
        if loss is not None and w > 0:  # a batch of ignored targets only: no loss to add
            total_loss += float(loss(logits, yb)) * w
            weight += w
    if was_training:
        model.train()
    nan = float("nan")
    result = {"accuracy": correct / counted if counted else nan,
              "loss": total_loss / weight if loss is not None and weight > 0 else nan,
              "n": len(y)}
    if conf is not None:
        scores = segmentation_scores(conf)
        result.update(mean_iou=scores["mean_iou"], iou=scores["iou"].tolist())
    return result


class _Progress:
    """tqdm bar when tqdm is installed, else one plain line per epoch; nothing when quiet."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar, self.enabled, self.desc = None, enabled, desc
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=desc, unit="batch", leave=True,
                                dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, stats: Optional[Dict[str, float]]) -> None:
        """One batch done; stats (None: unchanged, the GPU loop reads them only now and then)."""
        if self.bar is not None:
            self.bar.update(1)
            if stats is not None:
                self.bar.set_postfix(loss=f"{stats['loss']:.4f}",
                                     acc=f"{stats['accuracy']:.4f}",
                                     img_s=f"{stats['images_per_s']:.0f}", refresh=False)

    def close(self, record: Dict[str, Any]) -> None:
        miou = record.get("val_mean_iou")
        if self.bar is not None:
            if record.get("val_accuracy") is not None:
                extra = {} if miou is None else {"val_miou": f"{miou:.4f}"}
                self.bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['accuracy']:.4f}",
                                     val_acc=f"{record['val_accuracy']:.4f}", **extra,
                                     img_s=f"{record['images_per_s']:.0f}")
            self.bar.close()
        elif self.enabled:
            val = ("" if record.get("val_accuracy") is None else
                   f"  val_loss {record['val_loss']:.4f}  val_acc {record['val_accuracy']:.4f}")
            val += "" if miou is None else f"  val_mean_iou {miou:.4f}"
            print(f"{self.desc}: loss {record['loss']:.4f}  acc {record['accuracy']:.4f}{val}  "
                  f"{record['images_per_s']:.0f} img/s  {record['time_s']:.1f} s", flush=True)


def _train_one_epoch(model, loss, optimizer, loader: BatchLoader, epoch: int,
                     progress: _Progress, device: str = "cpu") -> Dict[str, float]:
    model.train()
    seen, targets, correct, loss_sum, weight = 0, 0, 0, 0.0, 0.0
    # The input is data: the first layer need not compute dL/d(input) (restored afterwards).
    needs_input_grad = getattr(model, "needs_input_grad", None)
    if needs_input_grad is not None:
        model.set_needs_input_grad(False)
    t0 = time.perf_counter()
    try:
        if device == "cuda":
            from . import _train_cuda
            return _train_cuda.train_epoch(model, loss, optimizer, loader, epoch, progress)
        for xb, yb in loader.epoch(epoch):
            optimizer.zero_grad()
            logits = model(xb)
            value = float(loss(logits, yb))
            model.backward(loss.backward())
            optimizer.step()
            w, c = batch_weights(loss, yb)
            if w > 0 and not np.isfinite(value):  # (no target counted: a mean over none)
                raise FloatingPointError(f"epoch {epoch + 1}: the loss became {value} after "
                                         f"{seen} images (learning rate too high?)")
            seen += len(yb)
            targets += c  # labels, or pixels of label maps, not ignored
            if w > 0:
                loss_sum += value * w
                weight += w
            correct += int(np.sum(np.argmax(np.asarray(logits), axis=1) == yb))
            elapsed = time.perf_counter() - t0
            progress.update({"loss": loss_sum / max(weight, 1e-300),
                             "accuracy": correct / max(targets, 1),
                             "images_per_s": seen / max(elapsed, 1e-9)})
    finally:
        if needs_input_grad is not None:
            model.set_needs_input_grad(needs_input_grad)
    elapsed = time.perf_counter() - t0
    nan = float("nan")
    return {"loss": loss_sum / weight if weight > 0 else nan,
            "accuracy": correct / targets if targets else nan,
            "images_per_s": seen / max(elapsed, 1e-9), "time_s": elapsed}


def _nonfinite_parameter(model) -> Optional[str]:
    """The name of the first host parameter holding a NaN or an infinity, or None. (Device
    parameters are not copied back for this: on the GPU the epoch's losses are checked at its
    end, and weights the last step broke show in the next epoch's or the evaluation's loss.)"""
    from .nn import _device
    named = getattr(model, "named_parameters", None)
    for name, p in (named() if callable(named) else ()):
        if not _device.on_device(p.data) and not np.isfinite(p.data).all():
            return name
    return None


def fit(model, loss, optimizer, train_data: DataArg, val_data: Optional[DataArg] = None,
        epochs: int = 1, batch_size: int = 64, augment: Optional[Callable] = None,
        scheduler=None, callbacks: Sequence[Callable] = (), progress: bool = True,
        seed: Optional[int] = None, checkpoint: Optional[str] = None, resume: bool = False,
        checkpoint_meta: Optional[Dict[str, Any]] = None, prefetch: int = 2,
        num_classes: Optional[int] = None, device: str = "cpu") -> Dict[str, list]:
    """Trains for `epochs` epochs (in total, counting those a resumed checkpoint already did).

    Returns the history: a dict of per-epoch lists (HISTORY_KEYS; val_* are None without
    val_data). `augment(xb, rng) -> xb` transforms training batches. `scheduler.step()` runs after
    every epoch. Each callback is called as `cb(epoch, record)`; returning True stops training.
    `checkpoint`: path of an .npz written atomically after every epoch (with `checkpoint_meta`,
    e.g. the CLI's configuration); `resume=True` continues from it if it exists (same seed).
    `num_classes`: also record the validation mean IoU and per-class IoU (segmentation).
    `device`: 'cpu' (NumPy) or 'cuda' (the model is moved with .to('cuda') first and stays
    there; every batch is copied to the GPU once; RuntimeError naming cuda.reason() without a
    usable device).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path>")
    x, y = _as_arrays("fit: train_data", train_data)
    if val_data is not None:  # fail before training, not after the first epoch
        _as_arrays("fit: val_data", val_data)
    device = _place(model, device, "fit")
    if checkpoint is not None:  # fail before training, not after the first epoch
        for obj, what in ((model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler")):
            missing = [m for m in ("state_dict", "load_state_dict")
                       if obj is not None and not callable(getattr(obj, m, None))]
            if missing:
                raise TypeError(f"checkpoint: the {what} ({type(obj).__name__}) has no "
                                f"{' / '.join(missing)}(), which checkpoints need")
    history: Dict[str, list] = {k: [] for k in HISTORY_KEYS}
    start = 0
    if resume and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        if seed is not None and int(seed) != state["seed"]:
            raise ValueError(f"resume: {checkpoint} was trained with seed {state['seed']}, "
                             f"got seed={seed}")
        seed = state["seed"]
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            if state.get("scheduler") is None:
                raise ValueError(f"resume: {checkpoint} has no scheduler state")
            scheduler.load_state_dict(state["scheduler"])
        start = int(state["epoch"])
        history = {k: list(state["history"].get(k, [None] * start)) for k in HISTORY_KEYS}
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    seed = int(seed)
    loader = BatchLoader(x, y, batch_size, shuffle=True, seed=seed, augment=augment,
                         prefetch=prefetch,
                         dtype=np.float32 if device == "cuda" else _input_dtype(model))
    for epoch in range(start, epochs):
        _seed_epoch(model, seed, epoch)
        bar = _Progress(progress, len(loader), f"epoch {epoch + 1}/{epochs}")
        record: Dict[str, Any] = {"epoch": epoch + 1, "lr": _current_lr(optimizer)}
        record.update(_train_one_epoch(model, loss, optimizer, loader, epoch, bar, device))
        bad = _nonfinite_parameter(model)
        if bad is not None:  # the last step's update: its loss was still finite
            bar.close(record)
            raise FloatingPointError(f"epoch {epoch + 1}: parameter {bad!r} became non-finite "
                                     f"(learning rate too high?); no checkpoint was written "
                                     f"for this epoch")
        record["val_loss"] = record["val_accuracy"] = None
        record["val_mean_iou"] = record["val_iou"] = None
        if val_data is not None:
            val = evaluate(model, val_data, loss, batch_size=max(batch_size, 256),
                           num_classes=num_classes, device=device)
            record["val_loss"], record["val_accuracy"] = val["loss"], val["accuracy"]
            record["val_mean_iou"], record["val_iou"] = val.get("mean_iou"), val.get("iou")
        bar.close(record)
        if scheduler is not None:
            scheduler.step()
        for k in HISTORY_KEYS:
            history[k].append(record[k])
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "epoch": epoch + 1, "seed": seed, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "history": history, "meta": dict(checkpoint_meta or {})})
        stops = [cb(epoch + 1, record) is True for cb in callbacks]  # every callback runs
        if any(stops):
            break
    return history
