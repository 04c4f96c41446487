"""ab_builds.py — two builds of cnnfast timed against each other in one process.

On a shared host the memory bandwidth moves by tens of percent from minute to minute, so
alternating whole processes cannot resolve a 5-10 % change. Here both builds are imported side
by side (each package directory is copied under its own name, with its own `_core`), the calls
alternate A B B A ..., and the median of the per-pair time ratios B/A is reported, with whether
the two builds' results have the same bits. Run the same build as A and B first: the A/A ratio
shows this host's noise (0.97-1.02 for the pooling cases here).

    python bench/ab_builds.py A_DIR B_DIR CASE [--threads T] [--pairs P]

A_DIR and B_DIR each hold a `cnnfast/` package (e.g. python/cnnfast with a built _core*.so
copied in). CASE is one of the names printed by --help.
"""
from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def cases(F, rng_arrays):
    x, g, g7, x1, g1, idx, sw2, x3, g3 = rng_arrays
    return {
        "avg_pool3d_k2s2": lambda: F.avg_pool3d(x3, 2),
        "avg_pool3d_backward_k2s2": lambda: F.avg_pool3d_backward(g3, x3, 2),
        "avg_pool2d_backward_k2s2": lambda: F.avg_pool2d_backward(g, x, 2),
        "max_pool2d_backward_k2s2": lambda: F.max_pool2d_backward(g, x, 2, indices=sw2),
        "max_unpool2d_k2s2": lambda: F.max_unpool2d(g, sw2),
        "max_pool2d_k3s2p1": lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True),
        "max_pool2d_backward_k3s2p1": lambda: F.max_pool2d_backward(g, x, 3, 2, 1, indices=idx),
        "avg_pool2d_k3s2p1": lambda: F.avg_pool2d(x, 3, 2, 1),
        "avg_pool2d_backward_k3s2p1": lambda: F.avg_pool2d_backward(g, x, 3, 2, 1),
        "adaptive_avg_pool2d_7": lambda: F.adaptive_avg_pool2d(x, 7),
        "adaptive_avg_pool2d_backward_7": lambda: F.adaptive_avg_pool2d_backward(g7, x, 7),
        "adaptive_avg_pool2d_backward_1": lambda: F.adaptive_avg_pool2d_backward(g7[:, :, :1, :1],
                                                                                 x, 1),
        "max_pool1d_k4": lambda: F.max_pool1d(x1, 4, return_indices=True),
        "avg_pool1d_k4": lambda: F.avg_pool1d(x1, 4),
        "avg_pool1d_backward_k4": lambda: F.avg_pool1d_backward(g1, x1, 4),
    }


CASES = sorted(cases(None, (None,) * 9))


def as_arrays(r):
    r = r if isinstance(r, tuple) else (r,)
    return [np.asarray(getattr(v, "indices", v)) for v in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="cases: " + ", ".join(CASES))
    ap.add_argument("a_dir")
    ap.add_argument("b_dir")
    ap.add_argument("case", choices=CASES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=30)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ab_builds_"))
    for name, src in (("cfA", args.a_dir), ("cfB", args.b_dir)):
        shutil.copytree(Path(src) / "cnnfast", root / name)
    sys.path.insert(0, str(root))
    mods = [importlib.import_module(n) for n in ("cfA", "cfB")]
    funcs = [importlib.import_module(n + ".functional") for n in ("cfA", "cfB")]
    for m in mods:
        m.set_num_threads(args.threads)

    rng = np.random.default_rng()
    x = rng.standard_normal((32, 64, 112, 112), dtype=np.float32)
    g = rng.standard_normal((32, 64, 56, 56), dtype=np.float32)
    g7 = rng.standard_normal((32, 64, 7, 7), dtype=np.float32)
    x1 = rng.standard_normal((64, 128, 4096), dtype=np.float32)
    g1 = rng.standard_normal((64, 128, 1024), dtype=np.float32)
    x3 = rng.standard_normal((4, 32, 32, 64, 64), dtype=np.float32)
    g3 = rng.standard_normal((4, 32, 16, 32, 32), dtype=np.float32)
    idx = funcs[0].max_pool2d(x, 3, 2, 1, return_indices=True)[1].indices
    # k2s2 switches (indices + input shape) from each build: a Switches is accepted by its own
    # package only
    fa, fb = (cases(F, (x, g, g7, x1, g1, idx, F.max_pool2d(x, 2, return_indices=True)[1], x3,
                        g3))[args.case] for F in funcs)

    same = all(np.array_equal(u, v, equal_nan=True)
               for u, v in zip(as_arrays(fa()), as_arrays(fb())))
    ta, tb = [], []
    for i in range(args.pairs):
        order = ((fa, ta), (fb, tb)) if i % 2 == 0 else ((fb, tb), (fa, ta))
        for f, t in order:
            t0 = time.perf_counter()
            r = f()
            t.append(time.perf_counter() - t0)
            del r
    ta, tb = np.array(ta) * 1e3, np.array(tb) * 1e3
    print(f"{args.case} threads={args.threads}: A {np.median(ta):.2f} ms, B {np.median(tb):.2f} ms, "
          f"B/A median of {args.pairs} pairs {np.median(tb / ta):.3f}, same bits: {same}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
