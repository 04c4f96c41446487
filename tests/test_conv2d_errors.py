"""conv2d bad input: every case raises TypeError/ValueError naming the argument, never crashes."""
from __future__ import annotations

import numpy as np
import pytest

from cnnfast import _core
from cnnfast.functional import conv2d, conv2d_backward

F32 = np.float32


def x_(*s, dtype=F32):
    return np.ones(s, dtype)


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((x_(2, 3, 8, 8), x_(4, 2, 3, 3)), {}, ValueError, "weight.*C/groups"),       # channels
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"groups": 2}, ValueError, "groups=2"),     # C % g
    ((x_(2, 4, 8, 8), x_(3, 2, 3, 3)), {"groups": 2}, ValueError, "groups=2"),     # K % g
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"groups": 0}, ValueError, "groups"),
    ((x_(2, 3, 4, 4), x_(4, 3, 5, 5)), {}, ValueError, "larger than the padded"),  # kernel > input
    ((x_(2, 3, 4, 4), x_(4, 3, 3, 3)), {"dilation": 3}, ValueError, "larger than the padded"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"stride": 0}, ValueError, "stride"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"stride": (1, -1)}, ValueError, "stride"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"dilation": 0}, ValueError, "dilation"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"padding": -1}, ValueError, "padding"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"padding": (1, 2, 3)}, TypeError, "padding"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"padding": "half"}, ValueError, "padding"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"stride": 1.5}, TypeError, "stride"),
    ((x_(3, 8, 8), x_(4, 3, 3, 3)), {}, ValueError, "input.*4-D"),                # ndim
    ((x_(2, 3, 8, 8), x_(4, 3, 3)), {}, ValueError, "weight.*4-D"),
    ((x_(2, 3, 8, 8, dtype=np.int32), x_(4, 3, 3, 3)), {}, TypeError, "input.*dtype"),
    ((x_(2, 3, 8, 8, dtype=np.float16), x_(4, 3, 3, 3)), {}, TypeError, "input.*dtype"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3, dtype=np.float64)), {}, TypeError, "weight.*dtype"),  # mixed
    ((x_(2, 3, 8, 8).tolist(), x_(4, 3, 3, 3)), {}, TypeError, "input.*ndarray"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3), x_(5)), {}, ValueError, "bias"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3), x_(4, dtype=np.float64)), {}, TypeError, "bias"),
    ((x_(2, 0, 8, 8), x_(4, 0, 3, 3)), {}, ValueError, "weight"),                  # empty filter
    ((x_(2, 3, 8, 8), x_(0, 3, 3, 3)), {}, ValueError, "weight"),
    ((x_(2, 3, 8, 8), x_(4, 3, 3, 3)), {"algo": "fft"}, ValueError, "algo"),
])
def test_bad_forward_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        conv2d(*args, **kwargs)


def test_grad_out_wrong_shape():
    x, w = x_(2, 3, 8, 8), x_(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"grad_out.*\(2, 4, 6, 6\)"):
        conv2d_backward(x_(2, 4, 7, 7), x, w)
    with pytest.raises(TypeError, match="grad_out"):
        conv2d_backward(x_(2, 4, 6, 6, dtype=np.float64), x, w)
    with pytest.raises(TypeError, match="needs_input_grad"):
        conv2d_backward(x_(2, 4, 6, 6), x, w, needs_input_grad=(True,))


def test_core_revalidates_and_checks_overflow():
    # The C++ layer checks sizes itself too (64-bit, overflow-checked) if called directly.
    x, w = x_(1, 1, 4, 4), x_(1, 1, 3, 3)
    with pytest.raises(ValueError, match="stride"):
        _core.conv2d_forward_f32(x, w, None, (0, 1), (0, 0, 0, 0), (1, 1), 1, "auto")
    with pytest.raises(ValueError, match="overflow"):
        _core.conv2d_forward_f32(x, w, None, (1, 1), (0, 2**62, 0, 2**62), (1, 1), 1, "auto")
    with pytest.raises(TypeError, match="dtype"):
        _core.conv2d_forward_f32(x.astype(np.float64), w, None, (1, 1), (0, 0, 0, 0), (1, 1), 1,
                                 "auto")
    with pytest.raises(ValueError, match="contiguous"):
        _core.conv2d_forward_f32(np.ones((1, 1, 4, 8), F32)[..., ::2], w, None, (1, 1),
                                 (0, 0, 0, 0), (1, 1), 1, "auto")
