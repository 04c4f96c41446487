"""bench_softmax_ce.py — softmax, log-softmax and the fused cross-entropy (forward with lse,
backward from it), cnnfast vs PyTorch CPU in one process at the same thread count.

    python bench/bench_softmax_ce.py [--threads 2] [--reps 60] [--shapes N,C[,H] ...] [--build DIR]

Shapes are (N, C) class scores or (N, C, H, H) per-pixel classes (segmentation). Per shape and
pass, the two libraries run in turn each rep after a warm-up; medians in ms and torch/cnnfast
(> 1: cnnfast faster). Results are checked against torch (float32) before timing. --build DIR
puts DIR (holding a `cnnfast/` package) first on the path, to time another build.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

DEFAULT_SHAPES = ("8,21,128", "4,150,64", "256,10", "512,1000")


def passes(F, torch, x, t):
    """(name, cnnfast call, torch call, compare?) per pass; backward calls reuse the forward's."""
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    txg = tx.clone().requires_grad_()
    _, lse = F.cross_entropy(x, t, return_lse=True)
    tloss = torch.nn.functional.cross_entropy(txg, tt)

    def torch_bwd():
        txg.grad = None
        tloss.backward(retain_graph=True)
        return txg.grad.numpy()
    return (
        ("softmax", lambda: F.softmax(x), lambda: torch.softmax(tx, 1).numpy()),
        ("log_softmax", lambda: F.log_softmax(x), lambda: torch.log_softmax(tx, 1).numpy()),
        ("ce_fwd", lambda: np.float32(F.cross_entropy(x, t, return_lse=True)[0]),
         lambda: torch.nn.functional.cross_entropy(tx, tt).numpy()),
        ("ce_bwd", lambda: F.cross_entropy_backward(np.float32(1), x, t, lse=lse), torch_bwd),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES)
    ap.add_argument("--build", default=None)
    args = ap.parse_args()
    if args.build:
        sys.path.insert(0, args.build)
    import torch

    import cnnfast
    import cnnfast.functional as F
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    rng = np.random.default_rng()
    print(f"threads={args.threads} reps={args.reps} torch {torch.__version__} cnnfast "
          f"{cnnfast.info()['build_commit']} ({cnnfast.info()['isa']})")
    for shape in args.shapes:
        dims = tuple(map(int, shape.split(",")))
        N, C = dims[:2]
        sp = (dims[2], dims[2]) if len(dims) > 2 else ()
        x = (rng.standard_normal((N, C) + sp) * 3).astype(np.float32)
        t = rng.integers(0, C, (N,) + sp).astype(np.int64)
        for name, ours, theirs in passes(F, torch, x, t):
            want = theirs()
            np.testing.assert_allclose(ours(), want, rtol=1e-4,
                                       atol=1e-5 * float(np.abs(want).max()))
            ts = [[], []]
            for r in range(args.reps + 5):
                for v, f in zip(ts, (ours, theirs)):
                    t0 = time.perf_counter()
                    f()
                    if r >= 5:
                        v.append(time.perf_counter() - t0)
            a, b = (float(np.median(v)) for v in ts)
            print(f"{shape:<10} {name:<12} cnnfast {a * 1e3:8.3f} ms  torch {b * 1e3:8.3f} ms  "
                  f"torch/cnnfast {b / a:.2f}")


if __name__ == "__main__":
    main()
