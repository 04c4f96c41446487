"""`cnnfast selfcheck`: conv2d forward and backward against the naive twin, its speed, and
`cnnfast.info()` (the CLI's default command; the CI's first check after installing)."""
from __future__ import annotations

import json
import time

import numpy as np


def selfcheck(seed: int = 0) -> bool:
    import cnnfast
    from cnnfast.functional import conv2d, conv2d_backward

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    t0 = time.perf_counter()
    y = conv2d(x, w, b, stride=1, padding="same")
    t1 = time.perf_counter()
    gy = rng.standard_normal(y.shape).astype(np.float32)
    grads = conv2d_backward(gy, x, w, b, padding="same")
    t2 = time.perf_counter()
    y_ref = conv2d(x, w, b, padding="same", algo="ref")
    grads_ref = conv2d_backward(gy, x, w, b, padding="same", algo="ref")
    ok = True
    for name, got, want in [("forward", y, y_ref)] + list(
            zip(("grad_x", "grad_weight", "grad_bias"), grads, grads_ref)):
        err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        good = err < 1e-5
        ok &= good
        print(f"  conv2d {name:12s} rel.err vs naive twin {err:.2e}  {'ok' if good else 'FAIL'}")
    flops = 2 * y.size * w[0].size
    print(f"  conv2d 8x16x32x32 -> 32, 3x3 'same': forward {(t1 - t0) * 1e3:.2f} ms "
          f"({flops / (t1 - t0) / 1e9:.1f} GFLOP/s), backward {(t2 - t1) * 1e3:.2f} ms")
    print(json.dumps(cnnfast.info(), indent=2))
    return ok
