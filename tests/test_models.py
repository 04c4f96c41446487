"""Model zoo (issue 8): parameter counts and torchvision state-dict names, forward/backward shapes
at small inputs, float64 finite-difference gradients through the branching blocks, U-Net's valid
geometry and the context module's identity start."""
import numpy as np
import pytest

import cnnfast
from cnnfast import init, models, nn
from helpers import directional_fd


@pytest.fixture
def no_init(monkeypatch):
    """Skips random initialization (counting parameters needs shapes, not values)."""
    for name in ("uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_"):
        monkeypatch.setattr(init, name, lambda t, *a, **k: t)


def n_params(model):
    return sum(p.data.size for p in model.parameters())


@pytest.mark.parametrize("builder, expected", [
    ("lenet5", 61_706), ("alexnet", 61_100_840), ("vgg11", 132_863_336),
    ("vgg16", 138_357_544), ("vgg16_bn", 138_365_992), ("vgg19", 143_667_240),
    ("googlenet", 6_624_904), ("resnet18", 11_689_512), ("resnet34", 21_797_672),
    ("resnet50", 25_557_032), ("densenet121", 7_978_856)])
def test_parameter_counts_match_torchvision(no_init, builder, expected):
    kwargs = {} if builder == "lenet5" else {"num_classes": 1000}
    assert n_params(getattr(models, builder)(**kwargs)) == expected


@pytest.mark.parametrize("builder, keys", [
    ("alexnet", ["features.0.weight", "features.10.bias", "classifier.1.weight",
                 "classifier.6.bias"]),
    ("vgg11_bn", ["features.1.running_var", "features.1.num_batches_tracked",
                  "classifier.0.weight", "classifier.6.weight"]),
    ("googlenet", ["conv1.conv.weight", "conv1.bn.running_mean", "inception3a.branch1.conv.weight",
                   "inception3a.branch2.1.bn.bias", "inception5b.branch4.1.conv.weight",
                   "fc.weight"]),
    ("resnet50", ["conv1.weight", "bn1.weight", "layer1.0.conv3.weight",
                  "layer2.0.downsample.0.weight", "layer4.2.bn3.running_var", "fc.bias"]),
    ("densenet121", ["features.conv0.weight", "features.norm0.weight",
                     "features.denseblock1.denselayer1.norm1.weight",
                     "features.denseblock4.denselayer16.conv2.weight",
                     "features.transition3.conv.weight", "features.norm5.bias",
                     "classifier.weight"])])
def test_state_dict_names_follow_torchvision(no_init, builder, keys):
    sd = getattr(models, builder)().state_dict()
    missing = [k for k in keys if k not in sd]
    assert not missing, f"{builder}: missing keys {missing}"
    assert not any(".relu" in k for k in sd), "parameter-free layers leaked into the state_dict"


def test_googlenet_conv_shapes_follow_torchvision(no_init):
    sd = models.googlenet().state_dict()
    assert sd["inception3a.branch3.1.conv.weight"].shape == (32, 16, 3, 3)  # torchvision's 3x3
    assert sd["inception5b.branch2.0.conv.weight"].shape == (192, 832, 1, 1)
    assert sd["fc.weight"].shape == (1000, 1024)


SMALL_CLASSIFIERS = {
    "alexnet": (lambda: models.alexnet(7, width=1 / 16, hidden=24, dropout=0.0), (3, 64, 64)),
    "vgg11": (lambda: models.vgg11(7, width=1 / 16, hidden=16, dropout=0.0), (3, 32, 32)),
    "vgg13_bn": (lambda: models.vgg13_bn(7, width=1 / 32, hidden=8, dropout=0.0), (3, 33, 35)),
    "googlenet": (lambda: models.googlenet(7, width=1 / 16, dropout=0.0), (3, 32, 32)),
    "googlenet-1ch": (lambda: models.googlenet(7, in_channels=1, width=1 / 16), (1, 31, 33)),
    "resnet18": (lambda: models.resnet18(7, in_channels=1, width=4), (1, 28, 28)),
    "resnet50": (lambda: models.resnet50(7, width=2), (3, 32, 32)),
    "densenet": (lambda: models.densenet121(7, growth=4, block_config=(2, 3, 2, 2),
                                             num_init_features=8), (3, 32, 32)),
    "lenet5": (lambda: models.lenet5(7), (1, 28, 28)),
}


@pytest.mark.parametrize("name", sorted(SMALL_CLASSIFIERS))
def test_classifier_forward_backward_shapes(name, rng):
    build, shape = SMALL_CLASSIFIERS[name]
    model = build()
    x = rng.standard_normal((2,) + shape).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 7) and np.all(np.isfinite(y))
    gx = model.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert gx.shape == x.shape and np.all(np.isfinite(gx)) and np.any(gx != 0)
    for pname, p in model.named_parameters():
        assert p.grad.shape == p.data.shape and np.all(np.isfinite(p.grad)), pname
    assert np.any(next(iter(model.parameters())).grad != 0)


@pytest.mark.parametrize("build, shape", [
    (lambda: models.segnet(1, 11, depth=2, width=4), (1, 18, 22)),
    (lambda: models.deconvnet(2, 5, depth=3, width=3, convs_per_stage=1), (2, 17, 16)),
    (lambda: models.unet(1, 11, depth=2, width=4), (1, 16, 20)),
    (lambda: models.unet(3, 4, depth=3, width=2, batch_norm=True), (3, 24, 24)),
])
def test_encoder_decoder_output_is_per_pixel(build, shape, rng):
    model = build()
    x = rng.standard_normal((2,) + shape).astype(np.float32)
    y = model(x)
    assert y.shape[2:] == shape[1:] and y.shape[0] == 2 and np.all(np.isfinite(y))
    gx = model.backward(rng.standard_normal(y.shape).astype(np.float32))
    assert gx.shape == x.shape and np.all(np.isfinite(gx))


def test_unet_valid_padding_reproduces_the_paper_geometry(rng):
    model = models.unet(1, 2, depth=4, width=1, padding="valid")
    x = rng.standard_normal((1, 1, 572, 572)).astype(np.float32)
    y = model(x)
    assert y.shape == (1, 2, 388, 388)
    assert model.backward(np.ones_like(y)).shape == x.shape


def _randomized(model):
    """model with random weights (the identity start puts many ReLU inputs on the kink)."""
    for p in model.parameters():
        init.normal_(p, 0.0, 0.3)
    return model


def _fd_check(model, x, rng, n_params_checked=2):
    """float64 directional finite differences of sum(model(x) * w) w.r.t. x and a few weights."""
    model.to(np.float64).eval()
    w = rng.standard_normal(model(x).shape)
    named = [p for p in model.parameters() if p.data.ndim > 1][:n_params_checked]

    def loss(args):
        for p, a in zip(named, args[1:]):
            p.data[...] = a
        return float(np.sum(model(args[0]) * w))

    originals = [p.data.copy() for p in named]
    model.zero_grad()
    model(x)
    gx = model.backward(w)
    grads = [gx] + [p.grad.copy() for p in named]
    # eps 1e-8: a step of 1e-6 crossed a ReLU kink in ~1-2 % of random draws (a pre-activation
    # within ~1e-5 of 0 in the randomized context module / DenseNet); float64 rounding of the
    # difference stays ~1e-6 at this step, a wrong gradient is off by far more than 1e-5
    directional_fd(loss, [x] + originals, grads, rng, eps=1e-8, tol=1e-5)


@pytest.mark.parametrize("build, shape", [
    (lambda: models.resnet18(3, in_channels=2, width=2), (2, 2, 16, 16)),
    (lambda: models.resnet50(3, width=1), (1, 3, 16, 16)),
    (lambda: models.googlenet(3, width=1 / 32), (1, 3, 32, 32)),
    (lambda: models.densenet121(3, growth=2, block_config=(2, 2), num_init_features=4),
     (2, 3, 8, 8)),
    (lambda: models.unet(1, 3, depth=2, width=2, padding="valid"), (1, 1, 44, 46)),
    (lambda: models.unet(2, 3, depth=2, width=2), (1, 2, 12, 12)),
    (lambda: models.segnet(1, 3, depth=2, width=2), (1, 1, 10, 9)),
    (lambda: models.deconvnet(1, 3, depth=2, width=2, convs_per_stage=1), (1, 1, 8, 8)),
    (lambda: _randomized(models.context_module(1, "large")), (1, 1, 9, 9)),
])
def test_gradients_match_finite_differences(build, shape, rng):
    init.seed(int(rng.integers(1 << 31)))  # the weights follow the run's printed seed too
    _fd_check(build(), rng.standard_normal(shape), rng)


def test_context_module_starts_as_identity(rng):
    x = rng.random((2, 5, 20, 20)).astype(np.float32) + 0.1  # positive: ReLU passes it
    np.testing.assert_array_equal(models.context_module(5)(x), x)
    large = models.context_module(5, "large", rng=rng)
    assert [m.out_channels for m in large if isinstance(m, nn.Conv2d)] == \
        [10, 10, 20, 40, 80, 160, 160, 5]
    assert [m.dilation[0] for m in large if isinstance(m, nn.Conv2d)] == [1, 1, 2, 4, 8, 16, 1, 1]
    np.testing.assert_allclose(large(x), x, atol=0.05, rtol=0.05)


def test_class_balance_weights_median_frequency():
    labels = np.array([[[0, 0, 0, 1]], [[0, 0, 2, 2]]])  # f0 = 5/8, f1 = 1/4, f2 = 2/4
    w = models.class_balance_weights(labels, 4)
    np.testing.assert_allclose(w, [0.5 / 0.625, 0.5 / 0.25, 1.0, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="labels"):
        models.class_balance_weights(np.zeros((2, 3), np.float32), 4)


@pytest.mark.parametrize("call, match", [
    (lambda: models.alexnet(10)(np.ones((1, 3, 32, 32), np.float32)), "63"),
    (lambda: models.vgg11(10, width=1 / 16, hidden=8)(np.ones((1, 3, 16, 16), np.float32)),
     "32"),
    (lambda: models.unet(padding="full"), "padding"),
    (lambda: models.unet(1, 2, depth=3, width=1, padding="valid")(
        np.ones((1, 1, 40, 40), np.float32)), "spans|too small"),
    (lambda: models.context_module(4, "huge"), "variant"),
    (lambda: models.vgg.VGG(depth=12), "depth"),
])
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
