"""Building blocks shared by the model zoo: named sequential chains, torchvision-style weight
initialization, channel splitting for concatenating branches, and centre cropping."""
from __future__ import annotations

from typing import Iterable, List, Tuple

import numpy as np

from .. import init, nn


def named_sequential(pairs: Iterable[Tuple[str, nn.Module]]) -> nn.Sequential:
    """An nn.Sequential whose children carry the given names (torch's OrderedDict form), so
    state_dict keys read e.g. `features.conv0.weight`."""
    seq = nn.Sequential()
    for name, module in pairs:
        setattr(seq, name, module)
    return seq


def scaled(channels: int, width: float) -> int:
    """channels × width, at least 1 (width < 1 shrinks a model for tests and small data)."""
    return max(1, int(round(channels * width)))


def init_torchvision(model: nn.Module, linear_std=None) -> None:
    """torchvision's initialization: conv weights kaiming_normal(fan_out, relu), conv bias 0,
    BatchNorm weight 1 / bias 0; Linear N(0, linear_std) with bias 0 when linear_std is given
    (VGG: 0.01), else Linear keeps torch's default."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            init.ones_(m.weight)
            init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            init.normal_(m.weight, 0.0, linear_std)
            init.zeros_(m.bias)


def split_channels(grad: np.ndarray, sizes: List[int]) -> List[np.ndarray]:
    """grad (N, sum(sizes), H, W) cut along channels into contiguous (N, sizes[i], H, W)."""
    return [np.ascontiguousarray(g) for g in np.split(grad, np.cumsum(sizes)[:-1], axis=1)]


def centre_crop(x: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The centre size[0]×size[1] window of x (N, C, H, W) (U-Net's 'valid' skip crop)."""
    top, left = (x.shape[2] - size[0]) // 2, (x.shape[3] - size[1]) // 2
    return np.ascontiguousarray(x[:, :, top:top + size[0], left:left + size[1]])


def centre_crop_backward(grad: np.ndarray, full: Tuple[int, ...]) -> np.ndarray:
    """Gradient of centre_crop: grad placed back in a zero array of the uncropped shape."""
    out = np.zeros(full, grad.dtype)
    top, left = (full[2] - grad.shape[2]) // 2, (full[3] - grad.shape[3]) // 2
    out[:, :, top:top + grad.shape[2], left:left + grad.shape[3]] = grad
    return out
