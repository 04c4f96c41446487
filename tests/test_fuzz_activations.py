"""Property-based fuzzing of the activations (relu, leaky_relu, sigmoid, tanh), softmax /
log_softmax over any dim, dropout / dropout2d, forward and backward, on arrays of any rank (empty
ones included: an empty input gives an empty output) against tests/reference_nn.py. Invalid draws
(wrong dtypes, mixed dtypes, non-arrays, grad_out of another shape, dim out of range or not an int,
slope or p not a number / out of range, a mask of the wrong size or dtype, dropout2d below 3-D)
must raise ValueError/TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast
import cnnfast.functional as F

import reference_nn as ref
from fuzz_common import (BAD_DTYPES, DTYPES, THREADS, assert_bounded, check_directional,
                         corrupt, fuzz, threaded)

OPS = ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout", "dropout2d")
CORRUPTIONS = ("dtype", "mixed_dtype", "nonarray", "grad_shape", "dim", "slope", "p",
               "mask_size", "mask_dtype", "ndim")
REF = {"relu": lambda x: np.maximum(ref.f64(x), 0), "sigmoid": ref.sigmoid, "tanh": np.tanh}


@st.composite
def act_args(draw):
    op = draw(st.sampled_from(OPS))
    rank = draw(st.integers(3 if op == "dropout2d" else 1, 4))
    a = dict(op=op, shape=draw(st.lists(st.integers(0, 5), min_size=rank, max_size=rank)),
             dtype=draw(DTYPES), slope=draw(st.floats(-2, 2)) if op == "leaky_relu" else 0.01,
             dim=draw(st.integers(-rank, rank - 1)) if "softmax" in op else 1,
             p=draw(st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0])) if "dropout" in op else 0.5,
             training=draw(st.booleans()) if "dropout" in op else True, bad=None)
    if draw(st.integers(0, 3)) == 0:  # mostly non-empty
        a["shape"] = [max(v, 1) for v in a["shape"]]
    if corrupt(draw):
        what = a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        if what == "dim":
            a["dim"] = draw(st.sampled_from([rank, -rank - 1, 1.0, None]))
        elif what == "slope":
            a["slope"] = draw(st.sampled_from(["0.1", None, True]))
        elif what == "p":
            a["p"] = draw(st.sampled_from([-0.1, 1.5, "0.5", None]))
        elif what == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _expected_valid(a):
    op, bad = a["op"], a["bad"]
    if bad in ("dtype", "nonarray"):
        return False
    if bad == "ndim":
        return op != "dropout2d"  # the rest take any rank >= 1 (and ndim corrupts only 2d)
    return not {"dim": "softmax" in op, "slope": op == "leaky_relu", "p": "dropout" in op}.get(
        bad, False)  # corrupting what the op does not take changes nothing


def _forward(a, x, rng_seed):
    op = a["op"]
    if op == "leaky_relu":
        return F.leaky_relu(x, a["slope"])
    if "softmax" in op:
        return getattr(F, op)(x, dim=a["dim"])
    if "dropout" in op:
        return getattr(F, op)(x, a["p"], a["training"], rng=np.random.default_rng(rng_seed))
    return getattr(F, op)(x)


def _backward(a, g, x, y, mask):
    op = a["op"]
    if op in ("relu", "leaky_relu"):
        return F.relu_backward(g, x) if op == "relu" else F.leaky_relu_backward(g, x, a["slope"])
    if "softmax" in op:
        return getattr(F, op + "_backward")(g, y, dim=a["dim"])
    if "dropout" in op:  # an eval-mode forward is the identity: p = 0 pairs with it
        return getattr(F, op + "_backward")(g, mask, a["p"] if a["training"] else 0.0)
    return getattr(F, op + "_backward")(g, y)


@fuzz(500)
@given(act_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_activations(a, seed):
    rng = np.random.default_rng(seed)
    op, dt, bad = a["op"], a["dtype"], a["bad"]
    shape = a["shape"][:2] if bad == "ndim" and op == "dropout2d" else a["shape"]
    x = rng.standard_normal(shape).astype(dt)
    if bad == "dtype":
        x = x.astype(a["dtype_bad"])
    elif bad == "nonarray":
        x = x.tolist()
    ok = _expected_valid(a)
    late = ok and bad in ("mixed_dtype", "grad_shape", "mask_size", "mask_dtype")
    event(f"{op} " + ("valid" if ok and not late else f"invalid {bad}"))
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            _forward(a, x, seed)
        return
    res = _forward(a, x, seed)
    y, mask = res if "dropout" in op else (res, None)
    assert y.dtype == dt and y.shape == x.shape
    if op == "leaky_relu":
        want = ref.leaky_relu(x, a["slope"])
        assert_bounded(y, want, np.abs(want), op, factor=1.0)
    elif op == "relu":
        np.testing.assert_array_equal(y, np.maximum(x, 0))
    elif op in REF:  # float32: one rational tanh approximation, absolute error < 4e-7
        assert_bounded(y, REF[op](x), np.ones(x.shape), op, factor=0.25)
    elif "softmax" in op:
        want = getattr(ref, op)(x, a["dim"]) if x.size else np.zeros(x.shape)
        assert_bounded(y, want, 8 * (np.abs(want) + 1), op)
    else:
        outer = x.shape[0] * x.shape[1] if op == "dropout2d" else x.size
        assert mask.dtype == np.uint8 and mask.shape == (outer,)
        dropping = a["training"] and a["p"] > 0
        assert dropping or mask.all()
        scale = (0.0 if a["p"] == 1.0 else 1.0 / (1.0 - a["p"])) if dropping else 1.0
        factor = scale * (mask.reshape(x.shape[:2] + (1,) * (x.ndim - 2)) if op == "dropout2d"
                          else mask.reshape(x.shape))
        want = x.astype(np.float64) * factor
        assert_bounded(y, want, np.abs(want), op, factor=1.0)
    g = rng.standard_normal(x.shape).astype(dt)
    if late:
        if bad == "mixed_dtype":
            g = g.astype(np.float64 if dt == np.float32 else np.float32)
        elif bad == "grad_shape":
            g = g.reshape(-1)[:-1] if g.size else np.ones((1, 1), dt)
        elif bad == "mask_size":
            mask = np.ones(mask.size + 1 if mask is not None else 3, np.uint8)
        elif bad == "mask_dtype":
            mask = (mask if mask is not None else np.ones(3, np.uint8)).astype(np.int64)
        if "dropout" not in op and bad.startswith("mask"):
            return
        if "dropout" in op and bad == "mixed_dtype":
            return  # dropout_backward takes one float array: nothing to mix
        with pytest.raises((ValueError, TypeError)):
            _backward(a, g, x, y, mask)
        return
    gx = _backward(a, g, x, y, mask)
    assert gx.dtype == dt and gx.shape == x.shape
    if op == "relu":
        np.testing.assert_array_equal(gx, np.where(x > 0, g, 0).astype(dt))
    elif op == "leaky_relu":
        want = np.where(x > 0, g.astype(np.float64), a["slope"] * g.astype(np.float64))
        assert_bounded(gx, want, np.abs(want), op + " backward", factor=1.0)
    elif "dropout" in op:
        want = g.astype(np.float64) * factor
        assert_bounded(gx, want, np.abs(want), op + " backward", factor=1.0)
    else:
        f = REF.get(op) or (lambda v: getattr(ref, op)(v, a["dim"]) if v.size else v)
        check_directional(f, [x], [gx], g, rng, op + " backward")


@fuzz(150)
@given(st.sampled_from(OPS[:6]), DTYPES, st.sampled_from(cnnfast.info()["isa_available"]),
       st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_activations_nan_inf(op, dt, isa, seed):
    """On every ISA path (SIMD body and scalar tail): NaN stays NaN, ±Inf saturates as IEEE says
    (relu(−inf) = 0, not 0·inf), nothing else becomes non-finite."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 11)).astype(dt)
    r, c = int(rng.integers(0, 3)), int(rng.integers(0, 11))
    x[r, c] = rng.choice([np.nan, np.inf, -np.inf])
    before = cnnfast.info()["isa"]
    cnnfast.set_isa(isa)
    try:
        y = getattr(F, op)(x)
    finally:
        cnnfast.set_isa(before)
    bad = ~np.isfinite(y)
    if "softmax" in op:  # the row holding it may all go NaN (Inf − Inf); other rows are clean
        assert not bad[np.arange(3) != r].any()
        return
    saturates = op in ("sigmoid", "tanh") or (op == "relu" and x[r, c] < 0)
    want = np.isnan(x) | (np.isinf(x) & (not saturates))
    np.testing.assert_array_equal(bad, want)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
