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
