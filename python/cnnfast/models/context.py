"""The dilated context module (Yu & Koltun 2015, "Multi-scale context aggregation by dilated
convolutions"): seven 3×3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1 and ReLU, then a 1×1
convolution; receptive fields 3, 5, 9, 17, 33, 65, 67, 67. 'basic' keeps C channels, 'large' widens
to 2C … 32C; both start from the paper's identity initialization (the module passes its input
through), so it can be appended to a trained front end."""
from __future__ import annotations

import numpy as np

from .. import nn

DILATIONS = (1, 1, 2, 4, 8, 16, 1, 1)
LARGE_MULTIPLIERS = (2, 2, 4, 8, 16, 32, 32, 1)


def identity_init(weight: np.ndarray, bias: np.ndarray, c_total: int, std: float, rng) -> None:
    """k(t, a→b) = C / c_out where t is the kernel centre and ⌊a·C/c_in⌋ = ⌊b·C/c_out⌋, else
    N(0, std²) (the paper's rule; equal channel counts give an exact identity with std = 0).
    weight is (c_out, c_in, kh, kw)."""
    c_out, c_in, kh, kw = weight.shape
    weight[...] = rng.normal(0.0, std, weight.shape) if std > 0 else 0.0
    a = np.arange(c_in) * c_total // c_in
    b = np.arange(c_out) * c_total // c_out
    match = b[:, None] == a[None, :]
    weight[:, :, kh // 2, kw // 2][match] = c_total / c_out
    bias[...] = 0.0


def context_module(channels: int, variant: str = "basic", rng=None) -> nn.Sequential:
    """The 8-layer context module on `channels` (C = number of classes in the paper) feature maps;
    'same' padding, so the output has the input's size and channels."""
    if variant not in ("basic", "large"):
        raise ValueError(f"context_module: variant must be 'basic' or 'large', got {variant!r}")
    if channels < 1:
        raise ValueError(f"context_module: channels must be >= 1, got {channels}")
    rng = rng if rng is not None else np.random.default_rng()
    mult = LARGE_MULTIPLIERS if variant == "large" else (1,) * 8
    layers, cin = [], channels
    for i, (d, m) in enumerate(zip(DILATIONS, mult)):
        k = 1 if i == len(DILATIONS) - 1 else 3
        conv = nn.Conv2d(cin, channels * m, k, padding=d if k == 3 else 0, dilation=d)
        std = 0.0 if variant == "basic" else 1e-3 * channels / (channels * m)
        identity_init(conv.weight.data, conv.bias.data, channels, std, rng)
        layers.append(conv)
        if k == 3:
            layers.append(nn.ReLU())
        cin = channels * m
    return nn.Sequential(*layers)
