"""Losses: fused softmax cross-entropy (class weights, ignore_index, label smoothing, per-pixel
targets, pixel weight maps, every reduction), NLL, MSE, BCE-with-logits — NumPy references and
float64 finite differences; bad targets raise clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F

import reference_nn as ref
from helpers import assert_close, directional_fd


def _case(rng, shape, ignore_frac=0.2):
    x = rng.standard_normal(shape) * 2
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    target[rng.random(target.shape) < ignore_frac] = -100
    target.flat[0] = 0  # at least one counted item
    return x, target


@pytest.mark.parametrize("shape", [(6, 5), (2, 4, 3, 5), (3, 1), (1, 7, 9)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(rng, shape, weighted, smoothing, reduction):
    x, t = _case(rng, shape)
    w = rng.uniform(0.2, 2.0, shape[1]) if weighted else None
    pw = rng.uniform(0.5, 3.0, t.shape) if len(shape) > 2 else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing, pixel_weight=pw)
    loss = F.cross_entropy(x, t, **kw)
    want = ref.cross_entropy(x, t, w, -100, reduction, smoothing, pw)
    assert_close(loss, want, 1e-13, "ce f64")
    loss32 = F.cross_entropy(x.astype(np.float32), t, **{**kw, "weight": None if w is None else
                                                         w.astype(np.float32),
                                                         "pixel_weight": None if pw is None else
                                                         pw.astype(np.float32)})
    assert_close(loss32, want, 1e-5, "ce f32")
    g = rng.standard_normal(t.shape) if reduction == "none" else 1.7
    gx = F.cross_entropy_backward(g, x, t, **kw)
    assert np.all(gx.reshape(shape[0], shape[1], -1).transpose(0, 2, 1)[
        (t == -100).reshape(shape[0], -1)] == 0), "ignored items must get zero gradient"
    directional_fd(lambda a: float(np.sum(F.cross_entropy(a[0], t, **kw) * g)), [x], [gx], rng,
                   eps=1e-5)


def test_cross_entropy_lse_reuse_and_ignore_all(rng):
    x, t = _case(rng, (4, 3))
    loss, lse = F.cross_entropy(x, t, return_lse=True)
    np.testing.assert_allclose(lse, np.log(np.exp(x).sum(1)), rtol=1e-13)
    np.testing.assert_array_equal(F.cross_entropy_backward(1.0, x, t, lse=lse),
                                  F.cross_entropy_backward(1.0, x, t))
    assert np.isnan(F.cross_entropy(x, np.full(4, -100)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(rng, reduction):
    x, t = _case(rng, (3, 4, 5))
    w = rng.uniform(0.5, 2, 4)
    lp = F.log_softmax(x)
    loss = F.nll_loss(lp, t, w, reduction=reduction)
    assert_close(loss, ref.cross_entropy(x, t, w, -100, reduction), 1e-13, "nll")
    g = rng.standard_normal(t.shape) if reduction == "none" else 0.9
    gx = F.nll_loss_backward(g, lp, t, w, reduction=reduction)
    directional_fd(lambda a: float(np.sum(F.nll_loss(a[0], t, w, reduction=reduction) * g)),
                   [lp], [gx], rng)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_bce_with_logits(rng, reduction):
    x, y = rng.standard_normal((4, 6)) * 3, rng.random((4, 6))
    w, pw = rng.uniform(0.5, 2, (4, 6)), rng.uniform(0.5, 3, 6)
    red = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction]
    assert_close(F.mse_loss(x, y, reduction), red((x - y) ** 2), 1e-14, "mse")
    sig = ref.sigmoid(x)
    want = red(-w * (pw * y * np.log(sig) + (1 - y) * np.log(1 - sig)))
    assert_close(F.binary_cross_entropy_with_logits(x, y, w, reduction, pw), want, 1e-12, "bce")
    g = rng.standard_normal(x.shape) if reduction == "none" else 1.3
    for fwd, bwd, extra in ((F.mse_loss, F.mse_loss_backward, ()),
                            (F.binary_cross_entropy_with_logits,
                             F.binary_cross_entropy_with_logits_backward, (w, reduction, pw))):
        args = extra if extra else (reduction,)
        grads = bwd(g, x, y, *args)
        directional_fd(lambda a: float(np.sum(fwd(a[0], a[1], *args) * g)), [x, y], grads, rng,
                       eps=1e-5)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_mse_many_chunks_threads_and_input_grad_only(rng, dtype, tol):
    """The threaded C++ pass over many 16K chunks and a ragged tail: the float64 sum of the
    squares, the same bits at 1 and 2 threads; needs_target_grad=False skips grad_target."""
    x = rng.standard_normal((3, 7, 113, 29)).astype(dtype)
    y = rng.standard_normal(x.shape).astype(dtype)
    d = x.astype(np.float64) - y
    for reduction, want in (("sum", np.sum(d * d)), ("mean", np.mean(d * d))):
        got = []
        for threads in (1, 2):
            cnnfast.set_num_threads(threads)
            got.append(F.mse_loss(x, y, reduction))
        assert got[0] == got[1] and got[0].dtype == dtype
        assert_close(got[0], want, tol, reduction)
    gx, gt = F.mse_loss_backward(0.7, x, y, "sum")
    assert_close(gx, 1.4 * d, tol, "grad_input")
    np.testing.assert_array_equal(gt, -gx)
    gx2, none = F.mse_loss_backward(0.7, x, y, "sum", needs_target_grad=False)
    assert none is None
    np.testing.assert_array_equal(gx2, gx)


def test_loss_bad_input(rng):
    x = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match="target: class index 3"):
        F.cross_entropy(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="target: class index 9223372036854775808 is out"):
        F.cross_entropy(x, np.array([2**63, 0, 1, 2], np.uint64))  # not wrapped to a negative
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="target"):
        F.cross_entropy(x, np.array([0.0, 1, 2, 1]))
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, np.array([0, 1, 2, 1]), weight=np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, np.array([0, 1, 2, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, np.array([0, 1, 2, 1]), label_smoothing=2.0)
    with pytest.raises(ValueError, match="target"):
        F.mse_loss(x, x[:2])
    with pytest.raises(ValueError, match="target"):
        F.nll_loss(x, np.array([0, 1, 5, 1]))
