"""matmul forward/backward: every ISA path vs NumPy float64 on shapes around the register tiles
(tails below, at and above MR/NR and the cache blocks), float64 finite-difference gradients,
bad input, thread-count invariance, and the private peak-FLOPS probe."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
from cnnfast import _core
from cnnfast.functional import matmul, matmul_backward

from helpers import assert_close, directional_fd

# Tails of every kernel's MR (4, 6, 12), NR (4, 8, 16, 32) and blocks (MC 96..192, KC 256..384).
# Skinny m <= 16 against n, k >= 256 runs the transposed problem (gemm.cpp); k <= 32 the shallow
# loop order.
SHAPES = [(1, 1, 1), (5, 7, 3), (6, 16, 8), (7, 17, 9), (12, 32, 1), (13, 33, 31), (25, 9, 260),
          (97, 3, 5), (145, 70, 257), (200, 193, 385), (3, 1000, 2), (16, 300, 260),
          (3, 257, 513), (17, 256, 256), (40, 700, 32)]


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-13)])
def test_matches_numpy_every_isa(isa, rng, dtype, tol):
    for m, n, k in SHAPES:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        c = matmul(a, b)
        assert c.dtype == dtype and c.shape == (m, n)
        assert_close(c, a.astype(np.float64) @ b.astype(np.float64), tol, f"forward {m,n,k}")
        g = rng.standard_normal((m, n)).astype(dtype)
        ga, gb = matmul_backward(g, a, b)
        g64 = g.astype(np.float64)
        assert_close(ga, g64 @ b.astype(np.float64).T, tol, f"grad_a {m,n,k}")
        assert_close(gb, a.astype(np.float64).T @ g64, tol, f"grad_b {m,n,k}")


def test_gradients_finite_differences(isa, rng):
    a = rng.standard_normal((7, 13))
    b = rng.standard_normal((13, 18))
    g = rng.standard_normal((7, 18))
    grads = matmul_backward(g, a, b)
    directional_fd(lambda v: float(np.sum(matmul(v[0], v[1]) * g)), [a, b], grads, rng)


def test_needs_input_grad_and_empty(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    b = rng.standard_normal((5, 3)).astype(np.float32)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    ga, gb = matmul_backward(g, a, b, needs_input_grad=(False, True))
    assert ga is None and gb.shape == (5, 3)
    # k = 0: the product is all zeros, not uninitialised memory.
    z = matmul(np.empty((3, 0), np.float32), np.empty((0, 4), np.float32))
    np.testing.assert_array_equal(z, np.zeros((3, 4), np.float32))
    assert matmul(np.empty((0, 5), np.float32), b).shape == (0, 3)


def test_non_contiguous_inputs(rng):
    a = rng.standard_normal((9, 8)).astype(np.float32).T     # (8, 9), Fortran order
    b = rng.standard_normal((9, 20)).astype(np.float32)[:, ::2]
    assert_close(matmul(a, b), a.astype(np.float64) @ b, 1e-5)


def test_thread_count_invariance(rng):
    a = rng.standard_normal((150, 300)).astype(np.float32)
    b = rng.standard_normal((300, 170)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            outs.append(matmul(a, b))
    finally:
        cnnfast.set_num_threads(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


@pytest.mark.parametrize("args,exc,match", [
    ((np.ones((2, 3), np.float32), np.ones((4, 2), np.float32)), ValueError, "inner dimensions"),
    ((np.ones((2, 3, 1), np.float32), np.ones((3, 2), np.float32)), ValueError, "a: expected a 2-D"),
    ((np.ones((2, 3), np.float32), np.ones(3, np.float32)), ValueError, "b: expected a 2-D"),
    ((np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)), TypeError, "b: dtype"),
    ((np.ones((2, 3), np.int64), np.ones((3, 2), np.int64)), TypeError, "a: dtype"),
    (([[1.0]], np.ones((1, 1), np.float32)), TypeError, "a: expected a numpy.ndarray"),
])
def test_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        matmul(*args)


def test_backward_bad_grad_out_shape():
    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(2, 4\)"):
        matmul_backward(np.ones((4, 2), np.float32), a, b)


def test_peak_probe_is_positive_and_scales_with_isa():
    scalar = None
    for isa in cnnfast.info()["isa_available"]:
        before = cnnfast.info()["isa"]
        cnnfast.set_isa(isa)
        try:
            g = _core._peak_gflops(1, 0.02)
        finally:
            cnnfast.set_isa(before)
        assert g > 0
        scalar = g if isa == "scalar" else scalar
        if isa != "scalar" and isa not in cnnfast.info()["isa_emulated"]:
            assert g > scalar  # wider FMAs: a higher peak than the scalar loop (an emulated
            # ISA's speed means nothing)
    with pytest.raises(ValueError, match="nthreads"):
        _core._peak_gflops(0)
