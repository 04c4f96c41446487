"""VGG (Simonyan & Zisserman 2014): configurations A/B/D/E = VGG-11/13/16/19, optionally with batch
norm, as torchvision lays them out (features.N, adaptive average pooling to 7×7, classifier.N;
VGG-16 has 138,357,544 parameters at 1000 classes). Inputs from 32×32 up (five 2×2 max-pools)."""
from __future__ import annotations

from .. import nn
from ._blocks import init_torchvision, scaled

CONFIGS = {  # channels of each 3x3 conv, "M" = 2x2 max-pool
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, depth: int = 16, batch_norm: bool = False, num_classes: int = 1000,
                 in_channels: int = 3, width: float = 1.0, hidden: int = 4096,
                 dropout: float = 0.5):
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"vgg: depth must be one of {sorted(CONFIGS)}, got {depth}")
        layers, c = [], in_channels
        for v in CONFIGS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            out = scaled(v, width)
            layers.append(nn.Conv2d(c, out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            c = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(c * 49, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes))
        init_torchvision(self, linear_std=0.01)

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 32:
            raise ValueError(f"vgg: expected (N, C, H, W) with H, W >= 32 (five 2x2 max-pools), "
                             f"got {x.shape}")
        return self.classifier(self.flatten(self.avgpool(self.features(x))))

    def backward(self, grad_out):
        g = self.flatten.backward(self.classifier.backward(grad_out))
        return self.features.backward(self.avgpool.backward(g))


def _factory(depth: int, batch_norm: bool):
    def build(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
              hidden: int = 4096, dropout: float = 0.5) -> VGG:
        return VGG(depth, batch_norm, num_classes, in_channels, width, hidden, dropout)
    build.__name__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    build.__doc__ = (f"VGG-{depth}{' with batch norm' if batch_norm else ''}; width scales the "
                     f"conv channels, hidden the fully connected layers.")
    return build


vgg11, vgg13, vgg16, vgg19 = (_factory(d, False) for d in (11, 13, 16, 19))
vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn = (_factory(d, True) for d in (11, 13, 16, 19))
