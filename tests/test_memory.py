"""Repeated calls must not grow the resident set (no leaks in bindings or workspaces), for every op
family: 1000 rounds of 3-5 forward/backward calls each, on inputs of ~8-40 KiB (a leaked output
or workspace per call would add 8+ MiB). Single-threaded, so it stays fast on a loaded machine
(per-thread workspaces have fixed sizes; the threaded paths are fuzzed and sanitized)."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F

F32 = np.float32
CALLS = 1000
LIMIT = 4 * 2**20


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _families(rng):
    def r(*s):
        return rng.standard_normal(s).astype(F32)
    x, w, b = r(2, 4, 16, 16), r(8, 4, 3, 3), r(8)
    gy = r(2, 8, 16, 16)
    x1, w1, g1 = r(2, 4, 256), r(8, 4, 5), r(2, 8, 252)
    x3, w3, g3 = r(1, 2, 8, 12, 12), r(4, 2, 3, 3, 3), r(1, 4, 8, 12, 12)
    wt, gt = r(4, 4, 2, 2), r(2, 4, 32, 32)
    wtl, gtl = r(2, 2, 4, 4, 3, 3), r(2, 4, 14, 14)
    wlc, glc = r(7, 7, 2, 4, 3, 3), r(2, 2, 7, 7)
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    gp = r(*y.shape)
    a, bm, gm = r(48, 64), r(64, 40), r(48, 40)
    wl, bl, gl = r(40, 256), r(40), r(16, 40)
    xl = r(16, 256)
    gi = r(2, 4, 32, 32)
    ones, zeros = np.ones(4, F32), np.zeros(4, F32)
    xc, tc = r(128, 10, 2), rng.integers(0, 10, (128, 2))
    return {
        "conv2d": lambda: (F.conv2d(x, w, b, padding=1), F.conv2d_backward(gy, x, w, b, padding=1)),
        "conv1d/3d": lambda: (F.conv1d_backward(g1, x1, w1), F.conv3d(x3, w3, padding=1),
                              F.conv3d_backward(g3, x3, w3, padding=1)),
        "conv_transpose": lambda: (F.conv_transpose2d(x, wt, stride=2),
                                   F.conv_transpose2d_backward(gt, x, wt, stride=2)),
        "tiled/locally_connected": lambda: (F.tiled_conv2d_backward(gtl, x, wtl),
                                            F.locally_connected2d(x, wlc, stride=2),
                                            F.locally_connected2d_backward(glc, x, wlc,
                                                                           stride=2)),
        "pooling": lambda: (F.max_pool2d(x, 2, return_indices=True),
                            F.max_pool2d_backward(gp, x, 2, indices=sw), F.avg_pool2d(x, 3, 1, 1),
                            F.adaptive_max_pool2d(x, 5, return_indices=True),
                            F.lp_pool2d_backward(gp, x, 2, 2)),
        "unpooling": lambda: (F.max_unpool2d(y, sw), F.max_unpool2d_backward(x, y, sw)),
        "interpolate": lambda: (F.interpolate(x, scale_factor=2, mode="bilinear"),
                                F.interpolate_backward(gi, x, scale_factor=2, mode="bilinear")),
        "matmul/linear": lambda: (F.matmul(a, bm), F.matmul_backward(gm, a, bm),
                                  F.linear(xl, wl, bl), F.linear_backward(gl, xl, wl, bl)),
        "activations": lambda: (F.relu(x), F.sigmoid_backward(x, x), F.softmax(x),
                                F.log_softmax_backward(x, x), F.dropout(x, 0.5, rng=rng)),
        "normalization": lambda: (F.batch_norm(x, None, None, ones, zeros, training=True),
                                  F.batch_norm_backward(x, x, None, None, ones, zeros,
                                                        training=True),
                                  F.local_response_norm(x, 3), F.local_contrast_norm_backward(
                                      x, x, 5), F.global_contrast_norm(x)),
        "losses": lambda: (F.cross_entropy(xc, tc), F.cross_entropy_backward(1.0, xc, tc),
                           F.nll_loss(xc, tc), F.mse_loss_backward(1.0, xc, xc)),
    }


FAMILIES = list(_families(np.random.default_rng(0)))


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory; RSS is checked in "
                           "the normal (unsanitized) test run")
@pytest.mark.parametrize("family", FAMILIES)
def test_no_rss_growth_over_thousands_of_calls(rng, family):
    call = _families(rng)[family]
    before_threads = cnnfast.get_num_threads()
    cnnfast.set_num_threads(1)
    try:
        _check_no_growth(family, call)
    finally:
        cnnfast.set_num_threads(before_threads)


def _check_no_growth(family, call):

    def burst(n):
        for _ in range(n):
            call()
        gc.collect()

    burst(100)  # warm: workspaces and allocator pools reach their steady size
    before = _rss_bytes()
    burst(CALLS)
    grown = _rss_bytes() - before
    assert grown < LIMIT, f"{family}: RSS grew by {grown / 2**20:.1f} MiB over {CALLS} calls"


def test_large_outputs_recycle_memory_without_aliasing(rng):
    """Outputs >= 1 MiB come from recycled blocks (no fresh page faults per call): live outputs
    never share memory, a dead output's block is reused, and the cache stays bounded."""
    from cnnfast import _core
    from cnnfast.functional import conv2d
    x1 = rng.standard_normal((8, 8, 80, 80)).astype(np.float32)  # 1.6 MiB outputs
    x2 = rng.standard_normal(x1.shape).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    y1 = conv2d(x1, w, padding=1)
    keep = y1.copy()
    y2 = conv2d(x2, w, padding=1)
    assert not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(y1, keep)  # computing y2 did not touch y1
    assert y1.flags.writeable and y1.flags.c_contiguous
    before = _core._output_cache_bytes()
    del y2
    assert _core._output_cache_bytes() > before  # the block went back to the cache
    y3 = conv2d(x2, w, padding=1)
    assert _core._output_cache_bytes() == before  # ... and was taken again
    np.testing.assert_array_equal(y1, keep)
    assert not np.shares_memory(y1, y3)
    for _ in range(50):  # many sizes: the cache never holds more than its bound
        conv2d(rng.standard_normal((int(rng.integers(1, 9)), 8, 64, 64)).astype(np.float32), w)
    assert _core._output_cache_bytes() <= 512 << 20


_WORKSPACE_SCRIPT = r"""
import sys
import numpy as np
import cnnfast, cnnfast.functional as F
from cnnfast import _core
cnnfast.set_num_threads(2)
n = int(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, 128, 28, 28)).astype(np.float32)
w = rng.standard_normal((128, 128, 3, 3)).astype(np.float32)
g = rng.standard_normal((n, 128, 28, 28)).astype(np.float32)
for algo in ("auto", "gemm", "implicit", "direct", "winograd"):
    F.conv2d(x, w, padding=1, algo=algo)
    F.conv2d_backward(g, x, w, None, padding=1, algo=algo)
print(_core._scratch_bytes())
"""


def test_conv_workspace_is_bounded_whatever_the_batch():
    # Every conv2d algorithm processes the batch in tiles: the reusable per-thread scratch that a
    # fresh process holds after all of them, forward and backward (each slot keeps its largest
    # size, so this bounds every single call), stays under 32 MiB and does not scale with N.
    import subprocess
    import sys

    held = {}
    for n in (2, 48):
        out = subprocess.run([sys.executable, "-c", _WORKSPACE_SCRIPT, str(n)], check=True,
                             capture_output=True, text=True).stdout
        held[n] = int(out.split()[-1])
    assert 0 < held[48] <= 32 * 2**20, held
    assert held[48] <= 1.5 * held[2] + 4 * 2**20, held  # 24x the batch: not 24x the scratch


_STRIDE_SCRIPT = r"""
import resource
import numpy as np
import cnnfast.functional as F
from cnnfast import _core
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 16, 16, 16)).astype(np.float32)
w = rng.standard_normal((4, 16, 3, 3)).astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for stride in ((1, 10**8), (10**8, 10**8)):
    for algo in ("auto", "gemm", "implicit", "direct"):
        y = F.conv2d(x, w, stride=stride, padding=1, algo=algo)
        g = rng.standard_normal(y.shape).astype(np.float32)
        got = F.conv2d_backward(g, x, w, stride=stride, padding=1, algo=algo)
        want = F.conv2d_backward(g, x, w, stride=stride, padding=1, algo="ref")
        assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(got[:2], want[:2])), (stride, algo)
    x3 = x[:, :, None]
    F.conv3d_backward(rng.standard_normal(F.conv3d(x3, w[:, :, None], stride=(1,) + stride,
                                                   padding=(0, 1, 1)).shape).astype(np.float32),
                      x3, w[:, :, None], stride=(1,) + stride, padding=(0, 1, 1), algo="implicit")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, _core._scratch_bytes())
"""


def test_conv_memory_does_not_scale_with_the_stride():
    # A stride of 10^8 on a 16x16 image: outputs of one position per row. The padded image's
    # slack and backward-data's stride phases once scaled with the stride (0.4-2.4 GB here).
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _STRIDE_SCRIPT], check=True, capture_output=True,
                         text=True).stdout
    grown, scratch = (int(v) for v in out.split()[-2:])
    assert grown < 64 * 2**20 and scratch < 16 * 2**20, (grown, scratch)


_HUGE_ONCE_SCRIPT = r"""
import numpy as np
import cnnfast, cnnfast.functional as F
from cnnfast import _core
cnnfast.set_num_threads(1)  # one thread: the later calls reach the same buffers
rng = np.random.default_rng(0)
big = rng.standard_normal((1, 1, 6144, 6144)).astype(np.float32)  # 144 MiB
w = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)
for algo in ("gemm", "implicit"):
    F.conv2d(big, w, stride=6143, algo=algo)  # 2x2 outputs from a padded copy of the image
peak = _core._scratch_bytes()
small = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
ws = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
for algo in ("gemm", "implicit"):
    for _ in range(3):  # a few small calls: not yet given back
        F.conv2d(small, ws, stride=2, algo=algo)
kept = _core._scratch_bytes()
for algo in ("gemm", "implicit"):
    for _ in range(20):
        F.conv2d(small, ws, stride=2, algo=algo)
print(peak, kept, _core._scratch_bytes())
"""


def test_a_huge_call_does_not_keep_its_scratch():
    # Scratch buffers only grew: one strided conv on a single huge image kept a buffer the size
    # of the image for the thread's lifetime (1 GiB for 16384x16384). A buffer past 64 MiB now
    # goes back after 16 requests in a row of under an eighth of it (not at the first: an op's
    # small last block, op after op, must not free and refault it every time).
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _HUGE_ONCE_SCRIPT], check=True,
                         capture_output=True, text=True).stdout
    peak, kept, after = (int(v) for v in out.split()[-3:])
    assert peak > 128 * 2**20, peak  # the case reaches the big buffer
    assert kept >= peak // 2, (peak, kept)  # three small calls in a row: still held
    assert after < 16 * 2**20, (peak, kept, after)
