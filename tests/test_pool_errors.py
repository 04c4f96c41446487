"""Pooling / unpooling / interpolation bad input: TypeError or ValueError naming the argument,
never a crash, a hang or an out-of-bounds write (indices are checked in C++ before writing)."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core

F32 = np.float32


def x_(*s, dtype=F32):
    return np.ones(s, dtype)


@pytest.mark.parametrize("fn,args,kwargs,exc,match", [
    (F.max_pool2d, (x_(1, 2, 4, 4), 5), {}, ValueError, "larger than the padded input"),
    (F.max_pool2d, (x_(1, 2, 4, 4), 3), {"dilation": 2}, ValueError, "larger than the padded"),
    (F.avg_pool2d, (x_(1, 2, 8, 8), 3), {"padding": 2}, ValueError, "padding.*half"),
    (F.max_pool1d, (x_(1, 2, 8), 2), {"padding": 2}, ValueError, "padding.*half"),
    (F.max_pool2d, (x_(1, 2, 8, 8), 2), {"stride": 0}, ValueError, "stride"),
    (F.max_pool3d, (x_(1, 2, 4, 4, 4), 0), {}, ValueError, "kernel_size"),
    (F.max_pool2d, (x_(1, 2, 8, 8), (2, 2, 2)), {}, TypeError, "kernel_size"),
    (F.max_pool2d, (x_(1, 2, 8, 8), 2.0), {}, TypeError, "kernel_size"),
    (F.max_pool2d, (x_(1, 2, 8, 8), 2), {"padding": -1}, ValueError, "padding"),
    (F.max_pool2d, (x_(1, 2, 8, 8), 2), {"dilation": 0}, ValueError, "dilation"),
    (F.max_pool2d, (x_(2, 8, 8), 2), {}, ValueError, "input.*4-D"),
    (F.max_pool1d, (x_(1, 2, 8, 8), 2), {}, ValueError, "input.*3-D"),
    (F.max_pool2d, (x_(1, 2, 8, 8, dtype=np.int32), 2), {}, TypeError, "input.*dtype"),
    (F.avg_pool2d, (x_(1, 2, 8, 8, dtype=np.float16), 2), {}, TypeError, "input.*dtype"),
    (F.max_pool2d, ([[1.0]], 1), {}, TypeError, "input.*ndarray"),
    (F.avg_pool2d, (x_(1, 2, 8, 8), 2), {"divisor_override": 0}, ValueError, "divisor_override"),
    (F.max_pool2d, (x_(1, 2, 8, 8), 2), {"algo": "fast"}, ValueError, "algo"),
    (F.lp_pool2d, (x_(1, 2, 8, 8), -1.0, 2), {}, ValueError, "norm_type"),
    (F.lp_pool2d, (x_(1, 2, 8, 8), "2", 2), {}, TypeError, "norm_type"),
    (F.adaptive_avg_pool2d, (x_(1, 2, 8, 8), 0), {}, ValueError, "output_size"),
    (F.adaptive_max_pool2d, (x_(1, 2, 8, 8), (2, 2, 2)), {}, TypeError, "output_size"),
    (F.global_avg_pool, (x_(8, 8),), {}, ValueError, "input"),
    # a dilated window wholly inside the padding (taps -1 and 1 of a length-1 input)
    (F.max_pool1d, (x_(1, 1, 1), 2), {"stride": 2, "padding": 1, "dilation": 2}, ValueError,
     "padding"),
    # the same for an empty batch: it pools nothing, but its arguments are checked the same
    (F.max_pool2d, (x_(0, 0, 1, 2), (1, 2)), {"padding": (0, 1), "dilation": (1, 3)}, ValueError,
     "padding"),
    (F.max_pool1d, (x_(0, 1, 1), 2), {"stride": 2, "padding": 1, "dilation": 2}, ValueError,
     "padding"),
])
def test_bad_pool_arguments(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_backward_bad_grad_and_indices(rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(F32)
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="grad_out.*shape"):
        F.max_pool2d_backward(np.ones((1, 2, 2, 2), F32), x, 2)
    with pytest.raises(TypeError, match="grad_out.*dtype"):
        F.avg_pool2d_backward(np.ones(y.shape), x, 2)
    with pytest.raises(ValueError, match="indices.*shape"):
        F.max_pool2d_backward(y, x, 2, indices=sw.indices[:, :1])
    bad = sw.indices.copy()
    bad[0, 1, 2, 2] = 36  # one past the 6x6 plane
    with pytest.raises(ValueError, match="indices.*out of range"):
        F.max_pool2d_backward(y, x, 2, indices=bad)
    bad[0, 1, 2, 2] = -1
    with pytest.raises(ValueError, match="indices.*out of range"):
        F.max_pool2d_backward(y, x, 2, indices=bad, algo="ref")
    with pytest.raises(TypeError, match="indices.*integer"):
        F.max_pool2d_backward(y, x, 2, indices=sw.indices.astype(F32))


@pytest.mark.parametrize("algo", ["auto", "ref"])
def test_unpool_bad_input(rng, algo):
    x = rng.standard_normal((1, 2, 6, 6)).astype(F32)
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    bad = sw.indices.copy()
    bad[0, 0, 0, 0] = 36
    with pytest.raises(ValueError, match="indices.*out of range"):
        F.max_unpool2d(y, bad, 2, algo=algo)
    bad[0, 0, 0, 0] = -5
    with pytest.raises(ValueError, match="indices.*out of range"):
        F.max_unpool2d_backward(np.ones((1, 2, 6, 6), F32), y, bad, 2, algo=algo)
    with pytest.raises(ValueError, match="indices.*shape"):
        F.max_unpool2d(y, sw.indices[..., :2], 2, algo=algo)
    with pytest.raises(ValueError, match="output_size.*inconsistent"):
        F.max_unpool2d(y, sw.indices, 2, output_size=(9, 6), algo=algo)
    with pytest.raises(ValueError, match="output_size.*contradicts"):
        F.max_unpool2d(y, sw, output_size=(7, 7), algo=algo)
    with pytest.raises(ValueError, match="output_size"):
        F.max_unpool2d(y, sw.indices, algo=algo)  # raw indices: the size would be a guess
    with pytest.raises(TypeError, match="input.*dtype"):
        F.max_unpool2d(y.astype(np.int64), sw, algo=algo)
    with pytest.raises(TypeError, match="indices"):
        F.max_unpool2d(y, sw.indices.tolist(), 2, algo=algo)
    with pytest.raises(ValueError, match="grad_out.*shape"):
        F.max_unpool2d_backward(np.ones((1, 2, 5, 6), F32), y, sw, algo=algo)


def test_core_rechecks_what_python_checks(rng):
    """The C++ layer validates on its own (ValueError, never a crash) if Python is bypassed."""
    x = rng.standard_normal((1, 1, 4, 4)).astype(F32)
    with pytest.raises(ValueError, match="larger than the padded"):
        _core.pool_max_forward(x, (1, 5, 5), (1, 1, 1), (0, 0, 0), (1, 1, 1), False, None, False,
                               "auto")
    with pytest.raises(ValueError, match="padding"):
        _core.pool_avg_forward(x, (1, 2, 2), (1, 1, 1), (0, 2, 2), False, None, True, 0, "auto")
    with pytest.raises(ValueError, match="stride"):
        _core.pool_max_forward(x, (1, 2, 2), (1, 0, 1), (0, 0, 0), (1, 1, 1), False, None, False,
                               "auto")
    with pytest.raises(ValueError, match="output_size"):
        _core.unpool_forward(x, np.zeros(x.shape, np.int64), (1, 0, 4), "auto")
    with pytest.raises(TypeError):
        _core.unpool_forward(x, np.zeros(x.shape, np.int32), (1, 4, 4), "auto")


@pytest.mark.parametrize("kwargs,exc,match", [
    ({}, ValueError, "size / scale_factor"),
    ({"size": 4, "scale_factor": 2}, ValueError, "size / scale_factor"),
    ({"size": 0}, ValueError, "size"),
    ({"size": (4, 4, 4)}, TypeError, "size"),
    ({"scale_factor": -1.0}, ValueError, "scale_factor"),
    ({"scale_factor": 0.01}, ValueError, "scale_factor"),
    ({"size": 4, "mode": "trilinear"}, ValueError, "mode"),
    ({"size": 4, "mode": "bicubic"}, ValueError, "mode"),
    ({"size": 4, "mode": "nearest", "align_corners": True}, ValueError, "align_corners"),
])
def test_interpolate_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        F.interpolate(x_(1, 2, 5, 5), **kwargs)
