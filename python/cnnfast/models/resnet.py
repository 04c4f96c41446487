"""ResNet (He et al. 2015) as torchvision builds it: H(x) = F(x) + x with basic (two 3×3) or
bottleneck (1×1, 3×3, 1×1, expansion 4) blocks, a 1×1 conv + BN projection where the shape
changes, global average pooling and one Linear. ResNet-18 11,689,512 and ResNet-50 25,557,032
parameters at 1000 classes; keys conv1, bn1, layerK.i.conv1, ….downsample.0, fc as torchvision."""
from __future__ import annotations

from typing import Optional

from .. import nn
from ._blocks import init_torchvision


def _conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1, self.bn1, self.relu1 = _conv(cin, planes, 3, stride), nn.BatchNorm2d(planes), nn.ReLU()
        self.conv2, self.bn2 = _conv(planes, planes, 3), nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.relu_out = nn.ReLU()
        self._residual = [self.conv1, self.bn1, self.relu1, self.conv2, self.bn2]

    def forward(self, x):
        f = x
        for m in self._residual:
            f = m(f)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu_out(f + shortcut)

    def backward(self, grad_out):
        g = self.relu_out.backward(grad_out)
        gx = g if self.downsample is None else self.downsample.backward(g)
        for m in reversed(self._residual):
            g = m.backward(g)
        return g + gx


class Bottleneck(BasicBlock):
    """relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)), stride on the 3×3."""
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None):
        nn.Module.__init__(self)
        out = planes * self.expansion
        self.conv1, self.bn1, self.relu1 = _conv(cin, planes, 1), nn.BatchNorm2d(planes), nn.ReLU()
        self.conv2, self.bn2, self.relu2 = _conv(planes, planes, 3, stride), nn.BatchNorm2d(planes), nn.ReLU()
        self.conv3, self.bn3 = _conv(planes, out, 1), nn.BatchNorm2d(out)
        self.downsample = downsample
        self.relu_out = nn.ReLU()
        self._residual = [self.conv1, self.bn1, self.relu1, self.conv2, self.bn2, self.relu2,
                          self.conv3, self.bn3]


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes: int = 1000, in_channels: int = 3,
                 width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                down = None
                if j == 0 and (stride != 1 or cin != planes * block.expansion):
                    down = nn.Sequential(_conv(cin, planes * block.expansion, 1, stride),
                                         nn.BatchNorm2d(planes * block.expansion))
                blocks.append(block(cin, planes, stride if j == 0 else 1, down))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)
        init_torchvision(self)
        self._order = list(self._modules.values())

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 2:
            raise ValueError(f"resnet: expected (N, C, H, W) with H, W >= 2, got {x.shape}")
        for m in self._order:
            x = m(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self._order):
            grad_out = m.backward(grad_out)
        return grad_out


def resnet18(num_classes: int = 1000, in_channels: int = 3, width: int = 64) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]; width is the first stage's channels (64)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, width)


def resnet34(num_classes: int = 1000, in_channels: int = 3, width: int = 64) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, width)


def resnet50(num_classes: int = 1000, in_channels: int = 3, width: int = 64) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, width)
