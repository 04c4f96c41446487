"""The CUDA kernels' own programs run on the HOST (cuda.h's emulate:: test hooks, built whenever
the CUDA backend is) against the CPU ops — so their index math is tested on machines without a
GPU: the implicit-GEMM block program thread by thread (tiles, edges, groups, the split
weight-gradient sum as on a 132-SM GPU, on 1 SM, and by the balance split rule), pooling windows,
unpooling's last-writer-wins claim, cross-entropy per item, SGD / Adam. What this cannot show:
device execution itself (shared memory races, atomics, launch limits, the block reductions)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core
from cnnfast._checks import int_tuple, resolve_padding

from cuda_helpers import CONV3D_CASES, CONV_CASES, NARROW_DATA_CASES, SPLIT_RULES, TOL, f32
from helpers import assert_close

pytestmark = pytest.mark.skipif(not _core.cuda_built(), reason="built without the CUDA backend")


def conv_setup(rng, case):
    n, c, h, w, k, r, s, st, pad, dil, g = case
    x, wt, b = f32(rng, n, c, h, w), f32(rng, k, c // g, r, s), f32(rng, k)
    st2, dil2 = int_tuple("stride", st, 2, 1), int_tuple("dilation", dil, 2, 1)
    pad4 = resolve_padding(pad, (h, w), (r, s), st2, dil2)
    return x, wt, b, dict(stride=st, padding=pad, dilation=dil, groups=g), (st2, pad4, dil2, g)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_block_program_matches_cpu(rng, case, monkeypatch):
    x, wt, b, kw, geo = conv_setup(rng, case)
    for bias, relu in ((b, False), (None, False), (b, True)):
        act = "relu" if relu else None
        assert_close(_core._cuda_emulate_conv2d_forward(x, wt, bias, *geo, relu),
                     F.conv2d(x, wt, bias, activation=act, **kw), TOL, f"forward relu={relu}")
    y = F.conv2d(x, wt, b, **kw)
    gy = f32(rng, *y.shape)
    gx, gw, _ = F.conv2d_backward(gy, x, wt, b, **kw)
    assert_close(_core._cuda_emulate_conv2d_backward_data(gy, wt, list(x.shape), *geo), gx, TOL,
                 "backward-data")
    for rule, sms in SPLIT_RULES:
        monkeypatch.setenv("CNNFAST_CUDA_SPLIT_RULE", rule)
        assert_close(_core._cuda_emulate_conv2d_backward_weight(gy, x, list(wt.shape), *geo, sms),
                     gw, TOL, f"backward-weight, {sms} SMs, split rule {rule}")


@pytest.mark.parametrize("case", NARROW_DATA_CASES)
def test_direct_backward_data_matches_cpu(rng, case, monkeypatch):
    monkeypatch.setenv("CNNFAST_CUDA_NARROW_DATA", "direct")
    x, wt, b, kw, geo = conv_setup(rng, case)
    gy = f32(rng, *F.conv2d(x, wt, b, **kw).shape)
    gx = F.conv2d_backward(gy, x, wt, b, needs_input_grad=(True, False, False), **kw)[0]
    assert_close(_core._cuda_emulate_conv2d_backward_data(gy, wt, list(x.shape), *geo), gx, TOL,
                 "direct backward-data")  # outputs NaN-poisoned: every element must be written


@pytest.mark.parametrize("case", CONV3D_CASES)
def test_conv3d_slice_programs_match_cpu(rng, case, monkeypatch):
    n, c, d, h, w, k, kd, kh, kw, st, pad, dil, g = case
    x, wt, b = f32(rng, n, c, d, h, w), f32(rng, k, c // g, kd, kh, kw), f32(rng, k)
    st3, dil3 = int_tuple("stride", st, 3, 1), int_tuple("dilation", dil, 3, 1)
    pad6 = resolve_padding(pad, (d, h, w), (kd, kh, kw), st3, dil3)
    geo, kw_ = (st3, pad6, dil3, g), dict(stride=st, padding=pad, dilation=dil, groups=g)
    for bias, relu in ((b, False), (None, False), (b, True)):
        want = F.conv3d(x, wt, bias, **kw_)
        assert_close(_core._cuda_emulate_conv3d_forward(x, wt, bias, *geo, relu),
                     np.maximum(want, 0) if relu else want, TOL, f"forward relu={relu}")
    gy = f32(rng, *F.conv3d(x, wt, b, **kw_).shape)
    gx, gw, _ = F.conv3d_backward(gy, x, wt, b, **kw_)
    assert_close(_core._cuda_emulate_conv3d_backward_data(gy, wt, list(x.shape), *geo), gx, TOL,
                 "backward-data")
    for rule, sms in SPLIT_RULES:
        monkeypatch.setenv("CNNFAST_CUDA_SPLIT_RULE", rule)
        assert_close(_core._cuda_emulate_conv3d_backward_weight(gy, x, list(wt.shape), *geo, sms),
                     gw, TOL, f"backward-weight, {sms} SMs, split rule {rule}")


def test_coordinates_beyond_32_bits_are_refused_not_wrapped(rng):
    x, w = f32(rng, 1, 2, 3, 4), f32(rng, 2, 2, 2, 1)
    huge = 2 ** 32 + 1  # int32 would wrap it to 1: the dilated tap would land inside the image
    with pytest.raises(ValueError, match="2\\^30"):
        _core._cuda_emulate_conv2d_forward(x, w, None, (1, 1), (0, 2 ** 32, 0, 0), (huge, 1), 1,
                                           False)
    x3, w3 = f32(rng, 1, 2, 2, 3, 4), f32(rng, 2, 2, 1, 2, 1)
    with pytest.raises(ValueError, match="2\\^30"):
        _core._cuda_emulate_conv3d_forward(x3, w3, None, (1, 1, 1), (0, 0, 0, 2 ** 32, 0, 0),
                                           (1, huge, 1), 1, False)


def test_more_column_tiles_than_the_grid_y_limit(rng):
    # the weight gradient of a dense layer as a conv over (2048, 64, 64): 2^23 columns, 65536
    # tiles of 128 (gridDim.y holds 65535): two launches
    x, gy = f32(rng, 1, 2048, 64, 64), f32(rng, 1, 1, 1, 1)
    gw = _core._cuda_emulate_conv2d_backward_weight(gy, x, [1, 2048, 64, 64], (1, 1),
                                                    (0, 0, 0, 0), (1, 1), 1, 132)
    assert_close(gw, gy[0, 0, 0, 0] * x, TOL)


def test_depthwise_shapes_with_empty_planes(rng):  # padding makes an output of bias only
    x, w, b = np.zeros((1, 2, 0, 5), np.float32), f32(rng, 2, 1, 3, 3), f32(rng, 2)
    geo = ((1, 1), (2, 2, 2, 2), (1, 1), 2)
    assert_close(_core._cuda_emulate_conv2d_forward(x, w, b, *geo, False),
                 F.conv2d(x, w, b, padding=2, groups=2), TOL)
    gy = f32(rng, 1, 2, 2, 7)
    assert_close(_core._cuda_emulate_conv2d_backward_weight(gy, x, [2, 1, 3, 3], *geo, 16),
                 F.conv2d_backward(gy, x, w, b, padding=2, groups=2)[1], TOL)


SHAPES = {1: (2, 3, 17), 2: (2, 3, 9, 11), 3: (1, 2, 5, 6, 7)}


def pad3(v, fill):
    return (fill,) * (3 - len(v)) + tuple(v)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p, d, ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                              (3, 1, 1, 2, False), (2, 3, 1, 1, True)])
def test_max_pool_element_programs_match_cpu(rng, nd, k, s, p, d, ceil):
    x = f32(rng, *SHAPES[nd])
    y, sw = getattr(F, f"max_pool{nd}d")(x, k, s, p, d, ceil, return_indices=True)
    win = [pad3(int_tuple("", v, nd, 0), f) for v, f in ((k, 1), (s or k, 1), (p, 0), (d, 1))]
    ye, ie = _core._cuda_emulate_max_pool_forward(x, *win, ceil, None)
    assert np.array_equal(ye, y) and np.array_equal(ie, sw.indices)
    gy = f32(rng, *y.shape)
    assert_close(_core._cuda_emulate_max_pool_backward(gy, ie, list(x.shape), *win, ceil, None),
                 getattr(F, f"max_pool{nd}d_backward")(gy, x, k, s, p, d, ceil, indices=sw), TOL)
    bad = ie.copy()
    bad.reshape(-1)[-1] = x[0, 0].size
    with pytest.raises(ValueError, match="out of range"):
        _core._cuda_emulate_max_pool_backward(gy, bad, list(x.shape), *win, ceil, None)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p, ceil, include_pad, divisor", [
    (2, None, 0, False, True, None), (3, 2, 1, True, True, None), (3, 2, 1, True, False, None),
    (3, 1, 1, False, True, 5)])
def test_avg_pool_element_programs_match_cpu(rng, nd, k, s, p, ceil, include_pad, divisor):
    x = f32(rng, *SHAPES[nd])
    kw = dict(stride=s, padding=p, ceil_mode=ceil, count_include_pad=include_pad,
              divisor_override=divisor)
    win = [pad3(int_tuple("", v, nd, 0), f) for v, f in ((k, 1), (s or k, 1), (p, 0))]
    y = getattr(F, f"avg_pool{nd}d")(x, k, **kw)
    assert_close(_core._cuda_emulate_avg_pool_forward(x, *win, ceil, None, include_pad,
                                                      divisor or 0), y, TOL)
    gy = f32(rng, *y.shape)
    assert_close(_core._cuda_emulate_avg_pool_backward(gy, list(x.shape), *win, ceil, None,
                                                       include_pad, divisor or 0),
                 getattr(F, f"avg_pool{nd}d_backward")(gy, x, k, **kw), TOL)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_adaptive_pooling_element_programs_match_cpu(rng, nd):
    x = f32(rng, *SHAPES[nd])
    size = tuple(int(v) for v in rng.integers(1, 6, nd))
    no = ((1, 1, 1), (1, 1, 1), (0, 0, 0))
    ye, ie = _core._cuda_emulate_max_pool_forward(x, *no, (1, 1, 1), False, pad3(size, 1))
    y, sw = getattr(F, f"adaptive_max_pool{nd}d")(x, size, return_indices=True)
    assert np.array_equal(ye, y) and np.array_equal(ie, sw.indices)
    ya = _core._cuda_emulate_avg_pool_forward(x, *no, False, pad3(size, 1), True, 0)
    assert_close(ya, getattr(F, f"adaptive_avg_pool{nd}d")(x, size), TOL)
    gy = f32(rng, *ya.shape)
    assert_close(_core._cuda_emulate_avg_pool_backward(gy, list(x.shape), *no, False,
                                                       pad3(size, 1), True, 0),
                 getattr(F, f"adaptive_avg_pool{nd}d_backward")(gy, x, size), TOL)


def test_unpool_claims_match_cpu_last_writer_wins(rng):
    x = f32(rng, 2, 3, 6, 5)
    idx = rng.integers(0, 56, size=x.shape).astype(np.int64)  # many shared slots
    want = F.max_unpool2d(x, idx, output_size=(7, 8))
    got = _core._cuda_emulate_max_unpool_forward(x.reshape(6, 30), idx.reshape(6, 30), 56)
    assert np.array_equal(got.reshape(want.shape), want)
    g = f32(rng, *want.shape)
    got = _core._cuda_emulate_max_unpool_backward(g.reshape(6, 56), idx.reshape(6, 30))
    assert np.array_equal(got.reshape(x.shape),
                          F.max_unpool2d_backward(g, x, idx, output_size=(7, 8)))
    idx[1, 2, 3, 4] = 56
    with pytest.raises(ValueError, match="out of range"):
        _core._cuda_emulate_max_unpool_forward(x.reshape(6, 30), idx.reshape(6, 30), 56)


@pytest.mark.parametrize("weighted, smoothing, pixel", [(False, 0.0, False), (True, 0.2, True)])
def test_cross_entropy_item_programs_match_cpu(rng, weighted, smoothing, pixel):
    x = f32(rng, 3, 5, 4, 6) * 2
    t = rng.integers(0, 5, (3, 4, 6)).astype(np.int64)
    t.reshape(-1)[::4] = -100
    w = np.abs(f32(rng, 5)) + 0.1 if weighted else None
    pw = np.abs(f32(rng, 3, 4, 6)) if pixel else None
    kw = dict(weight=w, label_smoothing=smoothing, reduction="none")
    loss, lse = F.cross_entropy(x, t, pixel_weight=pw, return_lse=True, **kw)
    le, lsee = _core._cuda_emulate_cross_entropy_forward(
        x.reshape(3, 5, 24), t.reshape(3, 24), w, None if pw is None else pw.reshape(3, 24),
        -100, smoothing)
    assert_close(le.reshape(loss.shape), loss, TOL)
    assert_close(lsee.reshape(lse.shape), lse, TOL)
    g = f32(rng, *t.shape)
    got = _core._cuda_emulate_cross_entropy_backward(g.reshape(3, 24), x.reshape(3, 5, 24),
                                                     lsee, t.reshape(3, 24), w, -100, smoothing)
    assert_close(got.reshape(x.shape), F.cross_entropy_backward(g, x, t, lse=lse, **kw), TOL)
    t[0, 0, 0] = 5
    with pytest.raises(ValueError, match="class index 5 out of range"):
        _core._cuda_emulate_cross_entropy_forward(x.reshape(3, 5, 24), t.reshape(3, 24), w,
                                                  None, -100, smoothing)


def test_optimizer_element_programs_match_cpu(rng):
    p, g = f32(rng, 500), f32(rng, 500)
    pe, buf, bufe = p.copy(), np.empty_like(p), np.empty_like(p)
    for step in range(3):
        _core.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-2, True, step == 0)
        _core._cuda_emulate_sgd_step(pe, g, bufe, 0.1, 0.9, 0.0, 1e-2, True, step == 0)
    assert_close(pe, p, 1e-6, "sgd")
    for decoupled, ams in ((False, False), (True, True)):
        p, pe = f32(rng, 300), None
        pe = p.copy()
        st = [np.zeros_like(p) for _ in range(3)]
        ste = [np.zeros_like(p) for _ in range(3)]
        for t in range(1, 4):
            gg = f32(rng, 300)
            _core.adam_step(p, gg, st[0], st[1], st[2] if ams else None, t, 1e-2, 0.9, 0.99,
                            1e-8, 1e-2, decoupled)
            _core._cuda_emulate_adam_step(pe, gg, ste[0], ste[1], ste[2] if ams else None, t,
                                          1e-2, 0.9, 0.99, 1e-8, 1e-2, decoupled)
        assert_close(pe, p, 1e-6, f"adam decoupled={decoupled} amsgrad={ams}")
