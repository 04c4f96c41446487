"""Encoder–decoders with max-unpooling: SegNet (Badrinarayanan et al. 2015) and DeconvNet (Noh et
al. 2015). A VGG-style encoder (stages of 3×3 conv-BN-ReLU, then 2×2 max-pool recording switches)
mirrored by a decoder that unpools with the encoder's switches (SegNet: then 3×3 convs; DeconvNet:
3×3 transposed convs), ending in a 1×1 conv to per-pixel class scores. Plus the class-balanced
(median-frequency) loss weights SegNet trains with."""
from __future__ import annotations

import numpy as np

from .. import nn


def _stage(cin: int, cout: int, n: int, transposed: bool) -> nn.Sequential:
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    layers = []
    for i in range(n):
        layers += [conv(cin if i == 0 else cout, cout, 3, padding=1), nn.BatchNorm2d(cout),
                   nn.ReLU()]
    return nn.Sequential(*layers)


class SegNet(nn.Module):
    """depth stages; stage i has width·2^i channels (capped at 8·width) and convs_per_stage convs.
    Any input size works: each unpool restores the exact size its pool saw."""

    def __init__(self, in_channels: int = 3, num_classes: int = 11, depth: int = 4,
                 width: int = 64, convs_per_stage: int = 2, transposed_decoder: bool = False):
        super().__init__()
        chans = [width * 2 ** min(i, 3) for i in range(depth)]
        self.encoder = nn.Sequential(*[_stage(in_channels if i == 0 else chans[i - 1], chans[i],
                                              convs_per_stage, False) for i in range(depth)])
        self.pools = nn.Sequential(*[nn.MaxPool2d(2, 2) for _ in range(depth)])
        self.unpools = nn.Sequential(*[nn.MaxUnpool2d(2, 2, pool=p) for p in self.pools])
        # decoder[i] undoes encoder[i]: chans[i] -> chans[i-1] (stage 0 keeps width)
        self.decoder = nn.Sequential(*[_stage(chans[i], chans[max(i - 1, 0)], convs_per_stage,
                                              transposed_decoder) for i in range(depth)])
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)
        self._sizes = None

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 2 ** len(self.pools):
            raise ValueError(f"{type(self).__name__.lower()}: expected (N, C, H, W) with H, W >= "
                             f"{2 ** len(self.pools)}, got {getattr(x, 'shape', None)}")
        sizes = []
        for enc, pool in zip(self.encoder, self.pools):
            x = enc(x)
            sizes.append(x.shape[2:])
            x = pool(x)
        for i in reversed(range(len(self.pools))):
            x = self.decoder[i](self.unpools[i](x, output_size=sizes[i]))
        self._sizes = sizes
        return self.classifier(x)

    def backward(self, grad_out):
        g = self.classifier.backward(grad_out)
        for i in range(len(self.pools)):
            g = self.unpools[i].backward(self.decoder[i].backward(g))
        for enc, pool in reversed(list(zip(self.encoder, self.pools))):
            g = enc.backward(pool.backward(g))
        return g


class DeconvNet(SegNet):
    """SegNet's structure with 3×3 transposed convolutions ("deconvolutions") in the decoder."""


def segnet(in_channels: int = 3, num_classes: int = 11, depth: int = 4, width: int = 64,
           convs_per_stage: int = 2) -> SegNet:
    """SegNet with depth pool/unpool stages of width·2^i channels."""
    return SegNet(in_channels, num_classes, depth, width, convs_per_stage, False)


def deconvnet(in_channels: int = 3, num_classes: int = 11, depth: int = 4, width: int = 64,
              convs_per_stage: int = 2) -> DeconvNet:
    """DeconvNet: unpooling with the encoder's switches followed by transposed convolutions."""
    return DeconvNet(in_channels, num_classes, depth, width, convs_per_stage, True)


def class_balance_weights(labels: np.ndarray, num_classes: int,
                          ignore_index: int = -100) -> np.ndarray:
    """Median-frequency balancing (Eigen & Fergus; SegNet): w_c = median(f) / f_c, f_c = pixels of
    class c / pixels of the images where c appears. Classes never seen get weight 0. float32 (C,),
    ready for nn.CrossEntropyLoss(weight=...)."""
    labels = np.asarray(labels)
    if labels.ndim < 2 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels: expected integer (N, H, W) label maps, got {labels.dtype} "
                         f"{labels.shape}")
    flat = labels.reshape(len(labels), -1)
    valid = flat != ignore_index
    counts = np.zeros((len(labels), num_classes))
    for n in range(len(labels)):
        counts[n] = np.bincount(flat[n][valid[n]], minlength=num_classes)[:num_classes]
    present = counts > 0
    pixels = (present * valid.sum(1, keepdims=True)).sum(0)
    freq = np.divide(counts.sum(0), pixels, out=np.zeros(num_classes), where=pixels > 0)
    seen = freq > 0
    weights = np.zeros(num_classes)
    weights[seen] = np.median(freq[seen]) / freq[seen]
    return weights.astype(np.float32)
