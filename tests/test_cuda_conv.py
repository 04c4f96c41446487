"""CUDA conv2d (implicit GEMM), conv3d, conv_transpose3d and ReLU against the CPU ops: every
stride / padding form / dilation / groups (incl. depthwise), odd sizes, tiles that do not divide
the problem, a split weight-gradient sum, fused bias + ReLU and its backward, depth slices that no
kernel tap reaches. Runs only where a CUDA device exists."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F

from cuda_helpers import (CONV3D_CASES, CONV_CASES as CASES, NARROW_DATA_CASES, SPLIT_RULES, close,
                          dev, f32, requires_gpu)

pytestmark = requires_gpu

IDS = [f"case{i}" for i in range(len(CASES))]


def make(rng, case, bias=True):
    n, c, h, w, k, r, s, st, pad, dil, g = case
    x, wt = f32(rng, n, c, h, w), f32(rng, k, c // g, r, s)
    b = f32(rng, k) if bias else None
    return x, wt, b, dict(stride=st, padding=pad, dilation=dil, groups=g)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("bias, act", [(True, None), (False, None), (True, "relu")])
def test_conv2d_forward_matches_cpu(rng, case, bias, act):
    x, wt, b, kw = make(rng, case, bias)
    close(F.conv2d(*dev(x, wt, b), activation=act, **kw), F.conv2d(x, wt, b, activation=act, **kw))


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("act", [None, "relu"])
def test_conv2d_backward_matches_cpu(rng, case, act):
    x, wt, b, kw = make(rng, case)
    y = F.conv2d(x, wt, b, activation=act, **kw)
    gy = f32(rng, *y.shape)
    out = y if act else None  # the same ReLU mask on both sides
    want = F.conv2d_backward(gy, x, wt, b, activation=act, output=out, **kw)
    got = F.conv2d_backward(*dev(gy, x, wt, b), activation=act, output=dev(out), **kw)
    for name, g, w in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        close(g, w, what=name)


@pytest.mark.parametrize("case", NARROW_DATA_CASES)
def test_direct_backward_data_matches_cpu(rng, case, monkeypatch):
    # the A/B knob's direct sum for C/G < 32 (test_cuda_emulated.py runs its program on the host)
    monkeypatch.setenv("CNNFAST_CUDA_NARROW_DATA", "direct")
    x, wt, b, kw = make(rng, case)
    gy = f32(rng, *F.conv2d(x, wt, b, **kw).shape)
    want = F.conv2d_backward(gy, x, wt, b, needs_input_grad=(True, False, False), **kw)[0]
    got = F.conv2d_backward(*dev(gy, x, wt, b), needs_input_grad=(True, False, False), **kw)[0]
    close(got, want, what="direct backward-data")


@pytest.mark.parametrize("rule", sorted({r for r, _ in SPLIT_RULES}))
def test_weight_gradient_under_either_split_rule(rng, rule, monkeypatch):
    # CNNFAST_CUDA_SPLIT_RULE: the split sum over the device's own multiprocessors
    monkeypatch.setenv("CNNFAST_CUDA_SPLIT_RULE", rule)
    x, wt, b, kw = make(rng, (8, 32, 30, 30, 40, 3, 3, 1, 1, 1, 1))  # 7200-deep sums
    gy = f32(rng, *F.conv2d(x, wt, b, **kw).shape)
    want = F.conv2d_backward(gy, x, wt, b, needs_input_grad=(False, True, True), **kw)
    got = F.conv2d_backward(*dev(gy, x, wt, b), needs_input_grad=(False, True, True), **kw)
    close(got[1], want[1], what="grad_weight")
    close(got[2], want[2], what="grad_bias")


def test_conv2d_backward_needs_input_grad_and_no_bias(rng):
    x, wt, _, kw = make(rng, CASES[3], bias=False)
    gy = f32(rng, *F.conv2d(x, wt, **kw).shape)
    want = F.conv2d_backward(gy, x, wt, needs_input_grad=(False, True, True), **kw)
    got = F.conv2d_backward(*dev(gy, x, wt), needs_input_grad=(False, True, True), **kw)
    assert got[0] is None and got[2] is None and want[2] is None
    close(got[1], want[1])


@pytest.mark.parametrize("n, c, k, h, w", [
    (7, 2, 3, 33, 29),   # planes > 256: each thread steps within a plane, parts split planes
    (300, 1, 2, 7, 7),   # planes < 256: each step crosses planes
    (1, 1, 1, 1, 1),
])
def test_conv2d_bias_gradient_split_over_blocks(rng, n, c, k, h, w):
    # db sums N·P·Q terms per channel over several blocks each (eltwise.cu's bias_grad)
    x, wt, b = f32(rng, n, c, h, w), f32(rng, k, c, 1, 1), f32(rng, k)
    gy = f32(rng, n, k, h, w)
    got = F.conv2d_backward(*dev(gy, x, wt, b), needs_input_grad=(False, False, True))
    assert got[0] is None and got[1] is None
    close(got[2], gy.astype(np.float64).sum(axis=(0, 2, 3)), what="grad_bias")


def check_forward_backward(rng, fwd, bwd, x, wt, b, **kw):
    """The device forward and all three gradients against the CPU op's."""
    y = fwd(x, wt, b, **kw)
    close(fwd(*dev(x, wt, b), **kw), y, what="forward")
    gy = f32(rng, *y.shape)
    want = bwd(gy, x, wt, b, **kw)
    got = bwd(*dev(gy, x, wt, b), **kw)
    for name, gg, ww in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        close(gg, ww, what=name)


@pytest.mark.parametrize("case", CONV3D_CASES)
def test_conv3d_forward_backward_match_cpu(rng, case):
    n, c, d, h, w, k, kd, kh, kw, st, pad, dil, g = case
    x, wt, b = f32(rng, n, c, d, h, w), f32(rng, k, c // g, kd, kh, kw), f32(rng, k)
    kw_ = dict(stride=st, padding=pad, dilation=dil, groups=g)
    check_forward_backward(rng, F.conv3d, F.conv3d_backward, x, wt, b, **kw_)


def test_conv3d_large_enough_for_unsplit_sums(rng):  # 8·8·32·32 rows: no split on any GPU
    x, wt, b = f32(rng, 8, 5, 8, 32, 32), f32(rng, 6, 5, 3, 3, 3), f32(rng, 6)
    check_forward_backward(rng, F.conv3d, F.conv3d_backward, x, wt, b, padding=1)


def test_conv3d_unsplit_with_groups_stride_and_slices_without_taps(rng):
    # 16·32·32 rows a slice, 2 groups: whole waves of blocks, so the sums are not split on an
    # H200 either; depth padding 3 > KD - 1 leaves output slices no tap reaches (depth-0 GEMMs)
    kw_ = dict(stride=(2, 1, 1), padding=(3, 1, 1), groups=2)
    x, wt, b = f32(rng, 16, 4, 6, 32, 32), f32(rng, 4, 2, 3, 3, 3), f32(rng, 4)
    check_forward_backward(rng, F.conv3d, F.conv3d_backward, x, wt, b, **kw_)


def test_more_column_tiles_than_the_grid_y_limit(rng):
    # a dense layer's weight gradient as a conv over (2048, 64, 64): 2^23 columns, 65536 tiles of
    # 128 where gridDim.y holds 65535 (the emulated twin is in test_cuda_emulated.py)
    x, wt, gy = f32(rng, 1, 2048, 64, 64), f32(rng, 1, 2048, 64, 64), f32(rng, 1, 1, 1, 1)
    got = F.conv2d_backward(*dev(gy, x, wt), needs_input_grad=(False, True, False))[1]
    close(got, gy[0, 0, 0, 0] * x)


def test_empty_planes_with_padding_give_bias_only(rng):
    x, wt, b = np.zeros((1, 2, 0, 5), np.float32), f32(rng, 2, 1, 3, 3), f32(rng, 2)
    kw_ = dict(padding=2, groups=2)
    close(F.conv2d(*dev(x, wt, b), **kw_), F.conv2d(x, wt, b, **kw_))


@pytest.mark.parametrize("st, pad, out_pad, dil, g", [
    (2, 1, 1, 1, 1), ((1, 2, 2), 0, (0, 1, 0), 1, 2), (2, (1, 0, 1), 0, (1, 2, 1), 1)])
def test_conv_transpose3d_matches_cpu(rng, st, pad, out_pad, dil, g):
    x, wt, b = f32(rng, 2, 4, 3, 4, 3), f32(rng, 4, 6 // g, 3, 3, 2), f32(rng, 6)
    kw_ = dict(stride=st, padding=pad, output_padding=out_pad, groups=g, dilation=dil)
    check_forward_backward(rng, F.conv_transpose3d, F.conv_transpose3d_backward, x, wt, b, **kw_)


def test_relu_forward_backward(rng):
    x, gy = f32(rng, 3, 5, 7), f32(rng, 3, 5, 7)
    xd, gd = dev(x, gy)
    close(F.relu(xd), F.relu(x), tol=0)
    close(F.relu_backward(gd, xd), F.relu_backward(gy, x), tol=0)


def test_results_are_new_device_arrays_and_inputs_untouched(rng):
    x, wt, b, kw = make(rng, CASES[0])
    xd, wd, bd = dev(x, wt, b)
    F.conv2d_backward(dev(f32(rng, *F.conv2d(x, wt, b, **kw).shape)), xd, wd, bd, **kw)
    assert np.array_equal(xd.to_numpy(), x) and np.array_equal(wd.to_numpy(), wt)


# ---- conv1d and transposed convolution on the same engine --------------------------------------

@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 0, 1, 1), (2, "same", 1, 2), (3, (2, 1), 2, 1), (1, "full", 3, 4)])
def test_conv1d_matches_cpu(rng, stride, padding, dilation, groups):
    x, w, b = f32(rng, 3, 8, 23), f32(rng, 12, 8 // groups, 3), f32(rng, 12)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = F.conv1d(x, w, b, **kw)
    close(F.conv1d(*dev(x, w, b), **kw), y)
    gy = f32(rng, *y.shape)
    for got, want in zip(F.conv1d_backward(*dev(gy, x, w, b), **kw),
                         F.conv1d_backward(gy, x, w, b, **kw)):
        close(got, want)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("stride, padding, output_padding, groups, dilation", [
    (1, 0, 0, 1, 1), (2, 1, 1, 2, 1), (3, 2, 2, 1, 2), (2, 0, 1, 3, 1)])
def test_conv_transpose_matches_cpu(rng, nd, stride, padding, output_padding, groups, dilation):
    spatial = (7,) if nd == 1 else (6, 5)
    x = f32(rng, 2, 6, *spatial)
    w, b = f32(rng, 6, 2, *(3,) * nd), f32(rng, 2 * groups)  # (C_in, C_out/groups, k...)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
              dilation=dilation)
    fwd, bwd = getattr(F, f"conv_transpose{nd}d"), getattr(F, f"conv_transpose{nd}d_backward")
    y = fwd(x, w, b, **kw)
    close(fwd(*dev(x, w, b), **kw), y)
    gy = f32(rng, *y.shape)
    for name, got, want in zip(("grad_input", "grad_weight", "grad_bias"),
                               bwd(*dev(gy, x, w, b), **kw), bwd(gy, x, w, b, **kw)):
        close(got, want, what=name)
