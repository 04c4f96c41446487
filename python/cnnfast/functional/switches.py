"""Switches: what max pooling recorded, so that max-unpooling never guesses.

A :class:`Switches` holds the int64 argmax indices (flat within each (N, C) plane of the pooling
input, PyTorch's convention) together with the shape of that input and the window parameters.
``max_unpool*d(y, switches)`` restores exactly that shape. ``np.asarray(switches)`` gives the
raw indices, so code written for index arrays keeps working.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True, eq=False)
class Switches:
    indices: np.ndarray              # int64 (N, C, *pooled spatial)
    input_shape: Tuple[int, ...]     # (N, C, *spatial) of the pooled input = unpooled output
    kernel_size: Optional[Tuple[int, ...]] = None  # None for adaptive / global pooling
    stride: Optional[Tuple[int, ...]] = None
    padding: Optional[Tuple[int, ...]] = None
    dilation: Optional[Tuple[int, ...]] = None
    ceil_mode: bool = False

    def __post_init__(self):
        if not hasattr(self.indices, "shape"):  # NumPy or device arrays
            raise TypeError(f"Switches.indices: expected an array, got "
                            f"{type(self.indices).__name__}")
        shape = self.input_shape
        if not (isinstance(shape, (tuple, list)) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shape)):
            raise TypeError(f"Switches.input_shape: expected a tuple of ints, got {shape!r}")
        shape = tuple(int(v) for v in shape)
        ndim = len(self.indices.shape)
        if len(shape) != ndim or min(shape, default=0) < 0 or max(shape, default=0) > 2**63 - 1:
            raise ValueError(f"Switches.input_shape {shape}: expected {ndim} "
                             f"sizes in int64 (N, C, *spatial) for indices of shape "
                             f"{self.indices.shape}")
        object.__setattr__(self, "input_shape", shape)

    def __array__(self, dtype=None, copy=None):
        return self.indices if dtype is None else self.indices.astype(dtype)

    @property
    def output_size(self) -> Tuple[int, ...]:
        """The spatial size max-unpooling restores (the pooled input's)."""
        return tuple(self.input_shape[2:])


def indices_array(indices, shape) -> np.ndarray:
    """The int64, C-contiguous index array of `indices` (array or Switches), shape-checked."""
    if isinstance(indices, Switches):
        indices = indices.indices
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"indices: expected a numpy.ndarray or Switches, got "
                        f"{type(indices).__name__}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"indices: dtype must be an integer type (int64), got {indices.dtype}")
    if indices.dtype.kind == "u" and indices.size and int(indices.max()) > 2**63 - 1:
        raise ValueError(f"indices: value {int(indices.max())} ({indices.dtype}) is past int64, "
                         f"so out of range of any plane")
    if indices.shape != tuple(shape):
        raise ValueError(f"indices: expected shape {tuple(shape)}, got {indices.shape}")
    return np.require(indices, dtype=np.int64, requirements=("C", "A"))
