"""Concurrent calls from many Python threads (the GIL is released) give the serial results."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cnnfast.functional import conv2d, conv2d_backward


def _job(args):
    x, w, b, kw, gy = args
    y = conv2d(x, w, b, **kw)
    return (y,) + conv2d_backward(gy, x, w, b, **kw)


def test_many_threads_mixed_calls_match_serial(rng):
    jobs = []
    for i in range(24):
        c, k = int(rng.integers(1, 9)), int(rng.integers(1, 20))
        kw = dict(stride=int(rng.integers(1, 3)), padding=["same", 1, "valid", "full"][i % 4],
                  dilation=int(rng.integers(1, 3)))
        x = rng.standard_normal((int(rng.integers(1, 4)), c, 12 + i % 5, 9 + i % 7)).astype(np.float32)
        w = rng.standard_normal((k, c, 3, 2)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        y = conv2d(x, w, b, **kw)
        jobs.append((x, w, b, kw, rng.standard_normal(y.shape).astype(np.float32)))
    serial = [_job(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=8) as ex:
        for _ in range(3):
            parallel = list(ex.map(_job, jobs))
            for got, want in zip(parallel, serial):
                for g, s in zip(got, want):
                    np.testing.assert_array_equal(g, s)
