"""Property-based fuzzing of pooling (max with switches, avg, Lp, adaptive avg/max, global;
1-D/2-D/3-D) forward and backward (hypothesis). Valid draws match tests/reference_pool.py; invalid
draws (zero/negative sizes, stride, dilation, padding > kernel/2, kernel larger than the padded
input, a window wholly in the padding, bad output_size/norm_type/divisor, grad_out or indices of the
wrong shape/dtype/range, wrong dtypes, non-arrays) must raise ValueError/TypeError.
Case counts: fuzz_common.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F

import reference_pool as ref
from fuzz_common import (BAD_DTYPES, DTYPES, THREADS, assert_bounded, assert_near,
                         check_directional, corrupt, fuzz, threaded)

WINDOWED = ("max", "avg", "lp")
KINDS = WINDOWED + ("adaptive_avg", "adaptive_max", "global_avg", "global_max")
CORRUPTIONS = ("spatial0", "kernel", "stride", "padding", "dilation", "big_kernel", "ndim",
               "tuple_len", "float_kernel", "grad_shape", "grad_dtype", "dtype", "nonarray",
               "norm", "divisor", "output_size", "idx_range", "idx_dtype", "idx_shape")


@st.composite
def pool_args(draw):
    """Only what the drawn kind takes is drawn (hypothesis pays per draw)."""
    nd = draw(st.integers(1, 3))
    hi = {1: 12, 2: 7, 3: 5}[nd]
    kind = draw(st.sampled_from(KINDS))
    dims = lambda lo, up: draw(st.lists(st.integers(lo, up), min_size=nd, max_size=nd))  # noqa
    a = dict(nd=nd, kind=kind, x=[draw(st.integers(0, 2)), draw(st.integers(0, 3))]
             + dims(1, hi), k=[1] * nd, s=None, p=[0] * nd, d=[1] * nd, ceil=False,
             include=True, div=None, norm=2, out=[None] * nd, dtype=draw(DTYPES),
             switches=False, bad=None)
    if kind in WINDOWED:
        a.update(k=dims(1, 4), s=dims(1, 3) if draw(st.booleans()) else None,
                 ceil=draw(st.booleans()))
        if kind != "lp":
            a["p"] = dims(0, 2)
    if kind == "max":
        a["d"] = dims(1, 3)
    elif kind == "avg":
        a.update(include=draw(st.booleans()), div=draw(st.one_of(st.none(), st.integers(1, 9))))
    elif kind == "lp":
        a["norm"] = draw(st.sampled_from([1, 2, 3, 1.5]))
    elif kind.startswith("adaptive"):
        a["out"] = draw(st.lists(st.one_of(st.none(), st.integers(1, hi + 2)), min_size=nd,
                                 max_size=nd))
    if kind.endswith("max"):
        a["switches"] = draw(st.booleans())
    if corrupt(draw):
        what = a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        axis = draw(st.integers(0, nd - 1))
        if what == "spatial0":
            a["x"][2 + axis] = 0
        elif what in ("kernel", "stride", "dilation"):
            key = what[0]
            a[key] = list(a[key] or [1] * nd)
            a[key][axis] = draw(st.sampled_from([0, -1]))
        elif what == "padding":
            a["p"][axis] = draw(st.sampled_from([-1, a["k"][axis] // 2 + 1]))
        elif what == "big_kernel":
            a["k"][axis] = a["x"][2 + axis] + 2 * a["p"][axis] + 1
            a["p"][axis] = min(a["p"][axis], a["k"][axis] // 2)
        elif what == "norm":
            a["norm"] = draw(st.sampled_from([0, -1.0, math.inf, math.nan, "2", None]))
        elif what == "divisor":
            a["div"] = draw(st.sampled_from([0, -3, 1.5, True]))
        elif what == "output_size":
            a["out"][axis] = draw(st.sampled_from([0, -2, 2.0]))
        elif what == "dtype":
            a["dtype"] = draw(BAD_DTYPES)
    return a


LATE = ("grad_shape", "grad_dtype", "idx_range", "idx_dtype", "idx_shape")  # backward-only


def _window(a):
    """Effective (kernel, stride, padding, dilation) per dim: avg/Lp take no dilation, Lp no
    padding."""
    lp, mx = a["kind"] == "lp", a["kind"] == "max"
    nd = a["nd"]
    return (a["k"], a["s"] or a["k"], [0] * nd if lp else a["p"], a["d"] if mx else [1] * nd)


def _windows(a):
    """The reference windows per dim; None if some window is empty (an error case)."""
    n_sp = a["x"][2:]
    if a["kind"].startswith("global"):
        return [ref.adaptive_windows(n, 1) for n in n_sp]
    if a["kind"].startswith("adaptive"):
        return [ref.adaptive_windows(n, n if o is None else o) for n, o in zip(n_sp, a["out"])]
    wins = [ref.windows(n, k, s, p, d, a["ceil"]) for n, k, s, p, d in zip(n_sp, *_window(a))]
    return None if any(not taps for w in wins for taps, _ in w) else wins


def _forward_valid(a):
    """Independent validity of the forward call from the documented contract."""
    if a["bad"] in ("ndim", "dtype", "nonarray") or (
            a["bad"] == "float_kernel" and a["kind"] in WINDOWED) or (
            a["bad"] == "tuple_len" and not a["kind"].startswith("global")):
        return False
    if a["bad"] in ("norm", "divisor", "output_size"):
        used = {"norm": "lp", "divisor": "avg", "output_size": "adaptive"}[a["bad"]]
        if a["kind"].startswith(used):
            return False
    if min(a["x"][2:]) < 1:
        return False
    if a["kind"] in WINDOWED:
        for n, k, s, p, d in zip(a["x"][2:], *_window(a)):
            if min(k, s, d) < 1 or p < 0 or 2 * p > k or (k - 1) * d + 1 > n + 2 * p:
                return False
        return _windows(a) is not None
    return True


def _call(a, x, g=None, indices=None):
    """Forward (g None) or backward of the drawn op."""
    nd, kind = a["nd"], a["kind"]
    k, s = a["k"], a["s"]
    if a["bad"] == "tuple_len":
        k = list(k) + [2]
    elif a["bad"] == "float_kernel":
        k = [float(v) for v in k]
    back = g is not None
    if kind == "max":
        fn = getattr(F, f"max_pool{nd}d" + ("_backward" if back else ""))
        kw = dict(stride=s, padding=a["p"], dilation=a["d"], ceil_mode=a["ceil"])
        return fn(g, x, k, indices=indices, **kw) if back else fn(x, k, return_indices=True, **kw)
    if kind == "avg":
        fn = getattr(F, f"avg_pool{nd}d" + ("_backward" if back else ""))
        kw = dict(stride=s, padding=a["p"], ceil_mode=a["ceil"], count_include_pad=a["include"],
                  divisor_override=a["div"])
        return fn(g, x, k, **kw) if back else fn(x, k, **kw)
    if kind == "lp":
        fn = getattr(F, f"lp_pool{nd}d" + ("_backward" if back else ""))
        kw = dict(stride=s, ceil_mode=a["ceil"])
        return fn(g, x, a["norm"], k, **kw) if back else fn(x, a["norm"], k, **kw)
    if kind.startswith("adaptive"):
        out = a["out"] + [3] if a["bad"] == "tuple_len" else a["out"]
        fn = getattr(F, f"{kind}_pool{nd}d" + ("_backward" if back else ""))
        if kind == "adaptive_max":
            return fn(g, x, out, indices=indices) if back else fn(x, out, return_indices=True)
        return fn(g, x, out) if back else fn(x, out)
    fn = getattr(F, f"{kind}_pool" + ("_backward" if back else ""))
    if kind == "global_max":
        return fn(g, x, indices=indices) if back else fn(x, return_indices=True)
    return fn(g, x) if back else fn(x)


def _bad_indices(a, sw, rng):
    idx = np.asarray(sw).copy()
    if a["bad"] == "idx_dtype":
        return idx.astype(rng.choice([np.float32, np.float64]))
    if a["bad"] == "idx_shape":
        return idx[..., :-1] if idx.shape[-1] > 1 else idx[..., None]
    if idx.size:
        plane = int(np.prod(a["x"][2:]))
        idx.flat[int(rng.integers(0, idx.size))] = rng.choice([plane, -1, 2**40])
    return idx


@fuzz(800)
@given(pool_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_pool(a, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(a["x"])
    if a["bad"] == "ndim":
        shape = shape[1:] if rng.integers(0, 2) and a["kind"] in WINDOWED else shape + (2,) * (
            4 - a["nd"])  # 6-D: wrong for every kind
    x = rng.standard_normal(shape).astype(a["dtype"])
    if a["bad"] == "nonarray":
        x = x.tolist()
    ok = _forward_valid(a)
    with_idx = a["kind"].endswith("max")
    late = ok and a["bad"] in LATE and (a["bad"].startswith("grad") or (with_idx and (
        a["bad"] != "idx_range" or a["x"][0] * a["x"][1] > 0)))  # the backward must raise
    event(f"{a['kind']} " + ("valid" if ok and not late else f"invalid {a['bad']}"))
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            _call(a, x)
        return
    res = _call(a, x)
    y, sw = res if with_idx else (res, None)
    wins = _windows(a)
    if with_idx:
        want, widx = ref.max_pool(x, wins)
        np.testing.assert_array_equal(y, want.astype(a["dtype"]))
        np.testing.assert_array_equal(np.asarray(sw), widx)
        assert sw.input_shape == x.shape
    elif a["kind"] == "lp":
        want = ref.lp_pool(x, a["norm"], wins)
        assert_near(y, want, 1e-5 if a["dtype"] == np.float32 else 1e-12, "lp forward")
    else:
        include, div = (a["include"], a["div"]) if a["kind"] == "avg" else (True, None)
        want = ref.avg_pool(x, wins, include, div)
        assert_bounded(y, want, ref.avg_pool(np.abs(x), wins, include, div), "avg forward")
    g = rng.standard_normal(y.shape).astype(a["dtype"])
    if late:
        if a["bad"] == "grad_shape":
            g = g[..., :-1] if g.shape[-1] > 1 else g[..., None]
        elif a["bad"] == "grad_dtype":
            g = g.astype(np.float64 if a["dtype"] == np.float32 else np.float32)
        with pytest.raises((ValueError, TypeError)):
            _call(a, x, g, _bad_indices(a, sw, rng) if a["bad"].startswith("idx") else sw)
        return
    gx = _call(a, x, g, (sw if a["switches"] else np.asarray(sw)) if with_idx and rng.integers(
        0, 3) else None)
    assert gx.dtype == a["dtype"] and gx.shape == x.shape
    if with_idx:
        want = ref.max_pool_backward(g, x.shape, widx)
        assert_bounded(gx, want, ref.max_pool_backward(np.abs(g), x.shape, widx), "max backward")
    elif a["kind"] == "lp":
        check_directional(lambda v: ref.lp_pool(v, a["norm"], wins), [x], [gx], g, rng,
                          "lp backward")
    else:
        want = ref.avg_pool_backward(g, x.shape, wins, include, div)
        scale = ref.avg_pool_backward(np.abs(g), x.shape, wins, include, div)
        assert_bounded(gx, want, scale, "avg backward")


@fuzz(100)
@given(st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_pool_nan_inf_propagate(dtype, seed):
    """NaN wins max pooling (and its switch points at it); Inf propagates through averages."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 6, 5)).astype(dtype)
    x.flat[int(rng.integers(0, x.size))] = rng.choice([np.nan, np.inf, -np.inf])
    y, sw = F.max_pool2d(x, 2, 1, return_indices=True)
    want, widx = ref.max_pool(x, [ref.windows(6, 2, 1, 0), ref.windows(5, 2, 1, 0)])
    np.testing.assert_array_equal(y, want.astype(dtype))
    nan_out = np.isnan(y)
    np.testing.assert_array_equal(np.asarray(sw)[nan_out], widx[nan_out])
    a = F.avg_pool2d(x, 3, 1, 1)
    wins = [ref.windows(6, 3, 1, 1), ref.windows(5, 3, 1, 1)]
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(ref.avg_pool(x, wins)))
