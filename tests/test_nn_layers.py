"""cnnfast.nn without torch: every layer's input and parameter gradients by float64 finite
differences, composites (Sequential, Residual, Concat, U-Net skip, SegNet pool/unpool pairing),
the Module API (parameters, train/eval, state_dict round trip) and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import init, nn

from helpers import assert_close
from nn_helpers import check_module_grads, seed_layer_init

_seed = pytest.fixture(autouse=True)(seed_layer_init)


def _away_from_kinks(x):
    return x + 0.1 * np.sign(x)


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 6)),
    (lambda: nn.Conv2d(4, 4, (1, 3), groups=2, bias=False), (2, 4, 5, 5)),
    (lambda: nn.Linear(6, 5), (3, 6)),
    (lambda: nn.Linear(6, 5, bias=False), (2, 4, 6)),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 2, 4)), (3, 3, 4, 2)),
    (lambda: nn.ReLU(), (3, 4, 5)),
    (lambda: nn.LeakyReLU(0.3), (3, 4, 5)),
    (lambda: nn.Sigmoid(), (3, 4, 5)),
    (lambda: nn.Tanh(), (3, 4, 5)),
    (lambda: nn.Softmax(1), (3, 4, 5)),
    (lambda: nn.LogSoftmax(1), (3, 4, 5)),
    (lambda: nn.BatchNorm2d(3), (4, 3, 3, 5)),
    (lambda: nn.BatchNorm1d(3), (5, 3)),
    (lambda: nn.BatchNorm3d(2, affine=False), (2, 2, 3, 2, 3)),
    (lambda: nn.LocalResponseNorm(3, alpha=0.5, k=1.5), (2, 5, 3, 3)),
    (lambda: nn.GlobalContrastNorm(scale=2.0, lam=1.0), (3, 2, 4, 4)),
    (lambda: nn.LocalContrastNorm(5, 1.5, across_channels=True, eps=1e-3), (2, 3, 6, 7)),
    (lambda: nn.LocalContrastNorm(3, 1.0, across_channels=False, eps=1e-3), (2, 2, 5, 4)),
    (lambda: nn.Identity(), (2, 3)),
], ids=["conv", "conv_grouped", "linear", "linear_nobias_3d", "flatten_linear", "relu", "leaky",
        "sigmoid", "tanh", "softmax", "log_softmax", "bn2d", "bn1d", "bn3d", "lrn", "gcn", "lcn_across",
        "lcn_per_channel", "identity"])
def test_layer_gradients_by_finite_differences(rng, make, shape):
    check_module_grads(make(), _away_from_kinks(rng.standard_normal(shape)), rng)


def test_batchnorm_eval_gradients(rng):
    bn = nn.BatchNorm2d(3)
    bn.running_mean[...] = rng.standard_normal(3)
    bn.running_var[...] = rng.uniform(0.5, 2, 3)
    check_module_grads(bn.eval(), rng.standard_normal((2, 3, 4, 4)), rng)


def test_dropout_gradients_with_fixed_mask(rng):
    seed = int(rng.integers(1 << 30))
    d = nn.Dropout2d(0.4)
    reset = lambda m: setattr(m, "rng", np.random.default_rng(seed))  # noqa: E731
    check_module_grads(nn.Sequential(nn.Conv2d(2, 6, 3), d), rng.standard_normal((3, 2, 5, 5)),
                       rng, extra=lambda m: reset(d))
    x = rng.standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_array_equal(nn.Dropout(0.5).eval()(x), x)


# ---- composites ----------------------------------------------------------------------------------

def _block(c):
    # Tanh where ResNet has ReLU: a kink inside a finite-difference stencil would make the exact
    # composite gradient look wrong by chance (ReLU itself is checked on its own above).
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.Tanh(),
                         nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))


def test_residual_identity_and_projection(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    # eps 1e-6: batch norm over 50 values per channel has large third derivatives (at 1e-5 the
    # truncation error exceeded the 1e-7 tolerance for ~13 % of random draws; 0 of 150 at 1e-6)
    check_module_grads(nn.Sequential(nn.Residual(_block(3)), nn.Tanh()), x, rng, eps=1e-6)
    proj = nn.Residual(nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Tanh()),
                       shortcut=nn.Conv2d(3, 4, 1, stride=2))
    check_module_grads(proj, x, rng)
    r = nn.Residual(nn.Identity())
    np.testing.assert_array_equal(r(x), 2 * x)


def test_concat_inception_and_dense(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    inception = nn.Concat([nn.Conv2d(3, 2, 1), nn.Sequential(nn.Conv2d(3, 2, 3, padding=1),
                                                            nn.Tanh()),
                           nn.Conv2d(3, 1, 5, padding=2)])
    y = inception.to(np.float64)(x)
    assert y.shape == (2, 5, 6, 5)
    check_module_grads(inception, x, rng)
    dense = nn.Sequential(nn.UNetSkip(nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Sigmoid())),
                          nn.UNetSkip(nn.Conv2d(5, 2, 3, padding=1))).to(np.float64)  # DenseNet
    assert dense(x).shape == (2, 7, 6, 5)
    check_module_grads(dense, x, rng)


def test_unet_skip_encoder_decoder(rng):
    # The inner path stands in for the encoder–decoder (pooling/upsampling land with issue 4):
    # it keeps the spatial size so the skip can concatenate the encoder features with it.
    inner = nn.Sequential(nn.Conv2d(2, 4, 3, padding=2, dilation=2), nn.Tanh(),
                          nn.Conv2d(4, 2, 3, padding=1))
    unet = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.UNetSkip(inner),
                         nn.Conv2d(4, 3, 1))
    check_module_grads(unet, rng.standard_normal((2, 1, 6, 6)), rng, tol=1e-6)


@pytest.mark.skipif(not (hasattr(F, "max_pool2d") and hasattr(F, "max_unpool2d")),
                    reason="max_pool2d / max_unpool2d land with the pooling branch (issue 4)")
def test_segnet_pool_unpool_pairing(rng):
    pool = nn.MaxPool2d(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), pool, nn.Conv2d(3, 3, 3, padding=1),
                          nn.MaxUnpool2d(2, pool=pool), nn.Conv2d(3, 2, 1))
    model.to(np.float64)
    # Unpooling moves values to the pool's argmax, so the output jumps where a window's top two
    # inputs swap: finite differences are only valid with every window's top two well apart
    # (about 1 draw in 200 had two within the FD step and failed by orders of magnitude).
    while True:
        x = rng.standard_normal((2, 2, 6, 8))
        h = model[0](x).reshape(2, 3, 3, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5)  # 2x2 windows
        top2 = np.sort(h.reshape(2, 3, 3, 4, 4), axis=-1)[..., -2:]
        if np.min(top2[..., 1] - top2[..., 0]) > 1e-2:
            break
    assert model(x).shape == x.shape
    check_module_grads(model, x, rng, tol=1e-6)


# ---- Module API ------------------------------------------------------------------------------------

def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


def test_named_parameters_state_dict_and_train_eval(rng):
    m = _net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert list(m.state_dict()) == names[:4] + ["1.running_mean", "1.running_var",
                                                "1.num_batches_tracked"] + names[4:]
    assert m[1].weight.shape == (4,) and m[4].weight.shape == (3, 144)
    x = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    m(x)
    m(x)
    assert int(m[1].num_batches_tracked) == 2
    m2 = _net()
    m2.load_state_dict(m.state_dict())
    m.eval(), m2.eval()
    assert not m2[1].training
    np.testing.assert_array_equal(m(x), m2(x))
    sd = m.state_dict()
    sd["0.weight"][...] = 0  # a copy: the module is unchanged
    assert np.any(m[0].weight.data != 0)


def test_zero_grad_and_accumulation(rng):
    m = nn.Linear(4, 3)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    g = rng.standard_normal((2, 3)).astype(np.float32)
    m(x)
    m.backward(g)
    first = m.weight.grad.copy()
    m(x)
    m.backward(g)
    np.testing.assert_allclose(m.weight.grad, 2 * first, rtol=1e-6)
    m.zero_grad()
    assert not np.any(m.weight.grad)


def test_init_functions(rng):
    w = np.empty((64, 32, 3, 3), np.float32)
    init.kaiming_normal_(w, nonlinearity="relu", rng=rng)
    assert abs(w.std() - np.sqrt(2 / (32 * 9))) < 0.05 * np.sqrt(2 / (32 * 9))
    init.xavier_uniform_(w, rng=rng)
    assert np.abs(w).max() <= np.sqrt(6 / (32 * 9 + 64 * 9)) + 1e-7
    q = np.empty((6, 10))
    init.orthogonal_(q, rng=rng)
    assert_close(q @ q.T, np.eye(6), 1e-12, "orthogonal rows")
    assert init.constant_(np.empty(3), 0.5).tolist() == [0.5] * 3
    edges = init.edge_kernels()
    img = np.tile(np.arange(8, dtype=np.float32), (8, 1))[None, None]  # a horizontal ramp
    resp = F.conv2d(img, edges)
    assert np.allclose(resp[0, 0], 8) and np.allclose(resp[0, 1], 0)  # Sobel x sees it, y not
    bank = init.gabor_bank(4, 7)
    assert bank.shape == (4, 1, 7, 7) and np.allclose(bank.sum(axis=(2, 3)), 0, atol=1e-5)


def test_bad_input_errors(rng):
    m = _net()
    with pytest.raises(ValueError, match="3 channels|1 channels"):
        nn.Conv2d(3, 4, 3)(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    with pytest.raises(ValueError, match="Linear"):
        nn.Linear(4, 2)(rng.standard_normal((2, 5)).astype(np.float32))
    with pytest.raises(ValueError, match="4 channels"):
        nn.BatchNorm2d(4)(rng.standard_normal((2, 3, 2, 2)).astype(np.float32))
    for make, name in ((lambda: nn.Linear(0, 3), "in_features"),
                       (lambda: nn.Linear(3, 0), "out_features"),
                       (lambda: nn.Conv2d(0, 4, 3), "in_channels"),
                       (lambda: nn.Conv2d(3, 4, 3, groups=0), "groups"),
                       (lambda: nn.ConvTranspose2d(2, 0, 3), "out_channels"),
                       (lambda: nn.TiledConv2d(0, 2, 3, 2), "in_channels"),
                       (lambda: nn.LocallyConnected2d(2, 0, 4, 3), "out_channels")):
        with pytest.raises(ValueError, match=f"{name}: every value must be >= 1"):
            make()  # not a ZeroDivisionError from the initializer
    with pytest.raises(TypeError, match="in_channels: expected an int"):
        nn.Conv2d(3.5, 4, 3)
    sd = m.state_dict()
    bad = dict(sd)
    bad["0.weight"] = np.zeros((4, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match="0.weight"):
        m.load_state_dict(bad)
    bad = dict(sd)
    bad["features.0.weight"] = bad.pop("0.weight")
    with pytest.raises(ValueError, match="missing keys \\['0.weight'\\]"):
        m.load_state_dict(bad)
    # every entry is checked before any is copied: a late bad shape leaves the module as it was
    before = {k: v.copy() for k, v in sd.items()}
    bad = {k: v + 1 for k, v in sd.items()}
    last = list(bad)[-1]
    bad[last] = np.zeros(bad[last].shape + (1,), np.float32)
    with pytest.raises(ValueError, match=last):
        m.load_state_dict(bad)
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())
    # strict=False says what it skipped, as torch does
    partial = {k: v for k, v in sd.items() if k != "0.weight"}
    partial["extra"] = np.zeros(2, np.float32)
    res = m.load_state_dict(partial, strict=False)
    assert res.missing_keys == ["0.weight"] and res.unexpected_keys == ["extra"]
    assert m.load_state_dict(sd) == ([], [])
    with pytest.raises(TypeError, match="expected a mapping"):
        m.load_state_dict([1, 2])
    for odd in (np.array(["a"] * sd["0.bias"].size), sd["0.bias"] + 1j):
        with pytest.raises(TypeError, match="'0.bias' holds"):
            m.load_state_dict({**sd, "0.bias": odd})
    with pytest.raises(RuntimeError, match="before forward"):
        nn.ReLU().backward(np.ones(3))
    with pytest.raises(ValueError, match="Residual"):
        nn.Residual(nn.Conv2d(1, 2, 1))(np.ones((1, 1, 2, 2), np.float32))
    if not hasattr(F, "conv3d"):
        with pytest.raises(RuntimeError, match="conv3d is not available"):
            nn.Conv3d(1, 1, 1)(np.ones((1, 1, 2, 2, 2), np.float32))


def test_unpickled_arrays_and_models_run(rng):
    # an unpickled float32 array's dtype equals np.float32 but is another object: ops and
    # models must take it (the bindings once compared dtype identity: "dtype mismatch")
    import pickle
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    xu = pickle.loads(pickle.dumps(x))
    assert xu.dtype == np.float32 and xu.dtype is not x.dtype
    net = _net()
    want = net(x)
    np.testing.assert_array_equal(net(xu), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net))(x), want)
    np.testing.assert_array_equal(F.max_pool2d(xu, 2), F.max_pool2d(x, 2))
    np.testing.assert_array_equal(F.relu(xu), F.relu(x))
    with pytest.raises(TypeError, match="got >f4"):
        F.relu(x.astype(">f4"))  # byte-swapped is another dtype: refused, not misread


def test_assigning_buffers_and_parameters_as_torch_does(rng):
    bn = nn.BatchNorm2d(3)
    bn.running_mean = np.full(3, 5, np.float32)  # still the buffer, saved and used
    assert np.array_equal(bn.state_dict()["running_mean"], np.full(3, 5, np.float32))
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    assert_close(bn(x), (x - 5) / np.sqrt(1 + 1e-5), 1e-6)
    lin = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="Linear.weight: cannot assign a ndarray to a parameter"):
        lin.weight = np.ones((2, 3), np.float32)
    assert "weight" in dict(lin.named_parameters())
    lin.bias = None  # None is allowed (no bias), as in torch
    assert lin.bias is None


def test_fit_evaluate_predict_run_a_float64_model(rng):
    from cnnfast import optim
    from cnnfast.train import evaluate, fit, predict
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).to(np.float64)
    x = rng.standard_normal((24, 1, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    opt = optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=2, batch_size=8, progress=False,
               seed=0)
    assert model[1].weight.data.dtype == np.float64 and len(hist["loss"]) == 2
    assert evaluate(model, (x, y), nn.CrossEntropyLoss())["n"] == 24
    logits = predict(model, x)
    assert logits.dtype == np.float64 and logits.shape == (24, 3)
