"""bench/bench_conv3d_cuda.py — cnnfast's CUDA conv3d (conv3d.cu) vs PyTorch/cuDNN on the same GPU
(TF32 off, cudnn.benchmark): forward, backward-data and backward-weight of C3D / 3-D U-Net-like
layers, each validated against PyTorch in float64 first, then timed alternately (each call
synchronized, median). ratio = torch ms / cnnfast ms. Exit 2 without a CUDA device or torch."""
from __future__ import annotations

import sys

import numpy as np

import cnnfast.functional as F
from cnnfast import cuda

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_ops_cuda import median_ms, rel_err  # noqa: E402

# name: (N, C, D, H, W, K, kernel, stride, padding)
CASES = {
    "c3d_conv2": (4, 64, 16, 56, 56, 128, 3, 1, 1),
    "c3d_conv4": (4, 256, 4, 14, 14, 256, 3, 1, 1),
    "unet3d_down": (2, 32, 32, 64, 64, 64, 3, 2, 1),
    "pointwise": (4, 128, 8, 28, 28, 64, 1, 1, 0),
}


def main() -> int:
    try:
        import torch
    except ImportError:
        print("torch not installed", file=sys.stderr)
        return 2
    if not (cuda.is_available() and torch.cuda.is_available()):
        print(f"no CUDA device: {cuda.reason() or 'torch has no CUDA'}", file=sys.stderr)
        return 2
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(3)
    sync = lambda: (cuda.synchronize(), torch.cuda.synchronize())  # noqa: E731
    print(f"{'pass':<12} {'case':<12} {'cnnfast ms':>10} {'torch ms':>9} {'ratio':>6}  rel_err "
          f"(cuDNN's)")
    ratios = {}
    for name, (n, c, d, h, w, k, ks, st, pad) in CASES.items():
        x = rng.standard_normal((n, c, d, h, w), dtype=np.float32)
        wt = (rng.standard_normal((k, c, ks, ks, ks)) / np.sqrt(c * ks ** 3)).astype(np.float32)
        out = [(v + 2 * pad - ks) // st + 1 for v in (d, h, w)]
        gy = rng.standard_normal((n, k, *out), dtype=np.float32)
        dx, dw, dgy = cuda.from_numpy(x), cuda.from_numpy(wt), cuda.from_numpy(gy)
        t = {dt: [torch.from_numpy(a).cuda().to(dt) for a in (x, wt, gy)]
             for dt in (torch.float32, torch.float64)}
        cb = torch.ops.aten.convolution_backward
        args = ([st] * 3, [pad] * 3, [1] * 3, False, [0] * 3, 1)
        kw = dict(stride=st, padding=pad)

        def theirs(dt, p):
            tx, tw, tg = t[dt]
            if p == "fwd":
                return torch.nn.functional.conv3d(tx, tw, None, st, pad)
            mask = [True, False, False] if p == "bwd_data" else [False, True, False]
            return cb(tg, tx, tw, None, *args, mask)[0 if p == "bwd_data" else 1]
        ours = {"fwd": lambda: F.conv3d(dx, dw, **kw),
                "bwd_data": lambda: F.conv3d_backward(
                    dgy, dx, dw, needs_input_grad=(True, False, False), **kw)[0],
                "bwd_weight": lambda: F.conv3d_backward(
                    dgy, dx, dw, needs_input_grad=(False, True, False), **kw)[1]}
        for p, fn in ours.items():
            ref = theirs(torch.float64, p).cpu().numpy()
            err = rel_err(fn().to_numpy(), ref)
            terr = rel_err(theirs(torch.float32, p).cpu().numpy(), ref)
            ms = median_ms([fn, lambda: theirs(torch.float32, p)], 5, sync)
            ratios.setdefault(p, []).append(ms[1] / ms[0])
            print(f"{p:<12} {name:<12} {ms[0]:10.3f} {ms[1]:9.3f} {ms[1] / ms[0]:6.2f}  {err:.1e} "
                  f"({terr:.1e})" + ("" if err <= max(1e-4, 4 * terr) else "  INVALID"), flush=True)
    for p, rs in ratios.items():
        print(f"geomean ratio conv3d {p}: {float(np.exp(np.mean(np.log(rs)))):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
