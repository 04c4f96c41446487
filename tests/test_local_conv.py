"""Tiled convolution and locally connected layers (1-, 2-, 3-D): random sweeps vs the NumPy loop
references on every ISA path, the naive C++ twin, the identities (tile 1 == conv, tile = output
size == locally connected), float64 finite-difference gradients, PyTorch unfold agreement."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F
from cnnfast._checks import resolve_padding

import reference_conv_family as ref
from helpers import assert_close, directional_fd

TILED = {1: (F.tiled_conv1d, F.tiled_conv1d_backward), 2: (F.tiled_conv2d, F.tiled_conv2d_backward),
         3: (F.tiled_conv3d, F.tiled_conv3d_backward)}
LOCAL = {1: (F.locally_connected1d, F.locally_connected1d_backward),
         2: (F.locally_connected2d, F.locally_connected2d_backward),
         3: (F.locally_connected3d, F.locally_connected3d_backward)}


def _ints(rng, lo, hi, n):
    return tuple(int(v) for v in rng.integers(lo, hi, n))


def random_case(rng, nd, per_location):
    while True:
        size = _ints(rng, 1, {1: 30, 2: 11, 3: 6}[nd], nd)
        ker, stride, dil = _ints(rng, 1, 4, nd), _ints(rng, 1, 3, nd), _ints(rng, 1, 3, nd)
        padding = [int(rng.integers(0, 3)), _ints(rng, 0, 3, nd), _ints(rng, 0, 3, 2 * nd),
                   "valid", "same", "full"][rng.integers(0, 6)]
        pad = resolve_padding(padding, size, ker, stride, dil)
        if any(i + pad[2 * a] + pad[2 * a + 1] < (k - 1) * d + 1
               for a, (i, k, d) in enumerate(zip(size, ker, dil))):
            continue
        out = ref.out_size(size, ker, stride, pad, dil)
        tiles = out if per_location else _ints(rng, 1, 4, nd)  # may exceed the output: idle banks
        n, c, k = int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 5)), int(rng.integers(1, 9))
        return dict(x=(n, c) + size, w=tiles + (k, c) + ker,
                    b=((k,) + out) if per_location else tiles + (k,),
                    stride=stride, padding=padding, pad=pad, dilation=dil)


def run_case(rng, nd, per_location, case, dtype, tol, algo="auto"):
    fwd, bwd = (LOCAL if per_location else TILED)[nd]
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["b"]).astype(dtype)
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"])
    rkw = dict(stride=case["stride"], pad=case["pad"], dilation=case["dilation"],
               per_location=per_location)
    y = fwd(x, w, b, algo=algo, **kw)
    assert y.dtype == dtype
    assert_close(y, ref.tiled(x, w, b, **rkw), tol, f"forward {case}")
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want, name in zip(bwd(gy, x, w, b, algo=algo, **kw),
                               ref.tiled_backward(gy, x, w, **rkw), ("grad_x", "grad_w", "grad_b")):
        assert_close(got, want, tol, f"{name} {case}")


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("per_location", [False, True], ids=["tiled", "local"])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("algo", ["auto", "implicit"])
def test_random_cases_every_isa(isa, rng, nd, per_location, dtype, tol, algo):
    # 'auto' runs the per-bank GEMM on these small outputs; 'implicit' the implicit GEMM (its
    # backward-data as the forward on dy at unit stride, else the GEMM path).
    for _ in range(5):
        run_case(rng, nd, per_location, random_case(rng, nd, per_location), dtype, tol, algo)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("per_location", [False, True], ids=["tiled", "local"])
def test_naive_twin(rng, nd, per_location):
    for _ in range(3):
        run_case(rng, nd, per_location, random_case(rng, nd, per_location), np.float64, 1e-12,
                 algo="ref")


@pytest.mark.parametrize("algo", ["gemm", "implicit"])
def test_large_batch_many_chunks(isa, rng, algo):
    # Several column chunks per bank, images split across threads, a T=2x3 grid with tails.
    case = dict(x=(7, 12, 23, 19), w=(2, 3, 10, 12, 3, 3), b=(2, 3, 10), stride=(1, 1),
                padding="same", pad=(1, 1, 1, 1), dilation=(1, 1))
    run_case(rng, 2, False, case, np.float32, 1e-5, algo)


@pytest.mark.parametrize("case", [
    # (x, w, stride, padding, dilation): implicit dx as the forward on dy (unit stride, with
    # padding up to 'full' and dilation), and by the GEMM path (stride 2); more channels than one
    # 16-wide block, banks whose positions span rows, idle banks (T past the output)
    ((3, 5, 17, 13), (3, 2, 21, 5, 3, 2), 1, "full", (2, 1)),
    ((2, 3, 16, 15), (2, 4, 7, 3, 2, 3), 1, (2, 0, 1, 2), 1),
    ((4, 6, 19, 20), (2, 2, 18, 6, 3, 3), 2, 1, 1),
    ((2, 4, 6, 7), (9, 2, 5, 4, 2, 2), 1, 0, 1),
    # K a multiple of 32 (AVX-512's 8x32 tile): 2x2 banks written in pairs (even width), and
    # a 1x2 grid on an odd output width
    ((2, 5, 14, 16), (2, 2, 64, 5, 3, 3), 1, 1, 1),
    ((3, 4, 11, 14), (1, 2, 32, 4, 3, 2), 1, 0, 1),
])
def test_implicit_matches_reference(isa, rng, case):
    xs, ws, stride, padding, dil = case
    nd = 2
    st, dl = int_pair(stride), int_pair(dil)
    pad = resolve_padding(padding, xs[2:], ws[-2:], st, dl)
    c = dict(x=xs, w=ws, b=ws[:2] + (ws[2],), stride=st, padding=padding, pad=pad, dilation=dl)
    run_case(rng, nd, False, c, np.float64, 1e-12, "implicit")
    run_case(rng, nd, False, c, np.float32, 1e-5, "implicit")


def int_pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("case", [
    # (x, w, padding): T_w = 2 on even output widths, so threads holding whole images write each
    # output row with the two column banks interleaved (8x8 register transposes on AVX2): rows of
    # 13 / 18 / 16 positions per bank (an overlapping last block, or none), 12 / 21 / 16 channels
    # (channel tails), bank rows of T_h = 1..3; dx runs the same on dy (input widths 28 / 36 / 34)
    ((3, 9, 20, 28), (2, 2, 12, 9, 3, 3), 0),
    ((2, 9, 12, 36), (3, 2, 21, 9, 3, 3), 1),
    ((3, 16, 9, 34), (1, 2, 16, 16, 3, 3), 0),
])
def test_implicit_two_column_banks(isa, rng, case):
    xs, ws, padding = case
    pad = resolve_padding(padding, xs[2:], ws[-2:], (1, 1), (1, 1))
    c = dict(x=xs, w=ws, b=ws[:3], stride=(1, 1), padding=padding, pad=pad, dilation=(1, 1))
    # 3-D: T = (2, 1, 2), 16 output columns (8 per bank), 9 channels
    c3 = dict(x=(2, 3, 4, 5, 18), w=(2, 1, 2, 9, 3, 2, 2, 3), b=(2, 1, 2, 9), stride=(1, 1, 1),
              padding=0, pad=(0,) * 6, dilation=(1, 1, 1))
    before = cnnfast.get_num_threads()
    try:
        for n in (1, 2):  # whole images per thread: at most one thread per image (N >= 2 here)
            cnnfast.set_num_threads(n)
            run_case(rng, 2, False, c, np.float64, 1e-12, "implicit")
            run_case(rng, 2, False, c, np.float32, 1e-5, "implicit")
            run_case(rng, 3, False, c3, np.float32, 1e-5, "implicit")
    finally:
        cnnfast.set_num_threads(before)


def test_auto_takes_implicit_for_few_banks_gemm_for_locally_connected(rng):
    # A tiled layer with many positions per bank runs the implicit GEMM, a locally connected one
    # the per-bank GEMM batched over images: 'auto' gives those algorithms' exact bits.
    x = rng.standard_normal((4, 6, 20, 18)).astype(np.float32)
    w = rng.standard_normal((2, 2, 9, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal((2, 2, 9)).astype(np.float32)
    gy = rng.standard_normal((4, 9, 18, 16)).astype(np.float32)
    np.testing.assert_array_equal(F.tiled_conv2d(x, w, b), F.tiled_conv2d(x, w, b, algo="implicit"))
    for got, want in zip(F.tiled_conv2d_backward(gy, x, w, b),
                         F.tiled_conv2d_backward(gy, x, w, b, algo="implicit")):
        np.testing.assert_array_equal(got, want)
    wl = rng.standard_normal((18, 16, 9, 6, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(F.locally_connected2d(x, wl),
                                  F.locally_connected2d(x, wl, algo="gemm"))


# ---- identities ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nd", [1, 2, 3])
def test_tile_one_is_convolution(rng, nd):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    x = rng.standard_normal((3, 4) + (17, 9, 8)[:nd]).astype(np.float32)
    w = rng.standard_normal((5, 4) + (3, 2, 3)[:nd]).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    kw = dict(stride=(2, 1, 1)[:nd], padding="same", dilation=(1, 2, 1)[:nd])
    wt = w.reshape((1,) * nd + w.shape)
    y = TILED[nd][0](x, wt, b.reshape((1,) * nd + (5,)), **kw)
    assert_close(y, conv(x, w, b, **kw), 1e-6)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    got = TILED[nd][1](gy, x, wt, b.reshape((1,) * nd + (5,)), **kw)
    want = {1: F.conv1d_backward, 2: F.conv2d_backward, 3: F.conv3d_backward}[nd](gy, x, w, b, **kw)
    for g, v in zip(got, want):
        assert_close(g.reshape(v.shape), v, 1e-5)


@pytest.mark.parametrize("nd", [1, 2])
def test_tile_output_size_is_locally_connected(rng, nd):
    x = rng.standard_normal((4, 3) + (13, 10)[:nd])
    kw = dict(stride=(2, 1)[:nd], padding=1)
    out = ref.out_size(x.shape[2:], (3, 2)[:nd], kw["stride"], (1,) * (2 * nd), (1,) * nd)
    w = rng.standard_normal(out + (6, 3) + (3, 2)[:nd])
    b = rng.standard_normal((6,) + out)
    b_tiled = np.moveaxis(b, 0, -1)  # (K, *out) -> (*out, K)
    y = LOCAL[nd][0](x, w, b, **kw)
    assert_close(y, TILED[nd][0](x, w, b_tiled, **kw), 1e-13)
    gy = rng.standard_normal(y.shape)
    gl = LOCAL[nd][1](gy, x, w, b, **kw)
    gt = TILED[nd][1](gy, x, w, b_tiled, **kw)
    assert_close(gl[0], gt[0], 1e-13)
    assert_close(gl[1], gt[1], 1e-13)
    assert_close(gl[2], np.moveaxis(gt[2], -1, 0), 1e-13)


def test_banks_rotate_through_space(rng):
    # Bank (i mod 2, j mod 2): changing bank (1, 0) only changes odd rows / even columns.
    x = rng.standard_normal((1, 2, 8, 8))
    w = rng.standard_normal((2, 2, 3, 2, 3, 3))
    y0 = F.tiled_conv2d(x, w, padding=1)
    w[1, 0] += 1.0
    changed = np.any(F.tiled_conv2d(x, w, padding=1) != y0, axis=(0, 1))
    expect = np.zeros((8, 8), bool)
    expect[1::2, 0::2] = True
    np.testing.assert_array_equal(changed, expect)


# ---- gradients by float64 finite differences ------------------------------------------------------

@pytest.mark.parametrize("nd,per_location,cfg", [
    (1, False, dict(stride=2, padding="same", dilation=1)),
    (2, False, dict(stride=(1, 2), padding=(1, 0, 2, 1), dilation=(2, 1))),
    (2, True, dict(stride=1, padding="full", dilation=1)),
    (1, True, dict(stride=1, padding=2, dilation=2)),
    (3, False, dict(stride=1, padding=1, dilation=1)),
])
@pytest.mark.parametrize("algo", ["gemm", "implicit"])
def test_gradients_finite_differences(isa, rng, nd, per_location, cfg, algo):
    fwd, bwd = (LOCAL if per_location else TILED)[nd]
    cfg = dict(cfg, algo=algo)
    x = rng.standard_normal((3, 2) + (9, 7, 5)[:nd])
    ker = (3, 2, 2)[:nd]
    lead = (2, 3, 2)[:nd]
    if per_location:  # one kernel per output location: the weight's leading dims = output size
        lead = _local_out(x, ker, cfg)
    w = rng.standard_normal(lead + (4, 2) + ker)
    b = rng.standard_normal(((4,) + lead) if per_location else lead + (4,))
    g = rng.standard_normal(fwd(x, w, b, **cfg).shape)
    directional_fd(lambda a: float(np.sum(fwd(*a, **cfg) * g)), [x, w, b],
                   bwd(g, x, w, b, **cfg), rng)


def _local_out(x, ker, cfg):
    """Output size of a locally connected case (cfg with int stride and dilation)."""
    nd = len(ker)
    st, dl = (cfg["stride"],) * nd, (cfg["dilation"],) * nd
    pad = resolve_padding(cfg["padding"], x.shape[2:], ker, st, dl)
    return ref.out_size(x.shape[2:], ker, st, pad, dl)


@pytest.mark.parametrize("algo", ["gemm", "implicit"])
def test_thread_count_invariance(rng, algo):
    x = rng.standard_normal((5, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((2, 2, 8, 6, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((5, 8, 12, 12)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            out.append((F.tiled_conv2d(x, w, algo=algo),)
                       + F.tiled_conv2d_backward(gy, x, w, algo=algo)[:2])
    finally:
        cnnfast.set_num_threads(before)
    for other in out[1:]:
        np.testing.assert_array_equal(other[0], out[0][0])
        np.testing.assert_array_equal(other[1], out[0][1])
        assert_close(other[2], out[0][2], 1e-6)


def test_locally_connected_thread_counts(rng):
    # Threads take ranges of positions (banks) with every image: forward and dW write disjoint
    # slices; dx sums a fixed number of bank slices in slice order: all bitwise the same at any
    # thread count.
    x = rng.standard_normal((5, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((7, 6, 4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal((4, 7, 6)).astype(np.float32)
    gy = rng.standard_normal((5, 4, 7, 6)).astype(np.float32)
    want = ref.tiled_backward(gy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                              stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1), per_location=True)
    before = cnnfast.get_num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            out.append((F.locally_connected2d(x, w, b),) + F.locally_connected2d_backward(gy, x, w, b))
    finally:
        cnnfast.set_num_threads(before)
    for got in out:
        for a, b in zip(got, out[0]):
            np.testing.assert_array_equal(a, b)
        assert_close(got[1], want[0], 1e-5)
        assert_close(got[2], want[1], 1e-5)


def test_matches_torch_unfold(rng):
    # The formulation a PyTorch user writes for a locally connected layer: unfold + einsum.
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(rng.standard_normal((3, 4, 9, 8))).requires_grad_()
    w = torch.from_numpy(rng.standard_normal((7, 6, 5, 4, 3, 3))).requires_grad_()
    cols = torch.nn.functional.unfold(x, 3, padding=0)                # (N, C*9, P*Q)
    y = torch.einsum("ncl,lkc->nkl", cols, w.reshape(42, 5, 36)).reshape(3, 5, 7, 6)
    g = torch.from_numpy(rng.standard_normal((3, 5, 7, 6)))
    y.backward(g)
    xn, wn = x.detach().numpy(), w.detach().numpy()
    assert_close(F.locally_connected2d(xn, wn), y.detach().numpy(), 1e-12)
    gx, gw, _ = F.locally_connected2d_backward(g.numpy(), xn, wn)
    assert_close(gx, x.grad.numpy(), 1e-12)
    assert_close(gw, w.grad.numpy(), 1e-12)
