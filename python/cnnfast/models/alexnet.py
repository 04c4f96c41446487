"""AlexNet (Krizhevsky et al. 2012) in torchvision's single-tower layout: five convolutions, three
max-pools, adaptive average pooling to 6×6 and three fully connected layers (61,100,840 parameters
at 1000 classes; state_dict keys features.N / classifier.N as torchvision)."""
from __future__ import annotations

from .. import nn
from ._blocks import scaled


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
                 hidden: int = 4096, dropout: float = 0.5):
        super().__init__()
        c = [scaled(n, width) for n in (64, 192, 384, 256, 256)]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c[4] * 36, hidden), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 63:
            raise ValueError(f"alexnet: expected (N, C, H, W) with H, W >= 63 (three stride-2 "
                             f"3x3 max-pools after a stride-4 11x11 conv), got {x.shape}")
        return self.classifier(self.flatten(self.avgpool(self.features(x))))

    def backward(self, grad_out):
        g = self.flatten.backward(self.classifier.backward(grad_out))
        return self.features.backward(self.avgpool.backward(g))


def alexnet(num_classes: int = 1000, in_channels: int = 3, width: float = 1.0,
            hidden: int = 4096, dropout: float = 0.5) -> AlexNet:
    """AlexNet; inputs from 63×63 up (224×224 in the paper). width scales the conv channels and
    hidden the fully connected layers (defaults: torchvision's)."""
    return AlexNet(num_classes, in_channels, width, hidden, dropout)
