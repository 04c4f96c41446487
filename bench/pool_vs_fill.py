"""Is a pooling row bound by bandwidth? Times it next to a fill and a copy of its output's bytes,
interleaved in one process (PyTorch's threaded fill_/copy_, same thread count).

An op that only writes its output (plus a smaller read) cannot beat a fill of that output; one
that runs past a full copy of it (which moves twice those bytes) is bound by something else.

    python bench/pool_vs_fill.py [--threads 2] [--reps 9] [--rounds 3]
"""
from __future__ import annotations

import argparse

import numpy as np

import cnnfast
import cnnfast.functional as F
from bench_pool import interleaved_medians


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    rng = np.random.default_rng()
    x = rng.standard_normal((32, 64, 112, 112), np.float32)
    g = rng.standard_normal((32, 64, 56, 56), np.float32)
    dx_like = torch.empty(x.shape)  # the output of the backward rows: 102.8 MB
    src = torch.from_numpy(x)
    cases = {  # name: (fn, bytes read, bytes written)
        "avg_pool2d_backward k3s2p1": (lambda: F.avg_pool2d_backward(g, x, 3, 2, 1),
                                       g.nbytes, x.nbytes),
        "max_pool2d k3s2p1 +indices": (lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True),
                                       x.nbytes, g.nbytes * 3),
    }
    fill, copy = (lambda: dx_like.fill_(1.0)), (lambda: dx_like.copy_(src))
    print(f"# threads={args.threads}; fill / copy: torch fill_ and copy_ of "
          f"{x.nbytes / 1e6:.1f} MB")
    for r in range(args.rounds):
        t = interleaved_medians([c[0] for c in cases.values()] + [fill, copy], args.reps)
        t_fill, t_copy = t[-2], t[-1]
        print(f"round {r + 1}: fill {t_fill * 1e3:.2f} ms ({x.nbytes / t_fill / 1e9:.1f} GB/s), "
              f"copy {t_copy * 1e3:.2f} ms ({2 * x.nbytes / t_copy / 1e9:.1f} GB/s)")
        for (name, (_, rd, wr)), tc in zip(cases.items(), t):
            print(f"  {name:28s} {tc * 1e3:6.2f} ms = {tc / t_fill:.2f} fills, "
                  f"{tc / t_copy:.2f} copies ({(rd + wr) / tc / 1e9:.1f} GB/s, "
                  f"{wr / 1e6:.0f} MB written)")


if __name__ == "__main__":
    main()
