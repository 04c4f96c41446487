"""Property-based fuzzing of interpolate / interpolate_backward (nearest, linear, bilinear,
trilinear; size or scale_factor; align_corners) against the per-dim weight matrices of
tests/reference_pool.py. Invalid draws (size and scale_factor both or neither, sizes ≤ 0 or not
ints, scale factors ≤ 0 / Inf / NaN / too small for one output, a mode for another number of dims,
align_corners with 'nearest', wrong input ndim/dtype, non-arrays, grad_out of the wrong
shape/dtype) must raise ValueError/TypeError.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F

import reference_pool as ref
from fuzz_common import (BAD_DTYPES, DTYPES, THREADS, assert_bounded, corrupt, fuzz, threaded)

LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}
CORRUPTIONS = ("both", "neither", "size0", "size_float", "size_len", "sf_bad", "sf_tiny", "mode",
               "mode_dims", "align_nearest", "ndim", "dtype", "nonarray", "grad_shape",
               "grad_dtype")


@st.composite
def interp_args(draw):
    nd = draw(st.integers(1, 3))
    hi = {1: 9, 2: 6, 3: 4}[nd]
    dims = lambda lo, up: draw(st.lists(st.integers(lo, up), min_size=nd, max_size=nd))  # noqa
    linear = draw(st.booleans())
    a = dict(nd=nd, x=[draw(st.integers(0, 2)), draw(st.integers(0, 3))] + dims(1, hi),
             mode=LINEAR[nd] if linear else "nearest",
             align=draw(st.sampled_from([None, False, True])) if linear else None,
             size=None, sf=None, dtype=draw(DTYPES), bad=None)
    if draw(st.booleans()):
        a["size"] = draw(st.integers(1, 2 * hi)) if draw(st.booleans()) else tuple(
            dims(1, 2 * hi))
    else:
        a["sf"] = draw(st.one_of(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 1.75, 2.5]),
                                 st.floats(0.3, 3.0)))
        if nd > 1 and draw(st.booleans()):
            a["sf"] = tuple(draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])) for _ in range(nd))
    if corrupt(draw):
        what = a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        if what == "both":
            a["size"], a["sf"] = 3, 2.0
        elif what == "neither":
            a["size"] = a["sf"] = None
        elif what in ("size0", "size_float", "size_len"):
            a["sf"] = None
            a["size"] = {"size0": draw(st.sampled_from([0, -2, (1,) * (nd - 1) + (0,)])),
                         "size_float": draw(st.sampled_from([2.0, (2.5,) * nd, True])),
                         "size_len": (3,) * (nd + 1)}[what]
        elif what in ("sf_bad", "sf_tiny"):
            a["size"] = None
            a["sf"] = (draw(st.sampled_from([0.0, -1.0, math.inf, math.nan, "2"]))
                       if what == "sf_bad" else 1e-3)
        elif what == "mode":
            a["mode"] = draw(st.sampled_from(["bicubic", "area", "", None]))
        elif what == "mode_dims":
            a["mode"] = LINEAR[nd % 3 + 1]
        elif what == "align_nearest":
            a["mode"], a["align"] = "nearest", draw(st.booleans())
        elif what == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _out(a):
    """Output spatial size and per-dim scales (None: in/out), or None where it must raise."""
    nd, bad = a["nd"], a["bad"]
    if bad in ("both", "neither", "size0", "size_float", "size_len", "sf_bad", "mode",
               "mode_dims", "align_nearest", "ndim", "dtype", "nonarray"):
        return None
    in_sp = a["x"][2:]
    if a["size"] is not None:
        size = (a["size"],) * nd if isinstance(a["size"], int) else a["size"]
        return tuple(size), (None,) * nd
    sf = (a["sf"],) * nd if isinstance(a["sf"], float) else a["sf"]
    out = tuple(int(math.floor(n * f)) for n, f in zip(in_sp, sf))
    return (None if min(out) < 1 else out), tuple(1 / f for f in sf)


@fuzz(400)
@given(interp_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_interpolate(a, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(a["x"]) + ((2,) * (4 - a["nd"]) if a["bad"] == "ndim" else ())
    x = rng.standard_normal(shape).astype(a.get("dtype_bad", a["dtype"]))
    if a["bad"] == "nonarray":
        x = x.tolist()
    kw = dict(size=a["size"], scale_factor=a["sf"], mode=a["mode"], align_corners=a["align"])
    res = _out(a)
    ok = res is not None and res[0] is not None
    late = ok and a["bad"] in ("grad_shape", "grad_dtype")
    event(f"{a['mode']} " + ("valid" if ok and not late else f"invalid {a['bad']}"))
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            F.interpolate(x, **kw)
        return
    out, scales = res
    kind = "nearest" if a["mode"] == "nearest" else "linear"
    mats = [ref.interp_matrix(n, m, kind, bool(a["align"]), sc)
            for n, m, sc in zip(a["x"][2:], out, scales)]
    y = F.interpolate(x, **kw)
    assert y.dtype == a["dtype"]
    assert_bounded(y, ref.interpolate(x, mats), ref.interpolate(np.abs(x), mats), "forward")
    g = rng.standard_normal(y.shape).astype(a["dtype"])
    if late:
        g = g[..., :-1] if a["bad"] == "grad_shape" else g.astype(
            np.float64 if a["dtype"] == np.float32 else np.float32)
        with pytest.raises((ValueError, TypeError)):
            F.interpolate_backward(g, x, **kw)
        return
    gx = F.interpolate_backward(g, x, **kw)
    assert gx.dtype == a["dtype"]
    assert_bounded(gx, ref.interpolate_backward(g, mats),
                   ref.interpolate_backward(np.abs(g), mats), "backward")
