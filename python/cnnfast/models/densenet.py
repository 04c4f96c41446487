"""DenseNet (Huang et al. 2016) as torchvision builds it: dense blocks where every layer
(BN-ReLU-1×1 conv-BN-ReLU-3×3 conv, growth k) sees the concatenation of all earlier feature maps,
transitions (BN-ReLU-1×1 conv-2×2 avg-pool) halving the channels, final BN, ReLU, global pooling
and one Linear. DenseNet-121 has 7,978,856 parameters at 1000 classes; keys
features.denseblockB.denselayerL.norm1, features.transitionB.conv, classifier as torchvision."""
from __future__ import annotations

import numpy as np

from .. import nn
from ._blocks import named_sequential, split_channels


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)
        self._chain = [self.norm1, self.relu1, self.conv1, self.norm2, self.relu2, self.conv2]

    def forward(self, x):
        for m in self._chain:
            x = m(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self._chain):
            grad_out = m.backward(grad_out)
        return grad_out


class DenseBlock(nn.Module):
    """Output = concat(x, y1, …, yL) with y_l = layer_l(concat(x, y1, …, y_{l-1}))."""

    def __init__(self, num_layers: int, cin: int, growth: int, bn_size: int):
        super().__init__()
        self.sizes = [cin] + [growth] * num_layers
        for i in range(num_layers):
            setattr(self, f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x):
        feats = [x]
        for layer in self._modules.values():
            feats.append(layer(np.concatenate(feats, axis=1)))
        return np.concatenate(feats, axis=1)

    def backward(self, grad_out):
        grads = split_channels(grad_out, self.sizes)  # dL/d(each feature map), summed below
        for i, layer in reversed(list(enumerate(self._modules.values(), start=1))):
            g_in = layer.backward(grads[i])
            for j, g in enumerate(split_channels(g_in, self.sizes[:i])):
                grads[j] = grads[j] + g
        return grads[0]


def _transition(cin: int, cout: int) -> nn.Sequential:
    return named_sequential([("norm", nn.BatchNorm2d(cin)), ("relu", nn.ReLU()),
                             ("conv", nn.Conv2d(cin, cout, 1, bias=False)),
                             ("pool", nn.AvgPool2d(2, 2))])


class DenseNet(nn.Module):
    def __init__(self, growth: int = 32, block_config=(6, 12, 24, 16), num_init_features: int = 64,
                 bn_size: int = 4, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        parts = [("conv0", nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3,
                                     bias=False)),
                 ("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU()),
                 ("pool0", nn.MaxPool2d(3, 2, 1))]
        c = num_init_features
        for i, n in enumerate(block_config):
            parts.append((f"denseblock{i + 1}", DenseBlock(n, c, growth, bn_size)))
            c += n * growth
            if i != len(block_config) - 1:
                parts.append((f"transition{i + 1}", _transition(c, c // 2)))
                c //= 2
        parts.append(("norm5", nn.BatchNorm2d(c)))
        self.features = named_sequential(parts)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c, num_classes)
        self._order = list(self._modules.values())
        self._min_size = 2 ** (len(block_config) + 1)  # stem /4, then a /2 per transition

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < self._min_size:
            raise ValueError(f"densenet: input {x.shape} is too small: H, W must be >= "
                             f"{self._min_size} for its pooling stages")
        for m in self._order:
            x = m(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self._order):
            grad_out = m.backward(grad_out)
        return grad_out


def densenet121(num_classes: int = 1000, in_channels: int = 3, growth: int = 32,
                block_config=(6, 12, 24, 16), num_init_features: int = 64,
                bn_size: int = 4) -> DenseNet:
    """DenseNet-121 (growth 32, blocks 6-12-24-16); smaller growth/blocks give a small DenseNet."""
    return DenseNet(growth, block_config, num_init_features, bn_size, num_classes, in_channels)
