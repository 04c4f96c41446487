"""ab_builds.py — two builds of cnnfast timed against each other in one process.

On a shared host the memory bandwidth moves by tens of percent from minute to minute, so
alternating whole processes cannot resolve a 5-10 % change. Here both builds are imported side
by side (each package directory is copied under its own name, with its own `_core`), the calls
alternate A B B A ..., and the median of the per-pair time ratios B/A is reported, with whether
the two builds' results have the same bits. Run the same build as A and B first: the A/A ratio
shows this host's noise (0.97-1.02 for the pooling cases here). The conv2d_* cases time
bench_ops.py's convolutions; the softmax_*, log_softmax_*, ce_fwd_*, ce_bwd_* ones
bench_softmax_ce.py's passes (and softmax_bwd_*, log_softmax_bwd_*).

    python bench/ab_builds.py A_DIR B_DIR CASE [--threads T] [--pairs P]

A_DIR and B_DIR each hold a `cnnfast/` package (e.g. python/cnnfast with a built _core*.so
copied in). CASE is one of the names printed by --help. --isa-a / --isa-b force each build's
kernel ISA (cnnfast.set_isa), so one build against itself compares two ISA paths; --algo-a /
--algo-b do the same for the conv2d cases' algo, --batch N sets their batch size.
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
        "max_unpool2d_backward_k2s2": lambda: F.max_unpool2d_backward(x, g, sw2),
        "max_pool2d_k2s2": lambda: F.max_pool2d(x, 2, return_indices=True),
        "avg_pool2d_k2s2": lambda: F.avg_pool2d(x, 2),
        "adaptive_avg_pool2d_1": lambda: F.adaptive_avg_pool2d(x, 1),
        "max_pool3d_k2s2": lambda: F.max_pool3d(x3, 2, return_indices=True),
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


# conv2d cases: bench_ops.py's configurations (N, C, H, W, K, R, S, stride, padding, dilation,
# groups)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conv_configs import CASES as CONV  # noqa: E402
PASSES = ("fwd", "bwd_data", "bwd_weight")


def conv_case(F, name, rng_arrays, algo="auto"):
    """conv2d_<config>_<pass> in one build."""
    x, w, gy = rng_arrays
    cfg, pas = next((c, p) for c in CONV for p in PASSES if name == f"conv2d_{c}_{p}")
    s, pad, d, groups = CONV[cfg][7:]
    if pas == "fwd":
        return lambda: F.conv2d(x, w, None, s, pad, d, groups, algo=algo)
    which = PASSES.index(pas) - 1  # grad_x or grad_weight
    need = (which == 0, which == 1, False)
    return lambda: F.conv2d_backward(gy, x, w, None, s, pad, d, groups, needs_input_grad=need,
                                     algo=algo)[which]


def conv_arrays(name, rng, batch=None):
    cfg = next(c for c in CONV if name.startswith(f"conv2d_{c}_"))
    n, c, h, w, k, r, s_, s, pad, d, groups = CONV[cfg]
    n = batch or n
    p, q = (h + 2 * pad - d * (r - 1) - 1) // s + 1, (w + 2 * pad - d * (s_ - 1) - 1) // s + 1
    return (rng.standard_normal((n, c, h, w), dtype=np.float32),
            rng.standard_normal((k, c // groups, r, s_), dtype=np.float32),
            rng.standard_normal((n, k, p, q), dtype=np.float32))


def pool_cases(funcs, case, rng):
    """The pooling case's calls in each build, on the bench's shapes."""
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
    return tuple(cases(F, (x, g, g7, x1, g1, idx, F.max_pool2d(x, 2, return_indices=True)[1], x3,
                        g3))[case] for F in funcs)


# softmax cases: bench_softmax_ce.py's passes on per-pixel classes (seg: 8x21x128x128) and class
# scores (cls: 512x1000)
SOFTMAX_SHAPES = {"seg": (8, 21, 128, 128), "cls": (512, 1000)}
SOFTMAX_PASSES = ("softmax", "log_softmax", "ce_fwd", "ce_bwd", "softmax_bwd", "log_softmax_bwd")


def softmax_cases(funcs, case, rng):
    pas, shape = case.rsplit("_", 1)
    dims = SOFTMAX_SHAPES[shape]
    x = (rng.standard_normal(dims) * 3).astype(np.float32)
    t = rng.integers(0, dims[1], dims[:1] + dims[2:])
    g = rng.standard_normal(dims).astype(np.float32)

    def one(F):
        if pas.endswith("softmax_bwd"):
            fwd, bwd = ((F.log_softmax, F.log_softmax_backward) if pas.startswith("log")
                        else (F.softmax, F.softmax_backward))
            y = fwd(x)
            return lambda: bwd(g, y)
        if pas == "ce_bwd":
            lse = F.cross_entropy(x, t, return_lse=True)[1]
            return lambda: F.cross_entropy_backward(np.float32(1), x, t, lse=lse)
        return {"softmax": lambda: F.softmax(x), "log_softmax": lambda: F.log_softmax(x),
                "ce_fwd": lambda: F.cross_entropy(x, t, return_lse=True)}[pas]
    return tuple(one(F) for F in funcs)


CASES = (sorted(cases(None, (None,) * 9)) + [f"conv2d_{c}_{p}" for c in CONV for p in PASSES]
         + [f"{p}_{s}" for p in SOFTMAX_PASSES for s in SOFTMAX_SHAPES])


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
    ap.add_argument("--isa-a", default="auto")
    ap.add_argument("--isa-b", default="auto")
    ap.add_argument("--algo-a", default="auto", help="conv2d cases: each build's algo")
    ap.add_argument("--algo-b", default="auto")
    ap.add_argument("--batch", type=int, default=None,
                    help="conv2d cases: this batch size instead of the configuration's")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ab_builds_"))
    try:  # the package copies go however the run ends (a loaded _core may be unlinked)
        run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args, root):
    for name, src in (("cfA", args.a_dir), ("cfB", args.b_dir)):
        shutil.copytree(Path(src) / "cnnfast", root / name)
    sys.path.insert(0, str(root))
    mods = [importlib.import_module(n) for n in ("cfA", "cfB")]
    funcs = [importlib.import_module(n + ".functional") for n in ("cfA", "cfB")]
    for m, isa in zip(mods, (args.isa_a, args.isa_b)):
        m.set_num_threads(args.threads)
        m.set_isa(isa)

    rng = np.random.default_rng()
    if args.case.startswith("conv2d_"):
        arrays = conv_arrays(args.case, rng, args.batch)
        fa, fb = (conv_case(F, args.case, arrays, algo)
                  for F, algo in zip(funcs, (args.algo_a, args.algo_b)))
    elif args.case.rsplit("_", 1)[-1] in SOFTMAX_SHAPES:
        fa, fb = softmax_cases(funcs, args.case, rng)
    else:
        fa, fb = pool_cases(funcs, args.case, rng)
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
    isas = "" if args.isa_a == args.isa_b == "auto" else f" isa {args.isa_a}/{args.isa_b}"
    if args.algo_a != "auto" or args.algo_b != "auto":
        isas += f" algo {args.algo_a}/{args.algo_b}"
    if args.batch:
        isas += f" batch {args.batch}"
    print(f"{args.case} threads={args.threads}{isas}: A {np.median(ta):.2f} ms, B {np.median(tb):.2f} ms, "
          f"B/A median of {args.pairs} pairs {np.median(tb / ta):.3f}, same bits: {same}")


if __name__ == "__main__":
    main()
