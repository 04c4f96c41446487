"""Padding of the trailing dims, as torch.nn.functional.pad: `pad` lists (before, after) amounts
starting from the last dim — (left, right), (left, right, top, bottom), ... — in one of four modes:

  'constant'   `value` outside (a negative amount crops that side)
  'reflect'    mirrored about the edge, the edge not repeated (amounts < the dim's size)
  'replicate'  the edge value repeated (the dim must not be empty)
  'circular'   wrapped around (amounts <= the dim's size)

pad_backward folds a gradient of the padded array back onto the input: every padded element adds
its gradient to the input element it copied. NumPy (np.pad and slices): a pure copy, CPU only.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from .._checks import _is_int, as_float_array

MODES = ("constant", "reflect", "replicate", "circular")
_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _specs(shape: Tuple[int, ...], pad, mode: str) -> List[Tuple[int, int, int]]:
    """[(axis, before, after)] from torch's flat `pad`, checked against `shape` and `mode`."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if isinstance(pad, (str, bytes)) or not isinstance(pad, Sequence) or not all(
            _is_int(v) for v in pad):
        raise TypeError(f"pad: expected a sequence of ints (left, right, top, bottom, ...), got "
                        f"{pad!r}")
    pad = [int(v) for v in pad]
    if len(pad) % 2 or len(pad) // 2 > len(shape):
        raise ValueError(f"pad: expected an even number of amounts, at most 2 per dim of the "
                         f"{len(shape)}-D input {shape}, got {len(pad)}")
    specs = []
    for k in range(len(pad) // 2):
        axis, before, after = len(shape) - 1 - k, pad[2 * k], pad[2 * k + 1]
        n = shape[axis]
        if mode == "constant":
            if n + before + after < 0:
                raise ValueError(f"pad: ({before}, {after}) on dim {axis} of size {n} leaves a "
                                 f"negative size")
        elif before < 0 or after < 0:
            raise ValueError(f"pad: mode {mode!r} takes amounts >= 0, got ({before}, {after}) "
                             f"for dim {axis}")
        elif mode == "reflect" and max(before, after) >= n and max(before, after) > 0:
            raise ValueError(f"pad: mode 'reflect' needs amounts < the dim's size, got "
                             f"({before}, {after}) for dim {axis} of size {n}")
        elif mode == "circular" and max(before, after) > n:
            raise ValueError(f"pad: mode 'circular' needs amounts <= the dim's size, got "
                             f"({before}, {after}) for dim {axis} of size {n}")
        elif mode == "replicate" and n == 0 and max(before, after) > 0:
            raise ValueError(f"pad: mode 'replicate' cannot pad the empty dim {axis}")
        specs.append((axis, before, after))
    return specs


def padded_shape(shape: Tuple[int, ...], pad, mode: str = "constant") -> Tuple[int, ...]:
    out = list(shape)
    for axis, before, after in _specs(tuple(shape), pad, mode):
        out[axis] += before + after
    return tuple(out)


def pad(x: np.ndarray, pad: Sequence[int], mode: str = "constant",
        value: float = 0.0) -> np.ndarray:
    """x padded per `pad` (torch.nn.functional.pad's order and modes; float32/float64)."""
    x = as_float_array("input", x)
    specs = _specs(x.shape, pad, mode)
    crop = [slice(None)] * x.ndim
    widths = [(0, 0)] * x.ndim
    for axis, before, after in specs:
        crop[axis] = slice(max(-before, 0), x.shape[axis] - max(-after, 0))
        widths[axis] = (max(before, 0), max(after, 0))
    x = x[tuple(crop)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_NUMPY_MODE[mode])


def _fold(g: np.ndarray, n: int, before: int, after: int, mode: str) -> np.ndarray:
    """g (..., before + n + after) -> (..., n): the last axis's padding folded back."""
    res = np.zeros(g.shape[:-1] + (n,), g.dtype)
    lo, hi = max(-before, 0), n - max(-after, 0)  # the input span that survives a crop
    res[..., lo:hi] = g[..., lo + before:hi + before]
    if mode == "reflect":  # out j < before came from i = before − j; after the end, mirrored
        res[..., 1:before + 1] += g[..., :before][..., ::-1]
        res[..., n - 1 - after:n - 1] += g[..., before + n:][..., ::-1]
    elif mode == "replicate":
        if before:
            res[..., 0] += g[..., :before].sum(axis=-1)
        if after:
            res[..., n - 1] += g[..., before + n:].sum(axis=-1)
    elif mode == "circular":  # left pad = the last `before` inputs, right pad = the first
        res[..., n - before:] += g[..., :before]
        res[..., :after] += g[..., before + n:]
    return res


def pad_backward(grad_out: np.ndarray, x: np.ndarray, pad: Sequence[int],
                 mode: str = "constant") -> np.ndarray:
    """dL/dx from dL/d(pad(x, pad, mode)): each padded element's gradient added to the input
    element it copied (constant padding: nothing; a cropped side: zeros)."""
    x = as_float_array("input", x)
    g = as_float_array("grad_out", grad_out, x.dtype)
    specs = _specs(x.shape, pad, mode)
    want = padded_shape(x.shape, pad, mode)
    if g.shape != want:
        raise ValueError(f"grad_out: expected shape {want} (input {x.shape} padded by "
                         f"{tuple(pad)}), got {g.shape}")
    for axis, before, after in specs:
        g = np.moveaxis(_fold(np.moveaxis(g, axis, -1), x.shape[axis], before, after, mode),
                        -1, axis)
    return np.ascontiguousarray(g)
