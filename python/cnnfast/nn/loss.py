"""Loss modules: `loss = crit(input, target)` returns the scalar (or per-item) loss and
`crit.backward()` returns dL/d(input), ready for `model.backward(...)`. PyTorch's argument names;
CrossEntropyLoss is the fused C++ softmax + cross-entropy (class weights, ignore_index, label
smoothing, per-pixel targets, and an optional per-pixel weight map at call time)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import functional as F
from . import _device
from .module import Module, saved


def _weights(name: str, a):
    """A loss's constant weights: None, an array (host or device) as given, or a sequence of
    numbers made into a float array (torch takes a tensor; a list was an AttributeError)."""
    if a is None or isinstance(a, np.ndarray) or _device.on_device(a):
        return a
    try:
        out = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected an array of numbers, got {type(a).__name__}") from None
    return out


def _as_dtype(a: Optional[np.ndarray], x):
    """A loss's constant weights cast to the input's float dtype (once per call, if needed)."""
    if a is None or not isinstance(x, np.ndarray) or a.dtype == x.dtype:
        return a
    return np.asarray(a).astype(x.dtype)


def _on_side(loss: Module, a, x):
    """A constant weight array where x lives: host weights for device logits are copied to the
    GPU once and cached on the loss (keyed by the host array, so reassigning it re-copies)."""
    if a is None or type(x) is np.ndarray or not _device.on_device(x) or _device.on_device(a):
        return _as_dtype(a, x)
    cached = loss.__dict__.get("_device_const")
    if cached is None or cached[0] is not a:
        cached = (a, _device.move(np.asarray(a, np.float32), "cuda", "weight"))
        object.__setattr__(loss, "_device_const", cached)
    return cached[1]


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self._ctx = None

    def _grad_out(self, grad_out):
        return 1.0 if grad_out is None else grad_out


class CrossEntropyLoss(_Loss):
    def __init__(self, weight: Optional[np.ndarray] = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index = _weights("weight", weight), ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, x, target, pixel_weight: Optional[np.ndarray] = None):
        """x: logits (N, C, *); target: int (N, *); pixel_weight: optional (N, *) weight map."""
        kw = dict(weight=_on_side(self, self.weight, x), ignore_index=self.ignore_index,
                  reduction=self.reduction, label_smoothing=self.label_smoothing,
                  pixel_weight=pixel_weight)
        loss, lse = F.cross_entropy(x, target, **kw, return_lse=True)
        self._ctx = (x, target, kw, lse)
        return loss

    def backward(self, grad_out=None):
        x, target, kw, lse = saved(self._ctx, self)
        return F.cross_entropy_backward(self._grad_out(grad_out), x, target, **kw, lse=lse)


class NLLLoss(_Loss):
    def __init__(self, weight: Optional[np.ndarray] = None, ignore_index: int = -100,
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = _weights("weight", weight), ignore_index

    def forward(self, x, target, pixel_weight: Optional[np.ndarray] = None):
        kw = dict(weight=_as_dtype(self.weight, x), ignore_index=self.ignore_index,
                  reduction=self.reduction,
                  pixel_weight=pixel_weight)
        self._ctx = (x, target, kw)
        return F.nll_loss(x, target, **kw)

    def backward(self, grad_out=None):
        x, target, kw = saved(self._ctx, self)
        return F.nll_loss_backward(self._grad_out(grad_out), x, target, **kw)


class MSELoss(_Loss):
    def forward(self, x, target):
        self._ctx = (x, target)
        return F.mse_loss(x, target, self.reduction)

    def backward(self, grad_out=None):
        x, target = saved(self._ctx, self)
        return F.mse_loss_backward(self._grad_out(grad_out), x, target, self.reduction,
                                   needs_target_grad=False)[0]


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight: Optional[np.ndarray] = None, reduction: str = "mean",
                 pos_weight: Optional[np.ndarray] = None):
        super().__init__(reduction)
        self.weight = _weights("weight", weight)
        self.pos_weight = _weights("pos_weight", pos_weight)

    def forward(self, x, target):
        self._ctx = (x, target)
        return F.binary_cross_entropy_with_logits(x, target, _as_dtype(self.weight, x),
                                                  self.reduction, _as_dtype(self.pos_weight, x))

    def backward(self, grad_out=None):
        x, target = saved(self._ctx, self)
        return F.binary_cross_entropy_with_logits_backward(
            self._grad_out(grad_out), x, target, _as_dtype(self.weight, x), self.reduction,
            _as_dtype(self.pos_weight, x))[0]
