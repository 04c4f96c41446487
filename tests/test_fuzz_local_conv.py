"""Property-based fuzzing of tiled convolution and locally connected layers (1-D/2-D/3-D), forward
and backward, against tests/reference_conv_family.py (elementwise, error bound relative to the same
op on absolute values). Invalid draws (tile/location sizes that do not fit, zero/negative sizes,
stride/dilation ≤ 0, bad padding, channel mismatch, kernel larger than the padded input, bias or
grad_out of the wrong shape, wrong/mixed dtypes, non-arrays) must raise ValueError/TypeError.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F
from cnnfast._checks import resolve_padding

import reference_conv_family as ref
from fuzz_common import (BAD_DTYPES, DTYPES, THREADS, assert_bounded, corrupt, fuzz, threaded)

CORRUPTIONS = ("x_size", "w_size", "stride", "dilation", "padding", "channels", "locations",
               "bias", "big_kernel", "dtype", "mixed_dtype", "grad_shape", "grad_dtype",
               "nonarray")


@st.composite
def local_args(draw):
    nd = draw(st.integers(1, 3))
    per_loc = draw(st.booleans())
    hi, khi = {1: (10, 4), 2: (6, 3), 3: (4, 2)}[nd]
    dims = lambda lo, up: draw(st.lists(st.integers(lo, up), min_size=nd, max_size=nd))  # noqa
    a = dict(nd=nd, per_loc=per_loc, x=[draw(st.integers(0, 2)), draw(st.integers(1, 3))]
             + dims(1, hi), tiles=dims(1, 3), k=draw(st.integers(1, 3)), ker=dims(1, khi),
             stride=dims(1, 2), dilation=dims(1, 2),
             padding=draw(st.one_of(st.integers(0, 2), st.sampled_from(["valid", "same", "full"]),
                                    st.lists(st.integers(0, 2), min_size=2 * nd,
                                             max_size=2 * nd).map(tuple))),
             dtype=draw(DTYPES), bias=draw(st.booleans()), bad=None)
    if corrupt(draw):
        what = a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        axis = draw(st.integers(0, nd - 1))
        if what == "x_size":
            a["x"][draw(st.sampled_from([1, 2 + axis]))] = 0
        elif what == "w_size":
            key = draw(st.sampled_from(["tiles", "ker", "k"]))
            if key == "k":
                a["k"] = 0
            else:
                a[key][axis] = 0
        elif what in ("stride", "dilation"):
            a[what][axis] = draw(st.sampled_from([0, -1]))
        elif what == "padding":
            a["padding"] = draw(st.sampled_from([-1, "bogus", (1,) * (2 * nd - 1) + (-1,)]))
        elif what == "big_kernel":
            a["ker"][axis] = a["x"][2 + axis] + 5
            a["padding"] = 0
        elif what == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _expected(a):
    """(valid, explicit padding, output size) from the documented contract."""
    nd = a["nd"]
    if a["bad"] in ("dtype", "mixed_dtype", "nonarray", "channels") or (
            a["bad"] == "bias" and a["bias"]) or (a["bad"] == "locations" and a["per_loc"]):
        return False, None, None
    if min(a["stride"] + a["dilation"] + a["tiles"] + a["ker"] + [a["k"], a["x"][1]]) < 1:
        return False, None, None
    pad = a["padding"]
    if pad == "bogus" or (isinstance(pad, int) and pad < 0) or (
            isinstance(pad, tuple) and min(pad) < 0):
        return False, None, None
    pad = resolve_padding(pad, a["x"][2:], a["ker"], a["stride"], a["dilation"])
    if any(n + pad[2 * i] + pad[2 * i + 1] < (k - 1) * d + 1 for i, (n, k, d) in enumerate(
            zip(a["x"][2:], a["ker"], a["dilation"]))):
        return False, None, None
    return True, pad, ref.out_size(a["x"][2:], a["ker"], a["stride"], pad, a["dilation"])


def _arrays(a, out, rng):
    dt, nd = a["dtype"], a["nd"]
    lead = list(out) if a["per_loc"] else list(a["tiles"])
    if a["bad"] == "locations" and a["per_loc"]:  # (tiled: any tile grid is valid)
        lead[0] += 1
    c = a["x"][1] + (1 if a["bad"] == "channels" else 0)
    x = rng.standard_normal(a["x"]).astype(dt)
    w = rng.standard_normal(lead + [a["k"], c] + a["ker"]).astype(dt)
    b = None
    if a["bias"]:
        bshape = [a["k"]] + lead if a["per_loc"] else lead + [a["k"]]
        if a["bad"] == "bias":
            bshape[-1] += 1
        b = rng.standard_normal(bshape).astype(dt)
    if a["bad"] == "dtype":
        x = x.astype(a["dtype_bad"])
    elif a["bad"] == "mixed_dtype":
        w = w.astype(np.float64 if dt == np.float32 else np.float32)
    elif a["bad"] == "nonarray":
        x = x.tolist()
    return x, w, b


@fuzz(400)
@given(local_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_tiled_and_locally_connected(a, seed):
    rng = np.random.default_rng(seed)
    nd, dt = a["nd"], a["dtype"]
    name = f"locally_connected{nd}d" if a["per_loc"] else f"tiled_conv{nd}d"
    fwd, bwd = getattr(F, name), getattr(F, name + "_backward")
    ok, pad, out = _expected(a)
    grid = _expected(dict(a, bad=None))[2] or tuple(a["tiles"])  # locations: the true output
    x, w, b = _arrays(a, grid, rng)                               # grid (when there is one)
    late = ok and a["bad"] in ("grad_shape", "grad_dtype")
    event(f"{name} " + ("valid" if ok and not late else f"invalid {a['bad']}"))
    kw = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"])
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            fwd(x, w, b, **kw)
        return
    rkw = dict(stride=a["stride"], pad=pad, dilation=a["dilation"], per_location=a["per_loc"])
    ab = lambda v: None if v is None else np.abs(v)  # noqa: E731
    y = fwd(x, w, b, **kw)
    assert y.dtype == dt
    assert_bounded(y, ref.tiled(x, w, b, **rkw), ref.tiled(np.abs(x), np.abs(w), ab(b), **rkw),
                   f"{name} forward")
    gy = rng.standard_normal(y.shape).astype(dt)
    if late:
        gy = gy[:, :-1] if a["bad"] == "grad_shape" else gy.astype(
            np.float64 if dt == np.float32 else np.float32)
        with pytest.raises((ValueError, TypeError)):
            bwd(gy, x, w, b, **kw)
        return
    got = bwd(gy, x, w, b, **kw)
    want = ref.tiled_backward(gy, x, w, **rkw)
    scale = ref.tiled_backward(np.abs(gy), np.abs(x), np.abs(w), **rkw)
    for i, what in enumerate(("grad_input", "grad_weight", "grad_bias")):
        if i == 2 and b is None:
            assert got[2] is None
            continue
        assert_bounded(got[i], want[i], scale[i], f"{name} {what}")
