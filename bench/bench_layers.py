"""Layer-API training steps, cnnfast.nn vs the same model in torch.nn (same weights, same thread
count, one process): LeNet-5 (batch 64, 1×28×28, SGD + cross-entropy) and a ResNet basic block
(batch 32, 64×56×56, conv-BN-ReLU-conv-BN + identity, ReLU; SGD + MSE).

Validates first (one step from identical weights must give the same loss and parameters), then
times full steps (forward, loss, backward, optimizer step), the two libraries interleaved rep
by rep: medians of --reps after --warmup.

LeNet-5's subsampling layers S2/S4 are average pooling when cnnfast.functional has avg_pool2d,
otherwise LeNet's trainable 2×2/2 subsampling written as a depthwise 2×2 stride-2 convolution (a
per-tap generalization of LeCun's coefficient × sum + bias); both libraries run the same model.

    python bench/bench_layers.py --threads 2 [--reps 20] [--which lenet,resnet]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import cnnfast
from cnnfast import nn, optim


def lenet(mod):
    """LeNet-5 as in PyTorch's tutorial: C5 (a 5×5 conv on 5×5 maps) is the Linear(400, 120) it
    equals. S2/S4 are AvgPool2d(2) once cnnfast has it, else LeNet's trainable subsampling."""
    def subsample(c):
        if not hasattr(cnnfast.functional, "avg_pool2d"):  # same choice for both libraries
            return mod.Conv2d(c, c, 2, stride=2, groups=c)
        return mod.AvgPool2d(2)
    return mod.Sequential(
        mod.Conv2d(1, 6, 5, padding=2), mod.Tanh(), subsample(6), mod.Tanh(),  # C1, S2: 6×14×14
        mod.Conv2d(6, 16, 5), mod.Tanh(), subsample(16), mod.Tanh(),           # C3, S4: 16×5×5
        mod.Flatten(), mod.Linear(400, 120), mod.Tanh(),                       # C5
        mod.Linear(120, 84), mod.Tanh(), mod.Linear(84, 10))                   # F6, output


def resnet_block(mod):
    body = mod.Sequential(mod.Conv2d(64, 64, 3, padding=1, bias=False), mod.BatchNorm2d(64),
                          mod.ReLU(), mod.Conv2d(64, 64, 3, padding=1, bias=False),
                          mod.BatchNorm2d(64))
    if mod is nn:
        return nn.Sequential(nn.Residual(body), nn.ReLU())

    import torch

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = body
            self.relu = torch.nn.ReLU()

        def forward(self, x):
            return self.relu(self.block(x) + x)

    wrapper = torch.nn.Sequential()
    wrapper.add_module("0", Block())
    return wrapper



def make_pair(name, torch):
    if name == "lenet":
        ours, theirs = lenet(nn), lenet(torch.nn)
        x = np.random.default_rng(1).standard_normal((64, 1, 28, 28)).astype(np.float32)
        y = np.random.default_rng(2).integers(0, 10, 64)
        crit, tcrit = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
        target, ttarget = y, torch.tensor(y)
    else:
        ours, theirs = resnet_block(nn), resnet_block(torch.nn)
        x = np.random.default_rng(1).standard_normal((32, 64, 56, 56)).astype(np.float32)
        t = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
        crit, tcrit = nn.MSELoss(), torch.nn.MSELoss()
        target, ttarget = t, torch.tensor(t)
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})
    theirs.train(), ours.train()
    ours.set_needs_input_grad(False)  # as in torch, where the input does not require grad
    opt = optim.SGD(ours.parameters(), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)

    def step_ours():
        loss = crit(ours(x), target)
        ours.zero_grad()
        ours.backward(crit.backward())
        opt.step()
        return float(loss)

    xt = torch.tensor(x)

    def step_torch():
        topt.zero_grad(set_to_none=False)
        loss = tcrit(theirs(xt), ttarget)
        loss.backward()
        topt.step()
        return float(loss.item())

    return ours, theirs, step_ours, step_torch


def validate(ours, theirs, step_ours, step_torch):
    """One step of each from the same weights: the losses and the stepped parameters agree, or
    the benchmark stops (a check that `python -O` would not strip)."""
    lo, lt = step_ours(), step_torch()
    if not abs(lo - lt) <= 1e-4 * max(1.0, abs(lt)):
        raise SystemExit(f"VALIDATION FAILED: loss {lo} vs torch {lt}")
    sd = theirs.state_dict()
    for k, v in ours.state_dict().items():
        ref = sd[k].detach().numpy()
        err = np.abs(v - ref).max() / max(np.abs(ref).max(), 1e-12)
        if not err < 1e-3:
            raise SystemExit(f"VALIDATION FAILED: {k}: relative difference {err:.2e} after one "
                             "step")


def timed_pair(fa, fb, warmup, reps):
    """Interleaved timing (a, b, a, b, …) so load drift on a shared machine hits both alike:
    returns the medians of a and b and the median of the per-rep ratios b/a."""
    for _ in range(warmup):
        fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        for f, ts in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    return (statistics.median(ta), statistics.median(tb),
            statistics.median(b / a for a, b in zip(ta, tb)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0, help="0: 30 for LeNet, 5 for ResNet")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--which", default="lenet,resnet")
    args = ap.parse_args()
    bad = set(args.which.split(",")) - {"lenet", "resnet"}
    if bad or args.threads < 1 or args.reps < 0:
        ap.error(f"--which takes lenet and/or resnet (got {sorted(bad)}); --threads >= 1, "
                 f"--reps >= 0")
    import torch
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    commit = cnnfast.info()["build_commit"]  # of the build timed, not of the source tree
    print(f"# {platform.processor() or platform.machine()}, threads={args.threads}, "
          f"cnnfast {cnnfast.__version__} isa={cnnfast.info()['isa']}, torch {torch.__version__}, "
          f"commit {commit}")
    for name in args.which.split(","):
        torch.manual_seed(0)
        ours, theirs, so, st = make_pair(name, torch)
        validate(ours, theirs, so, st)
        reps = args.reps or (30 if name == "lenet" else 5)
        t_ours, t_torch, ratio = timed_pair(so, st, args.warmup, reps)
        print(f"{name:7s} step: cnnfast {t_ours * 1e3:8.2f} ms   torch {t_torch * 1e3:8.2f} ms   "
              f"ratio (torch/cnnfast, median of per-rep ratios) {ratio:5.2f}x   [{reps} reps]")


if __name__ == "__main__":
    main()
