"""Pooling / unpooling benchmark: cnnfast vs PyTorch CPU side by side in one process, same
thread count, validated before timing; GB/s (bytes read + written) next to the copy bandwidth
measured in the same reps (cnnfast, torch and the copies run in turn, rep by rep).

    python bench/bench_pool.py [--threads 2] [--reps 7] [--only SUBSTRING]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import cnnfast
import cnnfast.functional as F


def interleaved_medians(fns, reps, warmup=2):
    """Median time of each fn, the fns run in turn within every rep (so a slow spell of this
    shared machine hits all of them, not just the one timed during it)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    ts = [[] for _ in fns]
    for _ in range(reps):
        for t, fn in zip(ts, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in ts]


def copy_fns(torch):
    """Plain copies of 64 MiB (numpy, and torch with its threads): the bandwidth reference."""
    src = np.random.default_rng(0).standard_normal(64 * 1024 * 1024 // 4 * 4, np.float32)
    dst = np.empty_like(src)
    ts, td = torch.from_numpy(src), torch.from_numpy(dst)
    return 2 * src.nbytes, [lambda: np.copyto(dst, src), lambda: td.copy_(ts)]


def nbytes(*arrays):
    return sum(a.nbytes for a in arrays)


def configs(torch, rng, only=""):
    """(name, cnnfast fn, torch fn, bytes moved, validation thunk) of the cases whose name
    contains `only`; a group of cases none of which is wanted allocates nothing."""
    A = torch.ops.aten
    out = []
    inputs = {}

    def data(*shape):  # one random input per shape, drawn when first wanted
        if shape not in inputs:
            inputs[shape] = rng.standard_normal(shape, np.float32)
        return inputs[shape]

    def wanted(tag, *ops):
        return any(only in f"{op} {tag}" for op in ops)

    for k, s, p in ((2, 2, 0), (3, 2, 1)):
        tag = f"2d k{k}s{s}p{p} 32x64x112x112"
        unpool = ("max_unpool", "max_unpool_backward") if k == 2 else ()
        if not wanted(tag, "max_pool", "max_pool_backward", "avg_pool", "avg_pool_backward",
                      *unpool):
            continue
        x2 = data(32, 64, 112, 112)
        t2 = torch.from_numpy(x2)
        y, sw = F.max_pool2d(x2, k, s, p, return_indices=True)
        ty, ti = torch.nn.functional.max_pool2d(t2, k, s, p, return_indices=True)
        g = rng.standard_normal(y.shape, np.float32)
        tg = torch.from_numpy(g)
        out.append((f"max_pool {tag} +indices",
                    lambda k=k, s=s, p=p: F.max_pool2d(x2, k, s, p, return_indices=True),
                    lambda k=k, s=s, p=p: torch.nn.functional.max_pool2d(t2, k, s, p,
                                                                         return_indices=True),
                    nbytes(x2, y, sw.indices),
                    lambda y=y, sw=sw, ty=ty, ti=ti: np.array_equal(y, ty.numpy()) and
                    np.array_equal(sw.indices, ti.numpy())))
        out.append((f"max_pool_backward {tag}",
                    lambda k=k, s=s, p=p, g=g, sw=sw: F.max_pool2d_backward(g, x2, k, s, p,
                                                                            indices=sw),
                    lambda k=k, s=s, p=p, tg=tg, ti=ti: A.max_pool2d_with_indices_backward(
                        tg, t2, [k, k], [s, s], [p, p], [1, 1], False, ti),
                    nbytes(g, sw.indices, x2),
                    lambda k=k, s=s, p=p, g=g, sw=sw, tg=tg, ti=ti: np.allclose(
                        F.max_pool2d_backward(g, x2, k, s, p, indices=sw),
                        A.max_pool2d_with_indices_backward(tg, t2, [k, k], [s, s], [p, p],
                                                           [1, 1], False, ti).numpy())))
        ya = F.avg_pool2d(x2, k, s, p)
        out.append((f"avg_pool {tag}", lambda k=k, s=s, p=p: F.avg_pool2d(x2, k, s, p),
                    lambda k=k, s=s, p=p: torch.nn.functional.avg_pool2d(t2, k, s, p),
                    nbytes(x2, ya),
                    lambda k=k, s=s, p=p, ya=ya: np.allclose(
                        ya, torch.nn.functional.avg_pool2d(t2, k, s, p).numpy(), atol=1e-6)))
        out.append((f"avg_pool_backward {tag}",
                    lambda k=k, s=s, p=p, g=g: F.avg_pool2d_backward(g, x2, k, s, p),
                    lambda k=k, s=s, p=p, tg=tg: A.avg_pool2d_backward(
                        tg, t2, [k, k], [s, s], [p, p], False, True, None),
                    nbytes(g, x2),
                    lambda k=k, s=s, p=p, g=g, tg=tg: np.allclose(
                        F.avg_pool2d_backward(g, x2, k, s, p),
                        A.avg_pool2d_backward(tg, t2, [k, k], [s, s], [p, p], False, True,
                                              None).numpy(), atol=1e-6)))
        if k == 2:
            u = F.max_unpool2d(y, sw)
            out.append((f"max_unpool {tag}", lambda y=y, sw=sw: F.max_unpool2d(y, sw),
                        lambda ty=ty, ti=ti: torch.nn.functional.max_unpool2d(
                            ty, ti, 2, 2, output_size=(112, 112)),
                        nbytes(y, sw.indices, u),
                        lambda u=u, ty=ty, ti=ti: np.array_equal(
                            u, torch.nn.functional.max_unpool2d(ty, ti, 2, 2).numpy())))
            gu = rng.standard_normal(u.shape, np.float32)
            tgu = torch.from_numpy(gu)
            tflat = ti.flatten(2)
            out.append((f"max_unpool_backward {tag}",
                        lambda y=y, sw=sw, gu=gu: F.max_unpool2d_backward(gu, y, sw),
                        lambda tgu=tgu, tflat=tflat, ty=ty: tgu.flatten(2).gather(
                            2, tflat).view_as(ty),
                        nbytes(gu, sw.indices, y),
                        lambda y=y, sw=sw, gu=gu, tgu=tgu, tflat=tflat, ty=ty: np.array_equal(
                            F.max_unpool2d_backward(gu, y, sw),
                            tgu.flatten(2).gather(2, tflat).view_as(ty).numpy())))
    # the last: ResNet-50's head at batch 64
    for osz, shape in ((1, (32, 64, 112, 112)), (7, (32, 64, 112, 112)), (1, (64, 2048, 7, 7))):
        tag = f"2d ->{osz}x{osz} {'x'.join(map(str, shape))}"
        if not wanted(tag, "adaptive_avg", "adaptive_avg_backward"):
            continue
        xa = data(*shape)
        ta = torch.from_numpy(xa)
        tag = "adaptive_avg " + tag
        ya = F.adaptive_avg_pool2d(xa, osz)
        g = rng.standard_normal(ya.shape, np.float32)
        tg = torch.from_numpy(g)
        out.append((tag, lambda osz=osz, xa=xa: F.adaptive_avg_pool2d(xa, osz),
                    lambda osz=osz, ta=ta: torch.nn.functional.adaptive_avg_pool2d(ta, osz),
                    nbytes(xa, ya),
                    lambda osz=osz, xa=xa, ta=ta, ya=ya: np.allclose(
                        ya, torch.nn.functional.adaptive_avg_pool2d(ta, osz).numpy(), atol=1e-5)))
        out.append((tag.replace("adaptive_avg", "adaptive_avg_backward"),
                    lambda osz=osz, g=g, xa=xa: F.adaptive_avg_pool2d_backward(g, xa, osz),
                    lambda tg=tg, ta=ta: A._adaptive_avg_pool2d_backward(tg, ta),
                    nbytes(g, xa),
                    lambda osz=osz, g=g, tg=tg, xa=xa, ta=ta: np.allclose(
                        F.adaptive_avg_pool2d_backward(g, xa, osz),
                        A._adaptive_avg_pool2d_backward(tg, ta).numpy(), atol=1e-6)))
    tag = "3d k2s2 4x32x32x64x64"
    pool_ops = ("max_pool", "max_pool_backward", "avg_pool", "avg_pool_backward")
    if wanted(tag, *pool_ops):
        out += pool3d_cases(torch, rng, tag)
    tag = "1d k4s4 64x128x4096"
    if wanted(tag, *pool_ops):
        out += pool1d_cases(torch, rng, tag)
    return [case for case in out if only in case[0]]


def pool3d_cases(torch, rng, tag):
    A = torch.ops.aten
    x3 = rng.standard_normal((4, 32, 32, 64, 64), np.float32)
    t3 = torch.from_numpy(x3)
    y3, sw3 = F.max_pool3d(x3, 2, return_indices=True)
    ty3, ti3 = torch.nn.functional.max_pool3d(t3, 2, return_indices=True)
    g3 = rng.standard_normal(y3.shape, np.float32)
    tg3 = torch.from_numpy(g3)
    return [
        (f"max_pool {tag} +indices", lambda: F.max_pool3d(x3, 2, return_indices=True),
         lambda: torch.nn.functional.max_pool3d(t3, 2, return_indices=True),
         nbytes(x3, y3, sw3.indices),
         lambda: np.array_equal(y3, ty3.numpy()) and np.array_equal(sw3.indices, ti3.numpy())),
        (f"max_pool_backward {tag}", lambda: F.max_pool3d_backward(g3, x3, 2, indices=sw3),
         lambda: A.max_pool3d_with_indices_backward(tg3, t3, [2] * 3, [2] * 3, [0] * 3, [1] * 3,
                                                    False, ti3),
         nbytes(g3, sw3.indices, x3),
         lambda: np.allclose(F.max_pool3d_backward(g3, x3, 2, indices=sw3),
                             A.max_pool3d_with_indices_backward(
                                 tg3, t3, [2] * 3, [2] * 3, [0] * 3, [1] * 3, False, ti3).numpy())),
        (f"avg_pool {tag}", lambda: F.avg_pool3d(x3, 2),
         lambda: torch.nn.functional.avg_pool3d(t3, 2), nbytes(x3, y3),
         lambda: np.allclose(F.avg_pool3d(x3, 2), torch.nn.functional.avg_pool3d(t3, 2).numpy(),
                             atol=1e-6)),
        (f"avg_pool_backward {tag}", lambda: F.avg_pool3d_backward(g3, x3, 2),
         lambda: A.avg_pool3d_backward(tg3, t3, [2] * 3, [2] * 3, [0] * 3, False, True, None),
         nbytes(g3, x3),
         lambda: np.allclose(F.avg_pool3d_backward(g3, x3, 2),
                             A.avg_pool3d_backward(tg3, t3, [2] * 3, [2] * 3, [0] * 3, False,
                                                   True, None).numpy(), atol=1e-6)),
    ]


def pool1d_cases(torch, rng, tag):
    A = torch.ops.aten
    x1 = rng.standard_normal((64, 128, 4096), np.float32)
    t1 = torch.from_numpy(x1)
    y1, sw1 = F.max_pool1d(x1, 4, return_indices=True)
    ty1, ti1 = torch.nn.functional.max_pool1d(t1, 4, return_indices=True)
    g1 = rng.standard_normal(y1.shape, np.float32)
    tg1 = torch.from_numpy(g1)

    def torch_max1d_backward():  # what torch's autograd runs for max_pool1d
        return A.max_pool2d_with_indices_backward(tg1[:, :, None], t1[:, :, None], [1, 4],
                                                  [1, 4], [0, 0], [1, 1], False,
                                                  ti1[:, :, None])[:, :, 0]

    def torch_avg1d_backward():
        return A.avg_pool2d_backward(tg1[:, :, None], t1[:, :, None], [1, 4], [1, 4], [0, 0],
                                     False, True, None)[:, :, 0]
    return [
        (f"max_pool {tag} +indices", lambda: F.max_pool1d(x1, 4, return_indices=True),
         lambda: torch.nn.functional.max_pool1d(t1, 4, return_indices=True),
         nbytes(x1, y1, sw1.indices),
         lambda: np.array_equal(y1, ty1.numpy()) and np.array_equal(sw1.indices, ti1.numpy())),
        (f"max_pool_backward {tag}", lambda: F.max_pool1d_backward(g1, x1, 4, indices=sw1),
         torch_max1d_backward, nbytes(g1, sw1.indices, x1),
         lambda: np.allclose(F.max_pool1d_backward(g1, x1, 4, indices=sw1),
                             torch_max1d_backward().numpy())),
        (f"avg_pool {tag}", lambda: F.avg_pool1d(x1, 4),
         lambda: torch.nn.functional.avg_pool1d(t1, 4), nbytes(x1, y1),
         lambda: np.allclose(F.avg_pool1d(x1, 4), torch.nn.functional.avg_pool1d(t1, 4).numpy(),
                             atol=1e-6)),
        (f"avg_pool_backward {tag}", lambda: F.avg_pool1d_backward(g1, x1, 4),
         torch_avg1d_backward, nbytes(g1, x1),
         lambda: np.allclose(F.avg_pool1d_backward(g1, x1, 4), torch_avg1d_backward().numpy(),
                             atol=1e-6)),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    copy_bytes, copies = copy_fns(torch)
    print(f"# {platform.processor() or platform.machine()}, threads={args.threads}, "
          f"cnnfast {cnnfast.__version__} {cnnfast.info()['isa']}, torch {torch.__version__}")
    print("# copy GB/s: best of a numpy and a torch 64 MiB copy (read + write), timed in turn "
          "with each case's reps; %copy = GB/s over it")
    print(f"{'case':<52} {'cnnfast ms':>10} {'torch ms':>9} {'ratio':>6} {'GB/s':>6} "
          f"{'copy':>6} {'%copy':>6}")
    if args.threads < 1 or args.reps < 1:
        ap.error("--threads and --reps must be >= 1")
    matched = 0
    with torch.no_grad():
        for name, ours, theirs, moved, valid in configs(torch, rng, args.only):
            matched += 1
            if not valid():
                raise SystemExit(f"VALIDATION FAILED: {name}")
            t_ours, t_theirs, *t_copy = interleaved_medians([ours, theirs] + copies, args.reps)
            gbs, bw = moved / t_ours / 1e9, copy_bytes / min(t_copy) / 1e9
            print(f"{name:<52} {t_ours * 1e3:10.2f} {t_theirs * 1e3:9.2f} "
                  f"{t_theirs / t_ours:6.2f} {gbs:6.1f} {bw:6.1f} {100 * gbs / bw:5.0f}%",
                  flush=True)
    if not matched:
        raise SystemExit(f"--only {args.only!r}: no case name contains it")


if __name__ == "__main__":
    main()
