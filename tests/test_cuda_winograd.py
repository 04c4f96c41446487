"""CUDA conv2d with algo='winograd' / 'winograd_f2' / 'winograd_f4' (Winograd F(m x m, 3x3),
cpp/src/cuda/conv2d_winograd.cu) on a device: forward with fused bias + ReLU and its backward
against the float64 CPU reference (edges that cut tiles, dilation phases, groups, depthwise,
padding past 2·dilation), a batch large enough to run in several scratch chunks against the
implicit GEMM, and the algorithm names the device refuses. Runs only where a CUDA device exists;
the same programs run on the host in test_cuda_emulated_winograd.py."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

from cuda_helpers import close, dev, f32, requires_gpu

pytestmark = requires_gpu

TOL = 1e-4  # float32 Winograd against float64

# N, C, H, W, K, padding, dilation, groups — 3x3 filters at stride 1
CASES = [
    (2, 16, 20, 18, 24, 1, 1, 1),
    (3, 8, 9, 13, 12, (1, 0, 2, 1), (2, 1), 2),
    (2, 32, 30, 30, 32, "same", 1, 32),
    (1, 64, 12, 12, 64, 3, 1, 1),
    (4, 3, 33, 35, 70, 1, 1, 1),
]


def f64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4", "winograd"])
@pytest.mark.parametrize("case", CASES)
def test_winograd_matches_float64(rng, case, algo):
    n, c, h, w, k, pad, dil, g = case
    x, wt, b = f32(rng, n, c, h, w), f32(rng, k, c // g, 3, 3), f32(rng, k)
    kw = dict(padding=pad, dilation=dil, groups=g)
    for act in (None, "relu"):
        want = F.conv2d(*f64(x, wt, b), activation=act, **kw)
        close(F.conv2d(*dev(x, wt, b), activation=act, algo=algo, **kw), want, TOL, f"fwd {act}")
    y = F.conv2d(x, wt, b, activation="relu", **kw)
    gy = f32(rng, *y.shape)
    want = F.conv2d_backward(*f64(gy, x, wt, b), activation="relu", output=f64(y)[0], **kw)
    got = F.conv2d_backward(*dev(gy, x, wt, b), activation="relu", output=dev(y), algo=algo, **kw)
    for name, gd, wd in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        close(gd, wd, TOL, name)


def test_batch_over_several_scratch_chunks_matches_the_implicit_gemm(rng):
    # 36·64·14·14 transformed floats an image: 2^25 hold 74 images, so 80 run in two chunks
    x, wt, gy = f32(rng, 80, 64, 56, 56), f32(rng, 64, 64, 3, 3), f32(rng, 80, 64, 56, 56)
    xd, wd, gd = dev(x, wt, gy)
    close(F.conv2d(xd, wd, padding=1, algo="winograd_f4"),
          F.conv2d(xd, wd, padding=1, algo="implicit").to_numpy(), TOL, "forward")
    got = F.conv2d_backward(gd, xd, wd, padding=1, algo="winograd_f4")
    want = F.conv2d_backward(gd, xd, wd, padding=1, algo="implicit")
    for name, a, e in zip(("grad_input", "grad_weight"), got, want):
        close(a, e.to_numpy(), TOL, name)


def test_more_transformed_groups_than_the_grid_z_limit(rng):
    # depthwise F4: 36 · 2048 GEMMs where gridDim.z holds 65535 (the emulated twin: forward only)
    g = 2048
    x, wt, b = f32(rng, 2, g, 7, 6), f32(rng, g, 1, 3, 3), f32(rng, g)
    kw = dict(padding=1, groups=g)
    close(F.conv2d(*dev(x, wt, b), algo="winograd_f4", **kw), F.conv2d(*f64(x, wt, b), **kw), TOL,
          "fwd")
    gy = f32(rng, 2, g, 7, 6)
    want = F.conv2d_backward(*f64(gy, x, wt, b), **kw)
    got = F.conv2d_backward(*dev(gy, x, wt, b), algo="winograd_f4", **kw)
    for name, gd, wd in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        close(gd, wd, TOL, name)


@pytest.mark.parametrize("rule, scratch", [("balance", "0"), ("wave", "20000")])
def test_the_ab_knobs_keep_the_results(rng, rule, scratch, monkeypatch):
    # CNNFAST_CUDA_SPLIT_RULE (the weight-gradient sum's split) and CNNFAST_CUDA_WINO_SCRATCH (a
    # cap under one image's 36·24·25 transformed floats: one image a chunk)
    monkeypatch.setenv("CNNFAST_CUDA_SPLIT_RULE", rule)
    monkeypatch.setenv("CNNFAST_CUDA_WINO_SCRATCH", scratch)
    x, wt, b = f32(rng, 6, 16, 20, 18), f32(rng, 24, 16, 3, 3), f32(rng, 24)
    gy = f32(rng, 6, 24, 20, 18)
    close(F.conv2d(*dev(x, wt, b), padding=1, algo="winograd_f4"),
          F.conv2d(*f64(x, wt, b), padding=1), TOL, "fwd")
    want = F.conv2d_backward(*f64(gy, x, wt, b), padding=1)
    got = F.conv2d_backward(*dev(gy, x, wt, b), padding=1, algo="winograd_f4")
    for name, gd, wd in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        close(gd, wd, TOL, name)


@pytest.mark.parametrize("algo, match", [("direct", "CPU algorithms"), ("fft", "one of")])
def test_device_conv2d_refuses_algorithms_it_lacks(rng, algo, match):
    xd, wd = dev(f32(rng, 1, 2, 6, 6), f32(rng, 3, 2, 3, 3))
    with pytest.raises(ValueError, match=match):
        F.conv2d(xd, wd, algo=algo)


def test_forced_winograd_on_a_5x5_filter_is_a_value_error(rng):
    xd, wd = dev(f32(rng, 1, 2, 9, 9), f32(rng, 3, 2, 5, 5))
    with pytest.raises(ValueError, match="3x3 kernel"):
        F.conv2d(xd, wd, algo="winograd")
