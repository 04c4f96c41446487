"""Property-based fuzzing of max-unpooling 1-D/2-D/3-D forward and backward (hypothesis).

Indices come from max pooling (a Switches, or its raw array with output_size or kernel_size) or are
random with repeats (last writer wins). Valid draws match tests/reference_pool.py; invalid draws
(indices out of range, of a float dtype, of the wrong shape or not an array; an output_size that is
zero, contradicts the Switches or the window; no size at all; Switches of another batch; grad_out of
the wrong shape/dtype; wrong input dtype/ndim) must raise ValueError/TypeError before any write.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import cnnfast.functional as F
from cnnfast.functional import Switches

import reference_pool as ref
from fuzz_common import BAD_DTYPES, DTYPES, THREADS, corrupt, fuzz, threaded

CORRUPTIONS = ("idx_range", "idx_dtype", "idx_shape", "idx_list", "no_size", "size0",
               "size_vs_switches", "switches_nc", "grad_shape", "grad_dtype", "dtype", "ndim",
               "nonarray")


@st.composite
def unpool_args(draw):
    nd = draw(st.integers(1, 3))
    hi = {1: 12, 2: 7, 3: 5}[nd]
    per_dim = lambda s: [draw(s) for _ in range(nd)]  # noqa: E731
    src = draw(st.sampled_from(["pool", "pool", "raw"]))
    a = dict(nd=nd, src=src, n=draw(st.integers(0, 2)), c=draw(st.integers(1, 3)),
             sp=per_dim(st.integers(1, hi)), k=per_dim(st.integers(1, 3)),
             s=draw(st.one_of(st.none(), st.lists(st.integers(1, 3), min_size=nd, max_size=nd))),
             p=per_dim(st.integers(0, 1)), ceil=draw(st.booleans()),
             raw_in=per_dim(st.integers(1, 4)), raw_fit=per_dim(st.integers(0, 2)), full_size=draw(st.booleans()),
             size_by=draw(st.sampled_from(["switches", "output_size", "kernel", "both"]
                                          if src == "pool" else ["output_size", "kernel", "both"])),
             dtype=draw(DTYPES), bad=None)
    a["k"] = [min(k, n) for k, n in zip(a["k"], a["sp"])]       # the pooling is valid
    a["p"] = [min(p, k // 2) for p, k in zip(a["p"], a["k"])]
    if corrupt(draw):
        a["bad"] = draw(st.sampled_from(CORRUPTIONS))
        if a["bad"] == "dtype":
            a["dtype_bad"] = draw(BAD_DTYPES)
    return a


def _refits(o, k, s, p, n):
    """Whether pooling an output of extent o with (k, s, p) gives n (floor or ceil mode)."""
    return any(o + 2 * p >= k and ref.out_size(o, k, s, p, 1, c) == n for c in (False, True))


def _expected_out(a, y_sp, idx, size, kernel):
    """The unpooled spatial size the contract gives, or None where it must raise."""
    s = a["s"] or a["k"]
    if kernel:
        default = tuple((n - 1) * ss - 2 * p + k for n, k, ss, p in zip(y_sp, a["k"], s, a["p"]))
    if size is not None:
        out = tuple(size[2:]) if len(size) == a["nd"] + 2 else tuple(size)
        if min(out) < 1 or (kernel and not all(
                _refits(o, k, ss, p, n) for o, k, ss, p, n in zip(out, a["k"], s, a["p"], y_sp))):
            return None
    elif kernel:
        out = default
        if min(out) < 1:
            return None
    elif isinstance(idx, Switches):
        out = idx.output_size
    else:
        return None
    if isinstance(idx, Switches):
        if idx.input_shape[:2] != (a["n"], a["c"]) or out != idx.output_size:
            return None
    raw = np.asarray(idx)
    if raw.size and (raw.min() < 0 or raw.max() >= np.prod(out)):
        return None
    return out


def _inputs(a, rng):
    """(pooled values x, indices (array or Switches), output_size arg, use kernel_size)."""
    nd = a["nd"]
    if a["src"] == "pool":
        xin = rng.standard_normal((a["n"], a["c"]) + tuple(a["sp"])).astype(a["dtype"])
        pool = getattr(F, f"max_pool{nd}d")
        x, sw = pool(xin, a["k"], a["s"], a["p"], ceil_mode=a["ceil"], return_indices=True)
        out_sp = tuple(a["sp"])
        idx = sw if a["size_by"] == "switches" else np.asarray(sw)
    else:
        # Pooled sizes near what pooling the output gives (floor; the ceil formula without
        # PyTorch's drop of a last window starting in the padding), else random.
        s = a["s"] or a["k"]
        fit = [[(n + 2 * p - k) // ss + 1, (n + 2 * p - k + ss - 1) // ss + 1, r][m] for
               n, k, ss, p, r, m in zip(a["sp"], a["k"], s, a["p"], a["raw_in"], a["raw_fit"])]
        x = rng.standard_normal((a["n"], a["c"]) + tuple(max(v, 1) for v in fit))
        x = x.astype(a["dtype"])
        out_sp = tuple(a["sp"])
        idx = rng.integers(0, int(np.prod(out_sp)), x.shape)  # repeats: the last writer wins
    size = None if a["size_by"] in ("switches", "kernel") else out_sp
    if size is not None and a["full_size"]:
        size = (a["n"], a["c"]) + size
    return x, idx, size, a["size_by"] in ("kernel", "both")


def _corrupt(a, x, idx, size, rng):
    bad = a["bad"]
    raw = np.asarray(idx).copy()
    if bad == "idx_range" and raw.size:
        plane = int(np.prod(a["sp"]))
        raw.flat[int(rng.integers(0, raw.size))] = rng.choice([plane, -1, 2**40, -2**62])
        idx = raw
    elif bad == "idx_dtype":
        idx = raw.astype(rng.choice([np.float32, np.float64]))
    elif bad == "idx_shape":
        idx = raw[..., :-1] if raw.shape[-1] > 1 else raw[..., None]
    elif bad == "idx_list":
        idx = raw.tolist()
    elif bad == "no_size":
        idx, size = raw, None
        a["size_by"] = "none"
    elif bad == "size0":
        size = (0,) + tuple(a["sp"][1:])
    elif bad == "size_vs_switches" and isinstance(idx, Switches):
        size = tuple(v + 1 for v in idx.output_size)
    elif bad == "switches_nc":
        idx = Switches(raw, (a["n"] + 1, a["c"]) + tuple(a["sp"]))
    elif bad == "dtype":
        x = x.astype(a["dtype_bad"])
    elif bad == "ndim":
        x = x[..., None]
    elif bad == "nonarray":
        x = x.tolist()
    return x, idx, size


@fuzz(400)
@given(unpool_args(), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_max_unpool(a, seed):
    rng = np.random.default_rng(seed)
    x, idx, size, kernel = _inputs(a, rng)
    nd, bad = a["nd"], a["bad"]
    x, idx, size = _corrupt(a, x, idx, size, rng)
    kw = dict(output_size=size)
    if a["size_by"] in ("kernel", "both"):
        kw.update(kernel_size=a["k"], stride=a["s"], padding=a["p"])
    unpool = getattr(F, f"max_unpool{nd}d")
    unpool_b = getattr(F, f"max_unpool{nd}d_backward")
    typed = bad not in ("idx_dtype", "idx_shape", "idx_list", "dtype", "ndim", "nonarray")
    out = _expected_out(a, np.shape(x)[2:], idx, size, "kernel_size" in kw) if typed else None
    late = bad in ("grad_shape", "grad_dtype")
    event(f"{a['src']}/{a['size_by']} " + ("valid" if out and not late else f"invalid {bad}"))
    if out is None:
        with pytest.raises((ValueError, TypeError)):
            unpool(x, idx, **kw)
        with pytest.raises((ValueError, TypeError)):
            unpool_b(np.ones((a["n"], a["c"]) + tuple(a["sp"]), a["dtype"]), x, idx, **kw)
        return
    raw = np.asarray(idx)
    y = unpool(x, idx, **kw)
    assert y.dtype == a["dtype"]
    np.testing.assert_array_equal(y, ref.max_unpool(x, raw, out).astype(a["dtype"]))
    g = rng.standard_normal(y.shape).astype(a["dtype"])
    if late:
        g = (g[..., 1:] if g.shape[-1] > 1 else g[..., None]) if bad == "grad_shape" else \
            g.astype(np.float64 if a["dtype"] == np.float32 else np.float32)
        with pytest.raises((ValueError, TypeError)):
            unpool_b(g, x, idx, **kw)
        return
    gx = unpool_b(g, x, idx, **kw)
    assert gx.dtype == a["dtype"]
    np.testing.assert_array_equal(gx, ref.max_unpool_backward(g, raw, x.shape).astype(a["dtype"]))


@fuzz(100)
@given(st.integers(1, 3), st.integers(0, 2**32 - 1), THREADS)
@threaded
def test_fuzz_unpool_roundtrip_and_nan(nd, seed):
    """max_pool → max_unpool puts each maximum (NaN included) back in place, zeros elsewhere."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + (5,) * nd)
    x.flat[int(rng.integers(0, x.size))] = rng.choice([np.nan, np.inf])
    y, sw = getattr(F, f"max_pool{nd}d")(x, 2, return_indices=True)
    u = getattr(F, f"max_unpool{nd}d")(y, sw)
    np.testing.assert_array_equal(u, ref.max_unpool(y, np.asarray(sw), x.shape[2:]))
    kept = u != 0
    np.testing.assert_array_equal(u[kept], x[kept])
