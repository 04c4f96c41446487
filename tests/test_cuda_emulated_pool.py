"""The CUDA pooling / unpooling fast paths (cpp/src/cuda/pool_fast.cuh: 32-bit forward bodies,
gather-form max/avg backward, one-pass unpooling given the pooling windows) run on the HOST
through the emulate:: hooks against the CPU ops: odd sizes, windows hitting padding and the
ceil-mode tail, non-overlapping (k == s), gapped (k < s) and overlapping windows, ties and NaNs,
switches off their window (the fallback to the general path) and out-of-range switches. The
hooks NaN-poison the gathers' outputs first, so an element the gather misses fails here."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core
from cnnfast._checks import int_tuple

from cuda_helpers import TOL, f32
from helpers import assert_close

pytestmark = pytest.mark.skipif(not _core.cuda_built(), reason="built without the CUDA backend")

SHAPES = {1: (2, 3, 19), 2: (2, 3, 11, 13), 3: (1, 2, 7, 6, 9)}
# kernel, stride, padding, dilation, ceil_mode
WINDOWS = [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), (2, 3, 1, 1, True),
           (3, 1, 1, 1, False), (4, 3, 2, 1, True), (1, 1, 0, 1, False), (3, 2, 0, 2, True),
           (3, 3, 0, 1, True), (2, 2, 0, 1, True)]  # the last two: tiled windows, ceil mode


def pad3(v, fill):
    return (fill,) * (3 - len(v)) + tuple(v)


def win3(nd, k, s, p, d):
    return [pad3(int_tuple("", v, nd, 0), f) for v, f in ((k, 1), (s, 1), (p, 0), (d, 1))]


def path():
    return _core._cuda_emulate_last_pool_path()


def tied(rng, *shape):
    """Small integers as float32: many equal maxima (the first in raster order must win)."""
    return rng.integers(-2, 3, size=shape).astype(np.float32)


def in_window_switches(rng, nd, shape, k, s, p, pooled):
    """Random switches, each on a tap of its own window (dilation 1): valid for the one-pass
    paths, and with overlapping windows many of them share a slot."""
    spatial = shape[2:]
    idx = np.empty(shape[:2] + pooled, np.int64)
    for o in np.ndindex(*pooled):
        flat = np.zeros(shape[:2], np.int64)
        for d in range(nd):
            start = o[d] * s - p
            lo, hi = max(start, 0), min(start + k, spatial[d])
            flat = flat * spatial[d] + rng.integers(lo, hi, size=shape[:2])
        idx[(slice(None), slice(None)) + o] = flat
    return idx


@pytest.mark.parametrize("nd, shape", [(1, None), (2, None), (3, None), (2, (2, 3, 10, 12)),
                                       (2, (1, 2, 9, 14))])  # even widths: the 2x2 kernel
@pytest.mark.parametrize("k, s, p, d, ceil", WINDOWS)
def test_max_pool_fast_paths_match_cpu(rng, nd, shape, k, s, p, d, ceil):
    x = tied(rng, *(shape or SHAPES[nd]))
    x.reshape(-1)[::17] = np.nan
    win = win3(nd, k, s, p, d)
    y, sw = getattr(F, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    ye, ie = _core._cuda_emulate_max_pool_forward(x, *win, ceil, None)
    assert path() == "fast"
    assert np.array_equal(ye, y, equal_nan=True) and np.array_equal(ie, sw.indices)
    gy = f32(rng, *y.shape)
    want = getattr(F, f"max_pool{nd}d_backward")(gy, x, k, s, p, d, ceil, indices=sw)
    got = _core._cuda_emulate_max_pool_backward(gy, ie, list(x.shape), *win, ceil, None)
    assert path() == ("fast" if d == 1 else "general")
    assert_close(got, want, TOL)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_backward_switch_off_its_window_falls_back(rng, nd):
    x = f32(rng, *SHAPES[nd])
    win = win3(nd, 3, 2, 1, 1)
    y, sw = getattr(F, f"max_pool{nd}d")(x, 3, 2, 1, return_indices=True)
    idx = sw.indices.copy()
    idx.reshape(-1)[-1] = 0  # the last window cannot reach element 0: a scatter, not a gather
    gy = f32(rng, *y.shape)
    got = _core._cuda_emulate_max_pool_backward(gy, idx, list(x.shape), *win, False, None)
    assert path() == "fallback"
    assert_close(got, getattr(F, f"max_pool{nd}d_backward")(gy, x, 3, 2, 1, indices=idx), TOL)
    idx.reshape(-1)[3] = -1
    with pytest.raises(ValueError, match="out of range"):
        _core._cuda_emulate_max_pool_backward(gy, idx, list(x.shape), *win, False, None)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p, ceil, include_pad, divisor", [
    (2, 2, 0, False, True, None), (3, 1, 1, False, True, None), (3, 1, 1, False, False, None),
    (3, 2, 1, True, False, None), (4, 3, 2, True, True, None), (2, 3, 1, True, True, 7),
    (3, 2, 1, True, True, None)])
def test_avg_pool_fast_paths_match_cpu(rng, nd, k, s, p, ceil, include_pad, divisor):
    x = f32(rng, *SHAPES[nd])
    kw = dict(stride=s, padding=p, ceil_mode=ceil, count_include_pad=include_pad,
              divisor_override=divisor)
    win = win3(nd, k, s, p, 1)[:3]
    y = getattr(F, f"avg_pool{nd}d")(x, k, **kw)
    got = _core._cuda_emulate_avg_pool_forward(x, *win, ceil, None, include_pad, divisor or 0)
    assert path() == "fast"
    assert_close(got, y, TOL)
    gy = f32(rng, *y.shape)
    got = _core._cuda_emulate_avg_pool_backward(gy, list(x.shape), *win, ceil, None, include_pad,
                                                divisor or 0)
    assert path() == "fast"
    assert_close(got, getattr(F, f"avg_pool{nd}d_backward")(gy, x, k, **kw), TOL)


def unpool_hooks(x, idx, gu, windows):
    planes = x.shape[0] * x.shape[1]
    out_count = gu[0, 0].size
    y = _core._cuda_emulate_max_unpool_forward(x.reshape(planes, -1), idx.reshape(planes, -1),
                                               out_count, windows)
    fwd_path = path()
    dx = _core._cuda_emulate_max_unpool_backward(gu.reshape(planes, -1),
                                                 idx.reshape(planes, -1), windows)
    return y.reshape(gu.shape), dx.reshape(x.shape), fwd_path, path()


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p, d, ceil", [w for w in WINDOWS if w[3] == 1])
@pytest.mark.parametrize("switches", ["pooled", "random"])
def test_unpool_one_pass_matches_cpu(rng, nd, k, s, p, d, ceil, switches):
    x = tied(rng, *SHAPES[nd])
    y, sw = getattr(F, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    idx = (sw.indices if switches == "pooled"
           else in_window_switches(rng, nd, x.shape, k, s, p, y.shape[2:]))
    windows = (pad3(x.shape[2:], 1), *win3(nd, k, s, p, d), ceil)
    gu = f32(rng, *x.shape)
    unpool = getattr(F, f"max_unpool{nd}d")
    want_y = unpool(y, idx, output_size=x.shape[2:])
    want_dx = getattr(F, f"max_unpool{nd}d_backward")(gu, y, idx, output_size=x.shape[2:])
    got_y, got_dx, fwd_path, bwd_path = unpool_hooks(y, idx, gu, windows)
    assert (fwd_path, bwd_path) == ("fast", "fast")
    assert np.array_equal(got_y, want_y) and np.array_equal(got_dx, want_dx)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unpool_switch_off_its_window_falls_back(rng, nd):
    x = f32(rng, *SHAPES[nd])
    y, sw = getattr(F, f"max_pool{nd}d")(x, 3, 2, 1, return_indices=True)
    idx = sw.indices.copy()
    idx.reshape(-1)[-1] = 0  # shared with the first window's slot, unreachable from the last
    idx.reshape(-1)[0] = 0
    windows = (pad3(x.shape[2:], 1), *win3(nd, 3, 2, 1, 1), False)
    gu = f32(rng, *x.shape)
    got_y, got_dx, fwd_path, bwd_path = unpool_hooks(y, idx, gu, windows)
    assert (fwd_path, bwd_path) == ("fallback", "fallback")
    assert np.array_equal(got_y, getattr(F, f"max_unpool{nd}d")(y, idx, output_size=x.shape[2:]))
    assert np.array_equal(got_dx, getattr(F, f"max_unpool{nd}d_backward")(
        gu, y, idx, output_size=x.shape[2:]))
    planes = y.shape[0] * y.shape[1]
    idx.reshape(-1)[5] = x[0, 0].size
    for fn, a in ((_core._cuda_emulate_max_unpool_forward, (y.reshape(planes, -1),)),):
        with pytest.raises(ValueError, match="out of range"):
            fn(*a, idx.reshape(planes, -1), x[0, 0].size, windows)
    with pytest.raises(ValueError, match="out of range"):
        _core._cuda_emulate_max_unpool_backward(gu.reshape(planes, -1), idx.reshape(planes, -1),
                                                windows)


def test_unpool_without_windows_takes_the_claim_path(rng):
    x = f32(rng, 2, 3, 6, 4)
    y, sw = F.max_pool2d(x, 2, 2, return_indices=True)
    got = _core._cuda_emulate_max_unpool_forward(y.reshape(6, -1), sw.indices.reshape(6, -1), 24)
    assert path() == "general"
    assert np.array_equal(got.reshape(x.shape), F.max_unpool2d(y, sw))
