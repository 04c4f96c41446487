"""The command line: argument parsing and defaults, `train` / `eval` / resume end to end with the
NumPy stand-in model on small IDX files, the clear message when cnnfast.nn is missing, plots."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import _tiny_nn as tiny
import cnnfast.__main__ as cli
from cnnfast.checkpoint import load_checkpoint
from helpers import write_mnist_like

HAVE_NN = importlib.util.find_spec("cnnfast.nn") is not None


def parse_train(*argv):
    return cli.resolve_train_args(cli.build_parser().parse_args(["train", *argv]))


def test_train_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv("CNNFAST_DATA", raising=False)
    a = parse_train()
    assert (a.model, a.dataset, a.data_dir, a.seed) == ("lenet5", "digits", None, 0)
    for k, v in cli.TRAIN_DEFAULTS["digits"].items():
        assert getattr(a, k) == v
    a = parse_train("--dataset", "cifar10", "--epochs", "3", "--lr", "0.01", "--momentum", "0",
                    "--weight-decay", "0", "--batch-size", "7", "--threads", "1", "--seed", "5",
                    "--out", "c.npz", "--resume", "--plot", "figs", "--augment", "translate")
    assert (a.epochs, a.lr, a.momentum, a.weight_decay, a.batch_size, a.threads, a.seed) == \
        (3, 0.01, 0.0, 0.0, 7, 1, 5)
    assert (a.out, a.resume, a.plot, a.augment) == ("c.npz", True, "figs", "translate")
    assert a.data_dir == os.path.expanduser(os.path.join("~", ".cache", "cnnfast", "cifar10"))
    monkeypatch.setenv("CNNFAST_DATA", "/data")
    assert parse_train("--dataset", "mnist").data_dir == os.path.join("/data", "mnist")
    assert parse_train("--dataset", "mnist", "--data-dir", "x").data_dir == "x"
    e = cli.build_parser().parse_args(["eval", "--checkpoint", "c.npz"])
    assert (e.cmd, e.checkpoint, e.batch_size) == ("eval", "c.npz", 256)


@pytest.mark.parametrize("argv,msg", [
    (["--epochs", "0"], "--epochs out of range"), (["--lr", "-1"], "--lr out of range"),
    (["--momentum", "1"], "--momentum out of range"), (["--batch-size", "0"], "--batch-size"),
    (["--weight-decay", "-0.1"], "--weight-decay"), (["--threads", "0"], "--threads"),
    (["--resume"], "--resume needs --out"), (["--seed", "-1"], "--seed out of range"),
    (["--lr", "inf"], "--lr out of range"), (["--lr", "nan"], "--lr out of range"),
    (["--out", "."], "is a directory")])
def test_train_bad_values(argv, msg):
    with pytest.raises(SystemExit, match=msg):
        parse_train(*argv)


@pytest.mark.parametrize("argv", [["train", "--dataset", "imagenet"], ["train", "--model", "vgg"],
                                  ["train", "--epochs", "two"], ["eval"]])
def test_argparse_rejects(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2 and "error" in capsys.readouterr().err


tiny_training = tiny.cli_training  # the NumPy stand-in for build_training


def test_train_eval_resume_end_to_end(tmp_path, rng, monkeypatch, capsys):
    monkeypatch.setattr(cli, "build_training", tiny_training)
    data = write_mnist_like(str(tmp_path / "mnist"), rng, n_train=48, n_test=16, size=12)
    ckpt = str(tmp_path / "run.npz")
    common = ["train", "--dataset", "mnist", "--data-dir", data, "--batch-size", "8", "--lr",
              "0.01", "--augment", "translate", "--schedule", "none", "--seed", "3", "--threads",
              "1", "--quiet"]
    assert cli.main(common + ["--epochs", "3", "--out", ckpt]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "16 images" in out and "3 epochs" in out
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 3 and state["meta"]["dataset"] == "mnist" and state["seed"] == 3
    assert state["meta"]["input_size"] == 12 and len(state["history"]["loss"]) == 3
    full = state["model"]

    part = str(tmp_path / "part.npz")
    assert cli.main(common + ["--epochs", "1", "--out", part]) == 0
    assert cli.main(common + ["--epochs", "3", "--out", part, "--resume"]) == 0
    resumed = load_checkpoint(part)
    assert all(np.array_equal(full[k], resumed["model"][k]) for k in full)
    capsys.readouterr()
    assert cli.main(common + ["--epochs", "4", "--out", part, "--resume", "--batch-size", "4"]) == 2
    assert "different batch_size (8, now 4)" in capsys.readouterr().err
    cosine = common[:common.index("--schedule")] + common[common.index("--schedule") + 2:]
    cos_part = str(tmp_path / "cos.npz")
    assert cli.main(cosine + ["--epochs", "1", "--out", cos_part]) == 0  # mnist default: cosine
    assert cli.main(cosine + ["--epochs", "3", "--out", cos_part, "--resume"]) == 2
    assert "different epochs (1, now 3)" in capsys.readouterr().err

    for flag, value in (("--lr", "5.0"), ("--momentum", "0.5"), ("--seed", "4")):
        # the optimizer's hyperparameters and the seed come back with the checkpoint: a changed
        # value would be printed and recorded but not used
        assert cli.main(common + ["--epochs", "4", "--out", part, "--resume", flag, value]) == 2
        assert "different " + flag[2:] in capsys.readouterr().err
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    assert cli.main(common + ["--epochs", "2", "--out", str(broken), "--resume"]) == 2
    assert "broken.npz" in capsys.readouterr().err

    for flag, value in (("--batch-size", "-5"), ("--batch-size", "0"), ("--threads", "0")):
        assert cli.main(["eval", "--checkpoint", ckpt, flag, value]) == 2
        assert f"{flag} out of range" in capsys.readouterr().err
    assert cli.main(["eval", "--checkpoint", ckpt]) == 0
    line = capsys.readouterr().out
    acc = float(line.split("test accuracy")[1].split("%")[0])
    assert "epoch 3" in line and f"{acc:.2f}" in out.split("test accuracy")[1]


def test_eval_errors(tmp_path, capsys):
    assert cli.main(["eval", "--checkpoint", str(tmp_path / "none.npz")]) == 2
    assert "none.npz" in capsys.readouterr().err
    from cnnfast.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "bare.npz", {"epoch": 1, "meta": {}})
    assert cli.main(["eval", "--checkpoint", str(tmp_path / "bare.npz")]) == 2
    assert "no training configuration" in capsys.readouterr().err


def test_train_missing_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "build_training", tiny_training)
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot load dataset 'mnist'" in err and "train-images-idx3-ubyte.gz" in err


@pytest.mark.skipif(HAVE_NN, reason="cnnfast.nn is available: the guard does not trigger")
def test_train_without_nn_says_so(tmp_path, rng, capsys):
    data = write_mnist_like(str(tmp_path), rng, n_train=8, n_test=4)
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", data, "--quiet"]) == 2
    assert "cnnfast.nn (the layer API) is not available" in capsys.readouterr().err


def test_train_plots(tmp_path, rng, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(cli, "build_training", tiny_training)
    data = write_mnist_like(str(tmp_path / "d"), rng, n_train=16, n_test=8, size=12)
    figs = tmp_path / "figs"
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", data, "--epochs", "2",
                     "--quiet", "--plot", str(figs)]) == 0
    assert "plot: " in capsys.readouterr().out
    assert os.listdir(figs) == ["curves.png"]  # the stand-in has no conv filters, no layers
    assert (figs / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_plot_without_matplotlib_stops_before_training(tmp_path, rng, monkeypatch,
                                                              capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setattr(cli, "build_training", tiny_training)
    data = write_mnist_like(str(tmp_path / "d"), rng, n_train=16, n_test=8, size=12)
    ckpt = tmp_path / "c.npz"
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", data, "--epochs", "1", "--quiet",
                     "--out", str(ckpt), "--plot", str(tmp_path / "figs")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
    assert not ckpt.exists()  # nothing was trained


def test_python_dash_m_info():
    out = subprocess.run([sys.executable, "-m", "cnnfast", "info"], capture_output=True, text=True,
                         cwd="/", timeout=60)
    assert out.returncode == 0 and '"isa"' in out.stdout


def test_segmentation_defaults_and_bad_combinations(monkeypatch):
    monkeypatch.setenv("CNNFAST_DATA", "/data")
    a = parse_train("--model", "unet", "--dataset", "mnist-seg")
    assert (a.optimizer, a.class_weights, a.schedule, a.width, a.depth) == \
        ("adam", "none", "cosine", 16, 3)
    assert a.data_dir == os.path.join("/data", "mnist")  # made from the MNIST files
    a = parse_train("--model", "segnet", "--dataset", "mnist-seg", "--width", "4", "--depth", "2",
                    "--train-size", "10", "--optimizer", "sgd", "--class-weights", "median-freq")
    assert (a.width, a.depth, a.train_size, a.optimizer, a.class_weights) == \
        (4, 2, 10, "sgd", "median-freq")
    assert (parse_train().optimizer, parse_train().width) == ("sgd", None)
    for argv, msg in [(["--dataset", "mnist-seg"], "lenet5 does not fit --dataset mnist-seg"),
                      (["--model", "unet", "--dataset", "mnist"], "unet does not fit"),
                      (["--width", "8"], "--width/--depth apply to unet/segnet"),
                      (["--class-weights", "median-freq"], "segmentation datasets only"),
                      (["--model", "unet", "--dataset", "mnist-seg", "--augment", "translate"],
                       "label maps"),
                      (["--model", "unet", "--dataset", "mnist-seg", "--depth", "0"],
                       "--depth out of range"),
                      (["--model", "unet", "--dataset", "mnist-seg", "--test-size", "0"],
                       "--test-size out of range")]:
        with pytest.raises(SystemExit, match=msg):
            parse_train(*argv)


@pytest.mark.skipif(not HAVE_NN, reason="needs cnnfast.nn")
def test_train_eval_resume_unet_on_mnist_seg(tmp_path, rng, capsys):
    """A tiny U-Net on mosaics of random 8x8 'digits': per-epoch and final pixel accuracy and mean
    IoU, the same figures from `eval`, exact resume (batch-norm buffers included)."""
    data = write_mnist_like(str(tmp_path / "mnist"), rng, n_train=32, n_test=16, size=8)
    common = ["train", "--model", "unet", "--dataset", "mnist-seg", "--data-dir", data, "--width",
              "2", "--depth", "2", "--train-size", "12", "--test-size", "6", "--batch-size", "4",
              "--schedule", "none", "--class-weights", "median-freq", "--seed", "1",
              "--threads", "1", "--quiet"]  # no cosine schedule: resumable to more epochs
    ckpt, part = str(tmp_path / "unet.npz"), str(tmp_path / "part.npz")
    assert cli.main(common + ["--epochs", "2", "--out", ckpt]) == 0
    out = capsys.readouterr().out
    assert "test pixel accuracy" in out and "(6 images)" in out and "background" in out
    miou = float(out.split("mean IoU")[1].split()[0])
    state = load_checkpoint(ckpt)
    hist, meta = state["history"], state["meta"]
    assert len(hist["val_mean_iou"]) == 2 and len(hist["val_iou"][-1]) == 11
    assert f"{hist['val_mean_iou'][-1]:.4f}" == f"{miou:.4f}" and 0 <= miou <= 1
    pixel_acc = float(out.split("test pixel accuracy")[1].split("%")[0])
    assert f"{100 * hist['val_accuracy'][-1]:.2f}" == f"{pixel_acc:.2f}"
    assert meta["input_size"] == 16
    weights = np.asarray(meta["loss_weights"])  # median-frequency: rare classes weigh more
    assert weights.shape == (11,) and weights[10] < np.max(weights)

    assert cli.main(["eval", "--checkpoint", ckpt]) == 0
    line = capsys.readouterr().out
    assert "epoch 2" in line and f"mean IoU {miou:.4f}" in line and "per-class IoU: 0 " in line

    assert cli.main(common + ["--epochs", "1", "--out", part]) == 0
    assert cli.main(common + ["--epochs", "2", "--out", part, "--resume"]) == 0
    full, resumed = state["model"], load_checkpoint(part)["model"]
    assert any("running_var" in k for k in full)
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    capsys.readouterr()
    assert cli.main(common + ["--epochs", "2", "--out", part, "--resume", "--width", "4"]) == 2
    assert "different width (2, now 4)" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_NN, reason="needs cnnfast.nn")
def test_train_segnet_on_mnist_seg_and_unet_size_check(tmp_path, rng, capsys):
    data = write_mnist_like(str(tmp_path), rng, n_train=16, n_test=8, size=6)  # 12x12 mosaics
    common = ["train", "--dataset", "mnist-seg", "--data-dir", data, "--width", "2",
              "--train-size", "8", "--test-size", "4", "--epochs", "2"]
    assert cli.main(common + ["--model", "segnet", "--depth", "2", "--class-weights", "none"]) == 0
    out = capsys.readouterr().out  # with progress: per-epoch per-class IoU, then the final scores
    assert out.count("test per-class IoU: 0 ") == 2 and "mean IoU" in out
    assert cli.main(common + ["--model", "unet", "--depth", "3", "--quiet"]) == 2
    assert "input size 12 must be divisible by 2^depth = 8" in capsys.readouterr().err
    assert cli.main(common + ["--model", "segnet", "--depth", "4", "--quiet"]) == 2  # 12 -> 0
    assert "input size 12 halves to nothing over depth 4" in capsys.readouterr().err
