"""GoogLeNet / Inception v1 (Szegedy et al. 2014) as torchvision builds it without auxiliary heads:
conv+BN+ReLU units, nine Inception modules with 1×1 reductions, global average pooling and one
Linear (6,624,904 parameters at 1000 classes). Like torchvision, the "5×5" branch uses a 3×3
kernel (the parameter count and published weights depend on it)."""
from __future__ import annotations

import numpy as np

from .. import nn
from ._blocks import scaled, split_channels

INCEPTIONS = [  # name, in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj (paper's Table 1)
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
]


class BasicConv2d(nn.Module):
    """conv (no bias) → BatchNorm(eps 1e-3) → ReLU; keys conv.weight, bn.*."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))

    def backward(self, grad_out):
        return self.conv.backward(self.bn.backward(self.relu.backward(grad_out)))


class Inception(nn.Module):
    """Four branches on one input, concatenated along channels: 1×1 | 1×1→3×3 | 1×1→3×3 |
    3×3 max-pool→1×1. Backward splits the gradient and sums the branches' input gradients."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                     BasicConv2d(cin, pool_proj, 1))
        self.sizes = [c1, c3, c5, pool_proj]

    def _branches(self):
        return [self.branch1, self.branch2, self.branch3, self.branch4]

    def forward(self, x):
        return np.concatenate([b(x) for b in self._branches()], axis=1)

    def backward(self, grad_out):
        parts = split_channels(grad_out, self.sizes)
        return sum(b.backward(g) for b, g in zip(self._branches(), parts))


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 dropout: float = 0.2):
        super().__init__()
        w = lambda c: scaled(c, width)  # noqa: E731
        self.conv1 = BasicConv2d(in_channels, w(64), 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(w(64), w(64), 1)
        self.conv3 = BasicConv2d(w(64), w(192), 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        cin = w(192)
        for name, _, *chans in INCEPTIONS:
            block = Inception(cin, *(w(c) for c in chans))
            cin = sum(block.sizes)
            setattr(self, name, block)
            if name == "inception3b":
                self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
            elif name == "inception4e":
                self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        self._order = [m for m in self._modules.values()]

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 31:  # the last 2x2 max-pool needs a 2x2 input
            raise ValueError(f"googlenet: expected (N, C, H, W) with H, W >= 31, got {x.shape}")
        for m in self._order:
            x = m(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self._order):
            grad_out = m.backward(grad_out)
        return grad_out


def googlenet(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
              dropout: float = 0.2) -> GoogLeNet:
    """Inception v1 without auxiliary classifiers; width scales every channel count."""
    return GoogLeNet(num_classes, in_channels, width, dropout)
