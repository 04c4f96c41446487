"""conv2d(..., activation='relu') — the fused bias+ReLU epilogue — and its backward
(conv2d_backward(..., activation='relu', output=y)) on every algorithm and ISA path vs the float64
NumPy reference, float64 finite differences, NaN propagation and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from cnnfast.functional import conv2d, conv2d_backward

import reference as ref
from helpers import assert_close, directional_fd

ALGOS = ("auto", "gemm", "implicit", "direct", "ref")
SHAPES = [  # (N, C, H, W, K, R, S, stride, pad, groups): chunked, small-image, depthwise, 1x1
    (2, 5, 13, 11, 7, 3, 3, 1, 1, 1),
    (6, 3, 9, 9, 4, 5, 5, 1, 0, 1),
    (2, 8, 10, 12, 8, 3, 3, 2, 1, 8),
    (3, 16, 7, 9, 19, 1, 1, 1, 0, 1),
    (1, 32, 40, 40, 17, 3, 3, 1, 1, 1),
]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_forward_backward_vs_reference(isa, rng, algo, shape):
    n, c, h, w_, k, r, s, st, pad, g = shape
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = rng.standard_normal((k, c // g, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    kw = dict(stride=st, padding=pad, groups=g, algo=algo)
    rkw = dict(stride=(st, st), pad=(pad,) * 4, groups=g)
    z = ref.conv2d(x, w, b, **rkw)
    y = conv2d(x, w, b, activation="relu", **kw)
    assert_close(y, np.maximum(z, 0), 1e-5, f"forward {shape} {algo}")
    assert (y >= 0).all() and (y == 0).any()
    gy = rng.standard_normal(y.shape).astype(np.float32)
    got = conv2d_backward(gy, x, w, b, activation="relu", output=y, **kw)
    # The backward masks with the float32 output it is given (y > 0), not the float64 z: an
    # output within rounding of 0 may fall either side, so the reference uses the same mask.
    want = ref.conv2d_backward(gy * (y > 0), x, w, **rkw)
    for name, a, e in zip(("grad_x", "grad_w", "grad_b"), got, want):
        assert_close(a, e, 1e-5, f"{name} {shape} {algo}")


def test_relu_gradients_finite_differences(rng):
    x = rng.standard_normal((2, 3, 7, 8))
    w = rng.standard_normal((5, 3, 3, 3))
    b = rng.standard_normal(5)
    for algo in ("gemm", "implicit", "direct"):
        y = conv2d(x, w, b, padding=1, activation="relu", algo=algo)
        g = rng.standard_normal(y.shape)
        grads = conv2d_backward(g, x, w, b, padding=1, activation="relu", output=y, algo=algo)
        f = lambda a: float(np.sum(conv2d(a[0], a[1], a[2], padding=1, activation="relu",
                                          algo=algo) * g))
        directional_fd(f, [x, w, b], grads, rng, eps=1e-6, tol=1e-6)


def test_relu_keeps_nan():
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = conv2d(x, -np.ones((1, 1, 1, 1), np.float32), activation="relu")
    assert np.isnan(y[0, 0, 1, 1]) and np.count_nonzero(np.isnan(y)) == 1


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(activation="gelu"), ValueError, "activation"),
    (dict(activation="relu"), ValueError, "output: activation='relu' needs"),
    (dict(activation="relu", output=np.ones((1, 2, 3, 3), np.float32)), ValueError,
     r"output: expected shape \(1, 2, 4, 4\)"),
    (dict(activation="relu", output=np.ones((1, 2, 4, 4), np.float64)), TypeError, "output"),
    (dict(output=np.ones((1, 2, 4, 4), np.float32)), ValueError, "only used with"),
])
def test_backward_bad_activation_args(kwargs, exc, match):
    x = np.ones((1, 3, 6, 6), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises(exc, match=match):
        conv2d_backward(np.ones((1, 2, 4, 4), np.float32), x, w, **kwargs)


def test_forward_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        conv2d(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 1, 1), np.float32),
               activation="tanh")
