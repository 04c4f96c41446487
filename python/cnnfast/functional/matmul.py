"""Matrix product of two 2-D arrays on cnnfast's packed GEMM, and its backward.

    c[i, j] = Σ_p a[i, p] · b[p, j]        grad_a = grad_out · bᵀ,  grad_b = aᵀ · grad_out
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .. import _core
from .._checks import as_float_array, check_ndim, check_needs


def _prepare(a, b):
    a = as_float_array("a", a)
    b = as_float_array("b", b, a.dtype)
    check_ndim("a", a, 2, "(M, K)")
    check_ndim("b", b, 2, "(K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: inner dimensions differ: a {a.shape} (M, K) and b {b.shape} "
                         f"(K, N)")
    return a, b


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, K) · b (K, N) → (M, N), float32 or float64 (both the same dtype)."""
    a, b = _prepare(a, b)
    fn = _core.matmul_f32 if a.dtype == np.float32 else _core.matmul_f64
    return fn(a, b)


def matmul_backward(grad_out: np.ndarray, a: np.ndarray, b: np.ndarray,
                    needs_input_grad=(True, True)
                    ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(grad_a, grad_b) of matmul given grad_out = dL/dc (M, N); None where not requested."""
    a, b = _prepare(a, b)
    need = check_needs(needs_input_grad, 2)
    grad_out = as_float_array("grad_out", grad_out, a.dtype)
    expected = (a.shape[0], b.shape[1])
    if grad_out.shape != expected:
        raise ValueError(f"grad_out: expected shape {expected} (the matmul output for a {a.shape} "
                         f"and b {b.shape}), got {grad_out.shape}")
    fn = _core.matmul_backward_f32 if a.dtype == np.float32 else _core.matmul_backward_f64
    return fn(grad_out, a, b, need[0], need[1])
