"""Softmax, log-softmax and the fused cross-entropy on every ISA path: the dispatched softmax
microkernels (float exponentials: a polynomial, softmax_ukernel.h's exp_poly) in both loop shapes
(rows of C contiguous classes, S == 1; tiles of positions, S > 1), with class counts and
position counts that leave vector and tile tails. float32 is checked against the float64 path
(std::exp; itself checked against NumPy and finite differences in test_nn_loss.py /
test_nn_activations.py) and against NumPy; the special values (-inf, NaN, underflow) and the
kernel's accuracy across its whole range (ratio of two softmax outputs = e^-d) per ISA."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

import reference_nn as ref
from helpers import assert_close

# (1, 5000, 21), (1, 70000, 2): so many classes that the position tiles shrink to 13 / 6 and 1
SHAPES = [(5, 1), (7, 7), (3, 37), (2, 300), (2, 37, 67), (3, 5, 3), (1, 300, 2), (2, 3, 9, 11),
          (2, 3, 300), (1, 5000, 21), (1, 70000, 2)]


def _softmax_grads(y, dy, log):
    if log:
        return dy - np.exp(y) * dy.sum(1, keepdims=True)
    return y * (dy - (dy * y).sum(1, keepdims=True))


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_matches_float64_and_numpy_every_isa(isa, rng, shape):
    x = rng.standard_normal(shape) * 4
    dy = rng.standard_normal(shape)
    for log, fwd, bwd, want in ((False, F.softmax, F.softmax_backward, ref.softmax),
                                (True, F.log_softmax, F.log_softmax_backward, ref.log_softmax)):
        y64 = fwd(x)
        assert_close(y64, want(x), 1e-13, f"{fwd.__name__} f64")
        y32 = fwd(x.astype(np.float32))
        assert y32.dtype == np.float32
        assert_close(y32, y64, 2e-6, f"{fwd.__name__} f32")
        g64 = bwd(dy, y64)
        assert_close(g64, _softmax_grads(y64, dy, log), 1e-12, f"{bwd.__name__} f64")
        assert_close(bwd(dy.astype(np.float32), y32), g64, 1e-5, f"{bwd.__name__} f32")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("variant", ["plain", "weighted_smoothed"])
def test_cross_entropy_matches_float64_every_isa(isa, rng, shape, variant):
    x = rng.standard_normal(shape) * 3
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.flat[rng.random(t.size) < 0.2] = -100
    t.flat[0] = shape[1] - 1
    kw = {}
    if variant != "plain":
        kw = dict(weight=rng.uniform(0.3, 2.0, shape[1]), label_smoothing=0.2)
    g = rng.standard_normal(t.shape)
    loss64, lse64 = F.cross_entropy(x, t, reduction="none", return_lse=True, **kw)
    gx64 = F.cross_entropy_backward(g, x, t, reduction="none", lse=lse64, **kw)
    if variant == "plain":  # (softmax − one-hot)·g, ignored items 0
        valid = t != -100
        p = ref.softmax(x)
        onehot = np.zeros_like(p)
        np.put_along_axis(onehot, np.expand_dims(np.where(valid, t, 0), 1), 1.0, 1)
        want = (p - onehot) * np.expand_dims(np.where(valid, g, 0), 1)
        assert_close(gx64, want, 1e-12, "ce grad f64 vs numpy")
    kw32 = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    loss32, lse32 = F.cross_entropy(x.astype(np.float32), t, reduction="none", return_lse=True,
                                    **kw32)
    assert_close(loss32, loss64, 2e-6, "ce loss f32")
    assert_close(lse32, lse64, 2e-7, "ce lse f32")
    gx32 = F.cross_entropy_backward(g.astype(np.float32), x.astype(np.float32), t,
                                    reduction="none", lse=lse32, **kw32)
    assert gx32.dtype == np.float32
    if shape[1] == 1:  # one class: the gradient is 0 up to rounding, no scale to be relative to
        assert np.abs(gx64).max() < 1e-12 and np.abs(gx32).max() < 1e-6
    else:
        assert_close(gx32, gx64, 1e-5, "ce grad f32")


@pytest.mark.parametrize("layout", ["rows", "positions"])
def test_exp_kernel_accuracy_over_its_range(isa, layout):
    """softmax([0, -d]) has ratio y1 / y0 = e^-d: the kernel's relative error, d in [0, 87]
    (e^-87 is just above float's smallest normal); d as rounded to float."""
    d = np.linspace(0.0, 87.0, 4001).astype(np.float32).astype(np.float64)
    x = np.stack([np.zeros_like(d), -d], 1).astype(np.float32)  # (n, 2)
    if layout == "positions":
        x = np.ascontiguousarray(x.T[None])                       # (1, 2, n)
    y = F.softmax(x).astype(np.float64)
    ratio = (y[:, 1] / y[:, 0]) if layout == "rows" else (y[0, 1] / y[0, 0])
    rel = np.abs(ratio / np.exp(-d) - 1)
    assert rel.max() < 1e-6, f"max relative error {rel.max():.3g} at d = {d[rel.argmax()]}"


@pytest.mark.parametrize("layout", ["rows", "positions"])
def test_log_of_sum_over_its_range(isa, layout):
    """log-softmax at the largest class is -ln(sum of e^(x - max)): the float path's logarithm of
    the sum (per-pixel tiles: a series after splitting off the exponent, softmax_impl.h's
    log_of_sum) over sums from 1 to C, the sums around sqrt(2)*2^j (where the split switches)
    included; against float64 from the same float inputs."""
    C = 40  # class 0 at 0, the 39 others at -d: sum = 1 + 39 e^-d in [1, 40]
    edges = np.sqrt(2) * 2.0 ** np.arange(5)
    d_edge = -np.log((edges - 1) / (C - 1))
    d = np.concatenate([np.linspace(0.0, 30.0, 3001), d_edge, d_edge * (1 + 1e-6),
                        d_edge * (1 - 1e-6)])
    x = np.zeros((d.size, C), np.float32)
    x[:, 1:] = -d[:, None]
    x64 = x.astype(np.float64)
    want = -np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1))
    if layout == "positions":
        x = np.ascontiguousarray(x.T[None])  # (1, C, n)
    y = F.log_softmax(x)
    got = (y[:, 0] if layout == "rows" else y[0, 0]).astype(np.float64)
    err = np.abs(got - want)
    tol = 5e-7 + 1.2e-7 * np.abs(want)
    assert np.all(err <= tol), f"max error {err.max():.3g} at sum {np.exp(-want[err.argmax()])}"


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 19), (2, 19, 70)])
def test_softmax_special_values_every_isa(isa, dt, shape):
    x = np.zeros(shape, dt)
    x[:, 0] = 10.0
    x[:, 1] = -np.inf  # masked class: probability exactly 0, log-probability -inf
    x[:, 2] = -1000.0  # underflows (float and double): 0, not NaN
    x[0, 3] = np.nan   # one NaN: its position's outputs NaN, the others untouched
    y, ly = F.softmax(x), F.log_softmax(x)
    nan_pos = np.zeros(shape[:1] + shape[2:], bool)
    nan_pos[0] = True
    fin = ~nan_pos
    assert np.all(np.isnan(y[:, 0][nan_pos])) and np.all(np.isnan(ly[:, 0][nan_pos]))
    assert np.all(y[:, 1][fin] == 0) and np.all(ly[:, 1][fin] == -np.inf)
    assert np.all(y[:, 2][fin] == 0) and np.all(np.isfinite(ly[:, 2][fin]))
    np.testing.assert_allclose(y.sum(1)[fin], 1.0, rtol=1e-6)
    t = np.zeros(shape[:1] + shape[2:], np.int64)
    gx = F.cross_entropy_backward(np.ones(t.shape, dt), x, t, reduction="none")
    assert np.all(gx[:, 1][fin] == 0) and np.all(np.isfinite(gx[:, :][:, :, ...][
        np.broadcast_to(np.expand_dims(fin, 1), gx.shape)]))


@pytest.mark.parametrize("shape", [(0, 5, 3), (2, 0, 3), (2, 4, 0), (2, 0)])
def test_softmax_empty_shapes(isa, shape):
    """No positions or no classes: empty results of the input's shape, from the functions and
    from the core directly (which the functions skip for empty input: the core cuts its tile
    width by the class count, and must not divide by 0 classes)."""
    from cnnfast import _core
    x = np.ones(shape, np.float32)
    for f in (F.softmax, F.log_softmax):
        assert f(x).shape == shape
    for f in (F.softmax_backward, F.log_softmax_backward):
        assert f(x, x).shape == shape
    for log in (False, True):
        assert _core.softmax_forward(x, log).shape == shape
        assert _core.softmax_backward(x, x, log).shape == shape
