"""conv2d's implicit GEMM (algo='implicit', and 'auto' where it picks it) on every ISA path vs the
float64 NumPy reference: position chunks, channel blocks and tap tails, strided backward-data as
stride phases, the weight gradient's split of one image's positions over threads, and which
results are bitwise the same across thread counts."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
from cnnfast._checks import resolve_padding
from cnnfast.functional import conv2d, conv2d_backward

import reference as ref
from test_conv2d import _run_case


def test_implicit_forward_thread_count_invariance(rng):
    """Every output of the implicit path is one dot product in a fixed order: bitwise the same
    at any thread count, when threads take whole images or share an image's tiles (ranges that
    start mid-row, mid-plane of a volume, in another group), and vs the float64 reference; 'auto'
    takes it for one image of a stem-like layer."""
    from cnnfast.functional import conv3d
    x = rng.standard_normal((5, 6, 14, 15)).astype(np.float32)
    w = rng.standard_normal((18, 3, 5, 4)).astype(np.float32)
    b = rng.standard_normal(18).astype(np.float32)
    x1 = rng.standard_normal((1, 3, 37, 41)).astype(np.float32)  # one image, stride 2, 7x7
    w1 = rng.standard_normal((20, 3, 7, 7)).astype(np.float32)
    x3 = rng.standard_normal((1, 4, 5, 9, 11)).astype(np.float32)  # one volume, 2 groups
    w3 = rng.standard_normal((6, 2, 3, 3, 2)).astype(np.float32)
    runs = {
        "batch": lambda a: conv2d(x, w, b, padding=(2, 1), stride=(1, 2), groups=2, algo=a,
                                  activation="relu"),
        "image": lambda a: conv2d(x1, w1, stride=2, padding=3, algo=a),
        "volume": lambda a: conv3d(x3, w3, padding=1, groups=2, algo=a),
    }
    wants = {"image": ref.conv2d(x1.astype(np.float64), w1.astype(np.float64), None,
                                 stride=(2, 2), pad=(3,) * 4)}
    before = cnnfast.get_num_threads()
    try:
        outs = {k: [] for k in runs}
        for n in (1, 2, 3, 4):
            cnnfast.set_num_threads(n)
            for k, f in runs.items():
                outs[k].append(f("implicit"))
            if n > 1:
                np.testing.assert_array_equal(runs["image"]("auto"), outs["image"][-1])
    finally:
        cnnfast.set_num_threads(before)
    for k, o in outs.items():
        for other in o[1:]:
            np.testing.assert_array_equal(other, o[0], err_msg=k)
    for k, want in wants.items():
        err = np.linalg.norm(outs[k][0] - want) / np.linalg.norm(want)
        assert err <= 1e-5, f"{k}: relative error {err:.2e}"


# ---- implicit GEMM: position chunks (> 256 outputs), several channel blocks, tap tails ----------

@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_implicit_blocks_and_tails(isa, rng, dtype, tol):
    # (N, C, H, W, K, R, S, stride, padding (t, b, l, r), dilation, groups)
    for n, c, h, w, k, r, s, st, pad, dil, g in [
            (3, 4, 23, 29, 38, 3, 2, (1, 2), (1, 0, 2, 1), (2, 1), 2),  # PQ 462, Kg 19 = 2 blocks
            (2, 5, 31, 17, 33, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),  # np 125 (6-tap tail), K 33
            (4, 3, 40, 40, 7, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),  # ResNet-conv1-like, K < 16
            # Kg a multiple of 32 or 64 (AVX-512's 8x32 and 6x64 tiles): Kg 64, PQ 667 (3
            # position chunks, a 1-position tail tile); Kg 32 in 2 groups, stride 2 and
            # dilation, PQ 48; Kg 128 (two 64-blocks) and Kg 96 (three 32-blocks), odd PQ; the
            # forward takes 6x64 from 128 reduction steps on: Kg 64 and 128 with Cg·R·S 144
            (2, 3, 23, 29, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
            (2, 6, 13, 15, 64, 3, 2, (2, 2), (1, 0, 2, 1), (1, 2), 2),
            (2, 5, 11, 13, 128, 3, 3, (1, 1), (1, 1, 0, 1), (1, 1), 1),
            (2, 16, 11, 13, 64, 3, 3, (1, 1), (1, 1, 1, 0), (1, 1), 1),
            (2, 16, 10, 9, 128, 3, 3, (2, 1), (1, 1, 1, 1), (1, 2), 1),
            (3, 4, 9, 14, 96, 2, 3, (1, 2), (0, 1, 1, 1), (2, 1), 1)]:
        case = dict(x=(n, c, h, w), w=(k, c // g, r, s), stride=st, padding=pad,
                    pad=resolve_padding(pad, (h, w), (r, s), st, dil), dilation=dil, groups=g)
        _run_case(rng, case, dtype, tol, algo="implicit")


# ---- implicit backward-data of strided layers: the stride phases as banks -----------------------

@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_implicit_backward_data_phases(isa, rng, dtype, tol):
    # (N, C, H, W, K, R, S, stride, padding (t, b, l, r), dilation): phases with 1 or 2 taps,
    # kernels smaller than the stride (phases without taps: zeros), stride 3 with dilation 2,
    # padding past dil*(k-1), dx channels in several 16-blocks with a tail, odd sizes
    for n, c, h, w, k, r, s, st, pad, dil in [
            (2, 20, 17, 15, 9, 4, 4, (2, 2), (1, 1, 1, 1), (1, 1)),   # conv_transpose k4 s2 p1
            (3, 7, 13, 14, 5, 3, 3, (2, 3), (0, 2, 1, 1), (1, 2)),
            (2, 33, 11, 12, 6, 1, 2, (3, 2), (0, 0, 1, 0), (1, 1)),   # 1-tap rows: empty phases
            (1, 5, 9, 10, 4, 2, 3, (2, 2), (3, 4, 5, 3), (1, 1)),     # padding > dil*(k-1)
            (2, 3, 25, 19, 8, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1)),    # ResNet-conv1-like
            # dx channels a multiple of 32 (AVX-512's 8x32 tile): a 64-channel block pair, and
            # 32 channels with an odd phase plane
            (2, 64, 9, 11, 5, 4, 4, (2, 2), (1, 1, 1, 1), (1, 1)),
            (3, 32, 7, 9, 6, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1))]:
        case = dict(x=(n, c, h, w), w=(k, c, r, s), stride=st, padding=pad,
                    pad=resolve_padding(pad, (h, w), (r, s), st, dil), dilation=dil, groups=1)
        _run_case(rng, case, dtype, tol, algo="implicit")


def test_auto_takes_phases_for_transposed_convolution_shapes(rng):
    # conv_transpose2d k4 s2 (the dx of a 32 -> 64 conv: np = 64 x 4 taps per phase) runs the
    # phases under 'auto': the same bits as 'implicit' (its GEMM gives other bits).
    x = rng.standard_normal((2, 32, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, 32, 4, 4)).astype(np.float32)
    gy = rng.standard_normal((2, 64, 8, 8)).astype(np.float32)
    kw = dict(stride=2, padding=1, needs_input_grad=(True, False, False))
    auto = conv2d_backward(gy, x, w, **kw)[0]
    np.testing.assert_array_equal(auto, conv2d_backward(gy, x, w, algo="implicit", **kw)[0])
    assert not np.array_equal(auto, conv2d_backward(gy, x, w, algo="gemm", **kw)[0])


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_implicit_weight_gradient_splits_positions_over_threads(isa, rng, dtype, tol):
    """Fewer (image, group) items than threads: the threads share each image's output positions
    (ranges that start and end mid-chunk, mid-row, across an image boundary) and their sums are
    added in thread order: vs the float64 reference at 1-4 threads, bitwise reproducible at a
    fixed count, and 'auto' takes this path for one few-channel image."""
    # (N, C, H, W, K, R, S, stride, padding, groups)
    for n, c, h, w, k, r, s, st, pad, g in [
            (1, 3, 41, 37, 8, 9, 9, 1, 4, 1),       # 1369 positions: 6 chunks, a tail
            (1, 6, 23, 29, 64, 3, 3, 2, 1, 2),      # strided, 2 groups (fewer items than 3-4)
            (3, 4, 13, 11, 33, 5, 3, 1, 2, 1),      # ranges across image boundaries, K tail
            (1, 16, 9, 7, 16, 3, 3, 1, 0, 1)]:      # 35 positions over up to 4 threads
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((k, c // g, r, s)).astype(dtype)
        gy = rng.standard_normal(conv2d(x, wt, stride=st, padding=pad, groups=g).shape)
        gy = gy.astype(dtype)
        want = ref.conv2d_backward(gy.astype(np.float64), x.astype(np.float64),
                                   wt.astype(np.float64), stride=(st, st), pad=(pad,) * 4,
                                   groups=g)[1]
        kw = dict(stride=st, padding=pad, groups=g, needs_input_grad=(False, True, False))
        before = cnnfast.get_num_threads()
        try:
            for threads in (1, 2, 3, 4):
                cnnfast.set_num_threads(threads)
                got = conv2d_backward(gy, x, wt, algo="implicit", **kw)[1]
                err = np.linalg.norm(got - want) / np.linalg.norm(want)
                assert err <= tol, f"{(n, c, h, w, k, r, s)} at {threads} threads: {err:.2e}"
                again = conv2d_backward(gy, x, wt, algo="implicit", **kw)[1]
                np.testing.assert_array_equal(again, got)
                if (n, c, k) == (1, 3, 8) and threads > 1:  # auto: split implicit, not GEMM
                    np.testing.assert_array_equal(
                        conv2d_backward(gy, x, wt, **kw)[1], got)
        finally:
            cnnfast.set_num_threads(before)
