"""Model zoo built from cnnfast.nn layers. LeNet-5 (LeCun et al. 1998) in its modern form."""
from __future__ import annotations


class ModelUnavailable(ImportError):
    """The layer library (cnnfast.nn, cnnfast.optim) this model needs is not in this build."""


def require_nn():
    """cnnfast.nn, or ModelUnavailable with a message a user can act on."""
    try:
        from .. import nn
    except ImportError as e:
        raise ModelUnavailable(
            "cnnfast.nn (the layer API) is not available in this build of cnnfast, so models "
            f"cannot be built yet ({e}). The data, training loop and checkpoint tools work with "
            "any model following its interface.") from None
    return nn


def lenet5_flat_features(input_size: int) -> int:
    """Features entering the first Linear layer: conv 5x5 pad 2 -> pool 2 -> conv 5x5 -> pool 2."""
    s = ((input_size // 2) - 4) // 2
    if s < 1:
        raise ValueError(f"lenet5: input_size {input_size} is too small (needs >= 12)")
    return 16 * s * s


def lenet5(num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
           activation: str = "relu", pool: str = "max"):
    """Conv2d(in, 6, 5, pad 2) - act - pool 2 - Conv2d(6, 16, 5) - act - pool 2 - Flatten -
    Linear(400, 120) - act - Linear(120, 84) - act - Linear(84, num_classes).

    activation: 'relu' or 'tanh' (the original); pool: 'max' or 'avg' (the original subsampling).
    input_size 28 (MNIST) gives the classic 16x5x5 = 400 features; 32 (CIFAR-10) gives 576.
    """
    nn = require_nn()
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh}
    pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
    if activation not in acts:
        raise ValueError(f"lenet5: activation must be one of {sorted(acts)}, got {activation!r}")
    if pool not in pools:
        raise ValueError(f"lenet5: pool must be one of {sorted(pools)}, got {pool!r}")
    act, pool_layer = acts[activation], pools[pool]
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), act(), pool_layer(2),
        nn.Conv2d(6, 16, 5), act(), pool_layer(2),
        nn.Flatten(),
        nn.Linear(lenet5_flat_features(input_size), 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes))


MODELS = {"lenet5": lenet5}

from .alexnet import alexnet  # noqa: E402  (the zoo of issue 8)
from .vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn  # noqa: E402
from .googlenet import googlenet  # noqa: E402
from .resnet import resnet18, resnet34, resnet50  # noqa: E402
from .densenet import densenet121  # noqa: E402
from .segnet import class_balance_weights, deconvnet, segnet  # noqa: E402
from .unet import unet  # noqa: E402
from .context import context_module  # noqa: E402

__all__ = ["lenet5", "MODELS", "ModelUnavailable", "require_nn", "lenet5_flat_features"]
__all__ += ["alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
            "vgg19_bn", "googlenet", "resnet18", "resnet34", "resnet50", "densenet121",
            "segnet", "deconvnet", "class_balance_weights", "unet", "context_module"]
