"""`cnnfast` / `python -m cnnfast`: the command line.

  cnnfast train [--model lenet5] [--dataset digits|mnist|fashion-mnist|cifar10] ...  (main job)
  cnnfast eval --checkpoint ckpt.npz      cnnfast info      cnnfast selfcheck (also: no command)
  cnnfast summary --model NAME --input-shape C,H,W   (per-layer table of a zoo model)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

# Per-dataset defaults for options left unset on the command line. The digits values were chosen
# with a PyTorch LeNet-5 on the same data pipeline (98.6 % test accuracy, 3 seeds; see
# bench/RESULTS.md); lr 0.05 there stalled at 63-83 %.
TRAIN_DEFAULTS = {
    "digits": dict(epochs=15, batch_size=32, lr=0.01, momentum=0.9, weight_decay=5e-4,
                   augment="none", schedule="none"),
    "mnist": dict(epochs=10, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                  augment="none", schedule="cosine"),
    "fashion-mnist": dict(epochs=10, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                          augment="none", schedule="cosine"),
    "cifar10": dict(epochs=20, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                    augment="crop-flip", schedule="cosine"),
}


def selfcheck(seed: int = 0) -> bool:
    import cnnfast
    from cnnfast.functional import conv2d, conv2d_backward

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    t0 = time.perf_counter()
    y = conv2d(x, w, b, stride=1, padding="same")
    t1 = time.perf_counter()
    gy = rng.standard_normal(y.shape).astype(np.float32)
    grads = conv2d_backward(gy, x, w, b, padding="same")
    t2 = time.perf_counter()
    y_ref = conv2d(x, w, b, padding="same", algo="ref")
    grads_ref = conv2d_backward(gy, x, w, b, padding="same", algo="ref")
    ok = True
    for name, got, want in [("forward", y, y_ref)] + list(
            zip(("grad_x", "grad_weight", "grad_bias"), grads, grads_ref)):
        err = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        good = err < 1e-5
        ok &= good
        print(f"  conv2d {name:12s} rel.err vs naive twin {err:.2e}  {'ok' if good else 'FAIL'}")
    flops = 2 * y.size * w[0].size
    print(f"  conv2d 8x16x32x32 -> 32, 3x3 'same': forward {(t1 - t0) * 1e3:.2f} ms "
          f"({flops / (t1 - t0) / 1e9:.1f} GFLOP/s), backward {(t2 - t1) * 1e3:.2f} ms")
    print(json.dumps(cnnfast.info(), indent=2))
    return ok


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnfast", description="cnnfast command line")
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("selfcheck", help="run conv2d on random data against the naive twin (default)")
    sub.add_parser("info", help="print build and CPU facts as JSON")
    tr = sub.add_parser("train", help="train a model (default: LeNet-5 on the embedded digits)")
    tr.add_argument("--model", default="lenet5", choices=["lenet5"])
    tr.add_argument("--dataset", default="digits", choices=sorted(TRAIN_DEFAULTS))
    tr.add_argument("--data-dir", default=None,
                    help="folder with the dataset files (default: $CNNFAST_DATA/<dataset> or "
                         "~/.cache/cnnfast/<dataset>)")
    tr.add_argument("--download", action="store_true",
                    help="fetch missing files from the official locations (MD5-checked)")
    tr.add_argument("--epochs", type=int, default=None)
    tr.add_argument("--batch-size", type=int, default=None)
    tr.add_argument("--lr", type=float, default=None)
    tr.add_argument("--momentum", type=float, default=None)
    tr.add_argument("--weight-decay", type=float, default=None)
    tr.add_argument("--augment", default=None, choices=["none", "translate", "crop-flip"])
    tr.add_argument("--schedule", default=None, choices=["none", "cosine"],
                    help="learning-rate schedule over the epochs (cosine annealing to 0)")
    tr.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", default=None, help="checkpoint .npz written after every epoch")
    tr.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    tr.add_argument("--plot", default=None, metavar="DIR", help="write PNG figures into DIR")
    tr.add_argument("--quiet", action="store_true", help="no progress output")
    ev = sub.add_parser("eval", help="evaluate a checkpoint on its dataset's test set")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data-dir", default=None, help="override the data folder stored in it")
    ev.add_argument("--batch-size", type=int, default=256)
    ev.add_argument("--threads", type=int, default=None)
    sm = sub.add_parser("summary", help="per-layer table of a zoo model: shapes, parameters, "
                                        "FLOPs, receptive fields")
    sm.add_argument("--model", required=True, help="a cnnfast.models builder, e.g. resnet18")
    sm.add_argument("--input-shape", required=True, help="C,H,W (e.g. 3,224,224)")
    sm.add_argument("--num-classes", type=int, default=None)
    return parser


def resolve_train_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fills unset options with the dataset's defaults and checks ranges (SystemExit on error)."""
    for key, value in TRAIN_DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.data_dir is None and args.dataset != "digits":
        base = os.environ.get("CNNFAST_DATA", os.path.join("~", ".cache", "cnnfast"))
        args.data_dir = os.path.expanduser(os.path.join(base, args.dataset))
    checks = [("--epochs", args.epochs >= 1), ("--batch-size", args.batch_size >= 1),
              ("--lr", args.lr > 0), ("--momentum", 0 <= args.momentum < 1),
              ("--weight-decay", args.weight_decay >= 0),
              ("--threads", args.threads is None or args.threads >= 1)]
    for name, ok in checks:
        if not ok:
            raise SystemExit(f"cnnfast train: error: {name} out of range: "
                             f"{getattr(args, name[2:].replace('-', '_'))}")
    if args.resume and not args.out:
        raise SystemExit("cnnfast train: error: --resume needs --out CKPT")
    return args


def build_training(config: dict):
    """(model, loss, optimizer) for a configuration; needs cnnfast.nn and cnnfast.optim."""
    from .models import MODELS, require_nn
    nn = require_nn()
    from . import optim
    model = MODELS[config["model"]](num_classes=config["num_classes"],
                                    in_channels=config["in_channels"],
                                    input_size=config["input_size"])
    opt = optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                    weight_decay=config["weight_decay"])
    return model, nn.CrossEntropyLoss(), opt


def _augmentation(name: str, size: int):
    from .data import Compose, RandomCrop, RandomHorizontalFlip, RandomTranslation
    return {"none": None, "translate": RandomTranslation(2),
            "crop-flip": Compose([RandomCrop(size, padding=4), RandomHorizontalFlip()])}[name]


def _load_split(config: dict, train: bool, download: bool = False):
    from .data import load_dataset
    return load_dataset(config["dataset"], config.get("data_dir"), train=train, download=download)


def _standardize(images, config: dict):
    mean = np.asarray(config["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(config["std"], np.float32).reshape(1, -1, 1, 1)
    return (images - mean) / std


def _set_threads(n):
    if n is not None:
        import cnnfast
        cnnfast.set_num_threads(n)


def cmd_train(args: argparse.Namespace) -> int:
    from .data import Dataset
    from .models import ModelUnavailable
    from .train import evaluate, fit, seed_everything
    args = resolve_train_args(args)
    _set_threads(args.threads)
    t_start = time.perf_counter()
    config = {k: getattr(args, k) for k in ("model", "dataset", "data_dir", "epochs", "batch_size",
                                            "lr", "momentum", "weight_decay", "augment",
                                            "schedule", "seed")}
    try:
        train = _load_split(config, True, args.download)
        test = _load_split(config, False, args.download)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        print(f"cnnfast train: cannot load dataset {args.dataset!r}: {e}", file=sys.stderr)
        return 2
    n, c, h, w = train.images.shape
    config.update(num_classes=len(train.classes), in_channels=c, input_size=h,
                  mean=train.images.mean(axis=(0, 2, 3)).tolist(),
                  std=train.images.std(axis=(0, 2, 3)).tolist())
    if args.resume and os.path.exists(args.out):
        from .checkpoint import load_checkpoint
        before = load_checkpoint(args.out).get("meta", {})
        # A cosine schedule depends on the total epoch count: extending such a run cannot
        # reproduce an uninterrupted one, so its epochs must match too.
        keys = ("model", "dataset", "batch_size", "augment", "schedule", "in_channels",
                "input_size", "num_classes") + (("epochs",) if config["schedule"] != "none" else ())
        changed = [k for k in keys if before.get(k) != config[k]]
        if changed:
            print(f"cnnfast train: --resume: {args.out} was trained with a different "
                  + ", ".join(f"{k} ({before.get(k)!r}, now {config[k]!r})" for k in changed),
                  file=sys.stderr)
            return 2
    seed_everything(args.seed)
    try:
        model, loss, optimizer = build_training(config)
    except ModelUnavailable as e:
        print(f"cnnfast train: {e}", file=sys.stderr)
        return 2
    train_std = Dataset(_standardize(train.images, config), train.labels, train.classes)
    test_std = Dataset(_standardize(test.images, config), test.labels, test.classes)
    if not args.quiet:
        print(f"cnnfast train: {args.model} on {args.dataset} ({n} train / {len(test)} test images "
              f"{c}x{h}x{w}), {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
              f"momentum {args.momentum}, weight decay {args.weight_decay}, schedule "
              f"{args.schedule}, seed {args.seed}")
    scheduler = None
    if args.schedule == "cosine":
        from . import optim
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=args.epochs)
    history = fit(model, loss, optimizer, train_std, val_data=test_std, epochs=args.epochs,
                  batch_size=args.batch_size, augment=_augmentation(args.augment, h),
                  scheduler=scheduler,
                  progress=not args.quiet, seed=args.seed, checkpoint=args.out,
                  resume=args.resume, checkpoint_meta=config)
    result = evaluate(model, test_std, loss)
    elapsed = time.perf_counter() - t_start
    print(f"test accuracy {100 * result['accuracy']:.2f} % ({result['n']} images), test loss "
          f"{result['loss']:.4f}, {len(history['epoch'])} epochs, {elapsed:.1f} s")
    if args.out:
        print(f"checkpoint: {args.out}")
    if args.plot:
        from .plot import plot_run
        try:
            for path in plot_run(model, history, test_std.images[0], args.plot):
                print(f"plot: {path}")
        except ImportError as e:
            print(f"cnnfast train: --plot skipped: {e}", file=sys.stderr)
            return 2
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .data import Dataset
    from .models import ModelUnavailable
    from .train import evaluate
    _set_threads(args.threads)
    try:
        state = load_checkpoint(args.checkpoint)
        config = state["meta"]
        if not {"model", "dataset", "mean", "std"} <= set(config):
            raise ValueError(f"{args.checkpoint}: no training configuration stored (not written "
                             f"by `cnnfast train`?)")
    except (OSError, ValueError, KeyError) as e:
        print(f"cnnfast eval: {e}", file=sys.stderr)
        return 2
    if args.data_dir is not None:
        config["data_dir"] = args.data_dir
    try:
        model, loss, _ = build_training(config)
    except ModelUnavailable as e:
        print(f"cnnfast eval: {e}", file=sys.stderr)
        return 2
    model.load_state_dict(state["model"])
    try:
        test = _load_split(config, False)
    except (OSError, ValueError, ImportError) as e:
        print(f"cnnfast eval: cannot load dataset {config['dataset']!r}: {e}", file=sys.stderr)
        return 2
    result = evaluate(model, Dataset(_standardize(test.images, config), test.labels), loss,
                      batch_size=args.batch_size)
    print(f"{config['model']} on {config['dataset']} (epoch {state['epoch']}): test accuracy "
          f"{100 * result['accuracy']:.2f} % ({result['n']} images), test loss "
          f"{result['loss']:.4f}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import build_zoo_model, summary
    try:
        shape = tuple(int(v) for v in args.input_shape.split(","))
        model = build_zoo_model(args.model, shape, args.num_classes)
        print(f"{args.model}\n{summary(model, shape)}")
    except (ValueError, TypeError) as e:
        print(f"cnnfast summary: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "info":
        import cnnfast
        print(json.dumps(cnnfast.info(), indent=2))
        return 0
    if args.cmd == "train":
        return cmd_train(args)
    if args.cmd == "eval":
        return cmd_eval(args)
    if args.cmd == "summary":
        return cmd_summary(args)
    print("cnnfast self-check")
    return 0 if selfcheck() else 1


if __name__ == "__main__":
    sys.exit(main())
