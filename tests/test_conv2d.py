"""conv2d forward/backward: textbook golden cases, random sweeps vs the NumPy reference on every
ISA path, padding forms, float64 finite-difference gradients, thread-count invariance."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
from cnnfast.functional import conv2d, conv2d_backward

import reference as ref
from helpers import assert_close, directional_fd


# ---- golden cases from the chapter --------------------------------------------------------------

def test_textbook_binary_image():
    img = np.array([[1, 1, 1, 0, 0],
                    [0, 1, 1, 1, 0],
                    [0, 0, 1, 1, 1],
                    [0, 0, 1, 1, 0],
                    [0, 1, 1, 0, 0]], np.float32)
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], np.float32)
    y = conv2d(img[None, None], k[None, None])
    np.testing.assert_array_equal(y[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_edge_kernel_is_difference_image(rng):
    img = rng.uniform(0, 255, (280, 320)).astype(np.float32)
    k = np.array([[[[-1.0, 1.0]]]], np.float32)  # pixel minus its left neighbour
    y = conv2d(img[None, None], k)
    assert y.shape == (1, 1, 280, 319)
    np.testing.assert_allclose(y[0, 0], img[:, 1:] - img[:, :-1], rtol=0, atol=1e-4)


# ---- random sweeps ---------------------------------------------------------------------------------

def _random_case(rng):
    """A random valid conv2d configuration with a random padding form."""
    while True:
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        cg, kg = int(rng.integers(1, 6)), int(rng.integers(1, 20))
        n = int(rng.choice([1, 2, 3, 5]))
        h, w = (int(v) for v in rng.integers(1, 18, 2))
        r, s = (int(v) for v in rng.integers(1, 6, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        dil = tuple(int(v) for v in rng.integers(1, 4, 2))
        form = rng.integers(0, 6)
        padding = [int(rng.integers(0, 4)),
                   tuple(int(v) for v in rng.integers(0, 4, 2)),
                   tuple(int(v) for v in rng.integers(0, 4, 4)),
                   "valid", "same", "full"][form]
        try:
            from cnnfast._checks import resolve_padding
            pad = resolve_padding(padding, (h, w), (r, s), stride, dil)
        except ValueError:
            continue
        if h + pad[0] + pad[1] < (r - 1) * dil[0] + 1 or w + pad[2] + pad[3] < (s - 1) * dil[1] + 1:
            continue
        return dict(x=(n, cg * groups, h, w), w=(kg * groups, cg, r, s), stride=stride,
                    padding=padding, pad=pad, dilation=dil, groups=groups)


def _run_case(rng, case, dtype, tol, algo="auto"):
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"])
    rkw = dict(stride=case["stride"], pad=case["pad"], dilation=case["dilation"],
               groups=case["groups"])
    y = conv2d(x, w, b, algo=algo, **kw)
    assert y.dtype == dtype
    assert_close(y, ref.conv2d(x, w, b, **rkw), tol, f"forward {case}")
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = conv2d_backward(gy, x, w, b, algo=algo, **kw)
    rgx, rgw, rgb = ref.conv2d_backward(gy, x, w, **rkw)
    assert_close(gx, rgx, tol, f"grad_x {case}")
    assert_close(gw, rgw, tol, f"grad_w {case}")
    # grad_b is a plain sum per channel: bound its error by the sum of magnitudes (one channel
    # can sum to nearly zero, where a norm-relative bound is meaningless in float32)
    scale = np.abs(gy.astype(np.float64)).sum(axis=(0, 2, 3))
    assert np.all(np.abs(gb - rgb) <= tol * scale), f"grad_b {case}"


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_random_cases_every_isa(isa, rng, dtype, tol):
    for _ in range(25):
        _run_case(rng, _random_case(rng), dtype, tol)


def test_naive_twin_matches_reference(rng):
    for _ in range(10):
        _run_case(rng, _random_case(rng), np.float64, 1e-12, algo="ref")


@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups) — named structural cases
    (1, 64, 32, 32, 19, 3, 3, 1, 1, 1, 1),      # several im2col chunks, N < threads
    (5, 64, 33, 31, 17, 3, 3, 1, 1, 1, 1),      # chunks, N > threads, odd sizes
    (3, 40, 9, 11, 23, 1, 1, 1, 0, 1, 1),       # pointwise: no im2col
    (4, 12, 10, 10, 12, 3, 3, 1, 1, 1, 12),     # depthwise
    (2, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1),        # C = 1 (LeNet conv1)
    (2, 3, 23, 23, 7, 11, 11, 4, 2, 1, 1),      # AlexNet-like stride 4
    (1, 8, 20, 20, 8, 3, 3, 1, 4, 4, 1),        # dilation 4
    (2, 6, 16, 16, 33, 3, 3, 2, "same", 1, 3),  # 'same' with stride 2, groups
])
def test_structural_cases(isa, rng, shape):
    n, c, h, w, k, r, s, st, pad, dil, g = shape
    from cnnfast._checks import resolve_padding
    case = dict(x=(n, c, h, w), w=(k, c // g, r, s), stride=(st, st), padding=pad,
                pad=resolve_padding(pad, (h, w), (r, s), (st, st), (dil, dil)),
                dilation=(dil, dil), groups=g)
    _run_case(rng, case, np.float32, 1e-5)


# ---- padding forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("h,stride,k,dil", [(7, 2, 3, 1), (8, 2, 3, 1), (10, 3, 4, 1), (9, 1, 3, 2),
                                            (5, 4, 2, 1), (1, 2, 3, 1)])
def test_same_padding_output_size(rng, h, stride, k, dil):
    x = rng.standard_normal((1, 2, h, h + 1)).astype(np.float32)
    w = rng.standard_normal((3, 2, k, k)).astype(np.float32)
    y = conv2d(x, w, stride=stride, dilation=dil, padding="same")
    assert y.shape == (1, 3, -(-h // stride), -(-(h + 1) // stride))
    # Asymmetric padding puts the extra row/column at the bottom/right (TensorFlow's rule).
    total = max((-(-h // stride) - 1) * stride + (k - 1) * dil + 1 - h, 0)
    want = ref.conv2d(x[:, :, :, :h], w, stride=(stride, stride), dilation=(dil, dil),
                      pad=(total // 2, total - total // 2, total // 2, total - total // 2))
    got = conv2d(x[:, :, :, :h], w, stride=stride, dilation=dil, padding="same")
    assert_close(got, want, 1e-5)


def test_full_and_valid_padding(rng):
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    assert conv2d(x, w, padding="full").shape == (2, 4, 11, 8)
    assert conv2d(x, w, padding="full", dilation=2).shape == (2, 4, 13, 9)
    assert conv2d(x, w, padding="valid").shape == (2, 4, 7, 6)
    assert_close(conv2d(x, w, padding="full"), ref.conv2d(x, w, pad=(2, 2, 1, 1)), 1e-5)
    # 'full' correlation is the transpose of 'valid' in the input: its input-gradient matches.
    gy = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    gx, _, _ = conv2d_backward(gy, x, w, padding="valid", needs_input_grad=(True, False, False))
    flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    assert_close(gx, ref.conv2d(gy, flipped, pad=(2, 2, 1, 1)), 1e-5)


def test_padding_forms_agree(rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    a = conv2d(x, w, padding=1)
    np.testing.assert_array_equal(a, conv2d(x, w, padding=(1, 1)))
    np.testing.assert_array_equal(a, conv2d(x, w, padding=(1, 1, 1, 1)))
    np.testing.assert_array_equal(a, conv2d(x, w, padding="same"))
    assert conv2d(x, w, padding=(0, 2, 1, 0)).shape == (1, 2, 6, 5)


# ---- gradients by float64 finite differences ------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding="same", dilation=1, groups=2),
    dict(stride=(1, 2), padding=(1, 0, 2, 1), dilation=(2, 1), groups=1),
    dict(stride=1, padding="full", dilation=1, groups=4),
])
def test_gradients_finite_differences(isa, rng, cfg):
    x = rng.standard_normal((3, 4, 7, 8))
    w = rng.standard_normal((8, 4 // cfg["groups"], 3, 2))
    _check_fd(rng, x, w, rng.standard_normal(8), cfg)


def _check_fd(rng, x, w, b, kw):
    """conv2d_backward(**kw) against float64 finite differences of <conv2d(x, w, b, **kw), g>."""
    g = rng.standard_normal(conv2d(x, w, b, **kw).shape)
    grads = conv2d_backward(g, x, w, b, **kw)
    directional_fd(lambda a: float(np.sum(conv2d(a[0], a[1], a[2], **kw) * g)),
                   [x, w, b], grads, rng)


def test_gradient_elementwise_fd(rng):
    x = rng.standard_normal((1, 2, 4, 5))
    w = rng.standard_normal((3, 2, 2, 3))
    g = rng.standard_normal(conv2d(x, w, padding=1, stride=2).shape)
    gx, gw, _ = conv2d_backward(g, x, w, padding=1, stride=2)
    eps = 1e-6
    for arr, grad in ((x, gx), (w, gw)):
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            fp = np.sum(conv2d(x, w, padding=1, stride=2) * g)
            arr[idx] = old - eps
            fm = np.sum(conv2d(x, w, padding=1, stride=2) * g)
            arr[idx] = old
            assert abs((fp - fm) / (2 * eps) - grad[idx]) < 1e-6


def test_needs_input_grad_and_no_bias(rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    gx, gw, gb = conv2d_backward(gy, x, w, needs_input_grad=(False, True, True))
    assert gx is None and gb is None and gw.shape == w.shape
    gx, gw, gb = conv2d_backward(gy, x, w, np.ones(4, np.float32),
                                 needs_input_grad=(True, False, True))
    assert gw is None and gx.shape == x.shape
    # float32 sums of 18 terms may cancel (a seed gave -0.0232 from terms ~1: rel. error 1.03e-5),
    # so the error is bounded relative to the sum of magnitudes, not to the sum
    err = np.abs(gb - gy.astype(np.float64).sum((0, 2, 3)))
    assert np.all(err <= 1e-5 * np.abs(gy).astype(np.float64).sum((0, 2, 3))), err


# ---- layouts, threads, empty batch -------------------------------------------------------------------

def test_non_contiguous_inputs(rng):
    x = rng.standard_normal((2, 6, 9, 8)).astype(np.float32)[:, ::2, :, ::-1]
    w = rng.standard_normal((5, 3, 2, 2)).astype(np.float32).transpose(0, 1, 3, 2)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    assert_close(conv2d(x, w, padding=1), ref.conv2d(x, w, pad=(1, 1, 1, 1)), 1e-5)


def test_thread_count_invariance(rng):
    x = rng.standard_normal((3, 32, 20, 20)).astype(np.float32)
    w = rng.standard_normal((24, 32, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((3, 24, 20, 20)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            out.append((conv2d(x, w, padding=1),) + conv2d_backward(gy, x, w, padding=1)[:2])
    finally:
        cnnfast.set_num_threads(before)
    for other in out[1:]:
        np.testing.assert_array_equal(other[0], out[0][0])  # forward: bitwise
        np.testing.assert_array_equal(other[1], out[0][1])  # grad_x: bitwise
        assert_close(other[2], out[0][2], 1e-6)             # grad_w: reduction order differs


@pytest.mark.parametrize("algo", ["auto", "gemm", "implicit", "direct", "ref", "winograd",
                                  "winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("channels", [3, 16])  # 16: 'auto' takes Winograd's shapes
def test_empty_batch(rng, algo, channels):
    # Every algorithm (Winograd divided by the zero rows and summed nothing into an unwritten
    # transformed gradient): empty outputs, zero weight and bias gradients.
    x = np.empty((0, channels, 8, 8), np.float32)
    w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
    y = conv2d(x, w, padding=1, algo=algo)
    assert y.shape == (0, channels, 8, 8)
    gx, gw, gb = conv2d_backward(y, x, w, np.ones(channels, np.float32), padding=1, algo=algo)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)


@pytest.mark.parametrize("algo", ["auto", "gemm", "implicit", "direct", "ref", "winograd",
                                  "winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 3, 0, 6), (5, 3, 3, 4), dict(padding=3, dilation=(2, 1))),
    ((1, 1, 0, 5), (1, 1, 3, 3), dict(padding=2)),                       # Winograd's shape
    ((4, 64, 0, 60), (32, 64, 3, 3), dict(padding=2)),                   # 'auto': Winograd
    ((1, 2, 4, 0), (3, 2, 3, 1), dict(padding=1)),                       # width 0
    ((2, 16, 0, 32), (16, 16, 4, 4), dict(stride=2, padding=(3, 3, 1, 1))),  # stride phases
    ((1, 2, 0, 4), (3, 2, 1, 3), dict(padding=1)),                       # padding past the kernel
])
def test_empty_input_plane_with_padding(rng, algo, x_shape, w_shape, kw):
    # An extent of 0 padded so the kernel fits: the output is the bias alone, the input gradient
    # empty, the weight gradient zero. The input-gradient passes divided by their zero tile
    # counts (implicit forward on dy, Winograd, the stride-phase banks: SIGFPE).
    x = np.empty(x_shape, np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    try:
        y = conv2d(x, w, b, algo=algo, **kw)
    except ValueError as e:  # a named algorithm this shape does not take
        assert algo in ("direct", "winograd", "winograd_f2", "winograd_f4"), e
        return
    np.testing.assert_array_equal(y, np.broadcast_to(b[None, :, None, None], y.shape))
    gy = rng.standard_normal(y.shape).astype(np.float32)
    try:
        gx, gw, gb = conv2d_backward(gy, x, w, b, algo=algo, **kw)
    except ValueError as e:  # Winograd's backward-data takes padding <= dilation·(k−1) only
        assert algo.startswith("winograd"), e
        return
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3), dtype=np.float64), rtol=1e-5, atol=1e-4)


def test_empty_input_extent_conv1d_conv3d(rng):
    from cnnfast.functional import conv1d, conv1d_backward, conv3d, conv3d_backward
    for conv, back, x_shape, w_shape, kw in [
            (conv1d, conv1d_backward, (1, 2, 0), (3, 2, 1), dict(padding=1, algo="implicit")),
            (conv3d, conv3d_backward, (2, 16, 0, 16, 16), (16, 16, 4, 4, 4),
             dict(stride=2, padding=(2, 2, 1, 1, 1, 1)))]:
        x, w = np.empty(x_shape, np.float32), rng.standard_normal(w_shape).astype(np.float32)
        y = conv(x, w, **kw)
        gx, gw, _ = back(rng.standard_normal(y.shape).astype(np.float32), x, w, **kw)
        assert gx.shape == x.shape
        np.testing.assert_array_equal(gw, 0)


def test_nan_propagates(rng):
    x = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    x[0, 0, 2, 2] = np.nan
    y = conv2d(x, np.ones((1, 1, 3, 3), np.float32), padding=1)
    nan = np.isnan(y[0, 0])
    assert nan[1:4, 1:4].all() and nan.sum() == 9  # exactly the windows that see the NaN
