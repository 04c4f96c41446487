"""Benchmark: convolutions with big filters and few channels (matched filters, large-kernel
layers) — the shapes where im2col + GEMM or a padded forward multiplies the work. cnnfast
(`--algo`, default 'auto') vs PyTorch CPU in one process, same thread count, validated first,
times interleaved; forward, backward-data (the input gradient; conv_transpose2d's forward) and
weight gradient.

    python bench/bench_big_filters.py [--threads 2] [--reps 5] [--algo auto]
"""
from __future__ import annotations

import argparse
import os
import platform

import numpy as np

import cnnfast
import cnnfast.functional as F
from bench_pool import interleaved_medians  # the script's folder is on sys.path

# name: (N, C, H, W, K, R, S)
SHAPES = {
    "1->1 31x31 on 128x128": (1, 1, 128, 128, 1, 31, 31),
    "1->1 101x101 on 148x148": (1, 1, 148, 148, 1, 101, 101),
    "3->8 9x9 on 224x224": (1, 3, 224, 224, 8, 9, 9),
    "3->8 31x31 on 64x64, batch 8": (8, 3, 64, 64, 8, 31, 31),
    "4->4 25x25 on 96x96, batch 4": (4, 4, 96, 96, 4, 25, 25),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--algo", default="auto")
    args = ap.parse_args()
    if args.threads < 1 or args.reps < 1:
        ap.error("--threads and --reps must be >= 1")
    import torch
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads "
          f"{args.threads}, cnnfast {cnnfast.info()['build_commit']} "
          f"({cnnfast.info()['isa']}), algo={args.algo}, torch {torch.__version__}")
    print(f"{'shape':<32} {'pass':<12} {'cnnfast ms':>10} {'torch ms':>9} {'torch/cnnfast':>13}")
    rng = np.random.default_rng(0)
    A = torch.ops.aten
    for name, (n, c, h, w, k, r, s) in SHAPES.items():
        x = rng.standard_normal((n, c, h, w), np.float32)
        wt = rng.standard_normal((k, c, r, s), np.float32)
        g = rng.standard_normal(F.conv2d(x, wt).shape, np.float32)
        tx, tw, tg = (torch.from_numpy(a) for a in (x, wt, g))

        def torch_grads(mask):
            return A.convolution_backward(tg, tx, tw, None, [1, 1], [0, 0], [1, 1], False,
                                          [0, 0], 1, mask)
        passes = [
            ("forward", lambda: F.conv2d(x, wt, algo=args.algo),
             lambda: torch.nn.functional.conv2d(tx, tw)),
            ("input grad", lambda: F.conv2d_backward(g, x, wt, None, algo=args.algo,
                                                     needs_input_grad=(True, False, False))[0],
             lambda: torch_grads([True, False, False])[0]),
            ("weight grad", lambda: F.conv2d_backward(g, x, wt, None, algo=args.algo,
                                                      needs_input_grad=(False, True, False))[1],
             lambda: torch_grads([False, True, False])[1]),
        ]
        with torch.no_grad():
            for label, ours, theirs in passes:
                want = theirs().numpy()
                err = np.abs(ours() - want).max() / max(np.abs(want).max(), 1e-30)
                if not err < 1e-4:
                    raise SystemExit(f"VALIDATION FAILED: {name} {label}: rel. err {err:.2e}")
                t_ours, t_theirs = interleaved_medians([ours, theirs], args.reps)
                print(f"{name:<32} {label:<12} {t_ours * 1e3:10.2f} {t_theirs * 1e3:9.2f} "
                      f"{t_theirs / t_ours:13.2f}", flush=True)


if __name__ == "__main__":
    main()
