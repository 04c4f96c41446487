"""U-Net on mnist-seg (2×2 MNIST mosaics, 56×56, 11 per-pixel classes): trains with Adam and
reports test pixel accuracy and mean IoU (issue 8 target: mean IoU >= 0.80).

    python bench/train_unet_mnist_seg.py --data-dir /work/shared/data/mnist --threads 2
        [--train 4000] [--test 1000] [--epochs 2] [--depth 3] [--width 16] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import cnnfast
from cnnfast import models, nn, optim
from cnnfast.data import load_mnist_seg
from cnnfast.metrics import evaluate_segmentation


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cnnfast.set_num_threads(a.threads)
    cnnfast.init.seed(a.seed)
    train = load_mnist_seg(a.data_dir, train=True, n=a.train, seed=a.seed)
    test = load_mnist_seg(a.data_dir, train=False, n=a.test, seed=a.seed)
    model = models.unet(1, 11, depth=a.depth, width=a.width, batch_norm=True)
    crit = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=a.lr)
    rng = np.random.default_rng(a.seed)
    print(f"unet depth {a.depth} width {a.width}: "
          f"{sum(p.data.size for p in model.parameters()):,} parameters; {len(train)} train / "
          f"{len(test)} test mosaics; {a.threads} threads; cnnfast {cnnfast.__version__}")
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        order, losses = rng.permutation(len(train)), []
        for i in range(0, len(order), a.batch_size):
            idx = order[i:i + a.batch_size]
            losses.append(float(crit(model(train.images[idx]), train.masks[idx])))
            model.zero_grad()
            model.backward(crit.backward())
            opt.step()
        s = evaluate_segmentation(model, test.images, test.masks, 11)
        print(f"epoch {epoch + 1}: train loss {np.mean(losses):.4f}, test pixel accuracy "
              f"{s['pixel_accuracy']:.4f}, mean IoU {s['mean_iou']:.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print("per-class IoU:", " ".join(f"{v:.3f}" for v in s["iou"]))


if __name__ == "__main__":
    main()
