"""Property-based fuzzing of conv2d/conv2d_backward over the whole argument space (hypothesis).

Valid draws must match the NumPy reference; invalid draws must raise the documented exception
(ValueError/TypeError), never crash or return garbage. CNNFAST_FUZZ_EXAMPLES sets the number of
cases per test (CI default below); CNNFAST_SOAK=1 runs a long soak.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cnnfast._checks import resolve_padding
from cnnfast.functional import conv2d, conv2d_backward

import reference as ref
from helpers import rel_err

EXAMPLES = int(os.environ.get("CNNFAST_FUZZ_EXAMPLES",
                              50000 if os.environ.get("CNNFAST_SOAK") else 3000))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

pair_or_int = lambda s: st.one_of(s, st.tuples(s, s))  # noqa: E731
padding_st = st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                       st.tuples(*[st.integers(0, 3)] * 4), st.sampled_from(["valid", "same", "full"]))


@st.composite
def conv_args(draw):
    """A valid-looking configuration (zero batch and 1-sized dims included), and in ~40% of draws
    one argument corrupted: zero or negative sizes/strides/dilations, bad groups, bad padding."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, kg = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    a = dict(x=[draw(st.integers(0, 3)), cg * groups, draw(st.integers(1, 9)),
                draw(st.integers(1, 9))],
             w=[kg * groups, cg, draw(st.integers(1, 4)), draw(st.integers(1, 4))],
             stride=draw(pair_or_int(st.integers(1, 3))),
             dilation=draw(pair_or_int(st.integers(1, 3))),
             padding=draw(padding_st), groups=groups,
             dtype=draw(st.sampled_from([np.float32, np.float32, np.float64])),
             bias=draw(st.booleans()))
    if draw(st.integers(0, 9)) < 4:
        what = draw(st.sampled_from(["x_size", "w_size", "stride", "dilation", "padding",
                                     "groups", "channels"]))
        if what == "x_size":
            a["x"][draw(st.integers(1, 3))] = 0
        elif what == "w_size":
            a["w"][draw(st.integers(0, 3))] = 0
        elif what in ("stride", "dilation"):
            a[what] = draw(st.sampled_from([0, -1, (1, 0), (-2, 1)]))
        elif what == "padding":
            a["padding"] = draw(st.sampled_from([-1, (0, -1), (1, 1, -1, 0), "bogus", (1, 2, 3)]))
        elif what == "groups":
            a["groups"] = draw(st.sampled_from([0, -1, 4, 5]))
        else:
            a["w"][1] += draw(st.sampled_from([-1, 1]))
    a["x"], a["w"] = tuple(a["x"]), tuple(a["w"])
    return a


def _expected_valid(a):
    """Independent validity check from the documented contract: (ok, explicit padding)."""
    (n, c, h, w), (k, cg, r, s) = a["x"], a["w"]
    g = a["groups"]
    norm = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    stride, dil = norm(a["stride"]), norm(a["dilation"])
    if min(stride) < 1 or min(dil) < 1 or min(k, cg, r, s) < 1 or c < 1 or g < 1:
        return False, None
    if c % g or k % g or cg * g != c:
        return False, None
    padding = a["padding"]
    if padding == "bogus" or (isinstance(padding, int) and padding < 0) or (
            isinstance(padding, tuple) and (len(padding) not in (2, 4) or min(padding) < 0)):
        return False, None
    pad = resolve_padding(a["padding"], (h, w), (r, s), stride, dil)
    if h + pad[0] + pad[1] < (r - 1) * dil[0] + 1 or w + pad[2] + pad[3] < (s - 1) * dil[1] + 1:
        return False, None
    return True, (stride, dil, pad)


@FUZZ
@given(conv_args(), st.integers(0, 2**32 - 1))
def test_fuzz_conv2d(a, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(a["x"]).astype(a["dtype"])
    w = rng.standard_normal(a["w"]).astype(a["dtype"])
    b = rng.standard_normal(a["w"][0]).astype(a["dtype"]) if a["bias"] else None
    kw = dict(stride=a["stride"], padding=a["padding"], dilation=a["dilation"], groups=a["groups"])
    ok, resolved = _expected_valid(a)
    event("valid" if ok else "invalid")
    if not ok:
        with pytest.raises((ValueError, TypeError)):
            conv2d(x, w, b, **kw)
        return
    stride, dil, pad = resolved
    rkw = dict(stride=stride, pad=pad, dilation=dil, groups=a["groups"])
    # Rounding bound of a sum of products: relative to the same op on absolute values.
    eps = 2e-6 if a["dtype"] == np.float32 else 1e-14
    ab = lambda v: None if v is None else np.abs(v)  # noqa: E731

    def close(got, want, scale):
        assert got.dtype == a["dtype"] and got.shape == want.shape
        assert np.all(np.abs(got - want) <= eps * (scale + 1e-30) * 16 + 1e-30)

    y = conv2d(x, w, b, **kw)
    close(y, ref.conv2d(x, w, b, **rkw), ref.conv2d(np.abs(x), np.abs(w), ab(b), **rkw))
    gy = rng.standard_normal(y.shape).astype(a["dtype"])
    got = conv2d_backward(gy, x, w, b, **kw)
    want = ref.conv2d_backward(gy, x, w, **rkw)
    scale = ref.conv2d_backward(np.abs(gy), np.abs(x), np.abs(w), **rkw)
    close(got[0], want[0], scale[0])
    close(got[1], want[1], scale[1])
    if b is not None:
        close(got[2], want[2], scale[2])
    else:
        assert got[2] is None


@FUZZ
@given(st.sampled_from([np.int8, np.int64, np.float16, np.complex64, bool, object]),
       st.sampled_from(["input", "weight", "bias", "grad_out"]))
def test_fuzz_bad_dtypes(dtype, which):
    arrs = dict(input=np.ones((1, 2, 5, 5), np.float32), weight=np.ones((3, 2, 3, 3), np.float32),
                bias=np.ones(3, np.float32), grad_out=np.ones((1, 3, 3, 3), np.float32))
    arrs[which] = arrs[which].astype(dtype)
    with pytest.raises(TypeError, match=which):
        conv2d_backward(arrs["grad_out"], arrs["input"], arrs["weight"], arrs["bias"])


def test_misaligned_readonly_and_strided_inputs(rng):
    buf = np.empty(1 * 2 * 6 * 6 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(1, 2, 6, 6)
    buf[...] = rng.standard_normal(buf.shape)
    assert buf.ctypes.data % 4 != 0
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    w.setflags(write=False)
    assert rel_err(conv2d(buf, w), ref.conv2d(buf, w)) < 1e-5
    huge_stride = np.lib.stride_tricks.as_strided(buf, (1, 2, 6, 6), (0, 0, 0, 0))
    assert rel_err(conv2d(huge_stride, w), ref.conv2d(huge_stride, w)) < 1e-5


def test_nan_inf_propagate(rng):
    x = rng.standard_normal((2, 3, 6, 6))
    x[0, 1, 2, 3], x[1, 0, 0, 0] = np.inf, np.nan
    y = conv2d(x, rng.standard_normal((4, 3, 3, 3)), padding=1)
    want = ref.conv2d(x, np.ones((4, 3, 3, 3)), pad=(1, 1, 1, 1))
    np.testing.assert_array_equal(np.isfinite(y), np.isfinite(want))
