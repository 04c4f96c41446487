"""Layer-API training steps, cnnfast.nn vs the same model in torch.nn (same weights, same thread
count, one process): LeNet-5 (batch 64, 1×28×28, SGD + cross-entropy) and a ResNet basic block
(batch 32, 64×56×56, conv-BN-ReLU-conv-BN + identity, ReLU; SGD + MSE).

Validates first (one step from identical weights must give the same loss and parameters), then
times full steps (forward, loss, backward, optimizer step): median of --reps after --warmup.

LeNet-5's subsampling layers S2/S4 are its trainable 2×2/2 subsampling, written as a depthwise
2×2 stride-2 convolution (a per-tap generalization of LeCun's coefficient × sum + bias), so both
libraries run the same model with the ops this branch has.

    python bench/bench_layers.py --threads 2 [--reps 20] [--which lenet,resnet]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time

import numpy as np

import cnnfast
from cnnfast import nn, optim


def lenet(mod):
    return mod.Sequential(
        mod.Conv2d(1, 6, 5, padding=2), mod.Tanh(),                       # C1: 6×28×28
        mod.Conv2d(6, 6, 2, stride=2, groups=6), mod.Tanh(),              # S2: 6×14×14
        mod.Conv2d(6, 16, 5), mod.Tanh(),                                 # C3: 16×10×10
        mod.Conv2d(16, 16, 2, stride=2, groups=16), mod.Tanh(),           # S4: 16×5×5
        mod.Conv2d(16, 120, 5), mod.Tanh(), mod.Flatten(),                # C5: 120
        mod.Linear(120, 84), mod.Tanh(), mod.Linear(84, 10))              # F6, output


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
    lo, lt = step_ours(), step_torch()
    assert abs(lo - lt) <= 1e-4 * max(1.0, abs(lt)), f"loss {lo} vs torch {lt}"
    sd = theirs.state_dict()
    for k, v in ours.state_dict().items():
        ref = sd[k].detach().numpy()
        err = np.abs(v - ref).max() / max(np.abs(ref).max(), 1e-12)
        assert err < 1e-3, f"{k}: relative difference {err:.2e} after one step"


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=0, help="0: 30 for LeNet, 5 for ResNet")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--which", default="lenet,resnet")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)
    commit = subprocess.run(["git", "-C", __file__.rsplit("/", 2)[0] or ".", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# {platform.processor() or platform.machine()}, threads={args.threads}, "
          f"cnnfast {cnnfast.__version__} isa={cnnfast.info()['isa']}, torch {torch.__version__}, "
          f"commit {commit}")
    for name in args.which.split(","):
        torch.manual_seed(0)
        ours, theirs, so, st = make_pair(name, torch)
        validate(ours, theirs, so, st)
        reps = args.reps or (30 if name == "lenet" else 5)
        t_ours = timed(so, args.warmup, reps)
        t_torch = timed(st, args.warmup, reps)
        print(f"{name:7s} step: cnnfast {t_ours * 1e3:8.2f} ms   torch {t_torch * 1e3:8.2f} ms   "
              f"ratio (torch/cnnfast) {t_torch / t_ours:5.2f}x   [median of {reps}]")


if __name__ == "__main__":
    main()
