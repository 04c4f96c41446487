"""ab_depthwise.py — depthwise conv2d shapes beyond bench_ops.py's one case (stride, dilation,
5x5, deep and shallow planes): two builds of cnnfast and PyTorch CPU timed in one process.

    python bench/ab_depthwise.py A_DIR B_DIR [--threads 2] [--rounds 60] [--shapes N,C,H,k,s,p,d ...]

A_DIR and B_DIR each hold a `cnnfast/` package (as for ab_builds.py; pass the same directory
twice to time one build). Per shape and pass (forward, input gradient, weight gradient; no bias):
rounds of A, B, torch calls in turn after a warm-up, medians in ms, and torch/A, torch/B (> 1:
cnnfast faster). Results are checked against torch (float32, relative 1e-4) before timing.
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

DEFAULT_SHAPES = ("1,128,56,3,2,1,1", "8,128,56,3,2,1,1", "1,128,56,3,1,2,2", "1,256,28,5,1,2,1",
                  "1,512,14,3,1,1,1", "1,32,112,3,1,1,1")


def passes(F, torch, x, w, gy, s, p, d):
    """(name, [cnnfast call per build], torch call) for the three passes."""
    C = x.shape[1]
    kw = dict(stride=s, padding=p, dilation=d, groups=C)
    tx, tw, tgy = map(torch.from_numpy, (x, w, gy))

    def tb(mask):
        return lambda: torch.ops.aten.convolution_backward(tgy, tx, tw, None, [s, s], [p, p],
                                                           [d, d], False, [0, 0], C, mask)[
            mask.index(True)].numpy()
    return (
        ("fwd", [lambda f=f: f.conv2d(x, w, None, **kw) for f in F],
         lambda: torch.nn.functional.conv2d(tx, tw, None, s, p, d, C).numpy()),
        ("dx", [lambda f=f: f.conv2d_backward(gy, x, w, None, needs_input_grad=(True, False, False),
                                              **kw)[0] for f in F], tb([True, False, False])),
        ("dw", [lambda f=f: f.conv2d_backward(gy, x, w, None, needs_input_grad=(False, True, False),
                                              **kw)[1] for f in F], tb([False, True, False])),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a_dir")
    ap.add_argument("b_dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES,
                    help="N,C,H,k,stride,padding,dilation (square planes and filters)")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="ab_depthwise_"))
    try:
        for name, src in (("dwA", args.a_dir), ("dwB", args.b_dir)):
            shutil.copytree(Path(src) / "cnnfast", root / name)
        sys.path.insert(0, str(root))
        F = []
        for name in ("dwA", "dwB"):
            importlib.import_module(name).set_num_threads(args.threads)
            F.append(importlib.import_module(name + ".functional"))
        rng = np.random.default_rng()
        print(f"threads={args.threads} rounds={args.rounds} torch {torch.__version__}")
        for shape in args.shapes:
            N, C, H, k, s, p, d = map(int, shape.split(","))
            P = (H + 2 * p - d * (k - 1) - 1) // s + 1
            x = rng.standard_normal((N, C, H, H), dtype=np.float32)
            w = rng.standard_normal((C, 1, k, k), dtype=np.float32)
            gy = rng.standard_normal((N, C, P, P), dtype=np.float32)
            for name, fs, tf in passes(F, torch, x, w, gy, s, p, d):
                want = tf()
                for f in fs:
                    np.testing.assert_allclose(f(), want, rtol=1e-4,
                                               atol=1e-4 * float(np.abs(want).max()))
                ts = [[], [], []]
                for _ in range(args.rounds):
                    for t, f in zip(ts, fs + [tf]):
                        t0 = time.perf_counter()
                        f()
                        t.append(time.perf_counter() - t0)
                a, b, t = (float(np.median(v)) for v in ts)
                print(f"{shape:<18} {name}: A {a * 1e3:.3f} ms, B {b * 1e3:.3f} ms, torch "
                      f"{t * 1e3:.3f} ms; torch/A {t / a:.2f}, torch/B {t / b:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
