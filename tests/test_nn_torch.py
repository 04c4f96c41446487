"""cnnfast.nn layers and losses against the same torch.nn modules (same weights, float64):
forward, input gradient, parameter gradients, buffers, and state_dict interchange. Skipped
without torch; layers over ops from other branches skip until those ops exist."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import nn

from helpers import assert_close
from nn_helpers import compare_with_torch, seed_layer_init, torch_state

torch = pytest.importorskip("torch")
tnn = torch.nn
_seed = pytest.fixture(autouse=True)(seed_layer_init)


@pytest.mark.parametrize("make", [
    lambda: (nn.Conv2d(3, 4, 3), tnn.Conv2d(3, 4, 3)),
    lambda: (nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, bias=False),
             tnn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, bias=False)),
    lambda: (nn.ReLU(), tnn.ReLU()),
    lambda: (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)),
    lambda: (nn.Sigmoid(), tnn.Sigmoid()),
    lambda: (nn.Tanh(), tnn.Tanh()),
    lambda: (nn.Softmax(1), tnn.Softmax(1)),
    lambda: (nn.LogSoftmax(1), tnn.LogSoftmax(1)),
    lambda: (nn.BatchNorm2d(4), tnn.BatchNorm2d(4)),
    lambda: (nn.BatchNorm2d(4, affine=False, momentum=None), tnn.BatchNorm2d(4, affine=False,
                                                                             momentum=None)),
    lambda: (nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0),
             tnn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0)),
    lambda: (nn.Flatten(), tnn.Flatten()),
    lambda: (nn.Identity(), tnn.Identity()),
    lambda: (nn.Dropout(0.5), tnn.Dropout(0.5)),  # compared in eval mode below
], ids=["conv", "conv_grouped", "relu", "leaky", "sigmoid", "tanh", "softmax", "log_softmax",
        "bn2d", "bn2d_noaffine", "lrn", "flatten", "identity", "dropout"])
def test_layer_4d_matches_torch(rng, make):
    ours, theirs = make()
    x = rng.standard_normal((2, 4 if "Conv2d(4" in repr(ours) or "BatchNorm" in type(ours).__name__
                             else 3, 7, 6))
    if isinstance(ours, nn.Conv2d):
        x = rng.standard_normal((2, ours.in_channels, 7, 6))
    train = not isinstance(ours, nn.Dropout)
    compare_with_torch(ours, theirs, x, rng, train=train)
    if isinstance(ours, nn.BatchNorm2d):  # a second step, then eval with the running stats
        compare_with_torch(ours, theirs, rng.standard_normal(x.shape), rng, train=False)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6)])
def test_linear_and_batchnorm1d_match_torch(rng, shape):
    compare_with_torch(nn.Linear(shape[-1], 4), tnn.Linear(shape[-1], 4), rng.standard_normal(shape), rng)
    compare_with_torch(nn.BatchNorm1d(3), tnn.BatchNorm1d(3), rng.standard_normal(shape), rng)


def test_batchnorm3d_matches_torch(rng):
    compare_with_torch(nn.BatchNorm3d(2), tnn.BatchNorm3d(2), rng.standard_normal((2, 2, 3, 4, 2)), rng)


def _lenet(mod, flatten):
    return mod.Sequential(mod.Conv2d(1, 6, 5, padding=2), mod.ReLU(), mod.Conv2d(6, 8, 5, stride=2, bias=False),
                          mod.BatchNorm2d(8), mod.Tanh(), flatten, mod.Linear(8 * 12 * 12, 10),
                          mod.LogSoftmax(1))


def test_model_state_dict_from_torch_gives_same_outputs(rng):
    theirs = _lenet(tnn, tnn.Flatten()).train()
    ours = _lenet(nn, nn.Flatten())
    compare_with_torch(ours, theirs, rng.standard_normal((3, 1, 28, 28)), rng)
    # float32 weights straight from torch load unchanged and give the same eval outputs
    theirs = theirs.float().eval()
    ours = _lenet(nn, nn.Flatten()).eval()
    ours.load_state_dict(torch_state(theirs))
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert_close(ours(x), theirs(torch.tensor(x)).detach().numpy(), 1e-5, "float32 eval")


@pytest.mark.parametrize("case", ["plain", "weights_ignore_smooth", "pixels"])
def test_cross_entropy_loss_matches_torch(rng, case):
    shape = (4, 5) if case != "pixels" else (2, 5, 3, 4)
    x = rng.standard_normal(shape)
    t = rng.integers(0, 5, (shape[0],) + shape[2:])
    kw = {}
    if case == "weights_ignore_smooth":
        kw = dict(weight=rng.uniform(0.5, 2, 5), ignore_index=3, label_smoothing=0.1)
        t[0] = 0
    if case == "pixels":
        kw = dict(weight=rng.uniform(0.5, 2, 5), ignore_index=-1, reduction="sum")
        t[0, 0, 0] = -1
    ours = nn.CrossEntropyLoss(**kw)
    tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    theirs = tnn.CrossEntropyLoss(**tkw)
    xt = torch.tensor(x, requires_grad=True)
    lt = theirs(xt, torch.tensor(t))
    lt.backward()
    assert_close(ours(x, t), lt.item(), 1e-12, "loss")
    assert_close(ours.backward(), xt.grad.numpy(), 1e-12, "grad")


def test_other_losses_match_torch(rng):
    x, y = rng.standard_normal((4, 3)), rng.random((4, 3))
    t = rng.integers(0, 3, 4)
    pw = rng.uniform(0.5, 2, 3)
    lp = F.log_softmax(x)
    for ours, theirs, inp, tgt in (
            (nn.MSELoss(), tnn.MSELoss(), x, y),
            (nn.BCEWithLogitsLoss(pos_weight=pw), tnn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw)),
             x, y),
            (nn.NLLLoss(reduction="sum"), tnn.NLLLoss(reduction="sum"), lp, t)):
        xt = torch.tensor(inp, requires_grad=True)
        lt = theirs(xt, torch.tensor(tgt))
        lt.backward()
        assert_close(ours(inp, tgt), lt.item(), 1e-12, type(ours).__name__)
        assert_close(ours.backward(), xt.grad.numpy(), 1e-12, type(ours).__name__ + " grad")


# ---- layers over ops from the pooling / conv-family branches -----------------------------------

@pytest.mark.parametrize("make,shape,needs", [
    (lambda: (nn.Conv1d(3, 4, 3, padding=1), tnn.Conv1d(3, 4, 3, padding=1)), (2, 3, 9),
     ("conv1d", "conv1d_backward")),
    (lambda: (nn.Conv3d(2, 3, 3), tnn.Conv3d(2, 3, 3)), (2, 2, 5, 4, 5),
     ("conv3d", "conv3d_backward")),
    (lambda: (nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1),
              tnn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)), (2, 3, 4, 5),
     ("conv_transpose2d", "conv_transpose2d_backward")),
    (lambda: (nn.ConvTranspose1d(3, 2, 3, stride=2), tnn.ConvTranspose1d(3, 2, 3, stride=2)),
     (2, 3, 6), ("conv_transpose1d", "conv_transpose1d_backward")),
    (lambda: (nn.MaxPool2d(3, 2, 1), tnn.MaxPool2d(3, 2, 1)), (2, 3, 9, 8),
     ("max_pool2d", "max_pool2d_backward")),
    (lambda: (nn.AvgPool2d(2), tnn.AvgPool2d(2)), (2, 3, 8, 6), ("avg_pool2d", "avg_pool2d_backward")),
    (lambda: (nn.AdaptiveAvgPool2d((3, 2)), tnn.AdaptiveAvgPool2d((3, 2))), (2, 3, 7, 5),
     ("adaptive_avg_pool2d", "adaptive_avg_pool2d_backward")),
    (lambda: (nn.AdaptiveMaxPool2d(2), tnn.AdaptiveMaxPool2d(2)), (2, 3, 7, 5),
     ("adaptive_max_pool2d", "adaptive_max_pool2d_backward")),
    (lambda: (nn.LPPool2d(2, 2), tnn.LPPool2d(2, 2)), (2, 3, 6, 6), ("lp_pool2d", "lp_pool2d_backward")),
    (lambda: (nn.Upsample(scale_factor=2, mode="bilinear"),
              tnn.Upsample(scale_factor=2, mode="bilinear")), (2, 3, 4, 5),
     ("interpolate", "interpolate_backward")),
    (lambda: (nn.Upsample(scale_factor=2), tnn.Upsample(scale_factor=2)), (2, 3, 4, 5),
     ("interpolate", "interpolate_backward")),  # the defaults: mode 'nearest', no align_corners
], ids=["conv1d", "conv3d", "convT2d", "convT1d", "maxpool2d", "avgpool2d", "adaptiveavg",
        "adaptivemax", "lppool2d", "upsample", "upsample_nearest"])
def test_other_branch_layers_match_torch(rng, make, shape, needs):
    missing = [n for n in needs if not hasattr(F, n)]
    if missing:
        pytest.skip(f"cnnfast.functional lacks {missing} (lands with the pooling/conv-family branches)")
    ours, theirs = make()
    compare_with_torch(ours, theirs, rng.standard_normal(shape), rng)
