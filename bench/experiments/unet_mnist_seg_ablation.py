"""Why a U-Net on mnist-seg reached only 0.26 mean IoU (issue 8), one factor at a time: constant
vs cosine learning rate, median-frequency class weights, width, data. Each epoch reports the test
pixel accuracy and mean IoU twice: in eval mode (batch norm uses its running statistics) and in
train mode (batch statistics of each test batch of 16); at the end also in eval mode after the
running statistics were recomputed at the final weights (cumulative average over training images).
A gap between eval mode and the other two means stale running statistics, not a weak model.

    python bench/experiments/unet_mnist_seg_ablation.py --data-dir /work/shared/data/mnist \
        --width 8 --train 3000 --epochs 3 --schedule cosine --class-weights median-freq

The full runs with the chosen setup go through `cnnfast train --model unet --dataset mnist-seg`.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import cnnfast
from cnnfast import models, nn, optim
from cnnfast.data import load_mnist_seg
from cnnfast.metrics import confusion_matrix, evaluate_segmentation, segmentation_scores

NUM_CLASSES = 11


def batch_stats_scores(model, images, masks, batch_size=16):
    """Scores with batch norm in train mode (statistics of each test batch); the running
    statistics, which train-mode forwards update, are restored afterwards."""
    saved = {k: v.copy() for k, v in model.state_dict().items()}
    model.train()
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for i in range(0, len(masks), batch_size):
        pred = np.argmax(model(images[i:i + batch_size]), axis=1)
        conf += confusion_matrix(pred, masks[i:i + batch_size], NUM_CLASSES)
    model.load_state_dict(saved)
    return segmentation_scores(conf)


def recalibrate_batch_norm(model, images, n=1600, batch_size=16):
    """Running mean/var recomputed at the current weights: a cumulative average over n images."""
    for _, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m._buffers["running_mean"][:] = 0
            m._buffers["running_var"][:] = 1
            m._buffers["num_batches_tracked"][...] = 0
            m.momentum = None
    model.train()
    for i in range(0, min(n, len(images)), batch_size):
        model(images[i:i + batch_size])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--model", default="unet", choices=["unet", "segnet"])
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--train", type=int, default=3000, help="training mosaics")
    ap.add_argument("--test", type=int, default=500, help="test mosaics")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--schedule", default="none", choices=["none", "cosine"])
    ap.add_argument("--class-weights", default="none", choices=["none", "median-freq"])
    ap.add_argument("--raw", action="store_true", help="images in [0, 1], not standardized")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cnnfast.set_num_threads(a.threads)
    cnnfast.init.seed(a.seed)
    train = load_mnist_seg(a.data_dir, train=True, n=a.train)
    test = load_mnist_seg(a.data_dir, train=False, n=a.test)
    x_train, x_test = train.images, test.images
    if not a.raw:
        mean, std = x_train.mean(), x_train.std()
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    if a.model == "unet":
        model = models.unet(1, NUM_CLASSES, a.depth, a.width, batch_norm=True)
    else:
        model = models.segnet(1, NUM_CLASSES, a.depth, a.width)
    weights = (models.class_balance_weights(train.masks, NUM_CLASSES)
               if a.class_weights == "median-freq" else None)
    crit = nn.CrossEntropyLoss(weight=weights)
    opt = optim.Adam(model.parameters(), lr=a.lr)
    sched = optim.CosineAnnealingLR(opt, T_max=a.epochs) if a.schedule == "cosine" else None
    print(f"{vars(a)}\n{sum(p.data.size for p in model.parameters()):,} parameters; class "
          f"weights {None if weights is None else np.round(weights.astype(float), 3).tolist()}", flush=True)
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        order, losses = rng.permutation(len(train)), []
        for i in range(0, len(order), a.batch_size):
            idx = order[i:i + a.batch_size]
            losses.append(float(crit(model(x_train[idx]), train.masks[idx])))
            model.zero_grad()
            model.backward(crit.backward())
            opt.step()
        if sched is not None:
            sched.step()
        ev = evaluate_segmentation(model, x_test, test.masks, NUM_CLASSES)
        bs = batch_stats_scores(model, x_test, test.masks)
        print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f} | eval mode: pixel acc "
              f"{ev['pixel_accuracy']:.4f} mean IoU {ev['mean_iou']:.4f} | batch stats: pixel acc "
              f"{bs['pixel_accuracy']:.4f} mean IoU {bs['mean_iou']:.4f} | "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    print("per-class IoU (eval mode; 0-9, background):", " ".join(f"{v:.3f}" for v in ev["iou"]))
    recalibrate_batch_norm(model, x_train)
    rc = evaluate_segmentation(model, x_test, test.masks, NUM_CLASSES)
    print(f"recalibrated running statistics: pixel acc {rc['pixel_accuracy']:.4f} mean IoU "
          f"{rc['mean_iou']:.4f}")


if __name__ == "__main__":
    main()
