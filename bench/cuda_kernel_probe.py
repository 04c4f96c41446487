"""bench/cuda_kernel_probe.py — runs chosen CUDA conv2d passes of bench_ops' cases a few times
each, for a profiler to attach to (ncu in bench/gpu_session.sh's 'ncu' step):
    python bench/cuda_kernel_probe.py resnet_1x1:bwd_data vgg_conv3_2:fwd ...
Inputs are random (never zeros); the passes are those of bench_ops_cuda.py."""
from __future__ import annotations

import sys

import numpy as np

import cnnfast.functional as F
from cnnfast import cuda

sys.path.insert(0, __file__.rsplit("/", 1)[0])
_argv, sys.argv = sys.argv, sys.argv[:1] + ["--device", "cuda"]  # bench_ops parses at import
from bench_ops import CASES  # noqa: E402
sys.argv = _argv


def main(specs):
    rng = np.random.default_rng(7)
    for spec in specs:
        name, pass_ = spec.split(":")
        n, c, h, w, k, r, s, st, pad, dil, g = CASES[name]
        kw = dict(stride=st, padding=pad, dilation=dil, groups=g)
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
