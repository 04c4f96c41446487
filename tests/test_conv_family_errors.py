"""Bad input for the convolution family: every case raises TypeError/ValueError naming the
argument (and the shapes), never crashes; the C++ layer re-validates when called directly."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core

F32 = np.float32


def a(*s, dtype=F32):
    return np.ones(s, dtype)


@pytest.mark.parametrize("fn,args,kwargs,exc,match", [
    (F.conv1d, (a(2, 3, 8), a(4, 2, 3)), {}, ValueError, r"weight.*C/groups.*\(2, 3, 8\)"),
    (F.conv1d, (a(2, 3, 8, 1), a(4, 3, 3)), {}, ValueError, r"input.*3-D.*\(N, C, L\)"),
    (F.conv1d, (a(2, 3, 4), a(4, 3, 5)), {}, ValueError, "larger than the padded"),
    (F.conv1d, (a(2, 3, 8), a(4, 3, 3)), {"stride": (1, 1)}, TypeError, "stride"),
    (F.conv1d, (a(2, 3, 8), a(4, 3, 3)), {"padding": "half"}, ValueError, "padding"),
    (F.conv1d, (a(2, 3, 8), a(4, 3, 3), a(3)), {}, ValueError, r"bias.*\(4,\)"),
    (F.conv3d, (a(2, 3, 4, 4, 4), a(4, 3, 3, 3)), {}, ValueError, "weight.*5-D"),
    (F.conv3d, (a(2, 4, 4, 4, 4), a(3, 2, 3, 3, 3)), {"groups": 2}, ValueError, "groups=2"),
    (F.conv3d, (a(2, 3, 4, 4, 4), a(4, 3, 3, 3, 3)), {"dilation": (1, 1, 0)}, ValueError,
     "dilation"),
    (F.conv3d, (a(2, 3, 4, 4, 4), a(4, 3, 3, 3, 3, dtype=np.float64)), {}, TypeError,
     "weight.*dtype"),
    (F.conv3d, (a(2, 3, 4, 4, 4, dtype=np.int64), a(4, 3, 3, 3, 3)), {}, TypeError, "input"),
    (F.conv3d, (a(2, 3, 4, 4, 4), a(4, 3, 3, 3, 3)), {"algo": "fft"}, ValueError, "algo"),
    (F.conv3d, (a(2, 3, 4, 4, 4), a(0, 3, 3, 3, 3)), {}, ValueError, "weight"),
    (F.conv_transpose2d, (a(2, 3, 5, 5), a(4, 2, 3, 3)), {}, ValueError,
     r"weight.*C_in = 3.*\(4, 2, 3, 3\)"),
    (F.conv_transpose2d, (a(2, 4, 5, 5), a(4, 2, 3, 3)), {"groups": 3}, ValueError, "groups=3"),
    (F.conv_transpose2d, (a(2, 3, 5, 5), a(3, 2, 3, 3)), {"output_padding": 1}, ValueError,
     "output_padding.*stride"),
    (F.conv_transpose2d, (a(2, 3, 5, 5), a(3, 2, 3, 3)), {"padding": "same"}, ValueError,
     "padding.*ints"),
    (F.conv_transpose2d, (a(2, 3, 1, 1), a(3, 2, 1, 1)), {"padding": 1}, ValueError,
     "transposed output size"),
    (F.conv_transpose2d, (a(2, 3, 5, 5), a(3, 2, 3, 3), a(3)), {}, ValueError, r"bias.*\(2,\)"),
    (F.conv_transpose1d, (a(2, 3, 5), a(3, 2, 3, 3)), {}, ValueError, "weight.*3-D"),
    (F.conv_transpose3d, (a(2, 3, 5, 5, 5), a(3, 2, 3, 3, 3)), {"stride": 0}, ValueError,
     "stride"),
    (F.tiled_conv2d, (a(2, 3, 8, 8), a(2, 2, 4, 3, 3)), {}, ValueError, r"weight.*6-D"),
    (F.tiled_conv2d, (a(2, 3, 8, 8), a(0, 2, 4, 3, 3, 3)), {}, ValueError, "tile sizes"),
    (F.tiled_conv2d, (a(2, 3, 8, 8), a(2, 2, 4, 2, 3, 3)), {}, ValueError,
     r"weight.*C = 3.*\(2, 2, 4, 2, 3, 3\)"),
    (F.tiled_conv2d, (a(2, 3, 8, 8), a(2, 2, 4, 3, 3, 3), a(4, 2, 2)), {}, ValueError,
     r"bias.*\(2, 2, 4\)"),
    (F.tiled_conv2d, (a(2, 3, 2, 2), a(2, 2, 4, 3, 3, 3)), {}, ValueError, "larger than the"),
    (F.tiled_conv1d, (a(2, 3, 8), a(2, 4, 3, 3)), {"stride": -1}, ValueError, "stride"),
    (F.locally_connected2d, (a(2, 3, 8, 8), a(5, 6, 4, 3, 3, 3)), {}, ValueError,
     r"locations \(5, 6\).*output size \(6, 6\)"),
    (F.locally_connected2d, (a(2, 3, 8, 8), a(6, 6, 4, 3, 3, 3), a(6, 6, 4)), {}, ValueError,
     r"bias.*\(4, 6, 6\)"),
    (F.locally_connected1d, (a(2, 3, 8), a(6, 4, 3, 3)), {"padding": (1, 2, 3)}, TypeError,
     "padding"),
])
def test_bad_arguments(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize("fn,args,kwargs,good", [
    (F.conv1d_backward, (a(2, 3, 8), a(4, 3, 3)), {}, (2, 4, 6)),
    (F.conv3d_backward, (a(2, 3, 4, 4, 4), a(4, 3, 3, 3, 3)), {}, (2, 4, 2, 2, 2)),
    (F.conv_transpose2d_backward, (a(2, 3, 5, 5), a(3, 2, 3, 3)), {"stride": 2}, (2, 2, 11, 11)),
    (F.conv_transpose1d_backward, (a(2, 3, 5), a(3, 2, 3)), {}, (2, 2, 7)),
    (F.tiled_conv2d_backward, (a(2, 3, 8, 8), a(2, 2, 4, 3, 3, 3)), {}, (2, 4, 6, 6)),
    (F.locally_connected1d_backward, (a(2, 3, 8), a(6, 4, 3, 3)), {}, (2, 4, 6)),
])
def test_grad_out_checked(fn, args, kwargs, good):
    bad = a(*good[:-1], good[-1] + 1)
    with pytest.raises(ValueError, match=r"grad_out.*" + str(good).replace("(", r"\(").replace(
            ")", r"\)")):
        fn(bad, *args, **kwargs)
    with pytest.raises(TypeError, match="grad_out"):
        fn(a(*good, dtype=np.float64), *args, **kwargs)
    with pytest.raises(TypeError, match="needs_input_grad"):
        fn(a(*good), *args, needs_input_grad=(True,), **kwargs)


def test_core_revalidates_and_checks_overflow():
    x, w = a(1, 1, 4, 4, 4), a(1, 1, 3, 3, 3)
    with pytest.raises(ValueError, match="stride"):
        _core.conv3d_forward_f32(x, w, None, (1, 0, 1), (0,) * 6, (1, 1, 1), 1, "auto")
    with pytest.raises(ValueError, match="overflow"):
        _core.conv3d_forward_f32(x, w, None, (1, 1, 1), (0, 2**62, 0, 2**62, 0, 0), (1, 1, 1), 1,
                                 "auto")
    with pytest.raises(ValueError, match="contiguous"):
        _core.conv3d_forward_f32(a(1, 1, 4, 4, 8)[..., ::2], w, None, (1, 1, 1), (0,) * 6,
                                 (1, 1, 1), 1, "auto")
    with pytest.raises(ValueError, match="output_padding"):
        _core.conv_transpose2d_forward_f32(a(1, 1, 3, 3), a(1, 1, 2, 2), None, (2, 2),
                                           (0, 0, 0, 0), (2, 0), (1, 1), 1, "auto")
    with pytest.raises(ValueError, match="overflow"):
        _core.conv_transpose2d_forward_f32(a(1, 1, 3, 3), a(1, 1, 2, 2), None, (2**62, 1),
                                           (0, 0, 0, 0), (0, 0), (1, 1), 1, "auto")
    with pytest.raises(ValueError, match="tile"):
        _core.tiled_conv_forward_f32(a(1, 1, 1, 4, 4), a(1, 0, 1, 1, 1, 1, 3, 3), None,
                                     (1, 1, 1), (0,) * 6, (1, 1, 1), False, "auto")
    with pytest.raises(ValueError, match="locally connected"):
        _core.tiled_conv_forward_f32(a(1, 1, 1, 4, 4), a(1, 1, 1, 1, 1, 1, 3, 3), None,
                                     (1, 1, 1), (0,) * 6, (1, 1, 1), True, "auto")
    with pytest.raises(ValueError, match="bias"):
        _core.tiled_conv_forward_f32(a(1, 1, 1, 4, 4), a(1, 2, 2, 1, 1, 1, 3, 3), a(3), (1, 1, 1),
                                     (0,) * 6, (1, 1, 1), False, "auto")
