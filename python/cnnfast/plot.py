"""PNG figures of a training run (matplotlib, the optional extra `cnnfast[plot]`): loss and
accuracy curves, the first layer's filters as a grid, and feature maps of one image."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'cnnfast[plot]'") from None
    return Figure(figsize=(width, height), dpi=100)


def plot_history(history: Dict[str, list], path: str) -> str:
    """Loss and accuracy per epoch (training and, when recorded, validation/test), and the test
    mean IoU when recorded (segmentation)."""
    panels = [("loss", "loss"), ("accuracy", "accuracy")]
    if any(v is not None for v in history.get("val_mean_iou") or []):
        panels.append(("mean_iou", "mean IoU"))
    fig = _figure(5 * len(panels), 4)
    epochs = history["epoch"]
    for i, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if key in history:
            ax.plot(epochs, history[key], "o-", label="train")
        val = history.get("val_" + key) or []
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], "s-", label="test")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return path


def _grid(n: int):
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def plot_filters(weight: np.ndarray, path: str) -> str:
    """First-layer filters (K, C, R, S) as a grid: grayscale per filter (RGB when C == 3)."""
    w = np.asarray(weight, np.float64)
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a (K, C, R, S) weight, got {w.shape}")
    rows, cols = _grid(len(w))
    fig = _figure(1.2 * cols + 0.4, 1.2 * rows + 0.4)
    for k in range(len(w)):
        ax = fig.add_subplot(rows, cols, k + 1)
        f = w[k]
        f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
        if f.shape[0] == 3:
            ax.imshow(f.transpose(1, 2, 0), interpolation="nearest")
        else:
            ax.imshow(f.mean(axis=0), cmap="gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{k}", fontsize=8)
    fig.suptitle(f"first-layer filters {tuple(w.shape)}")
    fig.savefig(path)
    return path


def feature_maps(model, image: np.ndarray) -> List[Tuple[str, np.ndarray]]:
    """(label, (C, H, W) output) of every layer of a sequential model that keeps an image shape,
    for one image (C, H, W). Needs a model that iterates over its layers (like nn.Sequential)."""
    try:
        layers = list(iter(model))
    except TypeError:
        raise TypeError(f"feature_maps: {type(model).__name__} does not iterate over its layers "
                        f"(use a Sequential model)") from None
    model.eval()
    x, maps = np.ascontiguousarray(image[None], dtype=np.float32), []
    for i, layer in enumerate(layers):
        x = np.asarray(layer(x))
        if x.ndim != 4:
            break
        maps.append((f"{i}: {type(layer).__name__}", x[0]))
    return maps


def plot_feature_maps(model, image: np.ndarray, path: str, max_layers: int = 6) -> str:
    """The input image, then each image-shaped layer output, one row per layer."""
    maps = feature_maps(model, image)[:max_layers]
    width = max([image.shape[0]] + [m.shape[0] for _, m in maps])
    fig = _figure(1.1 * width + 1.5, 1.2 * (len(maps) + 1) + 0.3)
    rows = len(maps) + 1
    for r, (name, m) in enumerate([("input", image)] + maps):
        for c in range(m.shape[0]):
            ax = fig.add_subplot(rows, width, r * width + c + 1)
            ax.imshow(m[c], cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle("feature maps of one test image")
    fig.savefig(path)
    return path


def first_conv_weight(model) -> Optional[np.ndarray]:
    """The first 4-D parameter of the model (the first convolution's weight), if any."""
    for _, p in model.named_parameters():
        data = np.asarray(getattr(p, "data", p))
        if data.ndim == 4:
            return data
    return None


def plot_run(model, history: Dict[str, list], image: np.ndarray, out_dir: str) -> List[str]:
    """Writes curves.png, filters.png and feature_maps.png (what applies) into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    written = [plot_history(history, os.path.join(out_dir, "curves.png"))]
    w = first_conv_weight(model)
    if w is not None:
        written.append(plot_filters(w, os.path.join(out_dir, "filters.png")))
    if hasattr(model, "__iter__"):  # per-layer maps need a sequential model
        written.append(plot_feature_maps(model, image, os.path.join(out_dir, "feature_maps.png")))
    return written
