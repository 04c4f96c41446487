"""Arrays at the edges of what the ops take: NumPy subclasses whose meaning the kernels would drop
(masked arrays, matrices), Parameters that would silently be copies, read-only running statistics
in eval, strided dropout masks, unknown activation codes at the binding, int64-sized padding, and
an output too large for memory (a MemoryError that says how large)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core, nn


def test_masked_arrays_and_matrices_are_refused(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    with pytest.raises(TypeError, match="MaskedArray is not supported"):
        F.conv2d(np.ma.array(x, mask=x > 0), w)
    with pytest.raises(TypeError, match="MaskedArray is not supported"):
        F.conv2d(x, w, np.ma.array(np.ones(3, np.float32)))
    a = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.warns(PendingDeprecationWarning):  # numpy's, on making one
        m = np.matrix(a)
    with pytest.raises(TypeError, match="matrix is not supported"):
        F.matmul(m, a.T)
    np.testing.assert_array_equal(F.conv2d(np.asarray(x), w), F.conv2d(x, w))


def test_memory_mapped_input_still_works(tmp_path, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    path = tmp_path / "x.bin"
    x.tofile(path)
    mm = np.memmap(path, np.float32, "r", shape=x.shape)  # an ndarray subclass that is data
    np.testing.assert_array_equal(F.max_pool2d(mm, 2), F.max_pool2d(x, 2))


def test_a_parameter_is_never_a_silent_copy():
    base = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        nn.Parameter(base[:, ::2])
    with pytest.raises(ValueError, match="writeable"):
        ro = np.ones(3, np.float32)
        ro.flags.writeable = False
        nn.Parameter(ro)
    p = nn.Parameter(base)
    assert np.shares_memory(p.data, base)  # as torch's Parameter shares its tensor's storage


def test_eval_batch_norm_reads_read_only_running_stats(rng):
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    want = F.batch_norm(x, rm.copy(), rv.copy(), training=False)
    rm.flags.writeable = rv.flags.writeable = False  # e.g. np.load(mmap_mode='r')
    np.testing.assert_array_equal(F.batch_norm(x, rm, rv, training=False), want)
    with pytest.raises((ValueError, TypeError), match="running_mean"):
        F.batch_norm(x, rm, rv, training=True)  # training writes them: still refused


def test_a_reversed_dropout_mask_is_taken(rng):
    g = rng.standard_normal(10).astype(np.float32)
    _, mask = F.dropout(g, 0.5, rng=np.random.default_rng(0))
    flipped = mask[::-1]
    np.testing.assert_array_equal(F.dropout_backward(g, flipped, 0.5),
                                  F.dropout_backward(g, flipped.copy(), 0.5))


def test_unknown_activation_codes_are_refused_at_the_binding(rng):
    x = rng.standard_normal(8).astype(np.float32)
    for code in (-5, 4, 999):
        with pytest.raises(ValueError, match="unknown code"):
            _core.activation_forward(x, code, 0.0)
        with pytest.raises(ValueError, match="unknown code"):
            _core.activation_backward(x, x, code, 0.0)


def test_padding_past_int64_names_padding():
    x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 1, 1), np.float32)
    for pad in (2**63, 2**64, np.uint64(2**63)):
        with pytest.raises(ValueError, match="padding"):
            F.conv2d(x, w, padding=pad)


_TOO_LARGE = r"""
import resource
import numpy as np
import cnnfast.functional as F
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
try:
    F.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 1, 1), np.float32), padding=25000)
except MemoryError as e:
    print("MemoryError:", e)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS caps allocations on Linux")
@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer cannot start under an address-space limit")
def test_an_output_too_large_for_memory_says_how_large():
    out = subprocess.run([sys.executable, "-c", _TOO_LARGE], capture_output=True, text=True,
                         timeout=120)
    assert "MemoryError: out of memory: the result needs 95" in out.stdout, out.stdout + out.stderr
