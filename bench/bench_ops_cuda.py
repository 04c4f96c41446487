"""bench_ops.py --device cuda: cnnfast's CUDA kernels vs PyTorch (cuDNN) on the same GPU.

Per case: validate cnnfast's CUDA result — conv: against PyTorch in float64 on the GPU, next to
cuDNN's own float32 error (cnnfast may be off by at most max(1e-4, 4 × cuDNN's)); pooling:
against PyTorch float32; without torch: against cnnfast's CPU kernels — then time both: warm-up, then alternating calls, each
synchronized, median of >= --reps (short cases get more, up to ~0.3 s per side). cuDNN runs with
benchmark=True (its fastest algorithm per shape) and TF32 disabled for matmul and convolution.
Cases: bench_ops' conv2d configurations (fwd, bwd_data, bwd_weight) and 2-D pooling/unpooling;
--algo auto,winograd_f4 (a comma list) adds rows like conv_fwd[winograd_f4] for the 3x3 stride-1
cases, timed in the same run against the same torch call.
ratio = torch ms / cnnfast ms (> 1: cnnfast faster). Exit status 2 when no CUDA device is usable.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

import cnnfast
import cnnfast.functional as F
from cnnfast import cuda

# name: (N, C, H, W, kernel, stride, padding) — 2-D pooling / unpooling cases
POOL_CASES = {
    "maxpool_2x2_s2": (32, 64, 112, 112, 2, 2, 0),
    "maxpool_3x3_s2_p1": (32, 64, 112, 112, 3, 2, 1),
    "avgpool_3x3_s1_p1": (32, 64, 56, 56, 3, 1, 1),
}


def median_ms(fns, reps, sync):
    for fn in fns:
        fn()
    sync()
    t0 = time.perf_counter()
    for fn in fns:
        fn()
    sync()
    first = (time.perf_counter() - t0) / len(fns)
    n = max(reps, min(20 * reps, int(0.3 / max(first, 1e-6))))
    times = [[] for _ in fns]
    for _ in range(n):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
    return [float(np.median(ts)) * 1e3 for ts in times]


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def cell(rec, key, spec):
    return format(rec[key], spec) if key in rec else format("-", ">" + spec.split(".")[0])


def host(a):
    return a.to_numpy() if isinstance(a, cuda.DeviceArray) else a.detach().cpu().numpy()


def conv_passes(spec, torch, rng, algos=("auto",)):
    n, c, h, w, k, r, s, st, pad, dil, g = spec
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((k, c // g, r, s), dtype=np.float32)
    wt /= np.float32(np.sqrt(c // g * r * s))
    b = rng.standard_normal(k, dtype=np.float32)
    p = (h + 2 * pad - dil * (r - 1) - 1) // st + 1
    q = (w + 2 * pad - dil * (s - 1) - 1) // st + 1
    gy = rng.standard_normal((n, k, p, q), dtype=np.float32)
    dx_, dw_, db_, dgy = (cuda.from_numpy(a) for a in (x, wt, b, gy))
    kw = dict(stride=st, padding=pad, dilation=dil, groups=g)
    data, weight = (True, False, False), (False, True, True)

    def passes(x, wt, b, gy, **algo):
        kw_ = dict(kw, **algo)
        return {"fwd": lambda: F.conv2d(x, wt, b, **kw_),
                "bwd_data": lambda: F.conv2d_backward(gy, x, wt, b, needs_input_grad=data,
                                                      **kw_)[0],
                "bwd_weight": lambda: F.conv2d_backward(gy, x, wt, b, needs_input_grad=weight,
                                                        **kw_)[1]}
    ours, cpu = {}, passes(x, wt, b, gy)
    for algo in algos:  # Winograd variants only where they apply (3x3, stride 1)
        if algo.startswith("winograd") and not (r == s == 3 and st == 1):
            continue
        tag = "" if algo == "auto" else f"[{algo}]"
        ours.update({name + tag: fn
                     for name, fn in passes(dx_, dw_, db_, dgy, algo=algo).items()})
    theirs = ref64 = {}
    if torch is not None:
        targs = ([st, st], [pad, pad], [dil, dil], False, [0, 0], g)
        cb = torch.ops.aten.convolution_backward

        def torch_passes(dtype):
            tx, tw, tb, tgy = (torch.from_numpy(a).cuda().to(dtype) for a in (x, wt, b, gy))
            return {
                "fwd": lambda: torch.nn.functional.conv2d(tx, tw, tb, st, pad, dil, g),
                "bwd_data": lambda: cb(tgy, tx, tw, [k], *targs, [True, False, False])[0],
                "bwd_weight": lambda: cb(tgy, tx, tw, [k], *targs, [False, True, True])[1],
            }
        theirs, ref64 = torch_passes(torch.float32), torch_passes(torch.float64)
    return 2.0 * n * k * (c // g) * r * s * p * q, ours, theirs, cpu, ref64


def pool_passes(name, spec, torch, rng):
    n, c, h, w, k, s, p = spec
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    dx_ = cuda.from_numpy(x)
    is_max = name.startswith("maxpool")
    if is_max:
        y, sw = F.max_pool2d(dx_, k, s, p, return_indices=True)
        gy = cuda.from_numpy(rng.standard_normal(y.shape, dtype=np.float32))
        ours = {"fwd": lambda: F.max_pool2d(dx_, k, s, p, return_indices=True)[0],
                "bwd": lambda: F.max_pool2d_backward(gy, dx_, k, s, p, indices=sw),
                "unpool": lambda: F.max_unpool2d(y, sw)}
        hy, hsw = F.max_pool2d(x, k, s, p, return_indices=True)
        hgy = host(gy)
        cpu = {"fwd": lambda: hy,
               "bwd": lambda: F.max_pool2d_backward(hgy, x, k, s, p, indices=hsw),
               "unpool": lambda: F.max_unpool2d(hy, hsw)}
    else:
        gy = cuda.from_numpy(rng.standard_normal(F.avg_pool2d(x, k, s, p).shape, dtype=np.float32))
        ours = {"fwd": lambda: F.avg_pool2d(dx_, k, s, p),
                "bwd": lambda: F.avg_pool2d_backward(gy, dx_, k, s, p)}
        cpu = {"fwd": lambda: F.avg_pool2d(x, k, s, p),
               "bwd": lambda: F.avg_pool2d_backward(host(gy), x, k, s, p)}
    theirs = {}
    if torch is not None:
        tf = torch.nn.functional
        tx = torch.from_numpy(x).cuda()
        tgy = torch.from_numpy(host(gy)).cuda()
        if is_max:
            ty, ti = tf.max_pool2d(tx, k, s, p, return_indices=True)
            theirs = {"fwd": lambda: tf.max_pool2d(tx, k, s, p, return_indices=True)[0],
                      "bwd": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                          tgy, tx, [k, k], [s, s], [p, p], [1, 1], False, ti),
                      "unpool": lambda: tf.max_unpool2d(ty, ti, k, s, p, output_size=(h, w))}
        else:
            theirs = {"fwd": lambda: tf.avg_pool2d(tx, k, s, p),
                      "bwd": lambda: torch.ops.aten.avg_pool2d_backward(
                          tgy, tx, [k, k], [s, s], [p, p], False, True, None)}
    return 0.0, ours, theirs, cpu, {}


def main(args, conv_cases) -> int:
    if not cuda.is_available():
        print(f"bench_ops --device cuda: no CUDA device: {cuda.reason()}", file=sys.stderr)
        return 2
    torch = None
    if args.compare == "torch":
        try:
            import torch
        except ImportError:
            print("torch not installed: timing cnnfast only")
        if torch is not None and not torch.cuda.is_available():
            print("torch has no CUDA device: timing cnnfast only")
            torch = None
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cudnn.benchmark = True
    cases = {**{n: ("conv", v) for n, v in conv_cases.items()},
             **{n: ("pool", v) for n, v in POOL_CASES.items()}}
    if args.list:
        print("\n".join(cases))
        return 0
    names = [s.strip() for s in args.only.split(",")] if args.only else list(cases)
    bad = [n for n in names if n not in cases]
    if bad:
        raise SystemExit(f"--only: unknown case(s) {bad}; choose from {list(cases)}")

    def sync():
        cuda.synchronize()
        if torch is not None:
            torch.cuda.synchronize()

    info = cuda.device_info()
    print(f"cnnfast {cnnfast.__version__} CUDA on {info['name']} "
          f"(cc {info['compute_capability']}); torch {torch.__version__ if torch else '-'} "
          f"(cuDNN benchmark, TF32 off); reps {args.reps}")
    print(f"{'op':<30} {'config':<18} {'cnnfast ms':>10} {'torch ms':>9} {'ratio':>6} "
          f"{'GFLOP/s':>8}  rel_err")
    rng = np.random.default_rng(1234)
    algos = [a.strip() for a in args.algo.split(",")]  # e.g. auto,winograd: both, side by side
    records, ok = [], True
    for name in names:
        kind, spec = cases[name]
        flops, ours, theirs, cpu, ref64 = (conv_passes(spec, torch, rng, algos) if kind == "conv"
                                           else pool_passes(name, spec, torch, rng))
        for variant, fn in ours.items():
            pass_, _, algo = variant.partition("[")  # fwd[winograd] is timed against torch's fwd
            rec = dict(op=f"{kind}_{variant}", config=name, pass_=pass_,
                       algo=algo.rstrip("]") or "auto")
            if pass_ in ref64:  # both float32 results against float64 (cuDNN's own error as bar)
                want = host(ref64[pass_]())
                rec["torch_rel_err"] = rel_err(host(theirs[pass_]()), want)
                bar = max(1e-4, 4 * rec["torch_rel_err"])
            else:
                want = host(theirs[pass_]()) if pass_ in theirs else cpu[pass_]()
                bar = 1e-4
            err = rel_err(host(fn()), want)
            rec.update(rel_err=err, valid=err <= bar)
            if rec["valid"]:
                fns = [fn] + ([theirs[pass_]] if pass_ in theirs else [])
                ms = median_ms(fns, args.reps, sync)
                rec["cnnfast_ms"] = ms[0]
                if len(ms) > 1:
                    rec["torch_ms"], rec["ratio"] = ms[1], ms[1] / ms[0]
                if flops:
                    rec["gflops"] = flops / ms[0] / 1e6
            ok &= rec["valid"]
            records.append(rec)
            print(f"{rec['op']:<30} {name:<18} {cell(rec, 'cnnfast_ms', '10.3f')} "
                  f"{cell(rec, 'torch_ms', '9.3f')} {cell(rec, 'ratio', '6.2f')} "
                  f"{cell(rec, 'gflops', '8.0f')}  {err:.1e}"
                  + (f" (cuDNN {rec['torch_rel_err']:.1e})" if "torch_rel_err" in rec else "")
                  + ("" if rec["valid"] else "  INVALID (not timed)"), flush=True)
    for op in sorted({r["op"] for r in records}):
        rs = [r["ratio"] for r in records if r["op"] == op and "ratio" in r]
        if rs:
            print(f"geomean ratio {op}: {float(np.exp(np.mean(np.log(rs)))):.2f}")
    if len(algos) > 1:  # per row, each algorithm's time: what an 'auto' rule should pick
        print("fastest conv2d algorithm per row (ms):")
        for name in names:
            for pass_ in ("fwd", "bwd_data", "bwd_weight"):
                ms = {r["algo"]: r["cnnfast_ms"] for r in records
                      if r["config"] == name and r["pass_"] == pass_ and "cnnfast_ms" in r}
                if len(ms) > 1:
                    print(f"  {name:<18} {pass_:<11} " + "  ".join(
                        f"{a} {t:.3f}" for a, t in ms.items()) + f"  -> {min(ms, key=ms.get)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(device=info["name"], records=records), fh, indent=1)
    return 0 if ok else 1
