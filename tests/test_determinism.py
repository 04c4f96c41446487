"""Which results are bitwise identical across thread counts (the claim in tests/README.md,
"Determinism"): every op is run at 1, 2 and 3 threads on inputs big enough to be split, and the
outputs claimed thread-count independent must match bit for bit. The rest (the convolution
family's grad_weight: per-thread partial sums added in thread order) must be bitwise
reproducible at a fixed thread count."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F

from conftest import SEED

F32 = np.float32


def _ops(rng):
    """name -> (fn returning a tuple of outputs, indices of the split-dependent outputs)."""
    def r(*s):
        return rng.standard_normal(s).astype(F32)
    x, w, b = r(6, 8, 16, 16), r(16, 8, 3, 3), r(16)
    gy = r(6, 16, 16, 16)
    x1, w1, g1 = r(6, 8, 60), r(12, 8, 5), r(6, 12, 56)
    x3, w3 = r(3, 4, 6, 8, 8), r(8, 4, 3, 3, 3)
    g3 = r(3, 8, 6, 8, 8)
    wt = r(8, 4, 3, 3)
    gt = r(*F.conv_transpose2d(x, wt, stride=2).shape)
    wtl, wlc, btl = r(2, 2, 6, 8, 3, 3), r(7, 7, 4, 8, 4, 4), r(2, 2, 6)
    gtl, glc = r(6, 6, 14, 14), r(6, 4, 7, 7)
    a, bm, gm = r(150, 200), r(200, 120), r(150, 120)
    xl, wl, bl, gl = r(64, 300), r(100, 300), r(100), r(64, 100)
    y, sw = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    gp, gu, gi = r(*y.shape), r(*x.shape), r(6, 8, 32, 32)
    r5, r7, mask = r(6, 8, 5, 5), r(6, 8, 7, 7), (np.arange(128) % 3 > 0).astype(np.uint8)
    xe = r(8, 16, 24, 24)  # 73728 elements: several 16384-element chunks
    ge = r(*xe.shape)
    ones, zeros = np.ones(16, F32), np.zeros(16, F32)
    xc, tc = r(512, 10), rng.integers(0, 10, 512)
    conv = {algo: (lambda algo=algo: (F.conv2d(x, w, b, padding=1, algo=algo),)
                   + F.conv2d_backward(gy, x, w, b, padding=1, algo=algo),
                   () if algo == "direct" else (2,))
            for algo in ("gemm", "implicit", "direct", "winograd")}
    ops = {f"conv2d[{k}]": v for k, v in conv.items()}
    ops.update({
        "conv1d": (lambda: (F.conv1d(x1, w1),) + F.conv1d_backward(g1, x1, w1), (2,)),
        "conv3d": (lambda: (F.conv3d(x3, w3, padding=1),) + F.conv3d_backward(
            g3, x3, w3, padding=1), (2,)),
        "conv_transpose2d": (lambda: (F.conv_transpose2d(x, wt, stride=2),)
                             + F.conv_transpose2d_backward(gt, x, wt, stride=2), (2,)),
        "tiled_conv2d": (lambda: (F.tiled_conv2d(x, wtl),) + F.tiled_conv2d_backward(
            gtl, x, wtl), (2,)),
        # the implicit path with a bias: T_w = 2 on an even width (dY split by rows, the bias
        # summed from the split rows)
        "tiled_conv2d[implicit]": (lambda: (F.tiled_conv2d(x, wtl, btl, algo="implicit"),)
                                   + F.tiled_conv2d_backward(gtl, x, wtl, btl, algo="implicit"),
                                   (2,)),
        "locally_connected2d": (lambda: (F.locally_connected2d(x, wlc, stride=2),)
                                + F.locally_connected2d_backward(glc, x, wlc, stride=2), (2,)),
        "matmul": (lambda: (F.matmul(a, bm),) + F.matmul_backward(gm, a, bm), ()),
        "linear": (lambda: (F.linear(xl, wl, bl),) + F.linear_backward(gl, xl, wl, bl), ()),
        "pooling": (lambda: (y, sw.indices, F.max_pool2d_backward(gp, x, 3, 2, 1, indices=sw),
                             F.avg_pool2d(x, 3, 2, 1), F.avg_pool2d_backward(gp, x, 3, 2, 1),
                             F.adaptive_avg_pool3d(x3, 4), F.lp_pool2d(x, 2, 3, 2),
                             F.adaptive_max_pool2d(x, 5), F.adaptive_max_pool2d_backward(
                                 r5, x, 5), F.lp_pool2d_backward(r7, x, 2, 3, 2)), ()),
        "max_unpool2d": (lambda: (F.max_unpool2d(y, sw), F.max_unpool2d_backward(gu, y, sw)),
                         ()),
        "interpolate": (lambda: (F.interpolate(x, scale_factor=2, mode="bilinear"),
                                 F.interpolate_backward(gi, x, scale_factor=2,
                                                        mode="bilinear")), ()),
        "activations": (lambda: (F.relu(xe), F.sigmoid(xe), F.tanh(xe), F.leaky_relu(xe),
                                 F.relu_backward(ge, xe), F.tanh_backward(ge, xe))
                        + F.dropout(xe, 0.3, rng=np.random.default_rng(1))
                        + (F.dropout2d_backward(ge, mask, 0.3),), ()),
        "softmax": (lambda: (F.softmax(xe), F.log_softmax(xe, dim=3),
                             F.softmax_backward(ge, xe)), ()),
        "batch_norm": (lambda: F.batch_norm(xe, None, None, ones, zeros, training=True,
                                            return_stats=True)
                       + F.batch_norm_backward(ge, xe, None, None, ones, zeros, training=True),
                       ()),
        "lrn/gcn/lcn": (lambda: (F.local_response_norm(xe, 5),
                                 F.local_response_norm_backward(ge, xe, 5),
                                 F.global_contrast_norm(xe), F.global_contrast_norm_backward(
                                     ge, xe), F.local_contrast_norm(x, 5),
                                 F.local_contrast_norm_backward(gu, x, 5)), ()),
        "cross_entropy": (lambda: (F.cross_entropy(xc, tc), F.cross_entropy_backward(
            1.0, xc, tc)), ()),
    })
    return ops


@pytest.fixture(scope="module")
def results():
    ops = _ops(np.random.default_rng([SEED, 10]))  # the run's seed (conftest), fresh per run
    before = cnnfast.get_num_threads()
    out = {}
    try:
        for nt in (1, 2, 3, 3):
            cnnfast.set_num_threads(nt)
            out.setdefault(nt, []).append(
                {k: [None if v is None else np.array(v) for v in f()] for k, (f, _) in ops.items()})
    finally:
        cnnfast.set_num_threads(before)
    return ops, out


@pytest.mark.parametrize("name", list(_ops(np.random.default_rng(0))))
def test_bitwise_across_thread_counts(results, name):
    ops, out = results
    split_dependent = ops[name][1]
    one = out[1][0][name]
    for nt in (2, 3):
        for o, (a, b) in enumerate(zip(one, out[nt][0][name])):
            if o not in split_dependent:
                np.testing.assert_array_equal(a, b, err_msg=f"{name}[{o}] at 1 vs {nt} threads")
    for a, b in zip(out[3][0][name], out[3][1][name]):  # fixed thread count: always bitwise
        np.testing.assert_array_equal(a, b, err_msg=f"{name} twice at 3 threads")


def test_named_algorithms_stay_bitwise_past_the_batch_size(rng):
    # 'auto' picks its path from the shape and the thread count (fewer images than threads take
    # a path that splits images), so across thread counts only a named algorithm is bitwise
    # stable: 6 images at 1 and at 7 threads, forward and grad_input of the conv family.
    def r(*s):
        return rng.standard_normal(s).astype(F32)
    x, w, gy = r(6, 16, 12, 12), r(32, 16, 3, 3), r(6, 32, 12, 12)
    x1, w1 = r(6, 16, 40), r(32, 16, 3)
    x3, w3 = r(6, 16, 4, 6, 6), r(32, 16, 3, 3, 3)
    wt = r(16, 8, 3, 3)
    calls = {f"conv2d[{a}]": (lambda a=a: (F.conv2d(x, w, padding=1, algo=a),
                                           F.conv2d_backward(gy, x, w, padding=1, algo=a)[0]))
             for a in ("gemm", "implicit", "direct", "winograd")}
    calls["conv1d[implicit]"] = lambda: (F.conv1d(x1, w1, padding=1, algo="implicit"),)
    calls["conv3d[implicit]"] = lambda: (F.conv3d(x3, w3, padding=1, algo="implicit"),)
    calls["conv_transpose2d[gemm]"] = lambda: (F.conv_transpose2d(x, wt, stride=2, algo="gemm"),)
    before = cnnfast.get_num_threads()
    try:
        got = {}
        for nt in (1, 7):
            cnnfast.set_num_threads(nt)
            got[nt] = {k: [np.array(v) for v in f()] for k, f in calls.items()}
    finally:
        cnnfast.set_num_threads(before)
    for k in calls:
        for a, b in zip(got[1][k], got[7][k]):
            np.testing.assert_array_equal(a, b, err_msg=f"{k} at 1 vs 7 threads")
