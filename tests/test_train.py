"""fit / evaluate with the NumPy stand-in model (tests/_tiny_nn.py): learning, history, seeds,
exact resume from checkpoints, callbacks, progress output, bad input."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import _tiny_nn as tiny
from cnnfast.data import Dataset, RandomTranslation
from cnnfast.train import evaluate, fit, predict, seed_everything
from helpers import directional_fd


def blobs(rng, n=120, classes=3, size=4, spread=0.6, seed=0):
    """Gaussian blobs around class centres fixed by `seed` (train and val share them)."""
    centres = np.random.default_rng(seed).standard_normal((classes, 1, size, size)) * 2
    y = rng.integers(0, classes, n)
    x = centres[y] + spread * rng.standard_normal((n, 1, size, size))
    return Dataset(x.astype(np.float32), y.astype(np.int64), [str(i) for i in range(classes)])


def make(seed, features=16, classes=3, dropout=0.2, lr=0.02, sched=True):
    seed_everything(seed)
    model = tiny.LinearClassifier(features, classes, dropout=dropout)
    opt = tiny.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
    return model, tiny.CrossEntropyLoss(), opt, (tiny.StepLR(opt, 2, 0.5) if sched else None)


def test_stand_in_gradients(rng):
    """The stand-in's backward is the gradient of its loss (float64 finite differences)."""
    model, loss, _, _ = make(0, dropout=0.0)
    x = rng.standard_normal((5, 1, 4, 4))
    y = rng.integers(0, 3, 5)

    def f(args):
        model.weight.data[...], model.bias.data[...] = args[1], args[2]
        return loss(model(args[0]), y)
    w, b = model.weight.data.copy(), model.bias.data.copy()
    f([x, w, b])
    model.zero_grad()
    gx = model.backward(loss.backward()).reshape(x.shape)
    grads = [gx, model.weight.grad.copy(), model.bias.grad.copy()]
    directional_fd(f, [x, w, b], grads, rng, eps=1e-5, tol=1e-8)


def test_fit_learns_and_records_history(rng):
    train, val = blobs(rng), blobs(rng, n=60)
    model, loss, opt, sched = make(1)
    before = evaluate(model, val, loss)
    hist = fit(model, loss, opt, train, val_data=val, epochs=5, batch_size=16, scheduler=sched,
               progress=False, seed=3)
    assert hist["epoch"] == [1, 2, 3, 4, 5]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "images_per_s", "time_s", "lr"):
        assert len(hist[key]) == 5 and all(np.isfinite(hist[key])), key
    assert hist["lr"] == [0.02, 0.02, 0.01, 0.01, 0.005]  # scheduler stepped after each epoch
    after = evaluate(model, val, loss)
    assert after["loss"] < before["loss"] and after["accuracy"] >= 0.9
    assert after["accuracy"] == hist["val_accuracy"][-1] and after["n"] == 60
    logits = predict(model, val.images, batch_size=7)
    assert np.mean(np.argmax(logits, 1) == val.labels) == after["accuracy"]
    assert model.training is True   # predict restores the mode (it ran in eval mode)
    evaluate(model, val)
    assert model.training is True   # evaluate restores the mode
    model.eval()
    predict(model, val.images)
    assert model.training is False


def test_evaluate_by_hand(rng):
    data = blobs(rng, n=37)
    model, loss, _, _ = make(2, dropout=0.5)
    logits = data.images.reshape(37, -1) @ model.weight.data.T + model.bias.data
    res = evaluate(model, (data.images, data.labels), loss, batch_size=10)  # dropout off in eval
    assert res["accuracy"] == np.mean(np.argmax(logits, 1) == data.labels)
    assert np.isclose(res["loss"], tiny.CrossEntropyLoss()(logits, data.labels), rtol=1e-12)
    assert np.isnan(evaluate(model, data)["loss"])


class PredictionInChannel0:
    """A 'segmentation model' whose prediction is the label map stored in the image's channel 0
    (one-hot logits), so evaluate's counts can be checked by hand."""
    training = False

    def eval(self):
        self.training = False

    def train(self):
        self.training = True

    def __call__(self, x):
        return np.eye(3, dtype=np.float32)[x[:, 0].astype(int)].transpose(0, 3, 1, 2)


def test_evaluate_label_maps_by_hand():
    pred = np.array([[[0, 1], [1, 1]], [[2, 2], [0, 1]]])
    target = np.array([[[0, 0], [1, 1]], [[2, 2], [2, 1]]])
    res = evaluate(PredictionInChannel0(), (pred[:, None].astype(np.float32), target),
                   batch_size=1, num_classes=3)
    # 6 of 8 pixels right. IoU = TP / (TP + FP + FN): class 0: 1 / (1 + 1 + 1) (pixel (1,1,0)
    # predicted 0, pixel (0,0,1) is a 0 predicted 1); class 1: 3 / (3 + 1 + 0); class 2: 2 / 3.
    assert res["accuracy"] == 6 / 8 and res["n"] == 2
    np.testing.assert_allclose(res["iou"], [1 / 3, 3 / 4, 2 / 3])
    assert res["mean_iou"] == pytest.approx((1 / 3 + 3 / 4 + 2 / 3) / 3)
    assert "mean_iou" not in evaluate(PredictionInChannel0(), (pred[:, None], target))


def _params(model):
    return [p.data.copy() for p in model.parameters()]


def test_seed_fixes_init_shuffle_augment_dropout(rng):
    train = blobs(rng)
    runs = []
    for seed in (5, 5, 6):
        model, loss, opt, sched = make(seed)
        fit(model, loss, opt, train, epochs=2, batch_size=8, augment=RandomTranslation(1),
            scheduler=sched, progress=False, seed=seed)
        runs.append(_params(model))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not np.array_equal(runs[0][0], runs[2][0])
    # The same init, but another fit seed (shuffle/augment/dropout) changes the result too.
    model, loss, opt, sched = make(5)
    fit(model, loss, opt, train, epochs=2, batch_size=8, augment=RandomTranslation(1),
        scheduler=sched, progress=False, seed=7)
    assert not np.array_equal(runs[0][0], _params(model)[0])


def test_resume_is_exact(tmp_path, rng):
    train, val = blobs(rng), blobs(rng, n=30)
    kw = dict(val_data=val, batch_size=8, augment=RandomTranslation(1), progress=False, seed=11)
    model, loss, opt, sched = make(4)
    full = fit(model, loss, opt, train, epochs=5, scheduler=sched,
               checkpoint=str(tmp_path / "full.npz"), **kw)
    want = _params(model)

    path = str(tmp_path / "part.npz")
    m1, l1, o1, s1 = make(4)
    fit(m1, l1, o1, train, epochs=2, scheduler=s1, checkpoint=path, **kw)
    m2, l2, o2, s2 = make(99)  # a fresh process: other init, empty momentum, fresh scheduler
    seed_everything(12345)
    resumed = fit(m2, l2, o2, train, epochs=5, scheduler=s2, checkpoint=path, resume=True, **kw)
    assert all(np.array_equal(a, b) for a, b in zip(want, _params(m2)))
    assert resumed["epoch"] == full["epoch"] and resumed["loss"] == full["loss"]
    assert resumed["val_accuracy"] == full["val_accuracy"] and resumed["lr"] == full["lr"]
    with pytest.raises(ValueError, match="seed 11, got seed=3"):
        fit(*make(4)[:3], train, epochs=6, checkpoint=path, resume=True, seed=3, progress=False)
    with pytest.raises(ValueError, match="no scheduler state"):
        p2 = str(tmp_path / "nosched.npz")
        fit(*make(4)[:3], train, epochs=1, checkpoint=p2, progress=False, seed=1)
        m3, l3, o3, s3 = make(4)
        fit(m3, l3, o3, train, epochs=2, scheduler=s3, checkpoint=p2, resume=True,
            progress=False)


def test_resume_without_file_starts_fresh(tmp_path, rng):
    train = blobs(rng)
    path = str(tmp_path / "new.npz")
    model, loss, opt, _ = make(1)
    hist = fit(model, loss, opt, train, epochs=1, checkpoint=path, resume=True, progress=False,
               seed=2)
    assert hist["epoch"] == [1]
    model, loss, opt, _ = make(1)
    assert fit(model, loss, opt, train, epochs=1, checkpoint=path, resume=True,
               progress=False)["epoch"] == [1]  # already done: nothing more to train


def test_callbacks_and_early_stop(rng):
    train = blobs(rng)
    seen, seen2 = [], []

    def stop_at_2(epoch, record):
        seen.append((epoch, round(record["accuracy"], 6)))
        return epoch == 2
    model, loss, opt, _ = make(1)
    hist = fit(model, loss, opt, train, epochs=5, callbacks=[stop_at_2, lambda e, r: seen2.append(e)],
               progress=False, seed=0)
    assert [e for e, _ in seen] == [1, 2] and seen2 == [1, 2] and hist["epoch"] == [1, 2]


def test_progress_plain_fallback_and_quiet(rng, capsys, monkeypatch):
    train, val = blobs(rng, n=40), blobs(rng, n=20)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    model, loss, opt, _ = make(1)
    fit(model, loss, opt, train, val_data=val, epochs=2, batch_size=8, seed=0)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("epoch 2/2: loss ")
    assert "acc" in out[1] and "val_acc" in out[1] and "img/s" in out[1]
    fit(model, loss, opt, train, epochs=1, progress=False, seed=0)
    assert capsys.readouterr() == ("", "")


def test_progress_tqdm(rng, capsys):
    pytest.importorskip("tqdm")
    model, loss, opt, _ = make(1)
    fit(model, loss, opt, blobs(rng, n=40), epochs=1, batch_size=8, seed=0)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "5/5" in err and "img_s" in err


def test_fit_errors(rng):
    train = blobs(rng, n=20)
    model, loss, opt, _ = make(1, lr=1e6, dropout=0.0)
    train.images[0, 0, 0, 0] = np.inf
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="too high"):
        fit(model, loss, opt, train, epochs=3, batch_size=20, progress=False, seed=0)
    model, loss, opt, _ = make(1)
    with pytest.raises(TypeError, match="train_data: expected a cnnfast.data.Dataset"):
        fit(model, loss, opt, train.images, progress=False)
    with pytest.raises(ValueError, match=r"train_data: expected \(images"):
        fit(model, loss, opt, (train.images, train.labels[:-1]), progress=False)
    with pytest.raises(TypeError, match="labels must be integers"):
        fit(model, loss, opt, (train.images, train.labels.astype(float)), progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, loss, opt, train, epochs=-1)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        fit(model, loss, opt, train, resume=True)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, loss, opt, train, batch_size=0)
    for bad in (0, -3):  # range(0, n, -3) would evaluate nothing and report 0 %
        with pytest.raises(ValueError, match="evaluate: batch_size"):
            evaluate(model, train, loss, batch_size=bad)
        with pytest.raises(ValueError, match="predict: batch_size"):
            predict(model, train.images, batch_size=bad)
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="val_data"):  # refused before the first epoch
        fit(model, loss, opt, train, val_data=(train.images, train.labels[:3]), progress=False)
    assert all(np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))

    class NoState:  # an optimizer without state_dict / load_state_dict
        def __init__(self, inner):
            self.zero_grad, self.step = inner.zero_grad, inner.step
    with pytest.raises(TypeError, match=r"optimizer \(NoState\) has no state_dict / load_state_"):
        fit(model, loss, NoState(opt), train, checkpoint="never-written.npz", progress=False)
    assert fit(model, loss, NoState(opt), blobs(rng), progress=False)["epoch"] == [1]


def test_a_last_step_that_overflows_is_caught_at_the_epoch_end(rng, tmp_path):
    """The loss check sees the loss before each update; an update that overflows the weights on
    the epoch's last step was reported as a finished epoch (and checkpointed) before."""
    from cnnfast.checkpoint import load_checkpoint
    train = blobs(rng, n=20)
    model, loss, opt, _ = make(1, dropout=0.0)
    ckpt = str(tmp_path / "c.npz")
    fit(model, loss, opt, train, epochs=1, batch_size=10, progress=False, seed=0, checkpoint=ckpt)
    real, calls = opt.step, []

    def overflowing():
        real()
        calls.append(1)
        if len(calls) == 2:  # the second epoch's last step
            model.parameters()[0].data[0, 0] = np.nan
    opt.step = overflowing
    with pytest.raises(FloatingPointError, match="epoch 2: parameter '.*' became non-finite"):
        fit(model, loss, opt, train, epochs=2, batch_size=10, progress=False, seed=0,
            checkpoint=ckpt, resume=True)
    assert load_checkpoint(ckpt)["epoch"] == 1  # the diverged epoch was not saved


def test_evaluate_is_the_whole_set_mean_with_weights_and_ignored_targets(rng):
    """evaluate's loss is the loss of the whole set in one batch (torch's weighted mean over the
    targets not ignored), whatever the batch size; accuracy leaves ignored targets out. Weighting
    batches by their images gave 3.234 for 3.184 (weights) and counted ignored targets as
    wrong; a batch of ignored targets only made the loss NaN."""
    from cnnfast import nn
    x = rng.standard_normal((10, 4)).astype(np.float64)
    y = rng.integers(0, 4, 10)
    y[[0, 1, 2, 5]] = -100
    model = nn.Linear(4, 4, dtype=np.float64)
    logits = model(x)
    for weight in (None, np.array([0.2, 1.0, 3.0, 0.5])):
        loss = nn.CrossEntropyLoss(weight=weight)
        want = float(loss(logits, y))
        valid = y != -100
        want_acc = float(np.mean(np.argmax(logits, 1)[valid] == y[valid]))
        for bs in (2, 3, 4, 10):
            got = evaluate(model, (x, y), loss, batch_size=bs)
            assert got["loss"] == pytest.approx(want, rel=1e-12), (bs, weight)
            assert got["accuracy"] == pytest.approx(want_acc), bs
    # label maps with an ignore_index the confusion matrix must honour (255 as void)
    maps = rng.integers(0, 3, (4, 3, 3))
    maps[0, 0] = 255
    seg = nn.Sequential(nn.Conv2d(2, 3, 1, dtype=np.float64))
    xs = rng.standard_normal((4, 2, 3, 3))
    got = evaluate(seg, (xs, maps), nn.CrossEntropyLoss(ignore_index=255), batch_size=3,
                   num_classes=3)
    pred = np.argmax(seg(xs), 1)
    valid = maps != 255
    assert got["accuracy"] == pytest.approx(float(np.mean(pred[valid] == maps[valid])))


def test_a_batch_of_ignored_targets_only_is_not_divergence(rng):
    """Its mean loss is 0/0 (NaN, as torch's) and its gradient zero: training goes on and the
    epoch's loss is the mean over the other batch (it raised 'learning rate too high?')."""
    from cnnfast import nn, optim
    from cnnfast.data.loader import BatchLoader
    from cnnfast.train import _Progress, _train_one_epoch
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 3, 8)
    y[:4] = -100  # batch 0 of the unshuffled loader: all ignored
    model = nn.Linear(4, 3, dtype=np.float64)
    loss = nn.CrossEntropyLoss()
    want = float(loss(model(x[4:]), y[4:]))
    loader = BatchLoader(x, y, 4, shuffle=False, dtype=np.float64)
    record = _train_one_epoch(model, loss, optimizer=optim.SGD(model.parameters(), lr=0.0),
                              loader=loader, epoch=0, progress=_Progress(False, 2, ""))
    assert record["loss"] == pytest.approx(want)  # lr 0: the weights stay, the mean is exact
