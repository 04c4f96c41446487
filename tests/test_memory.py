"""Repeated calls must not grow the resident set (no leaks in bindings or workspaces)."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

from cnnfast.functional import conv2d, conv2d_backward


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's quarantine holds freed memory; RSS is checked in "
                           "the normal (unsanitized) test run")
def test_no_rss_growth_over_thousands_of_calls(rng):
    x = rng.standard_normal((4, 8, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    gy = rng.standard_normal((4, 16, 24, 24)).astype(np.float32)

    def burst(n):
        for _ in range(n):
            conv2d(x, w, b, padding=1)
            conv2d_backward(gy, x, w, b, padding=1)
        gc.collect()

    burst(200)  # warm: workspaces reach their steady size
    before = _rss_bytes()
    burst(2000)
    grown = _rss_bytes() - before
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 2000 calls"


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
