"""`cnnfast` / `python -m cnnfast`: the command line.

  cnnfast train [--model lenet5] [--dataset digits|mnist|fashion-mnist|cifar10] ...  (main job)
  cnnfast train --model unet|segnet --dataset mnist-seg ...   (segmentation: pixel accuracy, IoU)
  cnnfast eval --checkpoint ckpt.npz      cnnfast info      cnnfast selfcheck (also: no command)
  cnnfast summary --model NAME --input-shape C,H,W   (per-layer table of a zoo model)
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np

# Per-dataset defaults for options left unset on the command line. The digits values were chosen
# with a PyTorch LeNet-5 on the same data pipeline (98.6 % test accuracy, 3 seeds; see
# bench/RESULTS.md); lr 0.05 there stalled at 63-83 %.
# The mnist-seg values are those of the U-Net run recorded in bench/RESULTS.md ("Models (issue
# 8)"): the cosine decay (batch-norm statistics that match the final weights) and more training
# took its mean IoU from 0.26 to > 0.9; median-frequency class weights learn faster at first but
# end lower (more stroke-edge false positives), so they are off by default.
_CLASSIFY = dict(optimizer="sgd", class_weights="none", train_size=None, test_size=None)
TRAIN_DEFAULTS = {
    "digits": dict(epochs=15, batch_size=32, lr=0.01, momentum=0.9, weight_decay=5e-4,
                   augment="none", schedule="none", **_CLASSIFY),
    "mnist": dict(epochs=10, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                  augment="none", schedule="cosine", **_CLASSIFY),
    "fashion-mnist": dict(epochs=10, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                          augment="none", schedule="cosine", **_CLASSIFY),
    "cifar10": dict(epochs=20, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                    augment="crop-flip", schedule="cosine", **_CLASSIFY),
    "mnist-seg": dict(epochs=3, batch_size=16, lr=2e-3, momentum=0.9, weight_decay=0.0,
                      augment="none", schedule="cosine", optimizer="adam",
                      class_weights="none", train_size=None, test_size=None),
}
SEGMENTATION_DATASETS = ("mnist-seg",)
MODEL_DEFAULTS = {"lenet5": dict(width=None, depth=None), "unet": dict(width=16, depth=3),
                  "segnet": dict(width=16, depth=3)}
SEGMENTATION_MODELS = ("unet", "segnet")
DATA_FOLDER = {"mnist-seg": "mnist"}  # mnist-seg is made from the MNIST files


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnfast", description="cnnfast command line")
    sub = parser.add_subparsers(dest="cmd")
    sub.add_parser("selfcheck", help="run conv2d on random data against the naive twin (default)")
    sub.add_parser("info", help="print build and CPU facts as JSON")
    tr = sub.add_parser("train", help="train a model (default: LeNet-5 on the embedded digits)")
    tr.add_argument("--model", default="lenet5", choices=sorted(MODEL_DEFAULTS),
                    help="lenet5 for classification; unet or segnet for mnist-seg")
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
    tr.add_argument("--optimizer", default=None, choices=["sgd", "adam"])
    tr.add_argument("--width", type=int, default=None,
                    help="unet/segnet: channels of the first level (doubling per level)")
    tr.add_argument("--depth", type=int, default=None, help="unet/segnet: pooling levels")
    tr.add_argument("--class-weights", default=None, choices=["none", "median-freq"],
                    help="loss weights per class (median-frequency balancing, as SegNet)")
    tr.add_argument("--train-size", type=int, default=None,
                    help="training images to use (mnist-seg: mosaics to make; default: all)")
    tr.add_argument("--test-size", type=int, default=None, help="test images (as --train-size)")
    tr.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    tr.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="cuda: train and evaluate on the GPU (float32; LeNet-5 and the "
                         "Conv/BN/pool/Linear zoo models; U-Net/SegNet are CPU-only)")
    tr.add_argument("--seed", type=int, default=0,
                    help="initialization and shuffling (mnist-seg mosaics are always seed 0)")
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


class UsageError(SystemExit):
    """A bad option: main() prints the message and exits with status 2, as argparse does."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _usage_error(message: str):
    raise UsageError(message)


def _check_writable(command: str, option: str, folder: str) -> None:
    """Writes a scratch file in `folder` (made for the check, then removed again: the run makes
    it when it writes), so that an option whose file is written after training (a checkpoint,
    plots) fails now, not after an epoch."""
    import tempfile
    missing = []  # the folders the check makes, innermost first
    head = os.path.abspath(folder)
    while not os.path.exists(head):
        missing.append(head)
        head = os.path.dirname(head)
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cnnfast-write-check-"):
            pass
    except OSError as e:
        _usage_error(f"cnnfast {command}: error: {option}: cannot write in {folder!r}: "
                     f"{e.strerror or e}")
    finally:
        for made in missing:
            try:
                os.rmdir(made)
            except OSError:
                break


def resolve_train_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fills unset options with the dataset's defaults and checks ranges (SystemExit(2) on
    error)."""
    segment = args.dataset in SEGMENTATION_DATASETS
    if segment != (args.model in SEGMENTATION_MODELS):
        _usage_error(f"cnnfast train: error: --model {args.model} does not fit --dataset "
                         f"{args.dataset} (segmentation: {', '.join(SEGMENTATION_MODELS)} on "
                         f"{', '.join(SEGMENTATION_DATASETS)}; classification: lenet5)")
    if not segment and (args.width is not None or args.depth is not None):
        _usage_error(f"cnnfast train: error: --width/--depth apply to "
                         f"{'/'.join(SEGMENTATION_MODELS)}, not {args.model}")
    if segment and args.augment not in (None, "none"):
        _usage_error("cnnfast train: error: --augment would move the images but not their "
                         "label maps; mnist-seg takes --augment none")
    if not segment and args.class_weights == "median-freq":
        _usage_error("cnnfast train: error: --class-weights median-freq balances the pixels "
                         "of label maps (segmentation datasets only)")
    for key, value in {**TRAIN_DEFAULTS[args.dataset], **MODEL_DEFAULTS[args.model]}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.dataset == "digits" and (args.data_dir is not None or args.download):
        _usage_error("cnnfast train: error: --data-dir/--download do not apply to --dataset "
                     "digits (it ships with scikit-learn)")
    if args.data_dir is None and args.dataset != "digits":
        base = os.environ.get("CNNFAST_DATA", os.path.join("~", ".cache", "cnnfast"))
        folder = DATA_FOLDER.get(args.dataset, args.dataset)
        args.data_dir = os.path.expanduser(os.path.join(base, folder))
    checks = [("--epochs", args.epochs >= 1), ("--batch-size", args.batch_size >= 1),
              ("--lr", 0 < args.lr < math.inf), ("--momentum", 0 <= args.momentum < 1),
              ("--weight-decay", 0 <= args.weight_decay < math.inf), ("--seed", args.seed >= 0),
              ("--threads", args.threads is None or args.threads >= 1)] + [
        (f"--{k.replace('_', '-')}", getattr(args, k) is None or getattr(args, k) >= 1)
        for k in ("width", "depth", "train_size", "test_size")]
    for name, ok in checks:
        if not ok:
            _usage_error(f"cnnfast train: error: {name} out of range: "
                             f"{getattr(args, name[2:].replace('-', '_'))}")
    if args.resume and not args.out:
        _usage_error("cnnfast train: error: --resume needs --out CKPT")
    if args.out and os.path.isdir(args.out):
        _usage_error(f"cnnfast train: error: --out {args.out} is a directory (give a file)")
    return args


def build_model(config: dict):
    """The configuration's model: lenet5 (any zoo builder taking num_classes, in_channels and
    input_size), or unet (batch norm, 'same' padding) / segnet at config's width and depth."""
    from .models import MODELS, require_nn
    require_nn()
    c, k = config["in_channels"], config["num_classes"]
    if config["model"] == "unet":
        from .models import unet
        if config["input_size"] % 2 ** config["depth"]:
            raise ValueError(f"unet: the input size {config['input_size']} must be divisible by "
                             f"2^depth = {2 ** config['depth']} to come out the same size")
        return unet(c, k, depth=config["depth"], width=config["width"], batch_norm=True)
    if config["model"] == "segnet":
        from .models import segnet
        if config["input_size"] >> config["depth"] < 1:
            raise ValueError(f"segnet: the input size {config['input_size']} halves to nothing "
                             f"over depth {config['depth']} (needs at least 2^depth = "
                             f"{2 ** config['depth']})")
        return segnet(c, k, depth=config["depth"], width=config["width"])
    return MODELS[config["model"]](num_classes=k, in_channels=c, input_size=config["input_size"])


def build_training(config: dict):
    """(model, loss, optimizer) for a configuration; needs cnnfast.nn and cnnfast.optim. The loss
    is cross-entropy, weighted by config['loss_weights'] (one per class) when present."""
    from .models import require_nn
    nn = require_nn()
    from . import optim
    model = build_model(config)
    if config.get("optimizer", "sgd") == "adam":
        opt = optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    else:
        opt = optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                        weight_decay=config["weight_decay"])
    weights = config.get("loss_weights")
    loss = nn.CrossEntropyLoss(weight=None if weights is None else np.asarray(weights, np.float32))
    return model, loss, opt


def _augmentation(name: str, size: int):
    from .data import Compose, RandomCrop, RandomHorizontalFlip, RandomTranslation
    return {"none": None, "translate": RandomTranslation(2),
            "crop-flip": Compose([RandomCrop(size, padding=4), RandomHorizontalFlip()])}[name]


def _load_split(config: dict, train: bool, download: bool = False):
    """A Dataset (classification) or SegDataset (mnist-seg) of config's train_size/test_size."""
    from .data import load_dataset, load_mnist_seg
    size = config.get("train_size" if train else "test_size")
    if config["dataset"] == "mnist-seg":
        if config.get("data_dir") is None:
            raise ValueError("dataset 'mnist-seg' needs a data directory (--data-dir)")
        return load_mnist_seg(config["data_dir"], train=train, n=size, download=download)
    data = load_dataset(config["dataset"], config.get("data_dir"), train=train, download=download)
    return data if size is None else data.subset(slice(0, size))


def _standardized(data, config: dict):
    """The same data set with standardized images (labels or label maps unchanged)."""
    from .data import Dataset, SegDataset
    images = _standardize(data.images, config)
    if isinstance(data, SegDataset):
        return SegDataset(images, data.masks, data.num_classes, data.name)
    return Dataset(images, data.labels, data.classes)


def _scores_line(result: dict, config: dict, suffix: str = "") -> str:
    """'test accuracy …' or, for segmentation, pixel accuracy and mean IoU, then a line of
    per-class IoU (the last class of mnist-seg is the background)."""
    if "mean_iou" not in result:
        return (f"test accuracy {100 * result['accuracy']:.2f} % ({result['n']} images), test loss "
                f"{result['loss']:.4f}{suffix}")
    return (f"test pixel accuracy {100 * result['accuracy']:.2f} %, mean IoU "
            f"{result['mean_iou']:.4f} ({result['n']} images), test loss {result['loss']:.4f}"
            f"{suffix}\nper-class IoU: {_per_class(result['iou'], config)}")


def _per_class(iou, config: dict) -> str:
    names = [str(c) for c in range(config["num_classes"] - 1)] + ["background"]
    return ", ".join(f"{n} {v:.3f}" for n, v in zip(names, iou))


def _standardize(images, config: dict):
    mean = np.asarray(config["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(config["std"], np.float32).reshape(1, -1, 1, 1)
    return (images - mean) / np.where(std > 0, std, np.float32(1))  # as cmd_train stores it


def _set_threads(n):
    if n is not None:
        import cnnfast
        cnnfast.set_num_threads(n)


def cmd_train(args: argparse.Namespace) -> int:
    from .models import ModelUnavailable
    from .train import evaluate, fit, seed_everything
    args = resolve_train_args(args)
    # Options whose files are written after training fail now, not after an epoch.
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        _usage_error("cnnfast train: --plot needs matplotlib: pip install matplotlib")
    if args.out:
        _check_writable("train", "--out", os.path.dirname(os.path.abspath(args.out)))
    if args.plot:
        _check_writable("train", "--plot", args.plot)
    if args.device == "cuda":
        from . import cuda
        if not cuda.is_available():
            print(f"cnnfast train: --device cuda: no CUDA device: {cuda.reason()}",
                  file=sys.stderr)
            return 2
    _set_threads(args.threads)
    t_start = time.perf_counter()
    config = {k: getattr(args, k) for k in ("model", "dataset", "data_dir", "epochs", "batch_size",
                                            "lr", "momentum", "weight_decay", "augment",
                                            "schedule", "seed", "optimizer", "width", "depth",
                                            "class_weights", "train_size", "test_size")}
    try:
        train = _load_split(config, True, args.download)
        test = _load_split(config, False, args.download)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        print(f"cnnfast train: cannot load dataset {args.dataset!r}: {e}", file=sys.stderr)
        return 2
    for data, option in ((train, "--train-size"), (test, "--test-size")):
        asked = config[option[2:].replace("-", "_")]
        problem = ("holds no images" if len(data) == 0 else
                   f"holds {len(data)} images, fewer than {option} {asked}"
                   if asked is not None and len(data) < asked else None)
        if problem:
            split = "training" if data is train else "test"
            print(f"cnnfast train: the {split} set of {args.dataset!r} {problem}",
                  file=sys.stderr)
            return 2
    n, c, h, w = train.images.shape
    segment = args.dataset in SEGMENTATION_DATASETS
    # A channel that is constant over the training set has std 0: it is centred, not scaled.
    std = train.images.std(axis=(0, 2, 3))
    config.update(num_classes=train.num_classes if segment else len(train.classes),
                  in_channels=c, input_size=h, mean=train.images.mean(axis=(0, 2, 3)).tolist(),
                  std=np.where(std > 0, std, 1.0).tolist(), loss_weights=None)
    if args.class_weights == "median-freq":
        from .models.segnet import class_balance_weights
        config["loss_weights"] = class_balance_weights(train.masks, config["num_classes"]).tolist()
    if args.resume and os.path.exists(args.out):
        from .checkpoint import load_checkpoint
        try:
            before = load_checkpoint(args.out).get("meta", {})
        except (OSError, ValueError, KeyError) as e:
            print(f"cnnfast train: --resume: {e}", file=sys.stderr)
            return 2
        # A cosine schedule depends on the total epoch count: extending such a run cannot
        # reproduce an uninterrupted one, so its epochs must match too. The optimizer's
        # hyperparameters come back with its state, so a changed --lr would not be used.
        keys = ("model", "dataset", "batch_size", "augment", "schedule", "in_channels",
                "input_size", "num_classes", "optimizer", "lr", "momentum", "weight_decay",
                "seed", "width", "depth", "class_weights", "train_size",
                "test_size") + (("epochs",) if config["schedule"] != "none" else ())
        changed = [k for k in keys if before.get(k, config[k]) != config[k]]
        if changed:
            print(f"cnnfast train: --resume: {args.out} was trained with a different "
                  + ", ".join(f"{k} ({before.get(k)!r}, now {config[k]!r})" for k in changed),
                  file=sys.stderr)
            return 2
    seed_everything(args.seed)
    try:
        model, loss, optimizer = build_training(config)
    except (ModelUnavailable, ValueError) as e:
        print(f"cnnfast train: {e}", file=sys.stderr)
        return 2
    train_std, test_std = _standardized(train, config), _standardized(test, config)
    if not args.quiet:
        arch = "" if args.width is None else f" (width {args.width}, depth {args.depth})"
        params = sum(int(np.asarray(p.data).size) for p in model.parameters())
        print(f"cnnfast train: {args.model}{arch}, {params:,} parameters, on {args.dataset} ({n} "
              f"train / {len(test)} test images {c}x{h}x{w}), {args.epochs} epochs, batch "
              f"{args.batch_size}, {args.optimizer} lr {args.lr}, momentum {args.momentum}, "
              f"weight decay {args.weight_decay}, schedule {args.schedule}, class weights "
              f"{args.class_weights}, seed {args.seed}")
    callbacks = []
    if segment and not args.quiet:  # the progress line has the mean IoU; add the classes
        callbacks.append(lambda epoch, record: print(
            f"  test per-class IoU: {_per_class(record['val_iou'], config)}", flush=True))
    scheduler = None
    if args.schedule == "cosine":
        from . import optim
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=args.epochs)
    try:
        history = fit(model, loss, optimizer, train_std, val_data=test_std, epochs=args.epochs,
                      batch_size=args.batch_size, augment=_augmentation(args.augment, h),
                      scheduler=scheduler, callbacks=callbacks,
                      progress=not args.quiet, seed=args.seed, checkpoint=args.out,
                      resume=args.resume, checkpoint_meta=config,
                      num_classes=config["num_classes"] if segment else None, device=args.device)
    except FloatingPointError as e:
        print(f"\ncnnfast train: training diverged: {e}", file=sys.stderr)
        return 1
    result = evaluate(model, test_std, loss, num_classes=config["num_classes"] if segment else None,
                      device=args.device)
    if args.device == "cuda":
        model.to("cpu")  # the plots run the model on host images
    elapsed = time.perf_counter() - t_start
    print(_scores_line(result, config, f", {len(history['epoch'])} epochs, {elapsed:.1f} s"))
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
    from .models import ModelUnavailable
    from .train import evaluate
    for name, value in (("--batch-size", args.batch_size), ("--threads", args.threads)):
        if value is not None and value < 1:
            print(f"cnnfast eval: error: {name} out of range: {value}", file=sys.stderr)
            return 2
    _set_threads(args.threads)
    try:
        state = load_checkpoint(args.checkpoint)
        config = state.get("meta")
        needed = {"model", "dataset", "mean", "std", "in_channels", "num_classes", "input_size"}
        if not isinstance(config, dict) or not needed <= set(config) or "model" not in state:
            raise ValueError("no training configuration or no model weights stored (not "
                             "written by `cnnfast train`?)")
        if config["model"] not in MODEL_DEFAULTS:
            raise ValueError(f"model {config['model']!r} is not one `cnnfast train` makes "
                             f"({', '.join(sorted(MODEL_DEFAULTS))})")
        if not len(config["mean"]) == len(config["std"]) == config["in_channels"]:
            raise ValueError(f"the stored mean/std have {len(config['mean'])}/"
                             f"{len(config['std'])} channels, the model "
                             f"{config['in_channels']}")
        if args.data_dir is not None:
            config["data_dir"] = args.data_dir
        model, loss, _ = build_training(config)
        model.load_state_dict(state["model"])
    except (OSError, ValueError, TypeError, ModelUnavailable) as e:
        print(f"cnnfast eval: {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    except KeyError as e:
        print(f"cnnfast eval: {args.checkpoint}: the stored configuration lacks {e}",
              file=sys.stderr)
        return 2
    try:
        test = _load_split(config, False)
    except (OSError, ValueError, ImportError) as e:
        print(f"cnnfast eval: cannot load dataset {config['dataset']!r}: {e}", file=sys.stderr)
        return 2
    segment = config["dataset"] in SEGMENTATION_DATASETS
    result = evaluate(model, _standardized(test, config), loss, batch_size=args.batch_size,
                      num_classes=config["num_classes"] if segment else None)
    print(f"{config['model']} on {config['dataset']} (epoch {state.get('epoch', '?')}): "
          f"{_scores_line(result, config)}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import build_zoo_model, summary
    try:
        shape = tuple(int(v) for v in args.input_shape.split(","))
    except ValueError:
        print(f"cnnfast summary: error: --input-shape {args.input_shape!r}: expected C,H,W "
              f"integers separated by commas (e.g. 3,224,224)", file=sys.stderr)
        return 2
    try:
        model = build_zoo_model(args.model, shape, args.num_classes)
        print(f"{args.model}\n{summary(model, shape)}")
    except (ValueError, TypeError) as e:
        print(f"cnnfast summary: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"cnnfast summary: --input-shape {args.input_shape}: too large to run through "
              f"the model in memory", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    try:
        return _run(argv)
    except UsageError as e:
        print(e.message, file=sys.stderr)
        return 2


def _run(argv) -> int:
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
    from cnnfast._selfcheck import selfcheck

    print("cnnfast self-check")
    return 0 if selfcheck() else 1


if __name__ == "__main__":
    sys.exit(main())
