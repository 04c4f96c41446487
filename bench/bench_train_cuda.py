"""Benchmark: LeNet-5 training on MNIST on the GPU, cnnfast (layer API, device='cuda') vs the
same model in PyTorch on the same GPU, in one process, with the same initial weights, batch
order, batch size and optimizer (SGD + momentum). The CUDA twin of bench_train.py.

Validates first (same logits, same parameters after one SGD step), then times whole epochs
(torch.cuda.synchronize / cnnfast.cuda.synchronize around each; both frameworks alternate, each
copying every host batch to the device once) and compares test accuracy after the same epochs.
Finally times one epoch of cnnfast's fit(device='cuda') (the training loop with its device-side
loss/accuracy bookkeeping). cuDNN autotuning on, TF32 off for matmul and cuDNN.

  python bench/bench_train_cuda.py                      # 3 full MNIST epochs each
  python bench/bench_train_cuda.py --epochs 1 --limit 6400
Exit status 2 (with the reason) when cnnfast or torch has no CUDA device.
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
sys.path.insert(0, HERE)
from bench_train import rel_err, torch_lenet5  # noqa: E402  (the CPU twin's model and check)


class TorchStep:
    def __init__(self, torch, net, opt):
        self.torch, self.net, self.opt = torch, net, opt
        self.lossf = torch.nn.CrossEntropyLoss()

    def __call__(self, xb, yb):
        t = self.torch
        x, y = t.from_numpy(xb).cuda(), t.from_numpy(yb).cuda()  # one copy each per batch
        self.opt.zero_grad(set_to_none=True)
        self.lossf(self.net(x), y).backward()
        self.opt.step()

    def sync(self):
        self.torch.cuda.synchronize()

    def logits(self, xb):
        with self.torch.no_grad():
            return self.net(self.torch.from_numpy(xb).cuda()).cpu().numpy()

    def accuracy(self, x, y):
        with self.torch.no_grad():
            self.net.eval()
            pred = np.concatenate([self.net(self.torch.from_numpy(x[i:i + 1000]).cuda())
                                   .argmax(1).cpu().numpy() for i in range(0, len(x), 1000)])
            self.net.train()
        return float(np.mean(pred == y))


class CnnfastStep:
    def __init__(self, cuda, model, loss, opt):
        self.cuda, self.model, self.loss, self.opt = cuda, model, loss, opt
        model.to("cuda")
        model.set_needs_input_grad(False)  # as fit() does, and as torch skips it for the data

    def __call__(self, xb, yb):
        x, y = self.cuda.from_numpy(xb), self.cuda.from_numpy(yb)  # one copy each per batch
        self.opt.zero_grad()
        self.loss(self.model(x), y)
        self.model.backward(self.loss.backward())
        self.opt.step()

    def sync(self):
        self.cuda.synchronize()

    def logits(self, xb):
        return self.model(self.cuda.from_numpy(xb)).to_numpy()

    def accuracy(self, x, y):
        from cnnfast.train import evaluate
        return evaluate(self.model, (x, y), batch_size=1000, device="cuda")["accuracy"]


def time_epoch(step, loader, epoch) -> float:
    step.sync()
    t0 = time.perf_counter()
    for xb, yb in loader.epoch(epoch):
        step(xb, yb)
    step.sync()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_MNIST, help="folder with the MNIST IDX .gz files")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per framework")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    import cnnfast
    from cnnfast import cuda, nn, optim
    from cnnfast.data import BatchLoader, load_mnist
    from cnnfast.models import lenet5
    from cnnfast.train import fit, seed_everything
    if not cuda.is_available():
        print(f"bench_train_cuda: cnnfast has no CUDA device: {cuda.reason()}", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print(f"bench_train_cuda: torch {torch.__version__} has no CUDA device (CPU-only build or "
              f"no driver)", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    train, test = load_mnist(args.data), load_mnist(args.data, train=False)
    mean, std = train.images.mean(), train.images.std()
    xtr = ((train.images - mean) / std).astype(np.float32)
    xte = ((test.images - mean) / std).astype(np.float32)
    ytr = train.labels.astype(np.int64)
    if args.limit:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]

    seed_everything(args.seed)
    model = lenet5()
    net = torch_lenet5(torch.nn)
    net.load_state_dict({k: torch.from_numpy(np.array(v, np.float32))
                         for k, v in model.state_dict().items()})  # same initial weights
    net.cuda()
    ours = CnnfastStep(cuda, model, nn.CrossEntropyLoss(),
                       optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum))
    theirs = TorchStep(torch, net, torch.optim.SGD(net.parameters(), lr=args.lr,
                                                   momentum=args.momentum))

    # Validation: forward, then one step on the same batch, must agree before anything is timed.
    xb, yb = xtr[:args.batch_size], ytr[:args.batch_size]
    e_fwd = rel_err(ours.logits(xb), theirs.logits(xb))
    ours(xb, yb)
    theirs(xb, yb)
    ref = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    e_step = max(rel_err(v, ref[k]) for k, v in model.state_dict().items())
    print(f"validation: logits rel.err {e_fwd:.2e}, parameters after one SGD step {e_step:.2e}")
    if not (e_fwd < 1e-4 and e_step < 1e-4):
        print("bench_train_cuda: validation FAILED, not timing", file=sys.stderr)
        return 1

    loader = BatchLoader(xtr, ytr, args.batch_size, seed=args.seed)
    times = {"cnnfast": [], "torch": []}
    for i in range(5):  # warm-up steps for both (kernel loading, allocator pools, autotuning)
        sl = slice(i * args.batch_size, (i + 1) * args.batch_size)
        ours(xtr[sl], ytr[sl])
        theirs(xtr[sl], ytr[sl])
    for epoch in range(args.epochs):  # alternate, so both see the same machine load
        times["cnnfast"].append(time_epoch(ours, loader, epoch))
        times["torch"].append(time_epoch(theirs, loader, epoch))
        print(f"  epoch {epoch + 1}: cnnfast {times['cnnfast'][-1]:.2f} s, torch "
              f"{times['torch'][-1]:.2f} s", flush=True)
    acc = {"cnnfast": ours.accuracy(xte, test.labels), "torch": theirs.accuracy(xte, test.labels)}

    t0 = time.perf_counter()  # one more epoch through fit(): metrics bookkeeping included
    fit(model, ours.loss, ours.opt, (xtr, ytr), epochs=1, batch_size=args.batch_size,
        seed=args.seed, progress=False, device="cuda")
    cuda.synchronize()
    t_fit = time.perf_counter() - t0

    commit = cnnfast.info()["build_commit"]  # of the build timed, not of the source tree
    info = cuda.device_info()
    print(f"machine: {info.get('name')} ({platform.machine()}, {os.cpu_count()} cores), cnnfast "
          f"{cnnfast.__version__}, torch {torch.__version__} (cuDNN "
          f"{torch.backends.cudnn.version()}), commit {commit}")
    print(f"LeNet-5 on the GPU, {len(ytr)} images/epoch, batch {args.batch_size}, SGD lr {args.lr} "
          f"momentum {args.momentum}, {args.epochs} epochs each (after 5 warm-up steps)")
    for name in ("cnnfast", "torch"):
        med = statistics.median(times[name])
        print(f"  {name:8s} epoch median {med:7.2f} s  ({len(ytr) / med:7.0f} img/s)  "
              f"epochs {[round(t, 2) for t in times[name]]}  test acc after {args.epochs} epochs "
              f"{100 * acc[name]:.2f} %")
    print(f"  cnnfast fit(device='cuda') epoch {t_fit:.2f} s ({len(ytr) / t_fit:.0f} img/s)")
    ratio = statistics.median(times["torch"]) / statistics.median(times["cnnfast"])
    print(f"  ratio torch/cnnfast epoch time: {ratio:.2f}x (target > 1); accuracy difference "
          f"{100 * (acc['cnnfast'] - acc['torch']):+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
