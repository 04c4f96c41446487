"""bench/cuda_kernel_probe.py — runs chosen CUDA passes of bench_ops' cases twice each, for a
profiler to attach to (ncu in bench/gpu_session.sh's 'ncu' step):
    python bench/cuda_kernel_probe.py resnet_1x1:bwd_data vgg_conv3_2:fwd maxpool_2x2_s2:unpool
conv passes: fwd, bwd_data, bwd_weight, with an optional conv2d algo (vgg_conv3_2:fwd:winograd);
pooling: fwd, bwd, unpool. Inputs are random (never zeros); the passes are those of
bench_ops_cuda.py."""
from __future__ import annotations

import sys

import numpy as np

import cnnfast.functional as F
from cnnfast import cuda

sys.path.insert(0, __file__.rsplit("/", 1)[0])
_argv, sys.argv = sys.argv, sys.argv[:1] + ["--device", "cuda"]  # bench_ops parses at import
from bench_ops import CASES  # noqa: E402
from bench_ops_cuda import POOL_CASES  # noqa: E402
sys.argv = _argv


def pool(rng, name, pass_):
    n, c, h, w, k, s, p = POOL_CASES[name]
    x = cuda.from_numpy(rng.standard_normal((n, c, h, w), dtype=np.float32))
    if name.startswith("avg"):
        y = F.avg_pool2d(x, k, s, p)
        gy = cuda.from_numpy(rng.standard_normal(y.shape, dtype=np.float32))
        run = {"fwd": lambda: F.avg_pool2d(x, k, s, p),
               "bwd": lambda: F.avg_pool2d_backward(gy, x, k, s, p)}[pass_]
    else:
        y, sw = F.max_pool2d(x, k, s, p, return_indices=True)
        gy = cuda.from_numpy(rng.standard_normal(y.shape, dtype=np.float32))
        run = {"fwd": lambda: F.max_pool2d(x, k, s, p, return_indices=True),
               "bwd": lambda: F.max_pool2d_backward(gy, x, k, s, p, indices=sw),
               "unpool": lambda: F.max_unpool2d(y, sw)}[pass_]
    cuda.synchronize()
    print(f"--- {name}:{pass_}", flush=True)
    for _ in range(2):
        run()
    cuda.synchronize()


def main(specs):
    rng = np.random.default_rng(7)
    for spec in specs:
        name, pass_, *algo = spec.split(":")
        if name in POOL_CASES:
            pool(rng, name, pass_)
            continue
        n, c, h, w, k, r, s, st, pad, dil, g = CASES[name]
        kw = dict(stride=st, padding=pad, dilation=dil, groups=g, algo=algo[0] if algo else "auto")
        x = cuda.from_numpy(rng.standard_normal((n, c, h, w), dtype=np.float32))
        wt = cuda.from_numpy(rng.standard_normal((k, c // g, r, s), dtype=np.float32))
        y = F.conv2d(x, wt, **kw)
        gy = cuda.from_numpy(rng.standard_normal(y.shape, dtype=np.float32))
        need = {"fwd": None, "bwd_data": (True, False, False), "bwd_weight": (False, True, False)}
        for _ in range(2):
            if pass_ == "fwd":
                F.conv2d(x, wt, **kw)
            else:
                F.conv2d_backward(gy, x, wt, None, needs_input_grad=need[pass_], **kw)
        cuda.synchronize()


if __name__ == "__main__":
    main(sys.argv[1:])
