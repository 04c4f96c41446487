"""The CUDA Winograd F(m x m, 3x3) programs (cpp/src/cuda/conv2d_winograd.cu) run on the HOST
(cuda::emulate, no GPU needed) against the float64 CPU reference: forward with bias / fused ReLU,
backward-data (the flipped-filter forward, incl. padding past 2·dilation), the weight gradient
with its sum split as on a 1-SM and a 132-SM GPU (either split rule); both tiles, edges that cut
tiles, dilation phases, groups, depthwise, batches over several chunks (the emulation runs 2
images a chunk). And the algorithm choice: what the CUDA backend refuses, and why."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core
from cnnfast._checks import int_tuple, resolve_padding

from cuda_helpers import SPLIT_RULES, f32
from helpers import assert_close

pytestmark = pytest.mark.skipif(not _core.cuda_built(), reason="built without the CUDA backend")

TOL = 1e-4  # float32 Winograd against float64 (the CPU's Winograd tests use the same bound)

# N, C, H, W, K, padding, dilation, groups — 3x3 filters at stride 1
CASES = [
    (2, 3, 9, 11, 5, 1, 1, 1),                 # planes that cut both tile sizes
    (3, 4, 13, 7, 6, (1, 0, 2, 1), (1, 2), 2),  # asymmetric pad, column phases, groups, 2 chunks
    (2, 5, 12, 9, 4, "same", 3, 1),            # 3x3 row/column phases
    (1, 3, 6, 5, 2, "full", 1, 1),             # pad 2: backward-data pads dy by 0
    (1, 2, 8, 8, 3, 3, 1, 1),                  # pad 3 > 2·dilation: backward-data crops dy
    (2, 6, 16, 16, 6, 1, 1, 6),                # depthwise
    (1, 40, 10, 10, 36, 1, 1, 1),              # 32+ channels: several GEMM depth slices
    (1, 2, 5, 6, 3, 0, 2, 1),                  # dilated 'valid': a 1x2 output
    (5, 2, 20, 20, 3, 0, 1, 1),                # 18x18 outputs: F4's 48+ tiles an image rule
]


def setup(rng, case):
    n, c, h, w, k, pad, dil, g = case
    x, wt, b = f32(rng, n, c, h, w), f32(rng, k, c // g, 3, 3), f32(rng, k)
    dil2 = int_tuple("dilation", dil, 2, 1)
    pad4 = resolve_padding(pad, (h, w), (3, 3), (1, 1), dil2)
    return x, wt, b, dict(padding=pad, dilation=dil, groups=g), ((1, 1), pad4, dil2, g)


def f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4", "winograd"])
@pytest.mark.parametrize("case", CASES)
def test_winograd_programs_match_float64(rng, case, algo, monkeypatch):
    x, wt, b, kw, geo = setup(rng, case)
    for bias, relu in ((b, False), (None, False), (b, True)):
        want = F.conv2d(*f64(x, wt, bias), activation="relu" if relu else None, **kw)
        got = _core._cuda_emulate_conv2d_forward(x, wt, bias, *geo, relu, algo)
        assert_close(got, want, TOL, f"forward relu={relu}")
    gy = f32(rng, *F.conv2d(x, wt, b, **kw).shape)
    gx, gw, _ = F.conv2d_backward(*f64(gy, x, wt, b), **kw)
    assert_close(_core._cuda_emulate_conv2d_backward_data(gy, wt, list(x.shape), *geo, algo), gx,
                 TOL, "backward-data")
    for rule, sms in SPLIT_RULES:
        monkeypatch.setenv("CNNFAST_CUDA_SPLIT_RULE", rule)
        got = _core._cuda_emulate_conv2d_backward_weight(gy, x, list(wt.shape), *geo, sms, algo)
        assert_close(got, gw, TOL, f"backward-weight, {sms} SMs, split rule {rule}")


def test_winograd_agrees_with_the_implicit_gemm_path(rng):
    x, wt, b, _, geo = setup(rng, (2, 8, 12, 12, 8, 1, 1, 2))
    want = _core._cuda_emulate_conv2d_forward(x, wt, b, *geo, True, "implicit")
    assert_close(_core._cuda_emulate_conv2d_forward(x, wt, b, *geo, True, "winograd"), want, TOL)


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4"])
def test_a_smaller_scratch_cap_runs_one_image_a_chunk(rng, algo, monkeypatch):
    # CNNFAST_CUDA_WINO_SCRATCH (floats per transformed buffer): a cap below one image's tiles
    # still takes one image a chunk
    monkeypatch.setenv("CNNFAST_CUDA_WINO_SCRATCH", "1")
    x, wt, b, kw, geo = setup(rng, (3, 4, 13, 7, 6, (1, 0, 2, 1), (1, 2), 2))
    want = F.conv2d(*f64(x, wt, b), **kw)
    assert_close(_core._cuda_emulate_conv2d_forward(x, wt, b, *geo, False, algo), want, TOL)
    gy = f32(rng, *want.shape)
    gx, gw, _ = F.conv2d_backward(*f64(gy, x, wt, b), **kw)
    assert_close(_core._cuda_emulate_conv2d_backward_data(gy, wt, list(x.shape), *geo, algo), gx,
                 TOL, "backward-data")
    assert_close(_core._cuda_emulate_conv2d_backward_weight(gy, x, list(wt.shape), *geo, 132,
                                                            algo), gw, TOL, "backward-weight")


def test_more_transformed_groups_than_the_grid_z_limit(rng):
    # F4's 36 GEMMs per group: 36 · 1821 = 65556 groups where gridDim.z holds 65535 (two launches)
    g = 1821
    x, wt = f32(rng, 1, g, 4, 5), f32(rng, g, 1, 3, 3)  # 4x4 tiles whole: all 36 products used
    got = _core._cuda_emulate_conv2d_forward(x, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), g, False,
                                             "winograd_f4")
    assert_close(got, F.conv2d(*f64(x, wt), padding=1, groups=g), TOL)


@pytest.mark.parametrize("shape, stride", [((3, 2, 5, 5), 1), ((3, 2, 3, 3), 2),
                                           ((3, 2, 1, 3), 1)])
def test_winograd_refuses_shapes_it_cannot_take(rng, shape, stride):
    x, wt = f32(rng, 1, 2, 9, 9), f32(rng, *shape)
    geo = ((stride, stride), (1, 1, 1, 1), (1, 1), 1)
    gy = f32(rng, *F.conv2d(x, wt, stride=stride, padding=1).shape)
    for call in (lambda: _core._cuda_emulate_conv2d_forward(x, wt, None, *geo, False, "winograd"),
                 lambda: _core._cuda_emulate_conv2d_backward_data(gy, wt, list(x.shape), *geo,
                                                                  "winograd_f2"),
                 lambda: _core._cuda_emulate_conv2d_backward_weight(gy, x, list(shape), *geo, 1,
                                                                    "winograd_f4")):
        with pytest.raises(ValueError, match="3x3 kernel .* stride 1"):
            call()


@pytest.mark.parametrize("algo", ["gemm", "direct", "ref"])
def test_cpu_only_algorithms_are_refused_by_name(rng, algo):
    x, wt = f32(rng, 1, 2, 6, 6), f32(rng, 3, 2, 3, 3)
    with pytest.raises(ValueError, match="CPU algorithms"):
        _core._cuda_emulate_conv2d_forward(x, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, False,
                                           algo)
    with pytest.raises(ValueError, match="algo must be one of"):
        _core._cuda_emulate_conv2d_forward(x, wt, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, False,
                                           "fft")


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4"])
def test_empty_input_planes_with_padding(rng, algo):  # dx has no rows; y is bias only
    x, w, b = np.zeros((2, 3, 0, 5), np.float32), f32(rng, 4, 3, 3, 3), f32(rng, 4)
    geo = ((1, 1), (2, 2, 1, 1), (1, 1), 1)
    y = _core._cuda_emulate_conv2d_forward(x, w, b, *geo, False, algo)
    assert_close(y, F.conv2d(x, w, b, padding=(2, 2, 1, 1)), TOL)
    gy = f32(rng, *y.shape)
    dx = _core._cuda_emulate_conv2d_backward_data(gy, w, list(x.shape), *geo, algo)
    assert dx.shape == x.shape
    gw = _core._cuda_emulate_conv2d_backward_weight(gy, x, list(w.shape), *geo, 16, algo)
    assert np.array_equal(gw, np.zeros_like(gw))  # nothing in x reaches the filter


# The GPU tests' own Python (tests/test_cuda_winograd.py: argument plumbing, reference dtypes,
# what they compare) run on the host stand-in, where each device kernel is the CPU op with the
# same algo — so a GPU test written without a GPU fails here first. The CPU's Winograd takes
# backward-data padding <= 2·dilation only: the pad-3 case stays GPU-only.
@pytest.mark.parametrize("algo", ["winograd_f2", "winograd"])
def test_the_gpu_tests_python_runs_on_the_host_stand_in(monkeypatch, rng, algo):
    import fake_cuda
    import test_cuda_winograd as gpu
    fake_cuda.install(monkeypatch)
    for case in gpu.CASES:
        if case[5] == 3:
            continue
        gpu.test_winograd_matches_float64(rng, case, algo)
    for name, match in (("direct", "CPU algorithms"), ("fft", "one of")):
        gpu.test_device_conv2d_refuses_algorithms_it_lacks(rng, name, match)
    gpu.test_forced_winograd_on_a_5x5_filter_is_a_value_error(rng)
