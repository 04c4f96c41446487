"""Property-based fuzzing of matmul and linear (any leading dims), forward and backward, against
the textbook formulas in float64 (c = a·b, grad_a = g·bᵀ, grad_b = aᵀ·g; y = x·Wᵀ + b), with the
rounding bound of a sum of products. Empty M/N/K and empty batches are valid (empty or zero
results); invalid draws (wrong ndim, inner dims that differ, an empty weight, bias or grad_out of
the wrong shape, wrong/mixed dtypes, non-arrays, a bad needs_input_grad) must raise
ValueError/TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F

from fuzz_common import BAD_DTYPES, DTYPES, THREADS, assert_bounded, corrupt, fuzz, threaded

CORRUPTIONS = ("ndim", "inner", "w_empty", "bias", "grad_shape", "dtype", "mixed_dtype",
               "nonarray", "needs")


@st.composite
def lin_args(draw):
    op = draw(st.sampled_from(["matmul", "linear"]))
    big = draw(st.integers(0, 4)) == 0  # sometimes past the GEMM's blocking and thread split
    hi = 70 if big else 9
    a = dict(op=op, m=draw(st.integers(0, hi)), k=draw(st.integers(0 if op == "matmul" else 1,
                                                                    hi)),
             n=draw(st.integers(0 if op == "matmul" else 1, hi)),
             lead=draw(st.lists(st.integers(0, 3), max_size=2)), bias=draw(st.booleans()),
             needs=tuple(draw(st.booleans()) for _ in range(2 if op == "matmul" else 3)),
             dtype=draw(DTYPES), bad=None)
    if corrupt(draw, 3):
        a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        if a["bad"] == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _expected_valid(a):
    bad = a["bad"]
    if bad == "ndim":
        return a["op"] == "linear"  # a 1-D input to linear is one sample; matmul needs 2-D
    if bad in ("inner", "dtype", "mixed_dtype", "nonarray"):
        return False
    if bad == "w_empty":
        return a["op"] == "matmul"  # matmul has no weight; (M, 0)·(0, N) is valid
    return not (bad == "bias" and a["op"] == "linear" and a["bias"])


def _arrays(a, rng):
    dt, (m, k, n) = a["dtype"], (a["m"], a["k"], a["n"])
    if a["op"] == "matmul":
        x, w, b = rng.standard_normal((m, k)), rng.standard_normal((k, n)), None
        if a["bad"] == "ndim":
            x = x[None]
    else:
        x = rng.standard_normal(tuple(a["lead"]) + (m, k))
        w = rng.standard_normal((0 if a["bad"] == "w_empty" else n, k))
        b = rng.standard_normal(n + (a["bad"] == "bias")) if a["bias"] else None
        if a["bad"] == "ndim":
            x = rng.standard_normal(k)  # a 1-D input is one sample: still valid
    if a["bad"] == "inner":
        w = w[:, :-1] if a["op"] == "linear" else np.concatenate([w, np.ones((1, w.shape[1]))])
    x, w = x.astype(dt), w.astype(dt)
    b = None if b is None else b.astype(dt)
    if a["bad"] == "dtype":
        x = x.astype(a["dtype_bad"])
    elif a["bad"] == "mixed_dtype":
        w = w.astype(np.float64 if dt == np.float32 else np.float32)
    elif a["bad"] == "nonarray":
        x = x.tolist()
    return x, w, b


@fuzz(400)
@given(lin_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_matmul_linear(a, seed):
    rng = np.random.default_rng(seed)
    x, w, b = _arrays(a, rng)
    ok = _expected_valid(a)
    late = ok and a["bad"] in ("grad_shape", "needs")
    event(f"{a['op']} " + ("valid" if ok and not late else f"invalid {a['bad']}"))
    fwd = (lambda: F.matmul(x, w)) if a["op"] == "matmul" else (lambda: F.linear(x, w, b))
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            fwd()
        return
    y = fwd()
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    if a["op"] == "matmul":
        want, scale = x64 @ w64, np.abs(x64) @ np.abs(w64)
    else:
        bb = 0 if b is None else b.astype(np.float64)
        want, scale = x64 @ w64.T + bb, np.abs(x64) @ np.abs(w64).T + np.abs(bb)
    assert y.dtype == a["dtype"]
    assert_bounded(y, want, scale, f"{a['op']} forward")
    g = rng.standard_normal(y.shape).astype(a["dtype"])
    needs = a["needs"]
    if late:
        if a["bad"] == "grad_shape":
            g = np.ones(g.shape[:-1] + (g.shape[-1] + 1,), g.dtype)
        else:
            needs = needs[:-1]
        with pytest.raises((ValueError, TypeError)):
            if a["op"] == "matmul":
                F.matmul_backward(g, x, w, needs_input_grad=needs)
            else:
                F.linear_backward(g, x, w, b, needs_input_grad=needs)
        return
    g64 = g.astype(np.float64)
    if a["op"] == "matmul":
        got = F.matmul_backward(g, x, w, needs_input_grad=needs)
        want = (g64 @ w64.T, x64.T @ g64)
        scale = (np.abs(g64) @ np.abs(w64).T, np.abs(x64).T @ np.abs(g64))
    else:
        got = F.linear_backward(g, x, w, b, needs_input_grad=needs)
        g2, x2 = g64.reshape(-1, w.shape[0]), x64.reshape(-1, w.shape[1])
        want = (g64 @ w64, g2.T @ x2, g2.sum(0))
        scale = (np.abs(g64) @ np.abs(w64), np.abs(g2).T @ np.abs(x2), np.abs(g2).sum(0))
    for i, (gi, wi, si) in enumerate(zip(got, want, scale)):
        if not needs[i] or (i == 2 and b is None):
            assert gi is None, f"grad {i} computed though not requested / no bias"
            continue
        assert gi.dtype == a["dtype"]
        assert_bounded(gi, wi, si, f"{a['op']} grad {i}")
