"""Shared by the CUDA tests (test_cuda_conv/pool/nn.py on a GPU, test_cuda_emulated.py anywhere):
the skip marker with the reason, the conv2d configurations, host -> device uploads, and the
comparison of a device result with the CPU op's (NaN-poisoned device buffers make unwritten
elements fail: rel_err rejects non-finite results)."""
from __future__ import annotations

import numpy as np
import pytest

from cnnfast import cuda

from helpers import rel_err

requires_gpu = pytest.mark.skipif(not cuda.is_available(),
                                  reason=f"no CUDA device: {cuda.reason()}")

TOL = 3e-5  # float32 sums in another order than the CPU's

# (CNNFAST_CUDA_SPLIT_RULE, multiprocessors) under which the emulated weight-gradient sums run:
# unsplit (1 SM), split over a wave of an H100-sized GPU, and the 'balance' rule's splits
SPLIT_RULES = (("wave", 1), ("wave", 132), ("balance", 132), ("balance", 5))


# N, C, H, W, K, R, S, stride, padding, dilation, groups
CONV_CASES = [
    (2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1),
    (3, 4, 13, 7, 6, 3, 2, (2, 1), (1, 0, 2, 1), (1, 2), 2),   # asymmetric padding
    (1, 8, 10, 10, 8, 3, 3, 1, 1, 1, 8),                       # depthwise
    (2, 6, 15, 15, 9, 5, 5, 2, 2, 1, 3),
    (1, 3, 8, 8, 70, 1, 1, 1, 0, 1, 1),                        # 1x1, K over one 64-tile
    (2, 5, 12, 9, 4, 3, 3, 1, "same", 3, 1),
    (2, 67, 6, 5, 3, 2, 2, 1, 0, 1, 1),                        # depth C·R·S = 268
    (1, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1),                       # LeNet conv1
    (4, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1),                      # N·P·Q = 1024: split sum
    (2, 4, 7, 7, 4, 7, 7, 3, "full", 1, 2),
    # backward-data per stride phase (C/G >= 32), incl. phases that no tap reaches
    (2, 40, 9, 8, 36, 3, 3, 2, 1, 1, 1),
    (1, 64, 11, 10, 33, 3, 2, (3, 2), (2, 1, 0, 3), (2, 3), 1),
    (2, 64, 7, 9, 32, 1, 1, 2, 0, 1, 2),
    (1, 3, 40, 40, 130, 3, 3, 1, 1, 1, 1),                      # 128-wide column tile + tail
    (2, 4, 10, 10, 12, 3, 3, 2, 1, 2, 4),                       # depthwise, multiplier 3
    (1, 2, 9, 9, 2, 4, 4, 3, (2, 1, 3, 0), 1, 2),               # depthwise, stride 3 > taps/phase
    (2, 3, 9, 13, 6, 5, 5, (2, 1), 2, (2, 1), 3),               # depthwise row kernel, q tail
]


# Narrow inputs (C/G < 32): the direct backward-data sum (CNNFAST_CUDA_NARROW_DATA=direct)
NARROW_DATA_CASES = [c for c in CONV_CASES if c[1] // c[10] < 32] + [
    (2, 3, 33, 290, 5, 7, 7, 2, 3, 1, 1),             # resnet_conv1-like; phase rows past 128
    (1, 3, 35, 39, 4, 11, 11, 4, 2, 1, 1),            # alexnet_conv1-like: 16 phases
    (2, 8, 9, 10, 6, 3, 3, 2, 1, 2, 2),               # Cg 4, dilation 2 at stride 2
    (1, 6, 12, 11, 5, 2, 2, 3, (1, 0, 2, 1), 1, 1),   # Cg 6 (two blocks of 3), taps < stride
    (2, 5, 8, 9, 3, 3, 3, (3, 2), 1, (2, 3), 1),      # Cg 5 (blocks of 4, one partial)
    (1, 2, 2, 3, 4, 3, 3, 4, 2, 1, 1),                # stride past the input: phases < stride
    (1, 1, 6, 260, 3, 5, 5, 1, 2, 1, 1),              # rows whose threads need no bounds tests
]


# N, C, D, H, W, K, KD, KH, KW, stride, padding, dilation, groups
CONV3D_CASES = [
    (2, 3, 5, 6, 7, 4, 3, 3, 3, 1, 1, 1, 1),
    (1, 4, 7, 6, 5, 6, 3, 2, 3, (2, 1, 2), (1, 0, 1), (2, 1, 1), 2),
    (2, 2, 4, 5, 5, 3, 2, 3, 3, 2, 0, 1, 1),
    (1, 3, 6, 5, 6, 2, 3, 3, 3, (3, 2, 2), (2, 1, 1), (2, 2, 1), 1),  # depth taps skip slices
    (1, 40, 3, 5, 5, 36, 1, 3, 3, 1, (0, 1, 1), 1, 1),                # 32+ channels per group
    (2, 4, 3, 4, 4, 4, 3, 1, 1, 1, (2, 0, 0), 1, 4),                  # slices with no taps
    (1, 3, 9, 4, 5, 2, 3, 3, 3, (2, 1, 1), 1, 1, 1),                  # interior runs of slices
    (2, 2, 8, 3, 3, 3, 3, 1, 1, 1, (1, 0, 0), 1, 1),
    (2, 2, 8, 16, 16, 3, 3, 3, 3, 1, 1, 1, 1),  # unsplit on the 16-SM emulator (an H200 splits)
]


def dev(*arrays):
    """Device copies (None stays None); one array -> one DeviceArray, several -> a list."""
    out = [None if a is None else cuda.from_numpy(np.asarray(a)) for a in arrays]
    return out[0] if len(out) == 1 else out


def host(a):
    return a.to_numpy() if isinstance(a, cuda.DeviceArray) else a


def close(got, want, tol=TOL, what=""):
    if want is None:
        assert got is None, f"{what}: expected None"
        return
    assert isinstance(got, cuda.DeviceArray), f"{what}: expected a DeviceArray, got {type(got)}"
    got, want = host(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = rel_err(got, want)
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol:.0e}"


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)
