"""Property-based fuzzing of the losses (cross-entropy with class weights, ignore_index, label
smoothing and pixel weights over (N, C, *spatial); NLL; MSE; BCE-with-logits with weight and
pos_weight; every reduction), forward and backward, against tests/reference_nn.py (backward:
float64 central differences of the reference). An empty batch is valid ('mean' is NaN as in
PyTorch); invalid draws (targets out of range / not integers / of the wrong shape, weights of the
wrong shape or dtype, label_smoothing outside [0, 1], unknown reduction, non-int ignore_index, no
classes, a grad_out of the wrong shape or not a number, wrong dtypes, non-arrays) must raise
ValueError/TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F

import reference_nn as ref
from fuzz_common import (BAD_DTYPES, DTYPES, THREADS, assert_near, check_directional, corrupt,
                         fuzz, threaded)

CLASS_BAD = ("target_range", "target_dtype", "target_shape", "weight_shape", "smoothing",
             "ignore_type", "no_classes", "pixel_shape")
PAIR_BAD = ("target_shape", "target_dtype", "weight_shape", "pos_shape")
COMMON_BAD = ("reduction", "dtype", "nonarray", "grad_shape", "grad_type")


@st.composite
def loss_args(draw):
    op = draw(st.sampled_from(["cross_entropy", "nll_loss", "mse", "bce"]))
    classy = op in ("cross_entropy", "nll_loss")
    spatial = draw(st.lists(st.integers(1, 3), max_size=2)) if classy else []
    a = dict(op=op, n=draw(st.integers(0, 4)), c=draw(st.integers(1, 5)), spatial=spatial,
             reduction=draw(st.sampled_from(["mean", "sum", "none"])),
             weight=draw(st.booleans()), pixel=classy and draw(st.booleans()),
             pos=op == "bce" and draw(st.booleans()),
             ignore=draw(st.sampled_from([-100, -1, 0])) if classy else -100,
             smoothing=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])) if op == "cross_entropy"
             else 0.0, dtype=draw(DTYPES), bad=None)
    if a["n"] == 0 and a["reduction"] == "mean":
        a["reduction"] = "sum"  # (a NaN mean is checked in test_fuzz_loss_empty_and_ignored)
    if corrupt(draw, 3):
        a["bad"] = draw(st.sampled_from((CLASS_BAD if classy else PAIR_BAD) + COMMON_BAD))
        if a["bad"] == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _expected_valid(a):
    bad = a["bad"]
    if bad in (None, "grad_shape", "grad_type"):
        return True
    if bad == "target_range":
        return a["n"] == 0  # no target to corrupt
    if bad == "pixel_shape":
        return not a["pixel"]
    if bad == "weight_shape":
        return a["op"] == "mse" or not a["weight"]  # mse takes no weight
    if bad == "pos_shape":
        return not a["pos"]
    if bad == "smoothing":
        return a["op"] != "cross_entropy"
    return False  # target dtype/shape, ignore_index type, no classes, reduction, dtype, non-array


def _arrays(a, rng):
    dt, n, c, classy = a["dtype"], a["n"], a["c"], a["op"] in ("cross_entropy", "nll_loss")
    bad = a["bad"]
    c_x = 0 if bad == "no_classes" else c
    x = rng.standard_normal((n, c_x) + tuple(a["spatial"]) if classy else (n, c)).astype(dt)
    if a["op"] == "nll_loss":
        x = ref.log_softmax(x).astype(dt) if x.size else x
    kw = dict(reduction="avg" if bad == "reduction" else a["reduction"])
    if classy:
        t = rng.integers(0, c, (n,) + tuple(a["spatial"]))
        t[rng.random(t.shape) < 0.2] = a["ignore"]
        if bad == "target_range" and t.size:
            t.flat[0] = rng.choice([c, -2, 10**6])
        elif bad == "target_dtype":
            t = t.astype(np.float32)
        elif bad == "target_shape":
            t = t[..., None]
        kw["ignore_index"] = 1.0 if bad == "ignore_type" else a["ignore"]
        if a["weight"]:
            kw["weight"] = rng.uniform(0.2, 2, c + (bad == "weight_shape")).astype(dt)
        if a["pixel"]:
            pshape = t.shape + ((2,) if bad == "pixel_shape" else ())
            kw["pixel_weight"] = rng.uniform(0, 2, pshape).astype(dt)
        if a["op"] == "cross_entropy":
            kw["label_smoothing"] = 1.5 if bad == "smoothing" else a["smoothing"]
    else:
        t = (rng.standard_normal((n, c)) if a["op"] == "mse" else rng.random((n, c))).astype(dt)
        if bad == "target_shape":
            t = t[:, :-1]
        elif bad == "target_dtype":
            t = t.astype(np.float64 if dt == np.float32 else np.float32)
        if a["weight"]:
            kw["weight"] = rng.uniform(0.2, 2, (c + (bad == "weight_shape"),)).astype(dt)
        if a["pos"]:
            kw["pos_weight"] = rng.uniform(0.5, 3, c + (bad == "pos_shape")).astype(dt)
        if a["op"] == "mse":
            kw.pop("weight", None)
    if bad == "dtype":
        x = x.astype(a["dtype_bad"])
    elif bad == "nonarray":
        x = x.tolist()
    return x, t, kw


FNS = {"cross_entropy": (F.cross_entropy, F.cross_entropy_backward, ref.cross_entropy),
       "nll_loss": (F.nll_loss, F.nll_loss_backward, ref.nll_loss),
       "mse": (F.mse_loss, F.mse_loss_backward, ref.mse_loss),
       "bce": (F.binary_cross_entropy_with_logits,
               F.binary_cross_entropy_with_logits_backward, ref.bce_with_logits)}


def _ref_kwargs(a, kw):
    if a["op"] == "cross_entropy":
        return dict(weight=kw.get("weight"), ignore_index=kw["ignore_index"],
                    reduction=kw["reduction"], smoothing=kw["label_smoothing"],
                    pixel_weight=kw.get("pixel_weight"))
    return kw


@fuzz(500)
@given(loss_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_loss(a, seed):
    rng = np.random.default_rng(seed)
    x, t, kw = _arrays(a, rng)
    fwd, bwd, rf = FNS[a["op"]]
    ok = _expected_valid(a)
    late = ok and a["bad"] in ("grad_shape", "grad_type")
    event(f"{a['op']} " + ("valid" if ok and not late else f"invalid {a['bad']}"))
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            fwd(x, t, **kw)
        return
    loss = fwd(x, t, **kw)
    rkw = _ref_kwargs(a, kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = rf(x, t, **rkw)
    assert loss.dtype == a["dtype"]
    if not np.all(np.isfinite(want)):  # a mean over only ignored targets: NaN, as PyTorch
        assert np.isnan(loss)
        return
    rtol = 2e-5 if a["dtype"] == np.float32 else 1e-11
    assert_near(np.asarray(loss), want, rtol, f"{a['op']} forward")
    g = rng.standard_normal(np.shape(loss)) if a["reduction"] == "none" else float(
        rng.standard_normal())
    if late:
        g = (np.ones(np.shape(loss) + (2,)) if a["bad"] == "grad_shape" else "1.0")
        with pytest.raises((ValueError, TypeError)):
            bwd(g, x, t, **kw)
        return
    got = bwd(g, x, t, **kw)
    if a["op"] in ("mse", "bce"):  # (grad_input, grad_target)
        check_directional(lambda xx, tt: rf(xx, tt, **rkw), [x, t], list(got), g, rng,
                          f"{a['op']} backward")
    else:
        check_directional(lambda xx: rf(xx, t, **rkw), [x], [got], g, rng, f"{a['op']} backward")


@fuzz(60)
@given(st.sampled_from(["cross_entropy", "nll_loss"]), DTYPES, st.integers(0, 2**32 - 1),
       THREADS)
@threaded
def test_fuzz_loss_empty_and_ignored(op, dt, seed):
    """A 'mean' over nothing (empty batch, empty spatial dim, every target ignored) is NaN, its
    gradient 0 for the ignored items (PyTorch's answers), never a ZeroDivisionError."""
    rng = np.random.default_rng(seed)
    fwd, bwd, _ = FNS[op]
    n = int(rng.integers(0, 4))
    spatial = ((), (0,), (int(rng.integers(0, 3)), 0, 2))[int(rng.integers(0, 3))]
    x = rng.standard_normal((n, 3) + spatial).astype(dt)
    t = np.full((n,) + spatial, -100)
    assert np.isnan(fwd(x, t))
    gx = bwd(1.0, x, t)
    assert gx.shape == x.shape and not gx.any()
    assert fwd(x, t, reduction="sum") == 0 and fwd(x, t, reduction="none").shape == t.shape
    if x.ndim > 2:  # no classes stays an error
        with pytest.raises(ValueError, match="at least one class"):
            fwd(np.zeros((n, 0) + spatial, dt), t)
