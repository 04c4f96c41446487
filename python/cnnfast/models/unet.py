"""U-Net (Ronneberger et al. 2015): a contracting path of double 3×3 convs and 2×2 max-pools, an
expanding path of 2×2 up-convolutions whose output is concatenated with the encoder's features of
the same level (centre-cropped in 'valid' mode, as the original), double convs, and a 1×1 conv to
class scores. Keys: enc.i.*, up.i.*, dec.i.*, head.* (i = level, 0 = full resolution)."""
from __future__ import annotations

import numpy as np

from .. import nn
from ._blocks import centre_crop, centre_crop_backward, split_channels


def double_conv(cin: int, cout: int, padding: int, batch_norm: bool) -> nn.Sequential:
    layers = []
    for c in (cin, cout):
        layers.append(nn.Conv2d(c, cout, 3, padding=padding))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """depth down/up levels; level i has width·2^i channels. padding='same' keeps sizes (inputs
    divisible by 2^depth come out the same size); 'valid' shrinks by 4 pixels per double conv and
    crops the skip features to the decoder's size (572×572 in → 388×388 out at depth 4)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, depth: int = 4,
                 width: int = 64, padding: str = "same", batch_norm: bool = False):
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"unet: padding must be 'same' or 'valid', got {padding!r}")
        if depth < 1:
            raise ValueError(f"unet: depth must be >= 1, got {depth}")
        pad = 1 if padding == "same" else 0
        ch = [width * 2 ** i for i in range(depth + 1)]
        self.padding, self.depth = padding, depth
        self.enc = nn.Sequential(*[double_conv(in_channels if i == 0 else ch[i - 1], ch[i], pad,
                                               batch_norm) for i in range(depth + 1)])
        self.pool = nn.Sequential(*[nn.MaxPool2d(2, 2) for _ in range(depth)])
        self.up = nn.Sequential(*[nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2)
                                  for i in range(depth)])
        self.dec = nn.Sequential(*[double_conv(2 * ch[i], ch[i], pad, batch_norm)
                                   for i in range(depth)])
        self.head = nn.Conv2d(ch[0], num_classes, 1)
        self._ctx = None

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 2 ** self.depth:
            raise ValueError(f"unet: expected (N, C, H, W) with H, W >= {2 ** self.depth}, got "
                             f"{getattr(x, 'shape', None)}")
        skips = []
        for i in range(self.depth):
            x = self.enc[i](x)
            skips.append(x)
            x = self.pool[i](x)
        x = self.enc[self.depth](x)
        shapes = []
        for i in reversed(range(self.depth)):
            x = self.up[i](x)
            if x.shape[2] > skips[i].shape[2] or x.shape[3] > skips[i].shape[3] or min(x.shape[2:]) < 1:
                raise ValueError(f"unet: input too small for depth {self.depth} with "
                                 f"'{self.padding}' padding (level {i}: {x.shape})")
            shapes.append((skips[i].shape, x.shape[1]))
            x = self.dec[i](np.concatenate([centre_crop(skips[i], x.shape[2:]), x], axis=1))
        self._ctx = shapes[::-1]
        return self.head(x)

    def backward(self, grad_out):
        shapes = self._ctx
        g = self.head.backward(grad_out)
        skip_grads = [None] * self.depth
        for i in range(self.depth):
            skip_shape, c_up = shapes[i]
            g_skip, g = split_channels(self.dec[i].backward(g), [skip_shape[1], c_up])
            skip_grads[i] = centre_crop_backward(g_skip, skip_shape)
            g = self.up[i].backward(g)
        g = self.enc[self.depth].backward(g)
        for i in reversed(range(self.depth)):
            g = self.enc[i].backward(self.pool[i].backward(g) + skip_grads[i])
        return g


def unet(in_channels: int = 1, num_classes: int = 2, depth: int = 4, width: int = 64,
         padding: str = "same", batch_norm: bool = False) -> UNet:
    """U-Net; the paper's network is unet(1, 2, depth=4, width=64, padding='valid')."""
    return UNet(in_channels, num_classes, depth, width, padding, batch_norm)
