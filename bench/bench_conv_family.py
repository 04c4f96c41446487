"""Benchmark of the convolution family (issue 5): cnnfast vs PyTorch CPU in one process, same
thread count. Every case is validated against PyTorch first, then timed (median of reps after
warm-up). Backward = all gradients (input, weight, bias) via aten.convolution_backward in torch.
Locally connected / tiled are compared with the best PyTorch formulation a user would write
(unfold + einsum per location / per bank) and timed forward and backward (autograd); their
GFLOP/s column is also given as % of the FP32 peak that an FMA loop measures in the same run,
twice: from the alternating median (each cnnfast call follows a torch call, after which this
host's idle cores wake slowly: a ~1 ms call then takes ~1.3-1.6x its back-to-back time) and
"steady": the median per-call time of bursts of back-to-back cnnfast calls, the state the FMA
loop's peak is measured in.

    python bench/bench_conv_family.py [--threads N] [--reps R] [--only NAME]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import cnnfast
import cnnfast.functional as F


def time_pair(ours, theirs, reps, warmup=2):
    """Median seconds of `ours` and `theirs`, timed alternately rep by rep so that both see the
    same load on a shared machine."""
    for _ in range(warmup):
        ours()
        theirs()
    ta, tb = [], []
    for _ in range(reps):
        for fn, ts in ((ours, ta), (theirs, tb)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def steady(fn, calls=20, bursts=5):
    """Median over bursts of the mean seconds per call of `calls` back-to-back calls."""
    fn()
    per_call = []
    for _ in range(bursts):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - t0) / calls)
    return statistics.median(per_call)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check(name, got, want, tol=2e-4):
    for g, w in zip(got, want):
        e = rel_err(g, w)
        if not e <= tol:
            raise SystemExit(f"{name}: validation failed, relative error {e:.2e}")


# ---- dense family: (name, x shape, weight shape, kwargs, cnnfast fwd, bwd, transposed) ----------
def dense_cases():
    return [
        ("conv1d 32x64x4096->64 k9 p4", (32, 64, 4096), (64, 64, 9), dict(padding=4),
         F.conv1d, F.conv1d_backward, False),
        ("conv3d 4x16x16x32x32->32 k3 p1", (4, 16, 16, 32, 32), (32, 16, 3, 3, 3),
         dict(padding=1), F.conv3d, F.conv3d_backward, False),
        ("conv3d 2x64x16x28x28->64 k3 p1", (2, 64, 16, 28, 28), (64, 64, 3, 3, 3),
         dict(padding=1), F.conv3d, F.conv3d_backward, False),
        ("conv_transpose2d 8x64x32x32->32 k4 s2 p1", (8, 64, 32, 32), (64, 32, 4, 4),
         dict(stride=2, padding=1), F.conv_transpose2d, F.conv_transpose2d_backward, True),
        ("conv_transpose3d 2x32x8x16x16->16 k4 s2 p1", (2, 32, 8, 16, 16), (32, 16, 4, 4, 4),
         dict(stride=2, padding=1), F.conv_transpose3d, F.conv_transpose3d_backward, True),
    ]


def bench_dense(rng, reps, only):
    rows = []
    for name, xs, ws, kw, fwd, bwd, transposed in dense_cases():
        if only and only not in name:
            continue
        nd = len(xs) - 2
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32) * np.float32(1 / np.sqrt(np.prod(ws[1:])))
        b = rng.standard_normal(ws[1] if transposed else ws[0]).astype(np.float32)
        tx, tw, tb = map(torch.from_numpy, (x, w, b))
        tfwd = getattr(torch.nn.functional, f"conv{'_transpose' if transposed else ''}{nd}d")
        ty = tfwd(tx, tw, tb, **kw)
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        tg = torch.from_numpy(g)
        stride, pad = [kw.get("stride", 1)] * nd, [kw.get("padding", 0)] * nd

        def torch_bwd():
            return torch.ops.aten.convolution_backward(
                tg, tx, tw, [tw.shape[1] if transposed else tw.shape[0]], stride, pad, [1] * nd,
                transposed, [0] * nd, 1, [True, True, True])

        check(name + " forward", [fwd(x, w, b, **kw)], [ty.numpy()])
        check(name + " backward", bwd(g, x, w, b, **kw), [t.numpy() for t in torch_bwd()])
        with torch.no_grad():
            t_cf, t_tf = time_pair(lambda: fwd(x, w, b, **kw), lambda: tfwd(tx, tw, tb, **kw), reps)
            t_cb, t_tb = time_pair(lambda: bwd(g, x, w, b, **kw), torch_bwd, reps)
        rows += [(name, "forward", t_cf, t_tf), (name, "backward", t_cb, t_tb)]
    return rows


# ---- locally connected / tiled ---------------------------------------------------------------------
def bench_local(rng, reps, only):
    rows = []
    N, C, H, K, R = 32, 16, 28, 16, 3
    P = H - R + 1
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    for tiles in ((P, P), (2, 2)):
        local = tiles == (P, P)
        name = (f"locally_connected2d {N}x{C}x{H}x{H}->{K} k3" if local else
                f"tiled_conv2d T=2x2 {N}x{C}x{H}x{H}->{K} k3")
        if only and only not in name:
            continue
        w = (rng.standard_normal(tiles + (K, C, R, R)) / np.sqrt(C * R * R)).astype(np.float32)
        b = rng.standard_normal((K, P, P) if local else tiles + (K,)).astype(np.float32)
        tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
        bank = (torch.arange(P)[:, None] % tiles[0]) * tiles[1] + torch.arange(P)[None, :] % tiles[1]
        bank = bank.reshape(-1)  # (P*Q,) bank of each output location

        def torch_fwd():
            cols = torch.nn.functional.unfold(tx, R)                      # (N, C*R*R, P*Q)
            if local:
                y = torch.einsum("ncl,lkc->nkl", cols, tw.reshape(P * P, K, C * R * R))
                return y.reshape(N, K, P, P) + tb
            # tiled: one matmul per bank over that bank's gathered columns
            y = cols.new_empty(N, K, P * P)
            wb = tw.reshape(-1, K, C * R * R)
            out = []
            for i in range(wb.shape[0]):
                idx = (bank == i).nonzero().squeeze(1)
                out.append((idx, torch.einsum("kc,ncl->nkl", wb[i], cols[:, :, idx])))
            y = torch.zeros(N, K, P * P, dtype=cols.dtype).index_copy(
                2, torch.cat([i for i, _ in out]), torch.cat([v for _, v in out], 2))
            return (y.reshape(N, K, P, P) + tb.reshape(-1, K)[bank].t().reshape(1, K, P, P))

        fwd, bwd = ((F.locally_connected2d, F.locally_connected2d_backward) if local else
                    (F.tiled_conv2d, F.tiled_conv2d_backward))
        ty = torch_fwd()
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        tg = torch.from_numpy(g)
        tgrads = torch.autograd.grad(ty, (tx, tw, tb), tg, retain_graph=True)
        check(name + " forward", [fwd(x, w, b)], [ty.detach().numpy()])
        check(name + " backward", bwd(g, x, w, b), [t.numpy() for t in tgrads])
        def torch_fwd_nograd():
            with torch.no_grad():
                return torch_fwd()

        t_cf, t_tf = time_pair(lambda: fwd(x, w, b), torch_fwd_nograd, reps)
        t_cb, t_tb = time_pair(lambda: bwd(g, x, w, b), lambda: torch.autograd.grad(
            ty, (tx, tw, tb), tg, retain_graph=True), reps)
        flops = 2.0 * N * K * P * P * C * R * R
        s_f, s_b = steady(lambda: fwd(x, w, b)), steady(lambda: bwd(g, x, w, b))
        rows += [(name, "forward", t_cf, t_tf, flops, s_f),
                 (name, "backward", t_cb, t_tb, 2 * flops, s_b)]
        if not local:
            rows += bench_tiled_as_strided_convs(tx, tw, tb, x, w, b, g, tiles, reps, flops, name)
    return rows


def bench_tiled_as_strided_convs(tx, tw, tb, x, w, b, g, tiles, reps, flops, name):
    """A stronger PyTorch formulation of tiled conv (stride 1, no padding): bank (a, c) is a conv
    with stride T on the input shifted by (a, c); its outputs interleave into y[:, :, a::Th, c::Tw]."""
    N, K, P, Q = g.shape

    def torch_fwd():
        y = tx.new_empty(N, K, P, Q)
        for a in range(tiles[0]):
            for c in range(tiles[1]):
                yb = torch.nn.functional.conv2d(tx[:, :, a:, c:], tw[a, c], tb[a, c],
                                                stride=tiles)
                y[:, :, a::tiles[0], c::tiles[1]] = yb[:, :, :len(range(a, P, tiles[0])),
                                                       :len(range(c, Q, tiles[1]))]
        return y

    ty = torch_fwd()
    tg = torch.from_numpy(g)
    check(name + " (strided convs) forward", [F.tiled_conv2d(x, w, b)], [ty.detach().numpy()])

    def torch_fwd_nograd():
        with torch.no_grad():
            return torch_fwd()

    t_cf, t_tf = time_pair(lambda: F.tiled_conv2d(x, w, b), torch_fwd_nograd, reps)
    t_cb, t_tb = time_pair(lambda: F.tiled_conv2d_backward(g, x, w, b), lambda: torch.autograd.grad(
        ty, (tx, tw, tb), tg, retain_graph=True), reps)
    label = name + " vs torch strided conv per bank"
    return [(label, "forward", t_cf, t_tf, flops), (label, "backward", t_cb, t_tb, 2 * flops)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads={args.threads} reps={args.reps} cnnfast={cnnfast.info()} torch={torch.__version__}")
    # this run's FP32 FMA peak: the best of three (a descheduled thread only lowers one of them)
    peak = max(cnnfast._core._peak_gflops(args.threads, 0.5) for _ in range(3))
    print(f"FP32 peak at {args.threads} threads (FMA loop, this run): {peak:.1f} GFLOP/s")
    dense = bench_dense(rng, args.reps, args.only)
    local = bench_local(rng, args.reps, args.only)
    print("| case | pass | cnnfast ms | torch ms | ratio (torch/cnnfast) | cnnfast GFLOP/s "
          "| % of peak | steady ms | steady % of peak |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for row in dense + local:
        name, what, tc, tt = row[:4]
        gf = row[4] / tc / 1e9 if len(row) > 4 else None
        gfs = " | " if gf is None else f"{gf:.1f} | {100 * gf / peak:.0f} %"
        if len(row) > 5:
            gfs += f" | {row[5] * 1e3:.2f} | {100 * row[4] / row[5] / 1e9 / peak:.0f} %"
        else:
            gfs += " | | "
        print(f"| {name} | {what} | {tc * 1e3:.2f} | {tt * 1e3:.2f} | {tt / tc:.2f} | {gfs} |")
        if len(row) == 4:
            ratios.append(tt / tc)
    if ratios:
        print(f"dense geometric mean ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f}")


if __name__ == "__main__":
    main()
