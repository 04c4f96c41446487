"""interpolate (nearest / linear / bilinear / trilinear, align_corners, size or scale_factor):
NumPy per-dim weight-matrix reference, the naive twin, the backward as the exact transpose,
float64 finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

import reference_pool as ref
from helpers import assert_close, directional_fd

LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _cases(rng, nd):
    for mode in ("nearest", LINEAR[nd]):
        for align in ((None,) if mode == "nearest" else (False, True)):
            in_sp = tuple(int(v) for v in rng.integers(1, 9, nd))
            if rng.integers(0, 2):
                out_sp = tuple(int(v) for v in rng.integers(1, 13, nd))
                yield mode, align, in_sp, dict(size=out_sp), out_sp, (None,) * nd
            else:
                sf = tuple(float(v) for v in rng.choice([0.5, 1.5, 2.0, 3.0, 1.75, 1.1], nd))
                out_sp = tuple(int(np.floor(n * f)) for n, f in zip(in_sp, sf))
                if min(out_sp) < 1:
                    continue
                yield mode, align, in_sp, dict(scale_factor=sf), out_sp, tuple(1 / f for f in sf)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_random_vs_reference_every_isa(isa, rng, nd, dtype, tol):
    for _ in range(2):
        for mode, align, in_sp, kw, out_sp, scales in _cases(rng, nd):
            x = rng.standard_normal((2, 3) + in_sp).astype(dtype)
            kind = "nearest" if mode == "nearest" else "linear"
            mats = [ref.interp_matrix(n, m, kind, bool(align), sc)
                    for n, m, sc in zip(in_sp, out_sp, scales)]
            y = F.interpolate(x, mode=mode, align_corners=align, **kw)
            case = f"{mode} align={align} {in_sp}->{out_sp} {kw}"
            assert_close(y, ref.interpolate(x, mats), tol, case)
            assert_close(F.interpolate(x, mode=mode, align_corners=align, algo="ref", **kw),
                         y, tol, case)
            g = rng.standard_normal(y.shape).astype(dtype)
            gx = F.interpolate_backward(g, x, mode=mode, align_corners=align, **kw)
            assert_close(gx, ref.interpolate_backward(g, mats), tol, case)
            assert_close(F.interpolate_backward(g, x, mode=mode, align_corners=align, algo="ref",
                                                **kw), gx, tol, case)


def test_nearest_upsample_by_two_repeats():
    x = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    y = F.interpolate(x, scale_factor=2)
    np.testing.assert_array_equal(y[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_nearest_from_sizes_is_the_integer_floor(isa, rng, nd):
    """Output o reads floor(o * in / out), exactly: 23 * (26 / 46) in double is 12.99..., and
    a float product picked 12 there (and in 1.6 % of (in, out) pairs up to 129)."""
    x = rng.standard_normal((1, 1) + (26,) * nd).astype(np.float32)
    y = F.interpolate(x, size=(46,) * nd)
    assert y[(0, 0) + (23,) * nd] == x[(0, 0) + (13,) * nd]
    n_in, n_out = np.meshgrid(np.arange(1, 41), np.arange(1, 121), indexing="ij")
    for n, m in zip(n_in.ravel(), n_out.ravel()):
        if nd > 1 and (n * m) % 7:  # 2-D / 3-D: a sample of the pairs
            continue
        shape = (int(n),) + (2,) * (nd - 1)
        xs = rng.permutation(np.prod(shape)).astype(np.float32).reshape((1, 1) + shape)
        ys = F.interpolate(xs, size=(int(m),) + (2,) * (nd - 1))
        want = xs[0, 0][np.arange(m) * n // m]
        np.testing.assert_array_equal(ys[0, 0], want, err_msg=f"{n} -> {m}")
        gx = F.interpolate_backward(np.ones_like(ys), xs, size=ys.shape[2:])
        hits = np.bincount(np.arange(m) * n // m, minlength=n) * 2 ** (nd - 1)
        np.testing.assert_array_equal(gx[0, 0].reshape(n, -1).sum(1), hits, err_msg=f"{n} -> {m}")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_linear_same_size_is_a_copy(isa, rng, nd):
    """Where out = in along a dim (scale_factor 1.1 on 7), that dim is copied, as PyTorch's linear
    modes do: no weight on a neighbour, so a NaN or inf does not spread (an inf turns into NaN
    in its own place, 1·inf + 0·inf, as in PyTorch)."""
    x = rng.standard_normal((2, 3) + (7,) * nd).astype(np.float32)
    x[(0, 0) + (3,) * nd] = np.nan
    x[(1, 2) + (5,) * nd] = np.inf
    y = F.interpolate(x, scale_factor=1.1, mode=LINEAR[nd])
    want = x.copy()
    want[(1, 2) + (5,) * nd] = np.nan
    np.testing.assert_array_equal(y, want)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = F.interpolate_backward(g, x, scale_factor=1.1, mode=LINEAR[nd])
    np.testing.assert_array_equal(gx, g)


def test_gradients_finite_differences(rng):
    x = rng.standard_normal((2, 2, 4, 5))
    for mode, align in (("nearest", None), ("bilinear", False), ("bilinear", True)):
        g = rng.standard_normal((2, 2, 7, 9))
        f = lambda a: float(np.sum(F.interpolate(a[0], (7, 9), mode=mode, align_corners=align) * g))
        directional_fd(f, [x], [F.interpolate_backward(g, x, (7, 9), mode=mode,
                                                       align_corners=align)], rng)
