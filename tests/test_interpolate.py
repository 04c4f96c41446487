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
                sf = tuple(float(v) for v in rng.choice([0.5, 1.5, 2.0, 3.0, 1.75], nd))
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


def test_gradients_finite_differences(rng):
    x = rng.standard_normal((2, 2, 4, 5))
    for mode, align in (("nearest", None), ("bilinear", False), ("bilinear", True)):
        g = rng.standard_normal((2, 2, 7, 9))
        f = lambda a: float(np.sum(F.interpolate(a[0], (7, 9), mode=mode, align_corners=align) * g))
        directional_fd(f, [x], [F.interpolate_backward(g, x, (7, 9), mode=mode,
                                                       align_corners=align)], rng)
