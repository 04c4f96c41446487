"""Property-based fuzzing of conv1d/conv3d and conv_transpose1d/2d/3d, forward and backward.

Valid draws match tests/reference_conv_family.py (elementwise, error bound relative to the same op
on absolute values; the transposed backward along random directions, exact since the op is
bilinear); invalid draws (zero/negative sizes, stride/dilation ≤ 0, bad or string padding for the
transposed op, output_padding ≥ stride, an empty transposed output, groups/channel mismatch, kernel
larger than the padded input, bias or grad_out of the wrong shape, wrong/mixed dtypes) must raise
ValueError/TypeError. Case counts: fuzz_common.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F
from cnnfast._checks import resolve_padding

import reference_conv_family as ref
from fuzz_common import (BAD_DTYPES, DTYPES, THREADS, assert_bounded, check_directional, corrupt,
                         fuzz, threaded)

LATE = ("grad_shape", "grad_dtype")


def _per_dim(nd, s):
    return st.one_of(s, st.tuples(*[s] * nd)) if nd > 1 else st.one_of(s, st.tuples(s))


@st.composite
def conv_args(draw, transposed):
    nd = draw(st.sampled_from([1, 2, 3] if transposed else [1, 3]))
    hi, khi = (10, 4) if nd == 1 else (6, 3) if nd == 2 else (4, 3)
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, kg = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    sp = [draw(st.integers(1, hi)) for _ in range(nd)]
    ker = [draw(st.integers(1, khi)) for _ in range(nd)]
    stride = draw(_per_dim(nd, st.integers(1, 3)))
    pad_int = st.integers(0, 2)
    if transposed:
        padding = draw(st.one_of(pad_int, st.tuples(*[pad_int] * nd), st.tuples(*[pad_int] * (2 * nd))))
        smin = min(stride) if isinstance(stride, tuple) else stride
        out_pad = draw(st.integers(0, smin - 1))
        w = [cg * groups, kg] + ker  # (C_in, C_out/groups, *kernel)
    else:
        padding = draw(st.one_of(pad_int, st.tuples(*[pad_int] * nd),
                                 st.tuples(*[pad_int] * (2 * nd)),
                                 st.sampled_from(["valid", "same", "full"])))
        out_pad = 0
        w = [kg * groups, cg] + ker
    a = dict(nd=nd, transposed=transposed, x=[draw(st.integers(0, 3)), cg * groups] + sp, w=w,
             stride=stride, dilation=draw(_per_dim(nd, st.integers(1, 2))),
             padding=padding, out_pad=out_pad, groups=groups, dtype=draw(DTYPES),
             bias=draw(st.booleans()), bad=None)
    if corrupt(draw):
        what = a["bad"] = draw(st.sampled_from(
            ["x_size", "w_size", "stride", "dilation", "padding", "groups", "channels", "bias",
             "dtype", "mixed_dtype", "grad_shape", "grad_dtype", "nonarray"]
            + (["out_pad", "str_padding", "huge_padding"] if transposed else ["big_kernel"])))
        if what == "x_size":
            a["x"][draw(st.integers(1, nd + 1))] = 0
        elif what == "w_size":
            a["w"][draw(st.integers(0, nd + 1))] = 0
        elif what in ("stride", "dilation"):
            a[what] = draw(st.sampled_from([0, -1] + ([(1,) * (nd - 1) + (0,)] if nd > 1 else [])))
        elif what == "padding":
            a["padding"] = draw(st.sampled_from([-1, (0,) * (2 * nd - 1) + (-1,), "bogus",
                                                 (1,) * (nd + 1)]))
        elif what == "groups":
            a["groups"] = draw(st.sampled_from([0, -1, 4, 5]))
        elif what == "channels":
            a["w"][0 if transposed else 1] += draw(st.sampled_from([-1, 1]))
        elif what == "out_pad":
            a["out_pad"] = draw(st.sampled_from([-1, 3]))
        elif what == "str_padding":
            a["padding"] = draw(st.sampled_from(["same", "valid"]))
        elif what == "huge_padding":
            a["padding"] = 40
        elif what == "big_kernel":
            a["w"][2] = a["x"][2] + 7
        elif what == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    a["x"], a["w"] = tuple(a["x"]), tuple(a["w"])
    return a


def _tuple(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def _expected(a):
    """(valid, stride, dilation, explicit padding, output_padding) from the documented contract."""
    nd, g = a["nd"], a["groups"]
    if a["bad"] in ("dtype", "mixed_dtype", "nonarray"):
        return (False,)
    x, w = a["x"], a["w"]
    stride, dil = _tuple(a["stride"], nd), _tuple(a["dilation"], nd)
    if len(stride) != nd or len(dil) != nd or min(stride + dil) < 1 or min(w) < 1 or g < 1:
        return (False,)
    if x[1] < 1 or x[1] % g:
        return (False,)
    if a["bias"] and a["bad"] == "bias":
        return (False,)
    pad = a["padding"]
    if isinstance(pad, str) and (a["transposed"] or pad not in ("valid", "same", "full")):
        return (False,)
    if isinstance(pad, int):
        pad = (pad,) * (2 * nd)
    elif isinstance(pad, tuple):
        if len(pad) not in (nd, 2 * nd):
            return (False,)
        pad = pad if len(pad) == 2 * nd else tuple(v for p in pad for v in (p, p))
    if not isinstance(pad, str) and min(pad) < 0:
        return (False,)
    if a["transposed"]:
        op = (a["out_pad"],) * nd
        if w[0] != x[1] or min(op) < 0 or any(o >= s for o, s in zip(op, stride)):
            return (False,)
        out = [(i - 1) * s - pad[2 * d] - pad[2 * d + 1] + dl * (k - 1) + o + 1 for d, (
            i, k, s, dl, o) in enumerate(zip(x[2:], w[2:], stride, dil, op))]
        if min(x[2:]) < 1 or min(out) < 1:
            return (False,)
        return True, stride, dil, pad, op
    if w[0] % g or w[1] * g != x[1]:
        return (False,)
    pad = resolve_padding(pad, x[2:], w[2:], stride, dil)
    if any(i + pad[2 * d] + pad[2 * d + 1] < (k - 1) * dl + 1 for d, (i, k, dl) in enumerate(
            zip(x[2:], w[2:], dil))):
        return (False,)
    return True, stride, dil, pad, None


def _arrays(a, rng):
    dt = a["dtype"]
    x = rng.standard_normal(a["x"]).astype(dt)
    w = rng.standard_normal(a["w"]).astype(dt)
    nb = a["w"][1] * a["groups"] if a["transposed"] else a["w"][0]
    b = rng.standard_normal(max(nb, 0) + (a["bad"] == "bias")).astype(dt) if a["bias"] else None
    if a["bad"] == "dtype":
        x = x.astype(a["dtype_bad"])
    elif a["bad"] == "mixed_dtype":
        w = w.astype(np.float64 if dt == np.float32 else np.float32)
    elif a["bad"] == "nonarray":
        x = x.tolist()
    return x, w, b


@fuzz(700)
@given(st.booleans(), st.data(), THREADS)
@threaded
def test_fuzz_conv_family(transposed, data):
    a = data.draw(conv_args(transposed))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nd, dt = a["nd"], a["dtype"]
    name = f"conv_transpose{nd}d" if transposed else f"conv{nd}d"
    fwd, bwd = getattr(F, name), getattr(F, name + "_backward")
    kw = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    if transposed:
        kw["output_padding"] = a["out_pad"]
    x, w, b = _arrays(a, rng)
    res = _expected(a)
    late = res[0] and a["bad"] in LATE
    event(f"{name} " + ("valid" if res[0] and not late else f"invalid {a['bad']}"))
    if not res[0]:
        with pytest.raises((ValueError, TypeError)):
            fwd(x, w, b, **kw)
        return
    _, stride, dil, pad, op = res
    ab = lambda v: None if v is None else np.abs(v)  # noqa: E731
    y = fwd(x, w, b, **kw)
    assert y.dtype == dt
    if transposed:
        rkw = dict(stride=stride, pad=pad, output_padding=op, dilation=dil, groups=a["groups"])
        want, scale = ref.conv_transpose(x, w, b, **rkw), ref.conv_transpose(
            np.abs(x), np.abs(w), ab(b), **rkw)
    else:
        rkw = dict(stride=stride, pad=pad, dilation=dil, groups=a["groups"])
        want, scale = ref.conv(x, w, b, **rkw), ref.conv(np.abs(x), np.abs(w), ab(b), **rkw)
    assert_bounded(y, want, scale, f"{name} forward")
    gy = rng.standard_normal(y.shape).astype(dt)
    if late:
        gy = gy[..., :-1] if a["bad"] == "grad_shape" else gy.astype(
            np.float64 if dt == np.float32 else np.float32)
        with pytest.raises((ValueError, TypeError)):
            bwd(gy, x, w, b, **kw)
        return
    gx, gw, gb = bwd(gy, x, w, b, **kw)
    assert (gb is None) == (b is None)
    axes = (0,) + tuple(range(2, nd + 2))
    if b is not None:
        assert_bounded(gb, gy.astype(np.float64).sum(axes), np.abs(gy).astype(np.float64).sum(
            axes), f"{name} grad_bias")
    if transposed:
        check_directional(lambda xx, ww: ref.conv_transpose(xx, ww, None, **rkw), [x, w],
                          [gx, gw], gy, rng, f"{name} backward", linear=True)
        return
    want = ref.conv_backward(gy, x, w, **rkw)
    scale = ref.conv_backward(np.abs(gy), np.abs(x), np.abs(w), **rkw)
    assert_bounded(gx, want[0], scale[0], f"{name} grad_input")
    assert_bounded(gw, want[1], scale[1], f"{name} grad_weight")


@fuzz(60)
@given(st.integers(1, 3), st.sampled_from(["conv", "transposed"]), st.integers(0, 2**32 - 1),
       THREADS)
@threaded
def test_fuzz_conv_family_nan_inf(nd, kind, seed):
    """A NaN/Inf input reaches exactly the outputs whose window reads it (no garbage elsewhere)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + (5,) * nd)
    x.flat[int(rng.integers(0, x.size))] = rng.choice([np.nan, np.inf])
    w = rng.standard_normal((2, 2) + (2,) * nd)
    if kind == "conv" and nd == 2:
        return  # conv2d: test_fuzz_conv2d.py
    if kind == "conv":
        y = getattr(F, f"conv{nd}d")(x, w, padding=1)
        want = ref.conv(x, np.ones_like(w), pad=(1,) * (2 * nd))
    else:
        y = getattr(F, f"conv_transpose{nd}d")(x, w, stride=2, padding=1)
        want = ref.conv_transpose(x, np.ones_like(w), stride=(2,) * nd, pad=(1,) * (2 * nd))
    np.testing.assert_array_equal(np.isfinite(y), np.isfinite(want))
