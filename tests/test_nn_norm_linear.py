"""linear, batch norm (train/eval, running stats), LRN, global/local contrast normalization:
NumPy references, float64 finite-difference gradients, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

import reference_nn as ref
from helpers import assert_close, directional_fd


@pytest.mark.parametrize("xs,out", [((5, 7), 3), ((1, 1), 1), ((2, 3, 17), 33), ((13, 40), 9),
                                    ((5, 300), 270)])  # a small batch: gemm's transposed path
def test_linear(rng, xs, out):
    x = rng.standard_normal(xs)
    w = rng.standard_normal((out, xs[-1]))
    b = rng.standard_normal(out)
    y = F.linear(x, w, b)
    assert_close(y, x @ w.T + b, 1e-13, "linear f64")
    assert_close(F.linear(x.astype(np.float32), w.astype(np.float32)), x @ w.T, 1e-5, "f32")
    g = rng.standard_normal(y.shape)
    gx, gw, gb = F.linear_backward(g, x, w, b)
    directional_fd(lambda a: float(np.sum(F.linear(*a) * g)), [x, w, b], [gx, gw, gb], rng)
    assert F.linear_backward(g, x, w, None, needs_input_grad=(True, False, True))[1:] == (None, None)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_linear_backward_adds_into_given_gradients(rng, dtype, tol):
    x = rng.standard_normal((6, 2, 37)).astype(dtype)
    w = rng.standard_normal((19, 37)).astype(dtype)
    b = rng.standard_normal(19).astype(dtype)
    g = rng.standard_normal((6, 2, 19)).astype(dtype)
    gw0, gb0 = rng.standard_normal(w.shape).astype(dtype), rng.standard_normal(19).astype(dtype)
    gw_into, gb_into = gw0.copy(), gb0.copy()
    gx, gw, gb = F.linear_backward(g, x, w, b, grad_weight_into=gw_into, grad_bias_into=gb_into)
    assert gw is gw_into and gb is gb_into
    x2, g2 = x.reshape(-1, 37).astype(np.float64), g.reshape(-1, 19).astype(np.float64)
    assert_close(gw, gw0 + g2.T @ x2, tol, "grad_weight_into")
    assert_close(gb, gb0 + g2.sum(0), tol, "grad_bias_into")
    assert_close(gx, (g2 @ w.astype(np.float64)).reshape(x.shape), tol, "grad_input")
    # the layer adds into its accumulated .grad in place: two backward calls = twice the gradient
    from cnnfast import nn
    layer = nn.Linear(37, 19)
    layer.weight.data[...] = w.astype(np.float32)
    held = layer.weight.grad
    for _ in range(2):
        layer(x.astype(np.float32))
        layer.backward(g.astype(np.float32))
    assert layer.weight.grad is held
    assert_close(held, 2 * (g2.T @ x2), 1e-5, "Linear accumulates twice")
    for bad, err in ((dict(grad_weight_into=gw0[:, :5]), ValueError),
                     (dict(grad_weight_into=gw0.astype(np.float16)), ValueError),
                     (dict(grad_weight_into=np.asfortranarray(gw0)), ValueError),
                     (dict(grad_weight_into=gw0.tolist()), TypeError),
                     (dict(grad_bias_into=gb0[:3]), ValueError)):
        with pytest.raises(err, match="grad_(weight|bias)_into"):
            F.linear_backward(g, x, w, b, **bad)
    with pytest.raises(ValueError, match="no bias"):
        F.linear_backward(g, x, w, None, grad_bias_into=gb0)
    ro = gw0.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        F.linear_backward(g, x, w, b, grad_weight_into=ro)


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 7), (3, 4, 5, 6), (2, 3, 2, 3, 2)])
def test_batch_norm_train_and_eval(rng, shape):
    x = rng.standard_normal(shape) * 2 + 1
    C = shape[1]
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    rm0, rv0 = rm.copy(), rv.copy()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.2, eps=1e-5)
    axes = (0,) + tuple(range(2, x.ndim))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    assert_close(y, ref.batch_norm(x, mean, var, gamma, beta, 1e-5), 1e-12, "train")
    m = x.size // C
    assert_close(rm, 0.8 * rm0 + 0.2 * mean, 1e-13, "running_mean")
    assert_close(rv, 0.8 * rv0 + 0.2 * var * m / (m - 1), 1e-13, "running_var")
    ye = F.batch_norm(x, rm, rv, gamma, beta, training=False)
    assert_close(ye, ref.batch_norm(x, rm, rv, gamma, beta, 1e-5), 1e-12, "eval")
    g = rng.standard_normal(shape)
    for training in (True, False):
        grads = F.batch_norm_backward(g, x, rm, rv, gamma, beta, training=training)
        rmc, rvc = rm.copy(), rv.copy()
        directional_fd(lambda a: float(np.sum(F.batch_norm(
            a[0], rmc.copy(), rvc.copy(), a[1], a[2], training=training) * g)),
            [x, gamma, beta], grads, rng, eps=1e-5)
    yf, mf, sf = F.batch_norm(x.astype(np.float32), None, None, training=True, return_stats=True)
    assert_close(yf, ref.batch_norm(x, mean, var, None, None, 1e-5), 1e-5, "f32 no affine")
    gx, gg, gb = F.batch_norm_backward(g.astype(np.float32), x.astype(np.float32), None, None,
                                       training=True, stats=(mf, sf))
    assert gg is None and gb is None
    assert_close(gx, F.batch_norm_backward(g, x, None, None, training=True)[0], 1e-4, "f32 dx")


@pytest.mark.parametrize("shape,size", [((2, 7, 3, 4), 5), ((3, 4, 5), 2), ((2, 3), 1),
                                        ((1, 9, 2, 2), 4)])
def test_local_response_norm(rng, shape, size):
    x = rng.standard_normal(shape)
    kw = dict(alpha=0.3, beta=0.75, k=2.0)
    y = F.local_response_norm(x, size, **kw)
    assert_close(y, ref.lrn(x, size, **kw), 1e-13, "lrn")
    assert_close(F.local_response_norm(x.astype(np.float32), size, **kw), ref.lrn(x, size, **kw),
                 1e-5, "lrn f32")
    g = rng.standard_normal(shape)
    gx = F.local_response_norm_backward(g, x, size, **kw)
    directional_fd(lambda a: float(np.sum(F.local_response_norm(a[0], size, **kw) * g)), [x],
                   [gx], rng, eps=1e-5)


@pytest.mark.parametrize("lam,eps", [(10.0, 1e-8), (0.0, 1e-8), (0.5, 5.0)])
def test_global_contrast_norm(rng, lam, eps):
    x = rng.standard_normal((3, 2, 5, 4)) * 3 + 2
    y = F.global_contrast_norm(x, scale=1.5, lam=lam, eps=eps)
    assert_close(y, ref.gcn(x, 1.5, lam, eps), 1e-13, "gcn")
    g = rng.standard_normal(x.shape)
    gx = F.global_contrast_norm_backward(g, x, 1.5, lam, eps)
    directional_fd(lambda a: float(np.sum(F.global_contrast_norm(a[0], 1.5, lam, eps) * g)), [x],
                   [gx], rng, eps=1e-5)


@pytest.mark.parametrize("across", [False, True])
@pytest.mark.parametrize("shape,ks", [((2, 3, 9, 11), 5), ((1, 2, 4, 3), 7), ((2, 1, 1, 6), 3)])
def test_local_contrast_norm(rng, across, shape, ks):
    x = rng.standard_normal(shape)
    kw = dict(kernel_size=ks, sigma=1.3, across_channels=across, eps=1e-3)
    y = F.local_contrast_norm(x, **kw)
    taps = F.gaussian_taps(ks, 1.3)
    assert_close(y, ref.lcn(x, taps, across, 1e-3), 1e-12, "lcn")
    assert_close(F.local_contrast_norm(x.astype(np.float32), **kw), ref.lcn(x, taps, across, 1e-3),
                 1e-4, "lcn f32")
    g = rng.standard_normal(shape)
    gx = F.local_contrast_norm_backward(g, x, **kw)
    directional_fd(lambda a: float(np.sum(F.local_contrast_norm(a[0], **kw) * g)), [x], [gx],
                   rng, eps=1e-6, tol=1e-6)


def test_lcn_window_wider_than_the_image(rng):
    # taps past the image never weigh a pixel: a 99-tap window equals the reference's 99 taps,
    # and a 2^31 + 1 one is cut to the image's reach instead of being built
    x = rng.standard_normal((2, 3, 5, 7))
    y = F.local_contrast_norm(x, kernel_size=99, sigma=3.0)
    assert_close(y, ref.lcn(x, F.gaussian_taps(99, 3.0), False, 1e-4), 1e-12, "lcn 99 taps")
    assert np.array_equal(F.local_contrast_norm(x, kernel_size=2**31 + 1, sigma=3.0), y)
    g = rng.standard_normal(x.shape)
    assert np.array_equal(F.local_contrast_norm_backward(g, x, kernel_size=2**31 + 1, sigma=3.0),
                          F.local_contrast_norm_backward(g, x, kernel_size=99, sigma=3.0))


def test_norm_bad_input(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, np.zeros(4), np.ones(3), training=True)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(TypeError, match="weight"):
        F.batch_norm(x, None, None, np.ones(3, np.float32), training=True)
    with pytest.raises(TypeError, match="stats: expected \\(mean, invstd\\)"):
        F.batch_norm_backward(x, x, None, None, training=True, stats=(None, None))
    # running statistics are updated in place: a buffer a copy would stand in for is refused
    misaligned = np.ndarray((3,), np.float64, np.zeros(25, np.uint8).data, 1)
    for bad in (misaligned, np.zeros(6)[::2]):
        with pytest.raises(TypeError, match="running_mean: expected an aligned, C-contiguous"):
            F.batch_norm(x, bad, np.ones(3), training=True)
    with pytest.raises(ValueError, match="in_features"):
        F.linear(x, rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="kernel_size"):
        F.local_contrast_norm(x, kernel_size=4)
    with pytest.raises(ValueError, match="input"):
        F.local_contrast_norm(x[0])
    with pytest.raises(ValueError, match="size"):
        F.local_response_norm(x, 0)
    with pytest.raises(ValueError, match="lam/eps"):
        F.global_contrast_norm(x, lam=0.0, eps=0.0)


def test_results_do_not_depend_on_thread_count(rng):
    import cnnfast
    x = rng.standard_normal((3, 8, 9, 10)).astype(np.float32)
    t = rng.integers(0, 8, (3, 9, 10))
    ops = [lambda: F.batch_norm(x, None, None, training=True),
           lambda: F.softmax(x), lambda: F.cross_entropy(x, t, reduction="none"),
           lambda: F.local_contrast_norm(x, 5, 1.0, across_channels=True),
           lambda: F.local_response_norm(x, 3), lambda: F.tanh(x)]
    before = cnnfast.get_num_threads()
    try:
        cnnfast.set_num_threads(1)
        one = [op() for op in ops]
        cnnfast.set_num_threads(3)
        three = [op() for op in ops]
    finally:
        cnnfast.set_num_threads(before)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)
