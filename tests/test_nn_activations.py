"""Activations, softmax / log-softmax and dropout: NumPy references on every ISA path (odd and
tail sizes), float64 finite-difference gradients, dropout mask semantics, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

import reference_nn as ref
from helpers import assert_close, directional_fd

SIZES = [1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 16384 + 5]


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
def test_relu_family_every_isa(isa, rng, dtype, tol):
    for n in SIZES:
        x = rng.standard_normal(n).astype(dtype)
        g = rng.standard_normal(n).astype(dtype)
        slope = float(rng.uniform(0.01, 0.5))
        assert_close(F.relu(x), ref.leaky_relu(x, 0.0), tol, f"relu n={n}")
        assert_close(F.leaky_relu(x, slope), ref.leaky_relu(x, slope), tol, f"leaky n={n}")
        assert_close(F.relu_backward(g, x), np.where(x > 0, g, 0.0), tol, f"relu' n={n}")
        assert_close(F.leaky_relu_backward(g, x, slope), np.where(x > 0, g, slope * g), tol,
                     f"leaky' n={n}")


def test_tanh_sigmoid_float32_every_isa(isa, rng):
    for n in SIZES:
        x = (rng.standard_normal(n) * 4).astype(np.float32)
        x[: min(n, 3)] = [20.0, -20.0, 1e-6][: min(n, 3)]  # saturation and the tiny-x regime
        want_t, want_s = np.tanh(x.astype(np.float64)), ref.sigmoid(x)
        assert np.all(np.abs(F.tanh(x) - want_t) <= 1e-6 * np.abs(want_t) + 1e-30), f"tanh n={n}"
        assert np.all(np.abs(F.sigmoid(x) - want_s) <= 5e-7), f"sigmoid n={n}"


def test_smooth_activations(rng):
    x = rng.standard_normal((3, 5, 7)) * 3
    x += 0.1 * np.sign(x)  # keep leaky_relu's kink out of the finite-difference stencil
    g = rng.standard_normal(x.shape)
    assert_close(F.sigmoid(x), ref.sigmoid(x), 1e-14, "sigmoid")
    assert_close(F.tanh(x), np.tanh(x), 1e-14, "tanh")
    assert_close(F.sigmoid(x.astype(np.float32)), ref.sigmoid(x), 1e-6, "sigmoid f32")
    for fwd, bwd in ((F.sigmoid, F.sigmoid_backward), (F.tanh, F.tanh_backward),
                     (lambda a: F.leaky_relu(a, 0.1),
                      lambda gg, y: F.leaky_relu_backward(gg, x, 0.1))):
        y = fwd(x)
        gx = bwd(g, y)
        directional_fd(lambda a: float(np.sum(fwd(a[0]) * g)), [x], [gx], rng, eps=1e-5)


@pytest.mark.parametrize("shape,dim", [((4, 10), 1), ((2, 3, 5, 7), 1), ((3, 6), -1),
                                       ((2, 5, 4), 2), ((1, 1), 1), ((70, 3, 9), 0)])
def test_softmax_log_softmax(rng, shape, dim):
    x = rng.standard_normal(shape) * 4
    g = rng.standard_normal(shape)
    y, ly = F.softmax(x, dim), F.log_softmax(x, dim)
    assert_close(y, ref.softmax(x, dim), 1e-13, "softmax")
    assert_close(ly, ref.log_softmax(x, dim), 1e-13, "log_softmax")
    assert_close(F.softmax(x.astype(np.float32), dim), ref.softmax(x, dim), 1e-6, "softmax f32")
    directional_fd(lambda a: float(np.sum(F.softmax(a[0], dim) * g)), [x],
                   [F.softmax_backward(g, y, dim)], rng, eps=1e-5)
    directional_fd(lambda a: float(np.sum(F.log_softmax(a[0], dim) * g)), [x],
                   [F.log_softmax_backward(g, ly, dim)], rng, eps=1e-5)


def test_softmax_is_stable_for_large_logits(rng):
    x = rng.standard_normal((2, 5)) + np.array([[1000.0], [-1000.0]])
    assert_close(F.softmax(x), ref.softmax(x), 1e-13, "large logits")


def test_dropout_mask_and_scale(rng):
    x = rng.standard_normal((8, 4, 5, 5))
    y, mask = F.dropout(x, 0.3, rng=rng)
    assert mask.shape == (x.size,) and set(np.unique(mask)) <= {0, 1}
    keep = mask.reshape(x.shape).astype(bool)
    np.testing.assert_allclose(y[keep], x[keep] / 0.7, rtol=1e-15)
    assert np.all(y[~keep] == 0)
    assert 0.2 < 1 - keep.mean() < 0.4
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(F.dropout_backward(g, mask, 0.3), np.where(keep, g / 0.7, 0))
    ye, me = F.dropout(x, 0.3, training=False)
    np.testing.assert_array_equal(ye, x)


def test_dropout2d_drops_whole_channels(rng):
    x = rng.standard_normal((6, 10, 3, 4)).astype(np.float32)
    y, mask = F.dropout2d(x, 0.5, rng=rng)
    keep = mask.reshape(6, 10).astype(bool)
    assert np.all(y[~keep] == 0)
    np.testing.assert_allclose(y[keep], x[keep] * 2, rtol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(F.dropout2d_backward(g, mask, 0.5)[keep], g[keep] * 2, rtol=1e-6)


def test_activation_bad_input(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match="input"):
        F.relu(x.astype(np.int32))
    with pytest.raises(TypeError, match="input"):
        F.relu([1.0, 2.0])
    with pytest.raises(ValueError, match="grad_out"):
        F.relu_backward(rng.standard_normal((3, 2)), x)
    with pytest.raises(TypeError, match="grad_out"):
        F.tanh_backward(x.astype(np.float32), x)
    with pytest.raises(ValueError, match="dim"):
        F.softmax(x, 2)
    with pytest.raises(ValueError, match="p"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="mask"):
        F.dropout_backward(x, np.ones(4, np.uint8), 0.5)
