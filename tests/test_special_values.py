"""NaN, infinities and huge values through the ops, with the results torch gives (stated here as
values, so the tests run without torch): softmax/cross-entropy on tied huge logits, gradient
clipping with a non-finite norm, optimizers on an infinite weight, relu/batch-norm/Lp-pool/dropout
backward and interpolation around a NaN or inf. Each ISA path where a kernel is vectorized, and
the CUDA item programs (emulated on the host) where the op has a CUDA twin."""
from __future__ import annotations

import math

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core, nn, optim

FLOATS = [np.float32, np.float64]
EMULATED = _core.cuda_built()  # the CUDA item programs are compiled with the CUDA backend
LN2 = math.log(2.0)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("big", [1e17, 1e30])
def test_softmax_and_cross_entropy_on_tied_huge_logits(dt, big):
    """exp(x − lse) with lse = max + log Σ lost the log Σ to the max's rounding: tied logits
    1e17 had softmax 1 each (summing to 2), log-softmax 0 and a cross-entropy of 0, not ln 2."""
    x = np.array([[big, big, 0.0]], dt)
    np.testing.assert_allclose(F.softmax(x, 1), [[0.5, 0.5, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(x, 1)[0, :2], [-LN2, -LN2], rtol=1e-6)
    t = np.array([0])
    assert abs(float(F.cross_entropy(x, t)) - LN2) < 1e-6
    for lse in (None, F.cross_entropy(x, t, return_lse=True)[1]):  # the stored lse is rounded
        np.testing.assert_allclose(F.cross_entropy_backward(np.array(1.0, dt), x, t, lse=lse),
                                   [[-0.5, 0.5, 0.0]], atol=1e-6)
    # (N, C, H, W) with the ties along C at one position, ordinary logits elsewhere
    xs = np.zeros((1, 3, 2, 2), dt)
    xs[0, :2, 1, 1] = big
    tt = np.zeros((1, 2, 2), np.int64)
    loss = F.cross_entropy(xs, tt, reduction="none")
    np.testing.assert_allclose(loss[0], [[math.log(3)] * 2, [math.log(3), LN2]], rtol=1e-6)
    if dt == np.float32 and EMULATED:  # the CUDA item programs, run on the host
        le, lse = _core._cuda_emulate_cross_entropy_forward(x[:, :, None], t[:, None], None,
                                                            None, -100, 0.0)
        assert abs(float(le[0, 0]) - LN2) < 1e-6
        g = _core._cuda_emulate_cross_entropy_backward(np.ones((1, 1), dt), x[:, :, None], lse,
                                                        t[:, None], None, -100, 0.0)
        np.testing.assert_allclose(g[:, :, 0], [[-0.5, 0.5, 0.0]], atol=1e-6)


def _param(values, dt=np.float64):
    p = nn.Parameter(np.asarray(values, dt))
    return p


def test_clip_grad_norm_with_a_non_finite_norm():
    p = _param([1.0, 2.0])
    p.grad[...] = [np.nan, 30.0]
    assert math.isnan(optim.clip_grad_norm_([p], 1.0))
    assert np.isnan(p.grad).all()  # as torch: the finite 30 must not go out unclipped
    p.grad[...] = [np.inf, 30.0]
    assert optim.clip_grad_norm_([p], 1.0) == math.inf
    assert np.isnan(p.grad[0]) and p.grad[1] == 0  # inf · 0, 30 · 0
    for bad in (np.nan, np.inf):
        p.grad[...] = [bad, 30.0]
        with pytest.raises(RuntimeError, match="error_if_nonfinite=False"):
            optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
        assert p.grad[1] == 30.0  # untouched
    q = _param([1.0, 2.0, 3.0])  # a NaN past the first gradient, in the inf-norm (max() lost it)
    q.grad[...] = [1.0, 2.0, 3.0]
    p.grad[...] = [np.nan, 0.0]
    assert math.isnan(optim.clip_grad_norm_([q, p], 1.0, norm_type=math.inf))
    with pytest.raises(RuntimeError, match="order inf"):
        optim.clip_grad_norm_([q, p], 1.0, norm_type=math.inf, error_if_nonfinite=True)
    p.grad[...] = [3.0, 4.0]
    assert optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True) == 5.0
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("dt", FLOATS)
def test_optimizers_keep_an_infinite_weight_infinite_without_weight_decay(dt):
    """0 · inf from an unused weight-decay term turned -inf into NaN."""
    for make in (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                 lambda ps: optim.Adam(ps, lr=0.1)):
        p = _param([-np.inf, 1.0], dt)
        opt = make([p])
        for _ in range(2):
            p.grad[...] = 1.0
            opt.step()
        assert p.data[0] == -np.inf and np.isfinite(p.data[1])
    if dt == np.float32 and EMULATED:  # the CUDA element programs
        p, g, buf = np.array([-np.inf, 1.0], dt), np.ones(2, dt), np.zeros(2, dt)
        _core._cuda_emulate_sgd_step(p, g, buf, 0.1, 0.0, 0.0, 0.0, False, True)
        assert p[0] == -np.inf
        p, z = np.array([-np.inf, 1.0], dt), [np.zeros(2, dt) for _ in range(2)]
        _core._cuda_emulate_adam_step(p, g, z[0], z[1], None, 1, 0.1, 0.9, 0.99, 1e-8, 0.0, False)
        assert p[0] == -np.inf


@pytest.mark.parametrize("dt", FLOATS)
def test_relu_backward_passes_the_gradient_at_nan(dt, isa):
    """torch's threshold_backward zeroes where x <= 0; NaN <= 0 is false, so dy passes."""
    n = 37  # vector bodies and a tail
    x = np.linspace(-1, 1, n).astype(dt)
    x[[3, 20, 36]] = np.nan
    dy = np.arange(1, n + 1).astype(dt)
    want = np.where(x <= 0, 0, dy)
    assert want[3] == dy[3]
    np.testing.assert_array_equal(F.relu_backward(dy, x), want)


@pytest.mark.parametrize("dt", FLOATS)
def test_batch_norm_eval_backward_does_not_read_x(dt):
    x = np.ones((2, 2, 3, 3), dt)
    x[0, 0, 1, 1] = np.inf
    x[1, 1, 0, 2] = np.nan
    mean, var = np.array([0.5, -0.5], dt), np.array([4.0, 0.25], dt)
    w = np.array([2.0, 3.0], dt)
    dx = F.batch_norm_backward(np.ones_like(x), x, mean, var, w, training=False)[0]
    want = (w / np.sqrt(var + 1e-5))[None, :, None, None] * np.ones_like(x)
    np.testing.assert_allclose(dx, want, rtol=1e-6)


@pytest.mark.parametrize("dt", FLOATS)
def test_lp_pool_backward_spreads_a_nan_window(dt):
    x = np.array([[[[1.0, 2.0, 5.0, 6.0], [3.0, np.nan, 7.0, 0.0]]]], dt)
    g = F.lp_pool2d_backward(np.ones((1, 1, 1, 2), dt), x, 2.0, 2)
    assert np.isnan(g[..., :2]).all()  # was all 0: the forward's NaN vanished
    assert np.isfinite(g[..., 2:]).all() and g[0, 0, 1, 3] == 0


@pytest.mark.parametrize("dt", FLOATS)
def test_dropout_keeps_a_dropped_nan(dt):
    x = np.full((4, 3, 5), np.nan, dt)
    x[0, 0, 0] = np.inf
    for fn, backward in ((F.dropout, F.dropout_backward), (F.dropout2d, F.dropout2d_backward)):
        for seed in range(4):  # the inf both dropped and kept
            y, mask = fn(x, 0.5, rng=np.random.default_rng(seed))
            kept_inf = y.flat[0] == np.inf  # kept: inf · 2; dropped: inf · 0 = NaN
            assert np.isnan(y.flat[1:]).all() and (kept_inf or np.isnan(y.flat[0]))
            gx = backward(x, mask, 0.5)
            assert np.isnan(gx.flat[1:]).all() and (gx.flat[0] == np.inf) == kept_inf


@pytest.mark.parametrize("dt", FLOATS)
def test_interpolation_keeps_an_inf_an_inf(dt):
    x = np.arange(4, dtype=dt).reshape(1, 1, 2, 2)
    x[0, 0, 0, 0] = np.inf
    y = F.interpolate(x, size=(4, 4), mode="bilinear")
    np.testing.assert_array_equal(y[0, 0, 0], [np.inf, np.inf, np.inf, 1.0])  # torch's
    x1 = np.array([[[np.inf, 1.0]]], dt)
    np.testing.assert_array_equal(F.interpolate(x1, size=4, mode="linear")[0, 0, 0], np.inf)
    np.testing.assert_array_equal(  # 1-D: no depth or height terms either
        F.interpolate(np.array([[[np.inf, 1.0]]], dt), size=4, mode="linear")[0, 0],
        [np.inf, np.inf, np.inf, 1.0])
    # In the op's own dims torch's arithmetic is kept, zero weights included: a same-size dim
    # is a copy with 1·v + 0·v (an inf is NaN in place: torch's [1, nan, 2, 3], align_corners
    # too), W = 1 likewise, and a real trilinear's size-1 dims are such copies.
    row = np.array([1.0, np.inf, 2.0, 3.0], dt).reshape(1, 1, 1, 4)
    for ac in (False, True):
        np.testing.assert_array_equal(
            F.interpolate(row, size=(1, 4), mode="bilinear", align_corners=ac)[0, 0, 0],
            [1.0, np.nan, 2.0, 3.0])
    col = np.array([1.0, np.inf], dt).reshape(1, 1, 2, 1)
    assert np.isnan(F.interpolate(col, size=(4, 1), mode="bilinear")).all()  # torch: all NaN
    vol = np.array([np.inf, 1.0], dt).reshape(1, 1, 1, 1, 2)
    np.testing.assert_array_equal(
        F.interpolate(vol, size=(1, 1, 4), mode="trilinear").reshape(-1),
        [np.nan, np.nan, np.nan, 1.0])
    g = np.ones((1, 1, 4, 4), dt)
    g[0, 0, 0, 0] = np.inf
    gx = F.interpolate_backward(g, np.zeros((1, 1, 2, 2), dt), size=(4, 4))
    np.testing.assert_array_equal(gx[0, 0], [[np.inf, 4.0], [4.0, 4.0]])
