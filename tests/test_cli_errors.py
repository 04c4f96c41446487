"""The command line's refusals: a checkpoint whose contents do not fit its own configuration, an
--out or --plot that cannot be written (caught before training), empty or short data sets,
divergence, bad option values (exit status 2, as argparse's own), and constant channels."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import _tiny_nn as tiny
import cnnfast.__main__ as cli
from cnnfast.checkpoint import load_checkpoint, save_checkpoint
from cnnfast.data import write_idx
from helpers import write_mnist_like

HAVE_NN = importlib.util.find_spec("cnnfast.nn") is not None


tiny_training = tiny.cli_training  # the NumPy stand-in for build_training


def train_args(data, *extra):
    return ["train", "--dataset", "mnist", "--data-dir", data, "--epochs", "1", "--batch-size",
            "8", "--threads", "1", "--quiet", *extra]


@pytest.mark.skipif(not HAVE_NN, reason="needs cnnfast.nn (the real LeNet-5)")
def test_eval_refuses_a_checkpoint_that_contradicts_itself(tmp_path, rng, capsys):
    data = write_mnist_like(str(tmp_path / "d"), rng, n_train=16, n_test=8)
    good = str(tmp_path / "good.npz")
    assert cli.main(train_args(data, "--out", good)) == 0
    state = load_checkpoint(good)

    def doctored(name, change):
        s = load_checkpoint(good)
        change(s)
        path = str(tmp_path / f"{name}.npz")
        save_checkpoint(path, s)
        return path

    cases = [
        (lambda s: s["meta"].update(num_classes=5), "'11.weight' has shape (10, 84)"),
        (lambda s: s.pop("model"), "no model weights"),
        (lambda s: s.pop("meta"), "no training configuration"),
        (lambda s: s["meta"].pop("in_channels"), "no training configuration"),
        (lambda s: s["meta"].update(model="resnet18"), "'resnet18' is not one"),
        (lambda s: s["meta"].update(mean=[0.1, 0.2, 0.3]), "mean/std have 3/1 channels"),
    ]
    for i, (change, message) in enumerate(cases):
        path = doctored(f"bad{i}", change)
        assert cli.main(["eval", "--checkpoint", path]) == 2, message
        err = capsys.readouterr().err
        assert message in err and f"bad{i}.npz" in err, err
    no_epoch = doctored("no_epoch", lambda s: s.pop("epoch"))
    assert cli.main(["eval", "--checkpoint", no_epoch]) == 0
    assert "(epoch ?)" in capsys.readouterr().out
    assert state["epoch"] == 1


def test_unwritable_out_and_plot_fail_before_training(tmp_path, rng, monkeypatch, capsys):
    monkeypatch.setattr(cli, "build_training", tiny_training)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())  # "matplotlib"
    data = write_mnist_like(str(tmp_path / "d"), rng, n_train=16, n_test=8, size=8)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    trained = []
    monkeypatch.setattr(cli, "_standardized", lambda *a: trained.append(1))
    for option in ("--out", "--plot"):
        target = str(a_file / "inside" / ("x.npz" if option == "--out" else "figs"))
        assert cli.main(train_args(data, option, target)) == 2
        err = capsys.readouterr().err
        assert f"{option}: cannot write in" in err and "plain.txt" in err, err
    assert not trained  # refused before the data were even standardized
    monkeypatch.setattr(cli, "_load_split", lambda *a, **k: (_ for _ in ()).throw(
        OSError("no data")))
    assert cli.main(train_args(data, "--out", str(tmp_path / "made" / "for" / "c.npz"))) == 2
    assert not (tmp_path / "made").exists()  # the check's folders do not outlive a refusal
    capsys.readouterr()
    out = tmp_path / "new" / "dir" / "c.npz"  # a folder still to make is fine
    monkeypatch.undo()
    monkeypatch.setattr(cli, "build_training", tiny_training)
    assert cli.main(train_args(data, "--out", str(out))) == 0
    assert out.exists() and not [f for f in os.listdir(out.parent) if f != "c.npz"]


def test_empty_and_short_data_sets_are_refused(tmp_path, rng, monkeypatch, capsys):
    monkeypatch.setattr(cli, "build_training", tiny_training)
    data = write_mnist_like(str(tmp_path / "d"), rng, n_train=16, n_test=8, size=8)
    assert cli.main(train_args(data, "--train-size", "17")) == 2
    assert "training set of 'mnist' holds 16 images, fewer than --train-size 17" in \
        capsys.readouterr().err
    assert cli.main(train_args(data, "--test-size", "9")) == 2
    assert "test set of 'mnist' holds 8 images" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    for prefix in ("train", "t10k"):
        write_idx(str(empty / f"{prefix}-images-idx3-ubyte.gz"), np.zeros((0, 8, 8), np.uint8))
        write_idx(str(empty / f"{prefix}-labels-idx1-ubyte.gz"), np.zeros(0, np.uint8))
    assert cli.main(train_args(str(empty))) == 2
    assert "training set of 'mnist' holds no images" in capsys.readouterr().err


def test_constant_images_train_without_nan(tmp_path, rng, monkeypatch, capsys):
    """A channel with std 0 over the training set is centred, not divided by zero."""
    monkeypatch.setattr(cli, "build_training", tiny_training)
    root = tmp_path / "const"
    root.mkdir()
    for prefix, n in (("train", 16), ("t10k", 8)):
        write_idx(str(root / f"{prefix}-images-idx3-ubyte.gz"), np.full((n, 8, 8), 7, np.uint8))
        write_idx(str(root / f"{prefix}-labels-idx1-ubyte.gz"),
                  rng.integers(0, 10, n).astype(np.uint8))
    ckpt = str(tmp_path / "c.npz")
    assert cli.main(train_args(str(root), "--out", ckpt)) == 0
    assert "nan" not in capsys.readouterr().out
    assert load_checkpoint(ckpt)["meta"]["std"] == [1.0]


def test_divergence_is_an_error_and_keeps_the_last_good_checkpoint(tmp_path, rng, monkeypatch,
                                                                    capsys):
    monkeypatch.setattr(cli, "build_training", tiny_training)
    data = write_mnist_like(str(tmp_path / "d"), rng, n_train=16, n_test=8, size=8)
    ckpt = str(tmp_path / "c.npz")
    assert cli.main(train_args(data, "--out", ckpt, "--lr", "1e-3", "--schedule", "none")) == 0
    before = load_checkpoint(ckpt)["model"]
    real, calls = tiny.SGD.step, []

    def overflowing(self):  # the epoch's second (last) step leaves an infinite weight
        real(self)
        calls.append(1)
        if len(calls) == 2:
            self.params[0].data[0] = np.inf
    monkeypatch.setattr(tiny.SGD, "step", overflowing)
    argv = train_args(data, "--out", ckpt, "--lr", "1e-3", "--schedule", "none", "--epochs", "2",
                      "--resume")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "training diverged" in err and "became non-finite" in err, err
    after = load_checkpoint(ckpt)
    assert after["epoch"] == 1 and all(np.array_equal(before[k], after["model"][k])
                                       for k in before)


@pytest.mark.parametrize("argv,message", [
    (["train", "--epochs", "0"], "--epochs out of range"),
    (["train", "--data-dir", "x"], "--data-dir/--download do not apply to --dataset digits"),
    (["train", "--download"], "do not apply to --dataset digits"),
    (["summary", "--model", "lenet5", "--input-shape", "1x28x28"], "--input-shape '1x28x28'"),
])
def test_bad_options_exit_2_with_a_message(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
