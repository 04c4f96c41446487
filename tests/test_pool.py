"""Max/avg/Lp/adaptive/global pooling, 1-D/2-D/3-D: the textbook example, random sweeps vs the
NumPy reference on every ISA path (padding, ceil_mode, dilation, overlap, SIMD tails), the naive
twin and float64 finite-difference gradients (NaN, ties at borders and thread counts:
test_pool_special.py)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

import reference_pool as ref
from helpers import assert_close, directional_fd

POOL = {1: (F.max_pool1d, F.avg_pool1d), 2: (F.max_pool2d, F.avg_pool2d),
        3: (F.max_pool3d, F.avg_pool3d)}
BACK = {1: (F.max_pool1d_backward, F.avg_pool1d_backward),
        2: (F.max_pool2d_backward, F.avg_pool2d_backward),
        3: (F.max_pool3d_backward, F.avg_pool3d_backward)}


# ---- the chapter's example ---------------------------------------------------------------------

TEXTBOOK = np.array([[12, 20, 30, 0], [8, 12, 2, 0], [34, 70, 37, 4], [112, 100, 25, 12]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_textbook_example(dtype):
    x = TEXTBOOK.astype(dtype)[None, None]
    np.testing.assert_array_equal(F.max_pool2d(x, 2, 2)[0, 0], [[20, 30], [112, 37]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2, 2)[0, 0], [[13, 8], [79, 19.5]])
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(sw.indices[0, 0], [[1, 2], [12, 10]])
    assert sw.input_shape == (1, 1, 4, 4)


# ---- random sweeps ------------------------------------------------------------------------------

def random_case(rng, nd, avg=False, big_w=False):
    """Per-dim (n, k, s, p, d) plus ceil_mode, valid for PyTorch's rules."""
    while True:
        dims = []
        for axis in range(nd):
            k = int(rng.integers(1, 5))
            s = int(rng.choice([1, 2, 2, 3, k]))
            d = 1 if avg else int(rng.choice([1, 1, 2]))
            p = int(rng.integers(0, k // 2 + 1))
            hi = (45 if nd < 3 else 20) if (big_w and axis == nd - 1) else 8
            n = int(rng.integers(1, hi))
            dims.append((n, k, s, p, d))
        ceil = bool(rng.integers(0, 2))
        if all((k - 1) * d + 1 <= n + 2 * p for n, k, s, p, d in dims) and all(
                taps for n, k, s, p, d in dims for taps, _ in ref.windows(n, k, s, p, d, ceil)):
            return dims, ceil  # (a window wholly in the padding is a ValueError, tested apart)


def _args(dims):
    return tuple(tuple(v[i] for v in dims) for i in range(1, 5))


def _wins(dims, ceil):
    return [ref.windows(n, k, s, p, d, ceil) for n, k, s, p, d in dims]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_max_pool_random_every_isa(isa, rng, nd, dtype, tol):
    for _ in range(6):
        dims, ceil = random_case(rng, nd, big_w=True)
        k, s, p, d = _args(dims)
        x = rng.standard_normal((2, 3) + tuple(v[0] for v in dims)).astype(dtype)
        y, sw = POOL[nd][0](x, k, s, p, d, ceil, return_indices=True)
        want, widx = ref.max_pool(x, _wins(dims, ceil))
        case = f"{dims} ceil={ceil}"
        np.testing.assert_array_equal(y, want.astype(dtype), err_msg=case)
        np.testing.assert_array_equal(sw.indices, widx, err_msg=case)
        np.testing.assert_array_equal(POOL[nd][0](x, k, s, p, d, ceil), y)  # no-index path
        g = rng.standard_normal(y.shape).astype(dtype)
        gx = BACK[nd][0](g, x, k, s, p, d, ceil, indices=sw)
        assert_close(gx, ref.max_pool_backward(g, x.shape, widx), tol, case)
        gx2 = BACK[nd][0](g, x, k, s, p, d, ceil)  # switches recomputed from x
        np.testing.assert_array_equal(gx, gx2)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_avg_pool_random_every_isa(isa, rng, nd, dtype, tol):
    for _ in range(6):
        dims, ceil = random_case(rng, nd, avg=True, big_w=True)
        k, s, p, _ = _args(dims)
        include = bool(rng.integers(0, 2))
        div = [None, None, int(rng.integers(1, 9))][int(rng.integers(0, 3))]
        x = rng.standard_normal((2, 3) + tuple(v[0] for v in dims)).astype(dtype)
        y = POOL[nd][1](x, k, s, p, ceil, include, div)
        wins = _wins(dims, ceil)
        case = f"{dims} ceil={ceil} include_pad={include} divisor={div}"
        assert_close(y, ref.avg_pool(x, wins, include, div), tol, case)
        g = rng.standard_normal(y.shape).astype(dtype)
        gx = BACK[nd][1](g, x, k, s, p, ceil, include, div)
        assert_close(gx, ref.avg_pool_backward(g, x.shape, wins, include, div), tol, case)


def test_naive_twin_matches_reference(rng):
    for nd in (1, 2, 3):
        dims, ceil = random_case(rng, nd)
        k, s, p, d = _args(dims)
        x = rng.standard_normal((2, 2) + tuple(v[0] for v in dims))
        y, sw = POOL[nd][0](x, k, s, p, d, ceil, return_indices=True, algo="ref")
        want, widx = ref.max_pool(x, _wins(dims, ceil))
        np.testing.assert_array_equal(y, want)
        np.testing.assert_array_equal(sw.indices, widx)
        g = rng.standard_normal(y.shape)
        assert_close(BACK[nd][0](g, x, k, s, p, d, ceil, indices=sw, algo="ref"),
                     ref.max_pool_backward(g, x.shape, widx), 1e-13)
        dims, ceil = random_case(rng, nd, avg=True)
        k, s, p, _ = _args(dims)
        x = rng.standard_normal((2, 2) + tuple(v[0] for v in dims))
        wins = _wins(dims, ceil)
        y = POOL[nd][1](x, k, s, p, ceil, False, algo="ref")
        assert_close(y, ref.avg_pool(x, wins, False), 1e-13)
        g = rng.standard_normal(y.shape)
        assert_close(BACK[nd][1](g, x, k, s, p, ceil, False, algo="ref"),
                     ref.avg_pool_backward(g, x.shape, wins, False), 1e-13)


@pytest.mark.parametrize("w", [7, 8, 9, 17, 33, 65])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0), (4, 4, 0)])
def test_simd_tails_2d(isa, rng, w, k, s, p):
    """W around the 8/16-lane blocks for the stride-1/2 fast paths (and stride 4 fallback),
    forward and the avg backward's W gather."""
    if w + 2 * p < k:
        pytest.skip("kernel larger than the padded input")
    x = rng.standard_normal((1, 3, 5, w)).astype(np.float32)
    wins = [ref.windows(5, k, s, p), ref.windows(w, k, s, p)]
    y, sw = F.max_pool2d(x, k, s, p, return_indices=True)
    want, widx = ref.max_pool(x, wins)
    np.testing.assert_array_equal(y, want.astype(np.float32))
    np.testing.assert_array_equal(sw.indices, widx)
    for include in (True, False):
        assert_close(F.avg_pool2d(x, k, s, p, count_include_pad=include),
                     ref.avg_pool(x, wins, include), 2e-6)
        g = rng.standard_normal(y.shape).astype(np.float32)
        assert_close(F.avg_pool2d_backward(g, x, k, s, p, count_include_pad=include),
                     ref.avg_pool_backward(g, x.shape, wins, include), 2e-6)


@pytest.mark.parametrize("k,p", [(3, 1), (4, 1)])
def test_avg_backward_streamed_rows(isa, rng, k, p):
    """A dx past 32 MiB with rows of whole 16-float blocks: the stride-2 gather writes it with
    streaming stores (AVX2 / AVX-512); every element must still be written, with the values of
    the naive twin. Odd-width planes of the same size take the plain stores."""
    for w in (512, 511):
        x = rng.standard_normal((2, 16, 520, w)).astype(np.float32)  # > 32 MiB
        y = F.avg_pool2d(x, k, 2, p)
        g = rng.standard_normal(y.shape).astype(np.float32)
        got = F.avg_pool2d_backward(g, x, k, 2, p)
        assert_close(got, F.avg_pool2d_backward(g, x, k, 2, p, algo="ref"), 2e-6, f"w={w}")


def test_2x2_backward_streamed_rows(isa, rng):
    """The 2x2/2 backward loops past 32 MiB (avg and max backward, and max-unpooling, which
    runs on max's): rows of whole 8-output blocks on aligned rows go out with streaming stores
    (AVX2 / AVX-512). Every element must still be written with the naive twin's values, the
    unread last row included (odd H); widths whose rows are not whole blocks (520: 260 outputs,
    511) take plain stores."""
    for w in (512, 520, 511):
        x = rng.standard_normal((2, 16, 521, w)).astype(np.float32)  # > 32 MiB
        y, sw = F.max_pool2d(x, 2, return_indices=True)
        g = rng.standard_normal(y.shape).astype(np.float32)
        assert_close(F.avg_pool2d_backward(g, x, 2), F.avg_pool2d_backward(g, x, 2, algo="ref"),
                     2e-6, f"w={w}")
        np.testing.assert_array_equal(F.max_pool2d_backward(g, x, 2, indices=sw),
                                      F.max_pool2d_backward(g, x, 2, indices=sw, algo="ref"),
                                      err_msg=f"w={w}")
        np.testing.assert_array_equal(F.max_unpool2d(g, sw), F.max_unpool2d(g, sw, algo="ref"),
                                      err_msg=f"w={w}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2x2_stride2_fast_path(isa, rng, dtype):
    """The dedicated 2x2/2 loops (LeNet/VGG/U-Net pooling): odd H/W (the unread last row/column
    must get a zero gradient, not poison), rows around the 8-lane blocks, ties, NaN, the divisor
    override, 3-D with a 1x2x2 window, and a backward whose indices leave their windows (the
    general scatter takes over)."""
    for shape in ((3, 5, 10, 10), (2, 3, 7, 33), (1, 2, 16, 17), (2, 2, 2, 2), (4, 3, 9, 2)):
        x = rng.standard_normal(shape).astype(dtype)
        x.flat[rng.integers(0, x.size, 3)] = x.flat[0]  # a few ties
        wins = [ref.windows(shape[2], 2, 2, 0), ref.windows(shape[3], 2, 2, 0)]
        y, sw = F.max_pool2d(x, 2, return_indices=True)
        want, widx = ref.max_pool(x, wins)
        np.testing.assert_array_equal(y, want.astype(dtype), err_msg=str(shape))
        np.testing.assert_array_equal(sw.indices, widx, err_msg=str(shape))
        g = rng.standard_normal(y.shape).astype(dtype)
        np.testing.assert_array_equal(F.max_pool2d_backward(g, x, 2, indices=sw),
                                      ref.max_pool_backward(g, x.shape, widx))
        for div in (None, 3):
            assert_close(F.avg_pool2d(x, 2, divisor_override=div),
                         ref.avg_pool(x, wins, True, div), 2e-6, str(shape))
            assert_close(F.avg_pool2d_backward(g, x, 2, divisor_override=div),
                         ref.avg_pool_backward(g, x.shape, wins, True, div), 2e-6, str(shape))
    x = rng.standard_normal((2, 3, 6, 20)).astype(dtype)
    x[0, 1, 2, 5] = x[1, 2, 5, 18] = np.nan
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 1, 1, 2]) and sw.indices[0, 1, 1, 2] == 2 * 20 + 5
    assert np.isnan(y[1, 2, 2, 9]) and sw.indices[1, 2, 2, 9] == 5 * 20 + 18
    assert np.isnan(y).sum() == 2
    # indices outside their windows (here: every output points at plane element 0)
    g = rng.standard_normal(y.shape).astype(dtype)
    idx = np.zeros(y.shape, np.int64)
    gx = F.max_pool2d_backward(g, x, 2, indices=idx)
    want = np.zeros(x.shape, dtype)
    want[:, :, 0, 0] = g.sum(axis=(2, 3))
    assert_close(gx, want, 1e-5)
    x3 = rng.standard_normal((2, 2, 3, 9, 11)).astype(dtype)
    wins3 = [ref.windows(3, 1, 1, 0), ref.windows(9, 2, 2, 0), ref.windows(11, 2, 2, 0)]
    y3, sw3 = F.max_pool3d(x3, (1, 2, 2), return_indices=True)
    want3, widx3 = ref.max_pool(x3, wins3)
    np.testing.assert_array_equal(y3, want3.astype(dtype))
    np.testing.assert_array_equal(sw3.indices, widx3)
    g3 = rng.standard_normal(y3.shape).astype(dtype)
    np.testing.assert_array_equal(F.max_pool3d_backward(g3, x3, (1, 2, 2), indices=sw3),
                                  ref.max_pool_backward(g3, x3.shape, widx3))
    assert_close(F.avg_pool3d_backward(g3, x3, (1, 2, 2)),
                 ref.avg_pool_backward(g3, x3.shape, wins3), 2e-6)


def test_max_backward_switches_anywhere_in_the_plane(isa, rng):
    """The general backward zeroes each plane a band at a time, just ahead of the output row
    whose window ends there. Switches that leave their windows (ahead of the band, behind it,
    shared, the plane's last element) must still land on zeroed memory and add up."""
    cases = [((2, 3, 11, 13), 3, 2, 1, 1), ((1, 2, 9, 30), 3, 1, 1, 1), ((2, 2, 12, 7), 2, 1, 0, 2)]
    for shape, k, s, p, d in cases:
        x = rng.standard_normal(shape).astype(np.float32)
        y, sw = F.max_pool2d(x, k, s, p, d, return_indices=True)
        g = rng.standard_normal(y.shape).astype(np.float32)
        plane = shape[2] * shape[3]
        for idx in (rng.integers(0, plane, y.shape),        # anywhere, shared
                    np.full(y.shape, plane - 1),           # all on the last element
                    plane - 1 - sw.indices):                # mirrored: early outputs far ahead
            idx = idx.astype(np.int64)
            assert_close(F.max_pool2d_backward(g, x, k, s, p, d, indices=idx),
                         ref.max_pool_backward(g, x.shape, idx), 1e-5, str((shape, k, s)))
    x = rng.standard_normal((2, 3, 10, 9)).astype(np.float32)
    y, sw = F.adaptive_max_pool2d(x, (3, 4), return_indices=True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    idx = rng.integers(0, 90, y.shape).astype(np.int64)
    assert_close(F.adaptive_max_pool2d_backward(g, x, (3, 4), indices=idx),
                 ref.max_pool_backward(g, x.shape, idx), 1e-5)


def test_ties_pick_first_maximum(isa, rng):
    """Few distinct values: the index must be the FIRST maximum in raster order on every path
    (SIMD blocks, stride-2 de-interleave, gathers, long-window lanes, borders)."""
    x = rng.integers(0, 3, (2, 3, 7, 70)).astype(np.float32)
    for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1), (4, 4, 0)):
        y, sw = F.max_pool2d(x, k, s, p, return_indices=True)
        want, widx = ref.max_pool(x, [ref.windows(7, k, s, p), ref.windows(70, k, s, p)])
        np.testing.assert_array_equal(y, want.astype(np.float32))
        np.testing.assert_array_equal(sw.indices, widx, err_msg=f"k={k} s={s} p={p}")
    for out in ((1, 1), (2, 3)):
        y, sw = F.adaptive_max_pool2d(x, out, return_indices=True)
        _, widx = ref.max_pool(x, [ref.adaptive_windows(7, out[0]),
                                   ref.adaptive_windows(70, out[1])])
        np.testing.assert_array_equal(sw.indices, widx, err_msg=f"adaptive {out}")


# ---- adaptive, global, Lp -----------------------------------------------------------------------

ADAPTIVE = {1: (F.adaptive_max_pool1d, F.adaptive_avg_pool1d),
            2: (F.adaptive_max_pool2d, F.adaptive_avg_pool2d),
            3: (F.adaptive_max_pool3d, F.adaptive_avg_pool3d)}


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_random_every_isa(isa, rng, nd):
    for _ in range(4):
        shape = tuple(int(v) for v in rng.integers(1, 12, nd))
        if nd < 3:  # long rows exercise the tap-vectorised kernels
            shape = shape[:-1] + (int(rng.integers(1, 70)),)
        out = tuple(int(rng.integers(1, n + 3)) for n in shape)
        x = rng.standard_normal((2, 3) + shape).astype(np.float32)
        wins = [ref.adaptive_windows(n, m) for n, m in zip(shape, out)]
        y, sw = ADAPTIVE[nd][0](x, out, return_indices=True)
        want, widx = ref.max_pool(x, wins)
        np.testing.assert_array_equal(y, want.astype(np.float32), err_msg=f"{shape}->{out}")
        np.testing.assert_array_equal(sw.indices, widx)
        assert_close(ADAPTIVE[nd][1](x, out), ref.avg_pool(x, wins, False), 2e-6)
        g = rng.standard_normal(y.shape).astype(np.float32)
        assert_close(getattr(F, f"adaptive_avg_pool{nd}d_backward")(g, x, out),
                     ref.avg_pool_backward(g, x.shape, wins, False), 2e-6)
        assert_close(getattr(F, f"adaptive_max_pool{nd}d_backward")(g, x, out, indices=sw),
                     ref.max_pool_backward(g, x.shape, widx), 2e-6)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_avg_tiling_windows_every_isa(isa, rng, nd):
    """Adaptive windows that tile the row (W a multiple of the output width, e.g. 112 -> 7) take
    one lattice call per row; rows they do not tile, and windows of one column, take the
    per-output path. Both must match the reference."""
    for w, ow in ((112, 7), (48, 3), (40, 8), (24, 24), (33, 11), (35, 8), (9, 1)):
        shape = (5, 7, w)[-nd:]
        out = (2, 3, ow)[-nd:]
        x = rng.standard_normal((2, 3) + shape).astype(np.float32)
        wins = [ref.adaptive_windows(n, m) for n, m in zip(shape, out)]
        assert_close(ADAPTIVE[nd][1](x, out), ref.avg_pool(x, wins, False), 2e-6, f"{w}->{ow}")


def test_adaptive_none_keeps_size_and_global(rng):
    x = rng.standard_normal((2, 3, 9, 13)).astype(np.float32)
    assert F.adaptive_avg_pool2d(x, (None, 4)).shape == (2, 3, 9, 4)
    g = F.global_avg_pool(x)
    assert g.shape == (2, 3, 1, 1)
    assert_close(g[:, :, 0, 0], x.astype(np.float64).mean((2, 3)), 2e-6)
    m, sw = F.global_max_pool(x, return_indices=True)
    np.testing.assert_array_equal(m[:, :, 0, 0], x.max((2, 3)))
    np.testing.assert_array_equal(sw.indices[:, :, 0, 0], x.reshape(2, 3, -1).argmax(2))
    gy = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    assert_close(F.global_avg_pool_backward(gy, x), np.broadcast_to(gy / (9 * 13), x.shape), 1e-6)
    gm = F.global_max_pool_backward(gy, x)
    assert_close(gm.sum((2, 3)), gy[:, :, 0, 0], 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_average_every_isa_and_plane_length(isa, rng, dtype):
    # sum_planes: planes under 8 (scalar order), whole 8- and 32-float blocks and masked tails,
    # 4096 (the last one-call length) and past it (chunks into a double); dx = dy / n
    for n in (1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 41, 49, 4096, 4097, 12545):
        x = (rng.standard_normal((3, 5, n)) + 0.5).astype(dtype)
        y = F.global_avg_pool(x)  # outputs NaN-poisoned (conftest): every plane must be written
        assert_close(y[..., 0], x.astype(np.float64).mean(2), 2e-6, f"n={n}")
        gy = rng.standard_normal((3, 5, 1)).astype(dtype)
        assert_close(F.global_avg_pool_backward(gy, x), np.broadcast_to(gy / n, x.shape), 1e-6,
                     f"backward n={n}")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_lp_pool_random(rng, nd):
    for p in (1.0, 2.0, 3.5):
        dims = [(0, 1, 1, 0, 1)]
        while any(k > n for n, k, _, _, _ in dims):  # Lp pooling has no padding
            dims, ceil = random_case(rng, nd, avg=True)
            dims = [(n, k, s, 0, 1) for n, k, s, _, _ in dims]
        k, s, _, _ = _args(dims)
        x = rng.standard_normal((2, 2) + tuple(v[0] for v in dims))
        y = getattr(F, f"lp_pool{nd}d")(x, p, k, s, ceil)
        assert_close(y, ref.lp_pool(x, p, _wins(dims, ceil)), 1e-12)


@pytest.mark.parametrize("magnitude", [10.0, 1e-3])
def test_lp_pool_large_norm_stays_finite(rng, magnitude):
    """|x|^40 overflows float32 for |x| > 9.2 and underflows for |x| < 0.11: the result must
    still be the window's norm (about its largest |x|), not inf or 0."""
    x = (rng.standard_normal((2, 3, 9, 8)) * magnitude).astype(np.float32)
    y = F.lp_pool2d(x, 40.0, 3, 2)
    want = ref.lp_pool(x, 40.0, _wins([(9, 3, 2, 0, 1), (8, 3, 2, 0, 1)], False))
    assert np.isfinite(y).all() and (y > 0).all()
    assert_close(y, want, 1e-5)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = F.lp_pool2d_backward(g, x, 40.0, 3, 2)
    assert np.isfinite(dx).all()
    x64 = x.astype(np.float64)
    directional_fd(lambda a: float(np.sum(F.lp_pool2d(a[0], 40.0, 3, 2) * g)), [x64],
                   [F.lp_pool2d_backward(g.astype(np.float64), x64, 40.0, 3, 2)], rng,
                   eps=1e-6 * magnitude, tol=1e-6)
    assert_close(dx, F.lp_pool2d_backward(g.astype(np.float64), x64, 40.0, 3, 2), 1e-4)


# ---- gradients by float64 finite differences ------------------------------------------------------

def _no_ties(rng, shape):
    """Distinct values well apart, so max switches do not move under the FD step."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(-0.01, 0.01, shape)


@pytest.mark.parametrize("nd,k,s,p,d,ceil", [(1, 3, 2, 1, 1, True), (2, 3, 2, 1, 1, False),
                                             (2, 2, 1, 0, 2, True), (3, 2, 2, 1, 1, True)])
def test_gradients_finite_differences(isa, rng, nd, k, s, p, d, ceil):
    x = _no_ties(rng, (2, 2) + (7,) * nd)
    mp, ap = POOL[nd]
    mb, ab = BACK[nd]
    g = rng.standard_normal(mp(x, k, s, p, d, ceil).shape)
    directional_fd(lambda a: float(np.sum(mp(a[0], k, s, p, d, ceil) * g)), [x],
                   [mb(g, x, k, s, p, d, ceil)], rng, eps=1e-4)
    for include in (True, False):
        g = rng.standard_normal(ap(x, k, s, p, ceil, include).shape)
        directional_fd(lambda a: float(np.sum(ap(a[0], k, s, p, ceil, include) * g)), [x],
                       [ab(g, x, k, s, p, ceil, include)], rng)
    lp, lb = getattr(F, f"lp_pool{nd}d"), getattr(F, f"lp_pool{nd}d_backward")
    for norm in (2.0, 3.0):
        g = rng.standard_normal(lp(x, norm, k, s, ceil).shape)
        directional_fd(lambda a: float(np.sum(lp(a[0], norm, k, s, ceil) * g)), [x],
                       [lb(g, x, norm, k, s, ceil)], rng, eps=1e-5, tol=1e-6)
    out = (3,) * nd
    for f, b in ((getattr(F, f"adaptive_avg_pool{nd}d"), getattr(F, f"adaptive_avg_pool{nd}d_backward")),
                 (getattr(F, f"adaptive_max_pool{nd}d"), getattr(F, f"adaptive_max_pool{nd}d_backward"))):
        g = rng.standard_normal(f(x, out).shape)
        directional_fd(lambda a: float(np.sum(f(a[0], out) * g)), [x], [b(g, x, out)], rng,
                       eps=1e-4)
