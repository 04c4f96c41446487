"""Benchmark: cnnfast conv2d (forward, backward-input, backward-weight) and SGEMM vs PyTorch CPU.

    python bench/bench_ops.py --threads N [--compare torch] [--json out.json] [--only name,...]
                              [--passes fwd,bwd_data,bwd_weight] [--algo auto] [--reps 5]
                              [--batch N]
    python bench/bench_ops.py --device cuda [--compare torch] [--json ...] [--only ...]
        (cnnfast's CUDA kernels vs PyTorch on the same GPU, TF32 off: bench_ops_cuda.py;
         exits with status 2 and the reason when there is no CUDA device)

Per case: validate cnnfast against a float64 reference first (torch float64 when torch is present,
else the NumPy reference of tests/reference.py on the first two images), then time cnnfast and
torch in this one process with the same thread count: warm-up, then calls alternating between the
two (so load from other processes hits both alike), median of >= --reps calls each (short cases
get more, up to ~0.3 s per side).
GFLOP/s uses FLOPs = 2·N·K·(C/groups)·R·S·P·Q for every pass; % of peak divides by the FP32 peak
measured on this run by cnnfast's FMA loop on the same threads. RSS columns: the growth of the
process's peak RSS during one warm call (peak reset through /proc/self/clear_refs), i.e. the memory
a call touches beyond what was already resident — outputs, workspaces, freshly mapped buffers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--threads", type=int, help="threads for cnnfast, torch, numpy (cpu: required)")
    ap.add_argument("--compare", choices=["torch", "none"], default="torch")
    ap.add_argument("--json", help="write the records here")
    ap.add_argument("--only", help="comma-separated case names (see --list)")
    ap.add_argument("--passes", default="fwd,bwd_data,bwd_weight")
    ap.add_argument("--algo", default="auto",
                    help="cnnfast algo for conv2d (cpu: auto|gemm|implicit|direct|winograd|"
                         "winograd_f2|winograd_f4; cuda: a comma list of auto|implicit|winograd|"
                         "winograd_f2|winograd_f4, each timed as its own rows)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int,
                    help="run every conv case at this batch size (default: the case's own)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args(argv)
    if args.device == "cpu" and args.threads is None and not args.list:
        ap.error("--threads is required with --device cpu")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    if args.reps < 1:
        ap.error(f"--reps must be >= 1, got {args.reps}")
    if args.batch is not None and (args.batch < 1 or args.device != "cpu"):
        ap.error(f"--batch must be >= 1 and is for --device cpu, got {args.batch}")
    bad = set(args.passes.split(",")) - {"fwd", "bwd_data", "bwd_weight"}
    if bad:
        ap.error(f"--passes: unknown {sorted(bad)}; choose from fwd, bwd_data, bwd_weight")
    cpu_algos = {"auto", "gemm", "implicit", "direct", "winograd", "winograd_f2", "winograd_f4"}
    if args.device == "cpu" and args.algo not in cpu_algos:
        ap.error(f"--algo: {args.algo!r} is not one of {sorted(cpu_algos)}")
    return args


ARGS = parse_args()
# numpy's BLAS reads its thread count at import: set it before anything imports numpy.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    if ARGS.threads is not None:
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import cnnfast  # noqa: E402
from cnnfast import _core  # noqa: E402
from cnnfast.functional import conv2d, conv2d_backward, matmul  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import reference as npref  # noqa: E402

from conv_configs import CASES  # noqa: E402  (N, C, H, W, K, R, S, stride, padding, dilation, groups)
SGEMM = "sgemm_2048"
TOL = {"winograd": 1e-4}


def rss_kib():
    s = open("/proc/self/status").read()
    return (int(re.search(r"VmHWM:\s+(\d+)", s).group(1)), int(re.search(r"VmRSS:\s+(\d+)", s).group(1)))


def peak_rss_growth_mib(fn):
    """MiB by which one call of fn raises the peak RSS above the RSS before it (None if unknown)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _, before = rss_kib()
        out = fn()
        hwm, _ = rss_kib()
        del out
        return (hwm - before) / 1024.0
    except OSError:
        return None


def median_ms(fns, reps):
    """Median ms of each function in `fns`, timed alternately (a, b, a, b, ...) after a warm-up of
    each, so a noisy shared machine hits both sides alike. Short cases get more repetitions
    (at least ~0.3 s of calls per side, capped at 20x reps)."""
    t0 = time.perf_counter()
    for fn in fns:
        fn()  # warm-up: workspaces, page faults, lazy init
    first = (time.perf_counter() - t0) / len(fns)
    n = max(reps, min(20 * reps, int(0.3 / max(first, 1e-6))))
    times = [[] for _ in fns]
    for _ in range(n):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [float(np.median(ts)) * 1e3 for ts in times]


def rel_err(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def conv_case(name, torch, rng):
    n, c, h, w, k, r, s, st, pad, dil, g = CASES[name]
    n = ARGS.batch or n
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((k, c // g, r, s), dtype=np.float32) / float(np.sqrt(c // g * r * s))
    b = rng.standard_normal(k, dtype=np.float32)
    kw = dict(stride=st, padding=pad, dilation=dil, groups=g)
    p = (h + 2 * pad - dil * (r - 1) - 1) // st + 1
    q = (w + 2 * pad - dil * (s - 1) - 1) // st + 1
    gy = rng.standard_normal((n, k, p, q), dtype=np.float32)
    flops = 2.0 * n * k * (c // g) * r * s * p * q
    algo = ARGS.algo
    ours = {
        "fwd": lambda: conv2d(x, wt, b, algo=algo, **kw),
        "bwd_data": lambda: conv2d_backward(gy, x, wt, b, needs_input_grad=(True, False, False),
                                            algo=algo, **kw)[0],
        "bwd_weight": lambda: conv2d_backward(gy, x, wt, b, needs_input_grad=(False, True, True),
                                              algo=algo, **kw)[1:],
    }
    theirs = {}
    if torch is not None:
        tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, wt, b, gy))
        targs = ([st, st], [pad, pad], [dil, dil], False, [0, 0], g)
        conv_bwd = torch.ops.aten.convolution_backward
        theirs = {
            "fwd": lambda: torch.nn.functional.conv2d(tx, tw, tb, st, pad, dil, g),
            "bwd_data": lambda: conv_bwd(tgy, tx, tw, [k], *targs, [True, False, False])[0],
            "bwd_weight": lambda: conv_bwd(tgy, tx, tw, [k], *targs, [False, True, True])[1:],
        }

    def reference(pass_):
        if torch is not None:  # float64 torch on the full batch
            d = [torch.from_numpy(a.astype(np.float64)) for a in (x, wt, b, gy)]
            if pass_ == "fwd":
                return torch.nn.functional.conv2d(d[0], d[1], d[2], st, pad, dil, g).numpy(), None
            mask = [True, False, False] if pass_ == "bwd_data" else [False, True, True]
            out = conv_bwd(d[3], d[0], d[1], [k], *targs, mask)
            return (out[0].numpy() if pass_ == "bwd_data" else out[1].numpy()), None
        m = min(n, 2)  # NumPy reference: the first m images (cnnfast recomputed on them)
        rp = dict(stride=(st, st), pad=(pad,) * 4, dilation=(dil, dil), groups=g)
        if pass_ == "fwd":
            return npref.conv2d(x[:m], wt, b, **rp), m
        gx, gw, _ = npref.conv2d_backward(gy[:m], x[:m], wt, **rp)
        return (gx if pass_ == "bwd_data" else gw), m

    def ours_on(pass_, m):
        if m is None:
            out = ours[pass_]()
        else:
            sub = dict(stride=st, padding=pad, dilation=dil, groups=g, algo=algo)
            if pass_ == "fwd":
                out = conv2d(x[:m], wt, b, **sub)
            else:
                need = (True, False, False) if pass_ == "bwd_data" else (False, True, False)
                gx, gw, _ = conv2d_backward(gy[:m], x[:m], wt, b, needs_input_grad=need, **sub)
                out = gx if pass_ == "bwd_data" else gw
        return out[0] if pass_ == "bwd_weight" and m is None else out

    return flops, ours, theirs, reference, ours_on


def run_conv(name, torch, rng, peak, records):
    flops, ours, theirs, reference, ours_on = conv_case(name, torch, rng)
    for pass_ in ARGS.passes.split(","):
        want, m = reference(pass_)
        try:
            got = ours_on(pass_, m)
        except ValueError as e:  # an --algo this shape does not take (winograd on 5x5)
            print(f"{'conv2d_' + pass_:<18} {name:<16} skipped: {e}")
            continue
        err = rel_err(got, want)
        tol = TOL.get(ARGS.algo, 1e-5)
        ok = err <= tol
        rec = dict(op=f"conv2d_{pass_}", config=name, batch=ARGS.batch or CASES[name][0],
                   algo=ARGS.algo, rel_err=err, valid=ok,
                   flops=flops, threads=ARGS.threads)
        if ok:
            if pass_ in theirs:
                rec["cnnfast_ms"], rec["torch_ms"] = median_ms([ours[pass_], theirs[pass_]],
                                                               ARGS.reps)
                rec["torch_rss_mib"] = peak_rss_growth_mib(theirs[pass_])
            else:
                rec["cnnfast_ms"], = median_ms([ours[pass_]], ARGS.reps)
            rec["cnnfast_rss_mib"] = peak_rss_growth_mib(ours[pass_])
        records.append(finish(rec, peak))


def run_sgemm(torch, rng, peak, records):
    n = 2048
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    err = rel_err(matmul(a, b), a.astype(np.float64) @ b.astype(np.float64))
    rec = dict(op="matmul", config=SGEMM, algo="gemm", rel_err=err, valid=err <= 1e-5,
               flops=2.0 * n ** 3, threads=ARGS.threads)
    if rec["valid"]:
        fns = [lambda: matmul(a, b), lambda: a @ b]
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns.append(lambda: torch.mm(ta, tb))
        ms = median_ms(fns, ARGS.reps)
        rec["cnnfast_ms"], rec["numpy_ms"] = ms[0], ms[1]
        if torch is not None:
            rec["torch_ms"] = ms[2]
            rec["torch_rss_mib"] = peak_rss_growth_mib(fns[2])
        rec["cnnfast_rss_mib"] = peak_rss_growth_mib(fns[0])
    records.append(finish(rec, peak))


def finish(rec, peak):
    if "cnnfast_ms" in rec:
        rec["gflops"] = rec["flops"] / rec["cnnfast_ms"] / 1e6
        rec["pct_peak"] = 100.0 * rec["gflops"] / peak
    if "torch_ms" in rec and "cnnfast_ms" in rec:
        rec["ratio"] = rec["torch_ms"] / rec["cnnfast_ms"]
    if "numpy_ms" in rec:
        rec["ratio_numpy"] = rec["numpy_ms"] / rec["cnnfast_ms"]
    print_row(rec)
    return rec


HEADER = (f"{'op':<18} {'config':<15} {'cnnfast ms':>10} {'torch ms':>9} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'%peak':>6} {'RSS+ MiB':>9} {'torch RSS+':>10}  note")


def fmt(v, spec):
    return format(v, spec) if isinstance(v, (int, float)) else format("-", ">" + spec.split(".")[0].lstrip(">"))


def print_row(r):
    note = "" if r["valid"] else f"INVALID rel_err {r['rel_err']:.2e} (not timed)"
    if "ratio_numpy" in r:
        note = f"numpy {r['numpy_ms']:.1f} ms, ratio vs numpy {r['ratio_numpy']:.2f}"
    print(f"{r['op']:<18} {r['config']:<15} {fmt(r.get('cnnfast_ms'), '>10.2f')} "
          f"{fmt(r.get('torch_ms'), '>9.2f')} {fmt(r.get('ratio'), '>6.2f')} "
          f"{fmt(r.get('gflops'), '>8.1f')} {fmt(r.get('pct_peak'), '>6.1f')} "
          f"{fmt(r.get('cnnfast_rss_mib'), '>9.1f')} {fmt(r.get('torch_rss_mib'), '>10.1f')}  {note}",
          flush=True)


def geomeans(records):
    out = {}
    for op in sorted({r["op"] for r in records}):
        rs = [r["ratio"] for r in records if r["op"] == op and "ratio" in r]
        if rs:
            out[op] = float(np.exp(np.mean(np.log(rs))))
    return out


def main():
    if ARGS.device == "cuda":
        import bench_ops_cuda
        return bench_ops_cuda.main(ARGS, CASES)
    if ARGS.list:
        print("\n".join(list(CASES) + [SGEMM]))
        return 0
    torch = None
    if ARGS.compare == "torch":
        try:
            import torch  # noqa: F811
            torch.set_num_threads(ARGS.threads)
        except ImportError:
            print("torch not installed: timing cnnfast only")
    cnnfast.set_num_threads(ARGS.threads)
    names = list(CASES) + [SGEMM]
    if ARGS.only:
        names = [s.strip() for s in ARGS.only.split(",") if s.strip()]
        bad = [s for s in names if s not in CASES and s != SGEMM]
        if bad:
            raise SystemExit(f"--only: unknown case(s) {bad}; choose from {list(CASES) + [SGEMM]}")
    peak = _core._peak_gflops(ARGS.threads, 0.5)
    commit = cnnfast.info()["build_commit"]  # of the build timed, not of the source tree
    print(f"cnnfast {cnnfast.__version__} (commit {commit}) isa={cnnfast.info()['isa']} "
          f"threads={ARGS.threads} algo={ARGS.algo} reps={ARGS.reps} "
          f"batch={ARGS.batch or 'per case'}; torch "
          f"{torch.__version__ if torch else '-'}; numpy {np.__version__}; "
          f"{platform.processor() or platform.machine()}; measured FP32 peak {peak:.1f} GFLOP/s")
    print("ratio = torch ms / cnnfast ms (> 1: cnnfast faster). RSS+ = peak-RSS growth in one warm call.")
    print(HEADER)
    rng = np.random.default_rng(1234)
    records = []
    for name in names:
        if name == SGEMM:
            run_sgemm(torch, rng, peak, records)
        else:
            run_conv(name, torch, rng, peak, records)
    gm = geomeans(records)
    for op, v in gm.items():
        print(f"geomean ratio {op}: {v:.2f}")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(dict(commit=commit, threads=ARGS.threads, algo=ARGS.algo, peak_gflops=peak,
                           geomean_ratio=gm, records=records), f, indent=1)
    return 0 if all(r["valid"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
