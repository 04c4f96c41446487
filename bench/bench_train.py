"""Benchmark: LeNet-5 training on MNIST, cnnfast vs the same model in PyTorch CPU, in one process
with the same threads, initial weights, batch order, batch size and optimizer (SGD + momentum).

Validates first (same logits, same parameters after one SGD step), then times whole epochs
(median over --reps epochs after a warm-up) and compares test accuracy after the same epochs.
Needs cnnfast.nn / cnnfast.optim (the layer API) and torch.

  python bench/bench_train.py --threads 2 --reps 3          # full MNIST epochs
  python bench/bench_train.py --threads 2 --limit 6400      # quick: first 6400 images
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist")


def torch_lenet5(tnn):
    return tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
        tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


class TorchStep:
    def __init__(self, torch, net, opt):
        self.torch, self.net, self.opt = torch, net, opt
        self.lossf = torch.nn.CrossEntropyLoss()

    def __call__(self, xb, yb):
        self.opt.zero_grad()
        loss = self.lossf(self.net(self.torch.from_numpy(xb)), self.torch.from_numpy(yb))
        loss.backward()
        self.opt.step()

    def accuracy(self, x, y):
        with self.torch.no_grad():
            self.net.eval()
            pred = np.concatenate([self.net(self.torch.from_numpy(x[i:i + 1000])).argmax(1).numpy()
                                   for i in range(0, len(x), 1000)])
            self.net.train()
        return float(np.mean(pred == y))


class CnnfastStep:
    def __init__(self, model, loss, opt):
        self.model, self.loss, self.opt = model, loss, opt
        model.set_needs_input_grad(False)  # as fit() does, and as torch skips it for the data

    def __call__(self, xb, yb):
        self.opt.zero_grad()
        self.loss(self.model(xb), yb)
        self.model.backward(self.loss.backward())
        self.opt.step()

    def accuracy(self, x, y):
        from cnnfast.train import evaluate
        return evaluate(self.model, (x, y), batch_size=1000)["accuracy"]


def time_epoch(step, loader, epoch) -> float:
    t0 = time.perf_counter()
    for xb, yb in loader.epoch(epoch):
        step(xb, yb)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=DEFAULT_MNIST)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)  # the CLI's MNIST default
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--reps", type=int, default=3, help="timed epochs per framework")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.reps < 1 or args.threads < 1 or args.batch_size < 1:
        ap.error("--reps, --threads and --batch-size must be >= 1")

    import torch
    import cnnfast
    from cnnfast.data import BatchLoader, load_mnist
    from cnnfast.models import ModelUnavailable, lenet5
    from cnnfast.train import seed_everything
    try:
        from cnnfast import nn, optim
        seed_everything(args.seed)
        model = lenet5()
    except (ImportError, ModelUnavailable) as e:
        print(f"bench_train: needs cnnfast.nn and cnnfast.optim: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    cnnfast.set_num_threads(args.threads)

    train, test = load_mnist(args.data_dir), load_mnist(args.data_dir, train=False)
    mean, std = train.images.mean(), train.images.std()
    xtr = ((train.images - mean) / std).astype(np.float32)
    xte = ((test.images - mean) / std).astype(np.float32)
    ytr = train.labels
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]

    net = torch_lenet5(torch.nn)
    state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in model.state_dict().items()}
    net.load_state_dict(state)  # same initial weights (names follow torch.nn.Sequential)
    ours = CnnfastStep(model, nn.CrossEntropyLoss(),
                       optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum))
    theirs = TorchStep(torch, net, torch.optim.SGD(net.parameters(), lr=args.lr,
                                                   momentum=args.momentum))

    # Validation: forward, then one step on the same batch, must agree before anything is timed.
    xb, yb = xtr[:args.batch_size], ytr[:args.batch_size]
    with torch.no_grad():
        e_fwd = rel_err(model(xb), net(torch.from_numpy(xb)).numpy())
    ours(xb, yb)
    theirs(xb, yb)
    ref = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    e_step = max(rel_err(v, ref[k]) for k, v in model.state_dict().items())
    print(f"validation: logits rel.err {e_fwd:.2e}, parameters after one SGD step {e_step:.2e}")
    if not (e_fwd < 1e-4 and e_step < 1e-4):
        print("bench_train: validation FAILED, not timing", file=sys.stderr)
        return 1

    loader = BatchLoader(xtr, ytr, args.batch_size, seed=args.seed)
    times = {"cnnfast": [], "torch": []}
    for _ in range(5):  # warm-up steps for both, on a batch of the size timed
        ours(xb, yb)
        theirs(xb, yb)
    for epoch in range(args.reps):  # alternate, so both see the same machine load
        times["cnnfast"].append(time_epoch(ours, loader, epoch))
        times["torch"].append(time_epoch(theirs, loader, epoch))
    acc = {"cnnfast": ours.accuracy(xte, test.labels), "torch": theirs.accuracy(xte, test.labels)}

    commit = cnnfast.info()["build_commit"]  # of the build timed, not of the source tree
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"cnnfast {cnnfast.__version__} ({cnnfast.info()['isa']}), torch {torch.__version__}, "
          f"commit {commit}, threads {args.threads}")
    print(f"LeNet-5, {len(ytr)} images/epoch, batch {args.batch_size}, SGD lr {args.lr} momentum "
          f"{args.momentum}, {args.reps} epochs each (after 5 warm-up steps)")
    for name in ("cnnfast", "torch"):
        med = statistics.median(times[name])
        print(f"  {name:8s} epoch median {med:7.2f} s  ({len(ytr) / med:7.0f} img/s)  "
              f"epochs {[round(t, 2) for t in times[name]]}  test acc after {args.reps} epochs "
              f"{100 * acc[name]:.2f} %")
    ratio = statistics.median(times["torch"]) / statistics.median(times["cnnfast"])
    print(f"  speed-up cnnfast vs torch: {ratio:.2f}x (target >= 2x); accuracy difference "
          f"{100 * (acc['cnnfast'] - acc['torch']):+.2f} points (target within 0.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
