"""Property-based fuzzing of the normalization ops, forward and backward, against
tests/reference_nn.py: batch norm (training with the running-statistics update, eval, with and
without affine parameters, saved statistics), local response norm, global and local contrast
normalization. Backward: float64 central differences of the reference along random directions.
An empty batch gives an empty output (except batch norm in training: no statistics → error).
Invalid draws (empty channels/features, wrong ndim, bad size/alpha/k/eps/momentum/lam/sigma, even
LCN kernels, per-channel vectors or grad_out of the wrong shape, wrong/mixed dtypes, non-arrays)
must raise ValueError/TypeError.
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

OPS = ("batch_norm", "lrn", "gcn", "lcn")
BAD_PARAM = {"batch_norm": [("eps", 0.0), ("eps", -1e-3), ("momentum", 1.5), ("momentum", "0.1")],
             "lrn": [("size", 0), ("size", 2.5), ("k", 0.0), ("alpha", None)],
             "gcn": [("lam", -1.0), ("eps", -1.0), ("lam_eps", 0.0), ("scale", "1")],
             "lcn": [("kernel_size", 4), ("kernel_size", 0), ("sigma", 0.0), ("eps", 0.0)]}
CORRUPTIONS = ("param", "empty_channels", "ndim", "vec_shape", "grad_shape", "dtype",
               "mixed_dtype", "nonarray", "train_single")


@st.composite
def norm_args(draw):
    op = draw(st.sampled_from(OPS))
    rank = 4 if op == "lcn" else draw(st.integers(2, 4))
    shape = [draw(st.integers(0, 3))] + [draw(st.integers(1, 6 if i == 0 else 5))
                                         for i in range(rank - 1)]
    p = {}
    if op == "batch_norm":
        p = dict(training=draw(st.booleans()), affine=draw(st.booleans()),
                 running=draw(st.booleans()), momentum=draw(st.sampled_from([0.0, 0.1, 1.0])),
                 eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])), stats=draw(st.booleans()))
        if p["training"]:
            shape[0] = max(shape[0], 2)  # more than one value per channel
    elif op == "lrn":
        p = dict(size=draw(st.integers(1, 7)), alpha=draw(st.sampled_from([1e-4, 0.1, 1.0])),
                 beta=draw(st.sampled_from([0.1, 0.75, 1.0])), k=draw(st.sampled_from([0.5, 1.0,
                                                                                         2.0])))
    elif op == "gcn":
        p = dict(scale=draw(st.sampled_from([1.0, 0.5, 3.0])),
                 lam=draw(st.sampled_from([0.0, 0.1, 10.0])),
                 eps=draw(st.sampled_from([1e-8, 1e-3, 10.0])))
    else:
        p = dict(kernel_size=draw(st.sampled_from([1, 3, 5, 7, 9])),
                 sigma=draw(st.sampled_from([0.5, 1.0, 2.0])), across=draw(st.booleans()),
                 eps=draw(st.sampled_from([1e-4, 1e-2, 5.0])))
        if not p["across"] or shape[1] == 1:  # a one-pixel window makes v = 0 up to rounding,
            p["kernel_size"] = max(p["kernel_size"], 3)  # amplified 1/eps: not a useful case
            shape[3] = max(shape[3], 2)
    a = dict(op=op, shape=shape, p=p, dtype=draw(DTYPES), bad=None)
    if corrupt(draw, 3):
        a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        if a["bad"] == "param":
            key, val = draw(st.sampled_from(BAD_PARAM[op]))
            p.update({"lam": 0.0, "eps": 0.0} if key == "lam_eps" else {key: val})
        elif a["bad"] == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _expected_valid(a):
    op, bad, p = a["op"], a["bad"], a["p"]
    if bad in ("param", "empty_channels", "ndim", "dtype", "nonarray"):
        return False
    if bad == "mixed_dtype":
        return op != "batch_norm"  # the others take one float array: nothing to mix
    if bad == "vec_shape":
        return op != "batch_norm" or not (p["affine"] or p["running"] or not p["training"])
    if bad == "train_single":  # one value per channel (batch norm only)
        return not (op == "batch_norm" and p["training"])
    return True


def _shape(a):
    shape = list(a["shape"])
    if a["bad"] == "empty_channels":
        shape[1] = 0
    elif a["bad"] == "ndim":
        shape = shape[:1] if a["op"] != "lcn" else shape[:3]
    elif a["bad"] == "train_single" and a["op"] == "batch_norm":
        shape = [1, shape[1]] + [1] * (len(shape) - 2)
    return shape


def _bn(a, x, rng):
    """Forward call and float64 reference function of batch norm (vectors drawn here)."""
    p, dt, c = a["p"], a["dtype"], x.shape[1] if x.ndim > 1 else 1
    n_vec = c + (1 if a["bad"] == "vec_shape" else 0)
    w = rng.uniform(0.5, 2, n_vec).astype(dt) if p["affine"] else None
    b = rng.standard_normal(n_vec).astype(dt) if p["affine"] else None
    rm = rng.standard_normal(n_vec).astype(dt) if p["running"] or not p["training"] else None
    rv = rng.uniform(0.5, 2, n_vec).astype(dt) if rm is not None else None
    if a["bad"] == "mixed_dtype":
        w = rng.uniform(0.5, 2, n_vec).astype(np.float64 if dt == np.float32 else np.float32)
    return w, b, rm, rv


@fuzz(500)
@given(norm_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_norm(a, seed):
    rng = np.random.default_rng(seed)
    op, p, dt = a["op"], a["p"], a["dtype"]
    x = rng.standard_normal(_shape(a)).astype(dt)
    if a["bad"] == "dtype":
        x = x.astype(a["dtype_bad"])
    elif a["bad"] == "nonarray":
        x = x.tolist()
    ok = _expected_valid(a)
    late = ok and a["bad"] == "grad_shape"
    event(f"{op} " + ("valid" if ok and not late else f"invalid {a['bad']}"))
    if op == "batch_norm":
        w, b, rm, rv = _bn(a, np.asarray(x), rng)
        rm0, rv0 = (None, None) if rm is None else (rm.copy(), rv.copy())
        kw = dict(training=p["training"], eps=p["eps"])
        fwd = lambda: F.batch_norm(x, rm, rv, w, b, momentum=p["momentum"], return_stats=True,  # noqa: E731
                                   **kw)
    elif op == "lrn":
        kw = dict(size=p["size"], alpha=p["alpha"], beta=p["beta"], k=p["k"])
        fwd = lambda: F.local_response_norm(x, **kw)  # noqa: E731
    elif op == "gcn":
        kw = dict(scale=p["scale"], lam=p["lam"], eps=p["eps"])
        fwd = lambda: F.global_contrast_norm(x, **kw)  # noqa: E731
    else:
        kw = dict(kernel_size=p["kernel_size"], sigma=p["sigma"], across_channels=p["across"],
                  eps=p["eps"])
        fwd = lambda: F.local_contrast_norm(x, **kw)  # noqa: E731
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            fwd()
        return
    rtol = 2e-5 if dt == np.float32 else 1e-10
    terms = None
    if op == "batch_norm":
        y, mean, invstd = fwd()
        axes = (0,) + tuple(range(2, x.ndim))
        x64 = x.astype(np.float64)
        if p["training"]:
            bm, bv = x64.mean(axes), x64.var(axes)
            f = lambda xx, *wb: ref.batch_norm(xx, xx.mean(axes), xx.var(axes), *(  # noqa: E731
                wb or (None, None)), p["eps"])
            if rm is not None:
                cnt = x.size // x.shape[1]
                assert_near(rm, (1 - p["momentum"]) * rm0 + p["momentum"] * bm, rtol, "mean")
                assert_near(rv, (1 - p["momentum"]) * rv0 + p["momentum"] * bv * cnt / (cnt - 1),
                            rtol, "running_var")
            assert_near(mean, bm, rtol, "saved mean")
            assert_near(invstd, 1 / np.sqrt(bv + p["eps"]), rtol, "saved invstd")
        else:
            f = lambda xx, *wb: ref.batch_norm(xx, rm0, rv0, *(wb or (None, None)),  # noqa: E731
                                               p["eps"])
            np.testing.assert_array_equal(rm, rm0)
        want = f(x, w, b) if w is not None else f(x)
        # Cancellations are bounded by the sizes of the terms: w·x̂ + b where b ≈ −w·x̂, and in
        # eval mode x̂ = (x − running_mean)·invstd where x ≈ running_mean (float32 folds that
        # into x·invstd − running_mean·invstd, as PyTorch does).
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        if not p["training"]:
            inv = (1 / np.sqrt(rv0.astype(np.float64) + p["eps"])).reshape(bshape)
            terms = (np.abs(x64) + np.abs(rm0.astype(np.float64)).reshape(bshape)) * inv
            if w is not None:
                terms = terms * np.abs(w.astype(np.float64)).reshape(bshape)
        elif w is not None:
            terms = np.abs(f(x, w, np.zeros_like(b)))
        if b is not None and terms is not None:
            terms = terms + np.abs(b.astype(np.float64)).reshape(bshape)
    elif op == "lrn":
        y = fwd()
        f = lambda xx: ref.lrn(xx, p["size"], p["alpha"], p["beta"], p["k"])  # noqa: E731
        want = f(x)
    elif op == "gcn":
        y = fwd()
        f = lambda xx: ref.gcn(xx, p["scale"], p["lam"], p["eps"])  # noqa: E731
        want = f(x)
    else:
        y = fwd()
        taps = F.gaussian_taps(p["kernel_size"], p["sigma"])
        f = lambda xx: ref.lcn(xx, taps, p["across"], p["eps"])  # noqa: E731
        want = f(x)
    assert y.dtype == dt and y.shape == x.shape
    assert_near(y, want, 5 * rtol, f"{op} forward", terms)
    g = rng.standard_normal(x.shape).astype(dt)
    if late:
        g = g[:, :-1]
    bwd_args = dict(kw)
    if op == "batch_norm":
        saved = (mean, invstd) if p["stats"] else None
        call = lambda: F.batch_norm_backward(g, x, rm0, rv0, w, b, stats=saved, **kw)  # noqa
    else:
        name = {"lrn": "local_response_norm", "gcn": "global_contrast_norm",
                "lcn": "local_contrast_norm"}[op]
        call = lambda: getattr(F, name + "_backward")(g, x, **bwd_args)  # noqa: E731
    if late:
        with pytest.raises((ValueError, TypeError)):
            call()
        return
    got = call()
    if op == "batch_norm":
        grads = [got[0]] + ([got[1], got[2]] if w is not None else [])
        assert w is not None or got[1] is None and got[2] is None
        check_directional(f, [x] + ([w, b] if w is not None else []), grads, g, rng,
                          "batch_norm backward")
    else:
        check_directional(f, [x], [got], g, rng, f"{op} backward")
