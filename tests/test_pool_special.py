"""Max pooling's special values (NaN wins with its index, -inf and ties in wide rows and in the
2-column border windows) on every ISA path, results that do not depend on the thread count, and
the global average of a plane too long for one float32 sum."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F

import reference_pool as ref

def test_nan_propagates_with_its_index(isa, rng):
    x = rng.standard_normal((1, 2, 6, 40)).astype(np.float32)
    x[0, 1, 2, 17] = np.nan
    y, sw = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert np.isnan(y[0, 1, 1, 8]) and np.isnan(y[0, 1, 1, 9])
    assert sw.indices[0, 1, 1, 8] == 2 * 40 + 17
    assert np.isfinite(y[0, 0]).all()
    m, si = F.global_max_pool(x, return_indices=True)
    assert np.isnan(m[0, 1, 0, 0]) and si.indices[0, 1, 0, 0] == 2 * 40 + 17
    y, sw = F.max_pool2d(x, 4, 4, return_indices=True)  # 4-wide windows at stride 4
    assert np.isnan(y[0, 1, 0, 4]) and sw.indices[0, 1, 0, 4] == 2 * 40 + 17
    assert np.isnan(y).sum() == 1


@pytest.mark.parametrize("fill", ["inf_pair", "nan", "ties"])
def test_max_pool_special_values_in_wide_rows(isa, rng, fill):
    """Rows wide enough for the AVX2 kernel's 16-output blocks: its plain pass (no NaN
    bookkeeping) must hand a block with a NaN, or with +inf and -inf together (their sum is a
    NaN: a false alarm), to the exact pass, and keep the first index among equal maxima."""
    x = rng.standard_normal((2, 3, 9, 75)).astype(np.float32)
    if fill == "inf_pair":
        x[0, 1, 3, 20], x[0, 1, 4, 22], x[1, 2, 0, 60] = np.inf, -np.inf, -np.inf
    elif fill == "nan":
        x[0, 0, 5, 33] = x[1, 1, 2, 70] = np.nan
        x[1, 1, 3, 71] = np.inf
    else:
        x = rng.integers(-2, 2, x.shape).astype(np.float32)  # many equal maxima per window
    for k, s, p in ((3, 2, 1), (3, 1, 1), (2, 1, 0), (4, 3, 2)):
        y, sw = F.max_pool2d(x, k, s, p, return_indices=True)
        want, widx = ref.max_pool(x, [ref.windows(9, k, s, p), ref.windows(75, k, s, p)])
        np.testing.assert_array_equal(y, want.astype(np.float32), err_msg=f"k{k} s{s} p{p}")
        np.testing.assert_array_equal(sw.indices, widx, err_msg=f"k{k} s{s} p{p}")
        np.testing.assert_array_equal(F.max_pool2d(x, k, s, p), y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_border_windows_special_values(isa, rng, dtype):
    """Windows cut to 2 columns by padding (3-wide at padding 1; 2 or 3 rows, 2 at the top and
    bottom borders): the first NaN in raster order wins even with several in one window, the
    first of equal maxima wins, a window of -inf gives -inf at its first cell."""
    x = rng.standard_normal((2, 3, 7, 21)).astype(dtype)
    x[0, 0, 0:2, 0:2] = np.nan  # four NaNs in the top-left window
    x[0, 1, 3, 1] = x[0, 1, 4, 0] = np.nan  # two NaNs, the later one in the earlier column
    x[0, 2, :, 19:] = np.nan  # the right border column pair, every row
    x[1, 0, 2:5, 0:2] = 5.0  # ties: six equal maxima in one window
    x[1, 1, 4:7, 0:2] = -np.inf  # a window of -inf (the bottom border has 2 rows)
    x[1, 2, :, 0] = np.inf
    for k, s, p in ((3, 2, 1), (3, 1, 1)):
        wins = [ref.windows(7, k, s, p), ref.windows(21, k, s, p)]
        y, sw = F.max_pool2d(x, k, s, p, return_indices=True)
        want, widx = ref.max_pool(x, wins)
        np.testing.assert_array_equal(y, want.astype(dtype), err_msg=f"k{k} s{s} p{p}")
        np.testing.assert_array_equal(sw.indices, widx, err_msg=f"k{k} s{s} p{p}")


def test_thread_count_invariance(rng):
    x = rng.standard_normal((3, 5, 17, 33)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        res = []
        for nt in (1, 2, 3):
            cnnfast.set_num_threads(nt)
            y, sw = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            g = np.ones_like(y)
            res.append((y, sw.indices, F.max_pool2d_backward(g, x, 3, 2, 1, indices=sw),
                        F.avg_pool2d_backward(g, x, 3, 2, 1)))
        for other in res[1:]:
            for a, b in zip(res[0], other):
                np.testing.assert_array_equal(a, b)
    finally:
        cnnfast.set_num_threads(before)


def test_global_average_of_a_huge_plane_does_not_stall(rng):
    # 2^24 + 5 elements a plane: one float32 sum stalls (0.1 added 2^21 times per SIMD lane
    # drifts); the plane is summed in chunks into a double
    n = 2**24 + 5
    x = np.full((1, 2, n), 0.1, np.float32)
    x[0, 1] = rng.random(n, dtype=np.float32)
    got = F.global_avg_pool(x).ravel()
    want = x.astype(np.float64).mean(axis=2).ravel()
    assert np.all(np.abs(got - want) <= 2e-6 * np.abs(want)), (got, want)
