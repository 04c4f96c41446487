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
    (["--resume"], "--resume needs --out")])
def test_train_bad_values(argv, msg):
    with pytest.raises(SystemExit, match=msg):
        parse_train(*argv)


@pytest.mark.parametrize("argv", [["train", "--dataset", "imagenet"], ["train", "--model", "vgg"],
                                  ["train", "--epochs", "two"], ["eval"]])
def test_argparse_rejects(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2 and "error" in capsys.readouterr().err


def tiny_training(config):
    """Stand-in for cli.build_training: the NumPy linear classifier, its loss and SGD."""
    features = config["in_channels"] * config["input_size"] ** 2
    model = tiny.LinearClassifier(features, config["num_classes"])
    opt = tiny.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                   weight_decay=config["weight_decay"])
    return model, tiny.CrossEntropyLoss(), opt


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


def test_python_dash_m_info():
    out = subprocess.run([sys.executable, "-m", "cnnfast", "info"], capture_output=True, text=True,
                         cwd="/", timeout=60)
    assert out.returncode == 0 and '"isa"' in out.stdout
