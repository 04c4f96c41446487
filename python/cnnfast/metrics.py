"""Segmentation metrics: confusion matrix, pixel accuracy and mean intersection-over-union, and an
eval-mode helper that runs a segmentation model over a data set in batches."""
from __future__ import annotations

from typing import Dict

import numpy as np


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int,
                     ignore_index: int = -100) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = true class, columns = predicted class."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: pred {pred.shape} and target {target.shape} differ")
    keep = target != ignore_index
    t, p = target[keep].astype(np.int64), pred[keep].astype(np.int64)
    if t.size and (t.min() < 0 or t.max() >= num_classes or p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"confusion_matrix: labels must lie in 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def segmentation_scores(conf: np.ndarray) -> Dict[str, object]:
    """{'pixel_accuracy', 'mean_iou' (over classes present in target or prediction), 'iou' (per
    class, NaN where absent)} from a confusion matrix."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    iou = np.divide(tp, union, out=np.full(len(tp), np.nan), where=union > 0)
    total = conf.sum()
    return {"pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "mean_iou": float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
            "iou": iou}


def evaluate_segmentation(model, images: np.ndarray, masks: np.ndarray, num_classes: int,
                          batch_size: int = 64) -> Dict[str, object]:
    """Pixel accuracy and mean IoU of argmax(model(images)) against masks (N, H, W), in eval mode
    (the model's mode is restored)."""
    was_training = getattr(model, "training", False)
    model.eval()
    conf = np.zeros((num_classes, num_classes), np.int64)
    for i in range(0, len(masks), batch_size):
        logits = model(np.ascontiguousarray(images[i:i + batch_size], dtype=np.float32))
        conf += confusion_matrix(np.argmax(logits, axis=1), masks[i:i + batch_size], num_classes)
    if was_training:
        model.train()
    return segmentation_scores(conf)
