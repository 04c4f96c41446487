"""conv2d algorithms (algo='gemm'|'implicit'|'direct'|'auto') on every ISA path vs the float64 NumPy
reference: random configurations (odd sizes, tails, every padding form, groups, stride, dilation),
the depthwise / tiny-C shapes the direct path is for, float64 finite-difference gradients, and
thread-count invariance of the direct path."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
from cnnfast.functional import conv2d, conv2d_backward

import reference as ref
from helpers import assert_close
from test_conv2d import _check_fd, _random_case, _run_case

ALGOS = ("gemm", "implicit", "direct", "auto")


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_random_cases(isa, rng, algo, dtype, tol):
    for _ in range(6):
        _run_case(rng, _random_case(rng), dtype, tol, algo=algo)


@pytest.mark.parametrize("algo", ("direct", "implicit", "auto"))
@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
    (2, 16, 13, 17, 16, 3, 3, 1, 1, 1, 16),     # depthwise, odd sizes
    (3, 8, 9, 30, 16, 3, 3, 1, 1, 1, 8),        # depthwise with channel multiplier 2
    (2, 6, 12, 11, 6, 5, 3, 2, (2, 1, 0, 1), 1, 6),  # depthwise, stride 2, asymmetric pad
    (1, 4, 15, 15, 4, 3, 3, 1, 2, 2, 4),        # depthwise, dilated
    (2, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1),        # C = 1 (LeNet conv1)
    (2, 3, 23, 21, 7, 7, 7, 2, 3, 1, 1),        # C = 3, stride 2 (ResNet conv1-like)
    (1, 3, 19, 19, 5, 11, 11, 4, 2, 1, 1),      # C = 3, stride 4 (AlexNet conv1-like)
])
def test_direct_structural(isa, rng, algo, shape):
    n, c, h, w, k, r, s, st, pad, dil, g = shape
    from cnnfast._checks import resolve_padding
    case = dict(x=(n, c, h, w), w=(k, c // g, r, s), stride=(st, st), padding=pad,
                pad=resolve_padding(pad, (h, w), (r, s), (st, st), (dil, dil)),
                dilation=(dil, dil), groups=g)
    _run_case(rng, case, np.float32, 1e-5, algo=algo)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_direct_block_shapes(isa, rng, dtype, tol):
    """The register-blocked direct kernels (groups 1, unit stride and dilation): channel counts
    around their 3-channel forward and 2-channel weight-gradient blocks, filter widths 1-6 (the
    weight kernel's unrolled range) and 7 (forward only), output rows around the 8-lane blocks
    and the 32-output tile (the weight gradient's masked dy tail), 'same' and asymmetric pads,
    and padding deeper than the filter (output rows whose window holds padding only)."""
    from cnnfast._checks import resolve_padding
    for k, c, r, s, h, w, pad in ((1, 1, 5, 5, 28, 28, 2), (2, 3, 3, 3, 9, 8, 1),
                                  (4, 2, 2, 1, 7, 40, 0), (5, 1, 1, 6, 6, 13, (0, 1, 3, 2)),
                                  (7, 2, 3, 4, 5, 33, "same"), (8, 3, 4, 7, 11, 17, 3),
                                  (11, 2, 3, 5, 10, 31, 2), (3, 2, 2, 3, 5, 9, 3)):
        case = dict(x=(3, c, h, w), w=(k, c, r, s), stride=(1, 1), padding=pad,
                    pad=resolve_padding(pad, (h, w), (r, s), (1, 1), (1, 1)), dilation=(1, 1),
                    groups=1)
        _run_case(rng, case, dtype, tol, algo="direct")


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_direct_block_grouped_shapes(isa, rng, dtype, tol):
    """Grouped layers at unit stride and dilation. Depthwise (one channel per group) takes the
    depthwise row kernels: output heights around the 4-row tile (P % 4 = 1, 2, 3), widths around
    the 8-lane vector and the 24-output tile (the forward's scratch rows for Q not a multiple of
    8, y itself otherwise), filters of more taps than the weight gradient's 12 accumulators
    (1x13, 3x5, 4x7, 5x5: passes of even width), padding deeper than the filter (the input
    gradient's fallback). Channel multipliers and multi-channel groups take the register-blocked
    channel tiles."""
    from cnnfast._checks import resolve_padding
    for n, c, k, g, r, s, h, w, pad in (
            (2, 5, 5, 5, 3, 3, 9, 16, 1), (1, 3, 3, 3, 3, 3, 6, 31, 1),
            (2, 4, 4, 4, 13, 1, 15, 9, (6, 6, 0, 0)), (1, 2, 2, 2, 5, 3, 11, 25, "same"),
            (2, 3, 3, 3, 7, 4, 10, 48, (3, 2, 1, 2)), (1, 2, 2, 2, 5, 5, 5, 7, 2),
            (2, 2, 2, 2, 2, 6, 4, 17, (3, 3, 0, 5)), (1, 3, 3, 3, 3, 7, 7, 13, 3),
            (2, 3, 6, 3, 3, 3, 7, 20, 1), (2, 6, 4, 2, 3, 2, 9, 11, (1, 1, 0, 1))):
        case = dict(x=(n, c, h, w), w=(k, c // g, r, s), stride=(1, 1), padding=pad,
                    pad=resolve_padding(pad, (h, w), (r, s), (1, 1), (1, 1)), dilation=(1, 1),
                    groups=g)
        _run_case(rng, case, dtype, tol, algo="direct")


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_depthwise_strided_dilated_shapes(isa, rng, dtype, tol):
    """Depthwise layers at any stride and dilation (the row kernels over column phases): stride
    2 and 3 across, down or both, dilation across and down, stride with dilation, channel
    multipliers with stride (one phase split shared by the group's outputs), asymmetric
    padding, widths whose phases differ in length, one-row and one-column outputs; for the input
    gradient's stride phases: phases no tap reaches (1x1 at stride 4, dilation a multiple of the
    stride), strides beyond the filter, padding beyond it, whole-vector rows written in place."""
    from cnnfast._checks import resolve_padding
    for n, c, m, r, s, h, w, st, pad, dil in (
            (2, 4, 1, 3, 3, 13, 17, (2, 2), 1, (1, 1)), (1, 3, 1, 3, 3, 12, 31, (1, 2), 1, (1, 1)),
            (2, 3, 1, 5, 5, 14, 23, (3, 3), 2, (1, 1)), (1, 2, 1, 3, 3, 15, 40, (2, 1), 0, (1, 1)),
            (2, 3, 1, 3, 3, 17, 19, (1, 1), 2, (2, 2)), (1, 2, 1, 3, 2, 9, 29, (1, 1), (1, 3, 0, 2),
                                                         (3, 1)),
            (2, 3, 2, 3, 3, 11, 26, (2, 2), "same", (1, 1)), (1, 2, 3, 4, 3, 10, 33, (2, 3), 1, (2, 2)),
            (2, 2, 1, 3, 4, 7, 8, (2, 2), (0, 1, 2, 0), (1, 2)), (1, 3, 1, 2, 2, 2, 9, (2, 2), 0, (1, 1)),
            (1, 2, 1, 3, 3, 5, 3, (1, 1), (4, 2, 3, 1), (1, 1)),
            (1, 3, 1, 1, 1, 9, 13, (4, 4), 0, (1, 1)), (1, 2, 1, 3, 3, 12, 32, (2, 1), 1, (1, 1)),
            (1, 2, 2, 3, 3, 6, 16, (1, 1), (3, 0, 4, 1), (1, 1)),
            (2, 2, 1, 2, 2, 11, 14, (3, 3), 1, (1, 1))):
        case = dict(x=(n, c, h, w), w=(c * m, 1, r, s), stride=st, padding=pad,
                    pad=resolve_padding(pad, (h, w), (r, s), st, dil), dilation=dil, groups=c)
        _run_case(rng, case, dtype, tol, algo="direct")


@pytest.mark.parametrize("cfg", [
    dict(stride=1, padding=1, dilation=1, groups=4),          # depthwise
    dict(stride=(2, 1), padding=(1, 0, 2, 1), dilation=(1, 2), groups=4),  # depthwise rows
    dict(stride=2, padding="same", dilation=1, groups=2),
    dict(stride=(1, 2), padding=(1, 0, 2, 1), dilation=(2, 1), groups=1),
    # unit stride, asymmetric padding within dil*(k-1): implicit backward-data runs the forward
    dict(stride=1, padding=(3, 1, 1, 0), dilation=(2, 1), groups=2),
])
@pytest.mark.parametrize("algo", ("direct", "implicit"))
def test_gradients_finite_differences(isa, rng, cfg, algo):
    x = rng.standard_normal((2, 4, 7, 9))
    w = rng.standard_normal((8, 4 // cfg["groups"], 3, 2))
    _check_fd(rng, x, w, rng.standard_normal(8), dict(cfg, algo=algo))


@pytest.mark.parametrize("groups", [1, 24])
def test_direct_thread_count_invariance(rng, groups):
    x = rng.standard_normal((3, 24, 17, 19)).astype(np.float32)
    w = rng.standard_normal((24, 24 // groups, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((3, 24, 17, 19)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            outs.append((conv2d(x, w, padding=1, groups=groups, algo="direct"),)
                        + conv2d_backward(gy, x, w, padding=1, groups=groups, algo="direct")[:2])
    finally:
        cnnfast.set_num_threads(before)
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)  # every pass is bitwise thread-invariant


def test_unknown_algo_names_the_choices():
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="algo.*'direct'"):
        conv2d(x, x[:, :, :3, :3], algo="fft")


# ---- Winograd F(2x2, 3x3) and F(4x4, 3x3): 3x3, stride 1 (backward-data: padding <= 2·dilation) -

TILES = ("winograd_f2", "winograd_f4")

def _winograd_case(rng, dilated=False):
    g = int(rng.choice([1, 1, 2, 3]))
    cg, kg = int(rng.integers(1, 20)), int(rng.integers(1, 20))
    # dilated: unequal phases (sizes not multiples of the dilation), pads above and below it
    dil = tuple(int(v) for v in rng.integers(1, 5, 2)) if dilated else (1, 1)
    h, w = (int(rng.integers(2 * d + 1, 21 + 4 * d)) for d in dil)  # partial tiles, odd sizes
    pad = tuple(int(v) for v in (rng.integers(0, 2 * dil[0] + 1, 2).tolist()
                                 + rng.integers(0, 2 * dil[1] + 1, 2).tolist()))
    return dict(x=(int(rng.integers(1, 4)), cg * g, h, w), w=(kg * g, cg, 3, 3), stride=(1, 1),
                padding=pad, pad=pad, dilation=dil, groups=g)


@pytest.mark.parametrize("algo", TILES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-12)])
def test_winograd_random_cases(isa, rng, dtype, tol, algo):
    for _ in range(6):
        _run_case(rng, _winograd_case(rng), dtype, tol, algo=algo)


@pytest.mark.parametrize("algo", TILES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-12)])
def test_winograd_dilated_phases(isa, rng, dtype, tol, algo):
    """Dilated layers run as dilation_h x dilation_w undilated phases: every output belongs to
    exactly one phase (poisoned outputs catch a missed one), every pad up to 2·dilation."""
    for _ in range(6):
        _run_case(rng, _winograd_case(rng, dilated=True), dtype, tol, algo=algo)
    # the dilated 'same' layer of a context module (64x64, d=4): equal phases, Winograd under auto
    case = dict(x=(2, 32, 36, 40), w=(32, 32, 3, 3), stride=(1, 1), padding=4, pad=(4,) * 4,
                dilation=(4, 4), groups=1)
    for algo in ("winograd", "auto"):
        _run_case(rng, case, np.float32, 1e-4, algo=algo)


@pytest.mark.parametrize("algo", TILES)
def test_winograd_larger_blocks(rng, algo):
    # Channels above the GEMM's register tiles; then more tile rows than one workspace block
    # (1M elements, 128 channels a side: blocks of 14 tile rows at F2, phases of 19 x 18 tiles;
    # 12 at F4, phases of 10 x 9), with dilation 2 so blocks run across phases and start inside one.
    case = dict(x=(2, 40, 57, 61), w=(33, 40, 3, 3), stride=(1, 1), padding=1, pad=(1,) * 4,
                dilation=(1, 1), groups=1)
    _run_case(rng, case, np.float32, 1e-4, algo=algo)
    case = dict(x=(1, 128, 72, 70), w=(128, 128, 3, 3), stride=(1, 1), padding=(2, 1, 2, 2),
                pad=(2, 1, 2, 2), dilation=(2, 2), groups=1)
    _run_case(rng, case, np.float32, 1e-4, algo=algo)


def test_winograd_blocks_span_images(rng):
    # Small planes (ResNet's 7x7): blocks of tile rows run across images, split so the items are a
    # multiple of the thread count; every thread count cuts the batch differently. 'auto' picks
    # Winograd here (64+ 2x2 tiles over the batch).
    case = dict(x=(9, 32, 7, 7), w=(32, 32, 3, 3), stride=(1, 1), padding=1, pad=(1,) * 4,
                dilation=(1, 1), groups=1)
    before = cnnfast.get_num_threads()
    try:
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            for algo in ("auto", "winograd_f2", "winograd_f4"):
                _run_case(rng, case, np.float32, 1e-4, algo=algo)
    finally:
        cnnfast.set_num_threads(before)


def test_winograd_picks_its_tile_by_plane_size(rng):
    # 'winograd' runs F(4x4,3x3) from 48 of its 4x4 tiles an image (all dilation phases) up, else
    # F(2x2,3x3): bitwise equal to the explicitly tiled run, not to the other (rounding differs).
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    for size, dil, tile in ((28, 1, "winograd_f4"), (24, 1, "winograd_f2"), (32, 2, "winograd_f4"),
                            (20, 2, "winograd_f2")):
        x = rng.standard_normal((1, 8, size, size)).astype(np.float32)
        kw = dict(padding=dil, dilation=dil)
        other = "winograd_f2" if tile == "winograd_f4" else "winograd_f4"
        y = conv2d(x, w, algo="winograd", **kw)
        np.testing.assert_array_equal(y, conv2d(x, w, algo=tile, **kw))
        assert not np.array_equal(y, conv2d(x, w, algo=other, **kw))


def test_winograd_weight_gradient_blocks_threads_and_auto(rng):
    """The Winograd weight gradient (2-D, undilated): several blocks of images (float64, 64
    channels on 30x30: F2 blocks of 2 images, F4 of 3), bitwise the same at 1, 2 and 3 threads
    (each ξ's GEMM is one thread's, summed in block order); 'auto' takes it here (64 channels on
    a plane that takes F(4x4,3x3)) and not for 32 channels; where the implicit tile is
    AVX-512's 8x32 (faster there below 128 channels), from 128 channels."""
    x = rng.standard_normal((5, 64, 30, 30))
    w = rng.standard_normal((64, 64, 3, 3))
    gy = rng.standard_normal((5, 64, 30, 30))
    want = ref.conv2d_backward(gy, x, w, stride=(1, 1), pad=(1,) * 4, groups=1)[1]
    before = cnnfast.get_num_threads()
    try:
        for algo in TILES:
            outs = []
            for n in (1, 2, 3):
                cnnfast.set_num_threads(n)
                outs.append(conv2d_backward(gy, x, w, padding=1, algo=algo,
                                            needs_input_grad=(False, True, False))[1])
            assert_close(outs[0], want, 1e-12, f"grad_w {algo}")
            for o in outs[1:]:
                np.testing.assert_array_equal(o, outs[0])
    finally:
        cnnfast.set_num_threads(before)
    x128 = rng.standard_normal((2, 128, 30, 30)).astype(np.float32)
    gy128 = rng.standard_normal((2, 128, 30, 30)).astype(np.float32)
    w128 = rng.standard_normal((128, 128, 3, 3)).astype(np.float32)
    isa_before = cnnfast.info()["isa"]
    try:
        for isa in set(cnnfast.info()["isa_available"]) & {"avx2", "avx512"}:
            cnnfast.set_isa(isa)
            for c, picked in ((128, True), (64, isa != "avx512"), (32, False)):
                xc, gc, wc = (np.ascontiguousarray(a)
                              for a in (x128[:, :c], gy128[:, :c], w128[:c, :c]))
                grads = {a: conv2d_backward(gc, xc, wc, padding=1, algo=a,
                                            needs_input_grad=(False, True, False))[1]
                         for a in ("auto", "winograd_f4")}
                assert np.array_equal(grads["auto"], grads["winograd_f4"]) == picked, (isa, c)
    finally:
        cnnfast.set_isa(isa_before)


def test_auto_forward_and_backward_data_winograd_or_wide_implicit(rng):
    """'auto' on 3x3 stride-1 layers: Winograd, except where the implicit tile is AVX-512's 8x32
    and the layer has at most 32 channels, or is dilated with at most 64 (the implicit GEMM is
    faster there); then it is the implicit path, bit for bit. AVX2 keeps Winograd."""
    isa_before, threads_before = cnnfast.info()["isa"], cnnfast.get_num_threads()
    try:
        cnnfast.set_num_threads(2)  # the implicit rules want an (image, group) per thread
        for isa in set(cnnfast.info()["isa_available"]) & {"avx2", "avx512"}:
            cnnfast.set_isa(isa)
            for c, dil, wide_wins in ((32, 1, True), (64, 2, True), (64, 1, False),
                                      (96, 2, False)):
                x = rng.standard_normal((4, c, 32, 32)).astype(np.float32)
                w = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
                gy = rng.standard_normal((4, c, 32, 32)).astype(np.float32)
                kw = dict(padding=dil, dilation=dil)
                ys = {a: conv2d(x, w, algo=a, **kw) for a in ("auto", "winograd", "implicit")}
                dxs = {a: conv2d_backward(gy, x, w, algo=a, needs_input_grad=(True, False, False),
                                          **kw)[0] for a in ("auto", "winograd", "implicit")}
                implicit = isa == "avx512" and wide_wins
                for got in (ys, dxs):
                    assert not np.array_equal(got["winograd"], got["implicit"])
                    assert np.array_equal(got["auto"], got["implicit"] if implicit
                                          else got["winograd"]), (isa, c, dil)
    finally:
        cnnfast.set_isa(isa_before)
        cnnfast.set_num_threads(threads_before)


@pytest.mark.parametrize("algo", TILES)
def test_winograd_gradients_finite_differences(isa, rng, algo):
    for kw in (dict(padding=(1, 2, 0, 1), groups=2, algo=algo),
               dict(padding=(3, 1, 4, 0), dilation=(2, 3), groups=1, algo=algo)):
        x = rng.standard_normal((2, 4, 7, 6))
        w = rng.standard_normal((6, 4 // kw["groups"], 3, 3))
        _check_fd(rng, x, w, rng.standard_normal(6), kw)


@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1), dict(stride=(1, 3), padding=2)])
def test_winograd_rejects_other_shapes(kwargs):
    x = np.ones((1, 2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="winograd"):
        conv2d(x, np.ones((2, 2, 3, 3), np.float32), algo="winograd", **kwargs)
    with pytest.raises(ValueError, match="winograd"):
        conv2d(x, np.ones((2, 2, 5, 5), np.float32), algo="winograd")


def test_winograd_backward_rejects_padding_beyond_twice_the_dilation():
    x = np.ones((1, 2, 9, 9), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    y = conv2d(x, w, padding=5, dilation=2, algo="winograd")  # the forward applies
    with pytest.raises(ValueError, match=r"winograd.*padding <= dilation"):
        conv2d_backward(y, x, w, padding=5, dilation=2, algo="winograd")


@pytest.mark.parametrize("algo", ("gemm", "auto"))
@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, R, S, stride, padding, groups): one image has fewer than 256 output
    # positions, so blocks of images share one GEMM (conv2d_gemm_small); deep filters put the
    # block at the 256-column floor, batches that do not divide into blocks leave a tail block
    (7, 40, 4, 5, 24, 3, 3, 1, 1, 1),      # 20 positions per image: blocks of 13 images
    (5, 64, 9, 7, 48, 3, 3, 2, 1, 2),      # strided, 2 groups, 20 positions
    (3, 30, 16, 16, 20, 3, 3, 1, 1, 1),    # 256 positions: still one image per GEMM
    (11, 12, 3, 3, 33, 2, 2, 1, 0, 3),     # 4 positions, 3 groups, K tail
])
def test_small_plane_deep_filter_blocks(isa, rng, algo, shape):
    from cnnfast._checks import resolve_padding
    n, c, h, w, k, r, s, st, pad, g = shape
    case = dict(x=(n, c, h, w), w=(k, c // g, r, s), stride=(st, st), padding=pad,
                pad=resolve_padding(pad, (h, w), (r, s), (st, st), (1, 1)), dilation=(1, 1),
                groups=g)
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        _run_case(rng, case, dtype, tol, algo=algo)


def test_small_plane_large_weight_gradient_shares_columns(rng):
    """A small-plane weight gradient whose dW is too large to copy per thread (> 1 MiB) builds
    shared column blocks and runs one threaded GEMM per block: vs the float64 reference (two
    groups, a tail block of images) and bitwise the same at 2 and 3 threads."""
    import reference as ref
    for (n, c, h, w_, k, g), dtype, tol in (((7, 320, 15, 16, 192, 2), np.float32, 1e-5),
                                             ((5, 160, 4, 5, 96, 1), np.float64, 1e-12)):
        x = rng.standard_normal((n, c, h, w_)).astype(dtype)
        w = rng.standard_normal((k, c // g, 3, 3)).astype(dtype)
        gy = rng.standard_normal((n, k, h, w_)).astype(dtype)
        before = cnnfast.get_num_threads()
        try:
            outs = []
            for threads in (2, 3):
                cnnfast.set_num_threads(threads)
                outs.append(conv2d_backward(gy, x, w, padding=1, groups=g, algo="gemm",
                                            needs_input_grad=(False, True, False))[1])
        finally:
            cnnfast.set_num_threads(before)
        np.testing.assert_array_equal(outs[1], outs[0])
        want = ref.conv2d_backward(gy, x, w, stride=(1, 1), pad=(1,) * 4, groups=g)[1]
        err = np.linalg.norm(outs[0] - want) / np.linalg.norm(want)
        assert err <= tol, f"grad_w {x.shape} groups {g}: relative error {err:.2e}"


@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups): images too large for
    # conv2d_gemm_small, so the forward (and backward-data at unit stride, its forward on dy)
    # packs column chunks straight into GEMM panels from a padded copy of each image, and the
    # weight gradient packs the transposed columns (8x8 register transposes on AVX2); chunks end
    # mid-row, panels straddle output rows, 3 threads split one image's GEMM.
    (1, 16, 70, 69, 8, 3, 3, 1, 1, 1, 1),               # 2 chunks, odd width, 1 image
    (2, 64, 64, 61, 24, 3, 3, 2, (1, 0, 2, 1), 1, 2),   # strided, 2 groups, asymmetric pad
    (3, 20, 45, 47, 21, 5, 3, 1, "same", (2, 1), 1),    # dilated 5x3, K tail
    (1, 12, 40, 41, 6, 3, 3, 1, (2, 0, 1, 2), 1, 2),    # dx as the forward on dy, 2 groups
])
@pytest.mark.parametrize("threads", [1, 3])
def test_chunked_gemm_column_panels(isa, rng, shape, threads):
    from cnnfast._checks import resolve_padding
    n, c, h, w, k, r, s, st, pad, dil, g = shape
    dil = dil if isinstance(dil, tuple) else (dil, dil)
    case = dict(x=(n, c, h, w), w=(k, c // g, r, s), stride=(st, st), padding=pad,
                pad=resolve_padding(pad, (h, w), (r, s), (st, st), dil), dilation=dil, groups=g)
    before = cnnfast.get_num_threads()
    try:
        cnnfast.set_num_threads(threads)
        for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
            _run_case(rng, case, dtype, tol, algo="gemm")
    finally:
        cnnfast.set_num_threads(before)
