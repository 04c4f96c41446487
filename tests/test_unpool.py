"""Max-unpooling, 1-D/2-D/3-D: Switches round trips (the mask of maxima, overlapping windows
included), the last-writer rule and its exact adjoint, raw indices with output_size, every ISA
path, the naive twin, float64 finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

import reference_pool as ref
from helpers import assert_close, directional_fd

MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}
UNPOOL_B = {1: F.max_unpool1d_backward, 2: F.max_unpool2d_backward, 3: F.max_unpool3d_backward}


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k,s,p,ceil", [(2, 2, 0, False), (3, 2, 1, False), (3, 2, 0, True),
                                        (3, 1, 1, False)])
def test_round_trip_is_mask_of_maxima(isa, rng, nd, k, s, p, ceil):
    shape = (2, 3) + tuple(int(v) for v in rng.integers(5, 12, nd))
    x = rng.standard_normal(shape).astype(np.float32)
    y, sw = MAX[nd](x, k, s, p, ceil_mode=ceil, return_indices=True)
    u = UNPOOL[nd](y, sw)
    assert u.shape == x.shape  # the Switches carry the size: never guessed
    mask = np.zeros(x.shape, bool).reshape(shape[0], shape[1], -1)
    for i in range(shape[0]):
        for j in range(shape[1]):
            mask[i, j, sw.indices[i, j].ravel()] = True
    mask = mask.reshape(shape)
    np.testing.assert_array_equal(u, np.where(mask, x, 0))
    # the exact adjoint: <unpool(y), g> == <y, unpool_backward(g)>
    g = rng.standard_normal(u.shape).astype(np.float64)
    y64, u64 = y.astype(np.float64), UNPOOL[nd](y.astype(np.float64), sw)
    gy = UNPOOL_B[nd](g, y64, sw)
    assert abs(np.sum(u64 * g) - np.sum(y64 * gy)) < 1e-9 * max(1, np.abs(u64 * g).sum())


def test_last_writer_wins_and_backward_matches(isa, rng):
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]], np.float32)
    idx = np.array([[[1, 3, 1, 0]]], np.int64)
    y = F.max_unpool1d(x, idx, output_size=(5,))
    np.testing.assert_array_equal(y[0, 0], [4, 3, 0, 2, 0])
    g = np.array([[[10.0, 20.0, 30.0, 40.0, 50.0]]], np.float32)
    np.testing.assert_array_equal(F.max_unpool1d_backward(g, x, idx, output_size=5)[0, 0],
                                  [0, 40, 20, 10])


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_indices_vs_reference_every_isa(isa, rng, nd, dtype):
    for _ in range(4):
        in_sp = tuple(int(v) for v in rng.integers(1, 6, nd))
        out_sp = tuple(int(v) for v in rng.integers(1, 9, nd))
        x = rng.standard_normal((2, 3) + in_sp).astype(dtype)
        idx = rng.integers(0, np.prod(out_sp), x.shape)  # duplicates on purpose
        y = UNPOOL[nd](x, idx, output_size=out_sp)
        np.testing.assert_array_equal(y, ref.max_unpool(x, idx, out_sp).astype(dtype))
        np.testing.assert_array_equal(UNPOOL[nd](x, idx, output_size=out_sp, algo="ref"), y)
        g = rng.standard_normal(y.shape).astype(dtype)
        gx = UNPOOL_B[nd](g, x, idx, output_size=out_sp)
        np.testing.assert_array_equal(gx, UNPOOL_B[nd](g, x, idx, output_size=out_sp, algo="ref"))
        lhs = np.sum(y.astype(np.float64) * g)
        rhs = np.sum(x.astype(np.float64) * gx)
        assert abs(lhs - rhs) <= 1e-5 * max(1.0, np.abs(y * g).sum())


def test_raw_indices_default_size_and_fd(rng):
    x = rng.standard_normal((2, 2, 9, 8))
    y, sw = F.max_pool2d(x, 2, return_indices=True)  # 9 -> 4: unpool default size is 8
    u = F.max_unpool2d(y, sw.indices, 2)
    assert u.shape == (2, 2, 8, 8)
    assert F.max_unpool2d(y, sw).shape == x.shape
    assert F.max_unpool2d(y, np.asarray(sw), 2, output_size=(9, 8)).shape == x.shape
    g = rng.standard_normal(x.shape)
    directional_fd(lambda a: float(np.sum(F.max_unpool2d(a[0], sw) * g)), [y],
                   [F.max_unpool2d_backward(g, y, sw)], rng)


def test_thread_count_invariance_with_shared_switches(rng):
    import cnnfast
    x = rng.standard_normal((3, 4, 9, 11)).astype(np.float32)
    idx = rng.integers(0, 30, x.shape)  # many duplicates per plane
    g = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        res = []
        for nt in (1, 2, 3):
            cnnfast.set_num_threads(nt)
            res.append((F.max_unpool2d(x, idx, output_size=(5, 6)),
                        F.max_unpool2d_backward(g, x, idx, output_size=(5, 6))))
        for other in res[1:]:
            for a, b in zip(res[0], other):
                np.testing.assert_array_equal(a, b)
    finally:
        cnnfast.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_2x2_windows_one_pass_and_every_fallback(isa, rng, dtype):
    # Indices that all lie in their 2x2 stride-2 windows take a one-pass path (forward: the
    # switch rows written once; backward: a gather). Pooled rows of 3..21 outputs (the 8-lane
    # blocks and their tails), odd unpooled sizes (rows / columns no window covers), 3-D with a
    # unit-depth kernel; then one index moved out of its window must give the general path's
    # result: onto a neighbour's switch (shared: the last writer wins), onto a free cell of a
    # neighbour's window, past the left of its row, and out of the plane (a ValueError).
    for nd, spatial in ((2, (7, 43)), (2, (9, 6)), (2, (4, 17)), (3, (3, 5, 33))):
        x = rng.standard_normal((2, 3) + spatial).astype(dtype)
        kernel = (2, 2) if nd == 2 else (1, 2, 2)
        y, sw = MAX[nd](x, kernel, return_indices=True)
        want_u = ref.max_unpool(y, sw.indices, spatial)
        np.testing.assert_array_equal(UNPOOL[nd](y, sw), want_u.astype(dtype))
        g = rng.standard_normal(x.shape).astype(dtype)
        np.testing.assert_array_equal(UNPOOL_B[nd](g, y, sw),
                                      ref.max_unpool_backward(g, sw.indices, y.shape).astype(dtype))
        W = spatial[-1]
        for how in ("shared", "free", "row_left", "out_of_plane"):
            idx = sw.indices.copy()
            flat = idx.reshape(-1, idx.shape[-1])  # a view: rows of pooled outputs
            r = int(rng.integers(0, flat.shape[0]))
            c = int(rng.integers(1, flat.shape[1]))
            if how == "shared":
                flat[r, c] = flat[r, c - 1]
            elif how == "free":  # a cell of the left neighbour's window that is not its switch
                oh, od = r % y.shape[-2], (r // y.shape[-2]) % y.shape[2] if nd == 3 else 0
                base = (od * spatial[-2] + 2 * oh) * W + 2 * (c - 1)
                flat[r, c] = next(v for v in (base, base + 1, base + W, base + W + 1)
                                  if v != flat[r, c - 1])
            elif how == "row_left":
                flat[r, 0] = flat[r, 0] - 1 if flat[r, 0] % W else flat[r, 0] + 2
            else:
                flat[r, c] = int(np.prod(spatial[-2:])) * (1 if nd == 2 else spatial[0])
            if how == "out_of_plane":
                with pytest.raises(ValueError, match="indices"):
                    UNPOOL[nd](y, idx, output_size=spatial)
                with pytest.raises(ValueError, match="indices"):
                    UNPOOL_B[nd](g, y, idx, output_size=spatial)
                continue
            np.testing.assert_array_equal(UNPOOL[nd](y, idx, output_size=spatial),
                                          ref.max_unpool(y, idx, spatial).astype(dtype), how)
            np.testing.assert_array_equal(UNPOOL_B[nd](g, y, idx, output_size=spatial),
                                          ref.max_unpool_backward(g, idx, y.shape).astype(dtype),
                                          how)
