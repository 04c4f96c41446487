"""conv1d, conv3d and conv_transpose{1,2,3}d: random sweeps (tails, every padding form) vs the
NumPy references on every ISA path, the naive C++ twins, the adjoint identity, float64
finite-difference gradients, thread-count invariance and PyTorch agreement."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F
from cnnfast._checks import resolve_padding

import reference_conv_family as ref
from helpers import assert_close, directional_fd

CONV = {1: (F.conv1d, F.conv1d_backward), 3: (F.conv3d, F.conv3d_backward)}
TCONV = {1: (F.conv_transpose1d, F.conv_transpose1d_backward),
         2: (F.conv_transpose2d, F.conv_transpose2d_backward),
         3: (F.conv_transpose3d, F.conv_transpose3d_backward)}


def _ints(rng, lo, hi, n):
    return tuple(int(v) for v in rng.integers(lo, hi, n))


def random_conv_case(rng, nd):
    """A random valid conv configuration with a random padding form (tails: odd sizes)."""
    max_in = {1: 40, 3: 9}[nd]
    while True:
        groups = int(rng.choice([1, 1, 2, 3]))
        cg, kg, n = int(rng.integers(1, 5)), int(rng.integers(1, 9)), int(rng.choice([1, 2, 3]))
        size, ker = _ints(rng, 1, max_in, nd), _ints(rng, 1, 5 if nd == 1 else 4, nd)
        stride, dil = _ints(rng, 1, 4, nd), _ints(rng, 1, 3, nd)
        padding = [int(rng.integers(0, 3)), _ints(rng, 0, 3, nd), _ints(rng, 0, 3, 2 * nd),
                   "valid", "same", "full"][rng.integers(0, 6)]
        pad = resolve_padding(padding, size, ker, stride, dil)
        if any(i + pad[2 * a] + pad[2 * a + 1] < (k - 1) * d + 1
               for a, (i, k, d) in enumerate(zip(size, ker, dil))):
            continue
        return dict(x=(n, cg * groups) + size, w=(kg * groups, cg) + ker, stride=stride,
                    padding=padding, pad=pad, dilation=dil, groups=groups)


def assert_sums_close(got, want, scale, tol, what):
    """‖got − want‖ ≤ tol·‖scale‖, scale the same sums over absolute values: a gradient that is a
    short sum (grad_b of one channel, grad_w of a 1×1 kernel) can cancel to a small |want|,
    where a bound relative to ‖want‖ flakes in float32 (seen at 1.1e-5 and 1.5e-5 > 1e-5)."""
    err, ref_scale = np.linalg.norm(got - want), np.linalg.norm(scale)
    assert err <= tol * ref_scale, f"{what}: error {err:.3e} > {tol:.1e} * {ref_scale:.3e}"


def run_conv_case(rng, nd, case, dtype, tol, algo="auto"):
    fwd, bwd = CONV[nd]
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"])
    rkw = dict(stride=case["stride"], pad=case["pad"], dilation=case["dilation"],
               groups=case["groups"])
    y = fwd(x, w, b, algo=algo, **kw)
    assert y.dtype == dtype
    assert_sums_close(y, ref.conv(x, w, b, **rkw), ref.conv(np.abs(x), np.abs(w), np.abs(b), **rkw),
                      tol, f"forward {case}")
    gy = rng.standard_normal(y.shape).astype(dtype)
    scales = ref.conv_backward(np.abs(gy), np.abs(x), np.abs(w), **rkw)
    for got, want, scale, name in zip(bwd(gy, x, w, b, algo=algo, **kw),
                                      ref.conv_backward(gy, x, w, **rkw), scales,
                                      ("grad_x", "grad_w", "grad_b")):
        assert_sums_close(got, want, scale, tol, f"{name} {case}")


@pytest.mark.parametrize("algo", ["auto", "gemm", "implicit"])
@pytest.mark.parametrize("nd", [1, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_conv_random_cases_every_isa(isa, rng, nd, dtype, tol, algo):
    for _ in range(8):
        run_conv_case(rng, nd, random_conv_case(rng, nd), dtype, tol, algo=algo)


@pytest.mark.parametrize("nd", [1, 3])
def test_conv_naive_twin(rng, nd):
    for _ in range(4):
        run_conv_case(rng, nd, random_conv_case(rng, nd), np.float64, 1e-12, algo="ref")


@pytest.mark.parametrize("case", [
    # (x, w, stride, padding, dilation, groups): named structural cases of conv3d
    ((2, 40, 5, 6, 7), (9, 40, 1, 1, 1), 1, 0, 1, 1),          # pointwise: no vol2col
    ((1, 24, 9, 20, 21), (7, 24, 3, 3, 3), 1, 1, 1, 1),        # several vol2col chunks
    ((3, 6, 6, 7, 5), (6, 1, 3, 3, 3), 1, "same", 1, 6),       # depthwise
    ((2, 4, 9, 9, 9), (5, 4, 2, 3, 2), (2, 3, 1), "same", (1, 1, 3), 1),
])
def test_conv3d_structural(isa, rng, case):
    xs, ws, st, padding, dil, g = case
    st, dil = (st,) * 3 if isinstance(st, int) else st, (dil,) * 3 if isinstance(dil, int) else dil
    run_conv_case(rng, 3, dict(x=xs, w=ws, stride=st, padding=padding, dilation=dil, groups=g,
                               pad=resolve_padding(padding, xs[2:], ws[2:], st, dil)),
                  np.float32, 1e-5)


def test_conv1d_is_conv2d_with_unit_height(rng):
    x = rng.standard_normal((3, 5, 37)).astype(np.float32)
    w = rng.standard_normal((7, 5, 4)).astype(np.float32)
    y = F.conv1d(x, w, stride=2, padding="same", dilation=2)
    y2 = F.conv2d(x[:, :, None], w[:, :, None], stride=(1, 2), dilation=(1, 2),
                  padding=(0, 0) + resolve_padding("same", (37,), (4,), (2,), (2,)))
    np.testing.assert_array_equal(y, y2[:, :, 0])


# ---- transposed convolution ------------------------------------------------------------------------

def random_tconv_case(rng, nd):
    groups = int(rng.choice([1, 1, 2]))
    stride, dil = _ints(rng, 1, 4, nd), _ints(rng, 1, 3, nd)
    ker = _ints(rng, 1, 5, nd)
    size = _ints(rng, 1, {1: 20, 2: 8, 3: 5}[nd], nd)
    out_pad = tuple(int(rng.integers(0, s)) for s in stride)
    while True:
        pad = [int(rng.integers(0, 3)), _ints(rng, 0, 3, nd), _ints(rng, 0, 3, 2 * nd)][
            rng.integers(0, 3)]
        p = resolve_padding(pad, size, ker, stride, dil)
        if all((i - 1) * s - p[2 * a] - p[2 * a + 1] + d * (k - 1) + o + 1 >= 1 for a, (
                i, k, s, d, o) in enumerate(zip(size, ker, stride, dil, out_pad))):
            break
    return dict(x=(int(rng.integers(1, 3)), groups * int(rng.integers(1, 4))) + size,
                w_tail=(int(rng.integers(1, 5)),) + ker, stride=stride, padding=pad, pad=p,
                output_padding=out_pad, dilation=dil, groups=groups)


def run_tconv_case(rng, nd, case, dtype, tol, algo="auto"):
    fwd, bwd = TCONV[nd]
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal((case["x"][1],) + case["w_tail"]).astype(dtype)
    b = rng.standard_normal(case["w_tail"][0] * case["groups"]).astype(dtype)
    kw = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
              groups=case["groups"], output_padding=case["output_padding"])
    y = fwd(x, w, b, algo=algo, **kw)
    tkw = dict(stride=case["stride"], pad=case["pad"], output_padding=case["output_padding"],
               dilation=case["dilation"], groups=case["groups"])
    assert_sums_close(y, ref.conv_transpose(x, w, b, **tkw),
                      ref.conv_transpose(np.abs(x), np.abs(w), np.abs(b), **tkw), tol,
                      f"forward {case}")
    # Backward: grad_x is the conv of grad_out (the adjoint's adjoint), grad_w the conv weight
    # gradient with the roles of input and grad_out exchanged — checked against the NumPy conv.
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = bwd(gy, x, w, b, algo=algo, **kw)
    rkw = dict(stride=case["stride"], pad=case["pad"], dilation=case["dilation"],
               groups=case["groups"])
    assert_sums_close(gx, ref.conv(gy, w, **rkw), ref.conv(np.abs(gy), np.abs(w), **rkw), tol,
                      f"grad_x {case}")
    assert_sums_close(gw, ref.conv_backward(x, gy, w, **rkw)[1],
                      ref.conv_backward(np.abs(x), np.abs(gy), np.abs(w), **rkw)[1], tol,
                      f"grad_w {case}")
    axes = (0,) + tuple(range(2, nd + 2))
    assert_sums_close(gb, gy.sum(axis=axes), np.abs(gy).sum(axis=axes), tol, f"grad_b {case}")


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_conv_transpose_random_cases_every_isa(isa, rng, nd, dtype, tol):
    for _ in range(6):
        run_tconv_case(rng, nd, random_tconv_case(rng, nd), dtype, tol)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_naive_twin(rng, nd):
    for _ in range(3):
        run_tconv_case(rng, nd, random_tconv_case(rng, nd), np.float64, 1e-12, algo="ref")


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_is_the_adjoint_of_conv(rng, nd):
    # <conv(x), y> == <x, conv_transpose(y)> with the same weight, stride, padding, dilation.
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    for _ in range(4):
        case = random_tconv_case(rng, nd)
        st, dil, g = case["stride"], case["dilation"], case["groups"]
        y = rng.standard_normal(case["x"])                   # transposed input = conv output
        w = rng.standard_normal((case["x"][1],) + case["w_tail"])
        t = TCONV[nd][0](y, w, stride=st, padding=case["padding"], dilation=dil, groups=g,
                         output_padding=case["output_padding"])
        x = rng.standard_normal(t.shape)                     # conv input
        cx = conv(x, w, stride=st, padding=case["pad"], dilation=dil, groups=g)
        assert cx.shape == y.shape
        lhs, rhs = float(np.sum(cx * y)), float(np.sum(x * t))
        assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs, case)


# ---- conv3d Winograd: (KD, 3, 3) kernels, any depth stride / dilation, dilated planes -----------

def _winograd3d_case(rng, backward):
    """backward: unit stride and padding <= dilation·(k−1) on every axis (the backward-data runs
    the forward on dy); otherwise depth strides up to 3 and depth pads past the kernel (windows
    entirely in the padding: bias-only slices)."""
    g = int(rng.choice([1, 1, 2]))
    cg, kg, kd = int(rng.integers(1, 7)), int(rng.integers(1, 9)), int(rng.integers(1, 4))
    dil = _ints(rng, 1, 3, 3)
    st = (1 if backward else int(rng.integers(1, 4)), 1, 1)
    size = (int(rng.integers(1, 7)) + dil[0] * (kd - 1),) + tuple(
        int(rng.integers(2 * d + 1, 14 + 2 * d)) for d in dil[1:])
    lim = [dil[0] * (kd - 1)] * 2 + [2 * dil[1]] * 2 + [2 * dil[2]] * 2
    pad = tuple(int(rng.integers(0, m + 1 if backward else m + 3)) for m in lim)
    return dict(x=(int(rng.integers(1, 3)), cg * g) + size, w=(kg * g, cg, kd, 3, 3), stride=st,
                padding=pad, pad=pad, dilation=dil, groups=g)


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-4), (np.float64, 1e-12)])
def test_conv3d_winograd_random_cases(isa, rng, dtype, tol, algo):
    for _ in range(6):
        run_conv_case(rng, 3, _winograd3d_case(rng, backward=True), dtype, tol, algo=algo)
    for _ in range(6):  # forward only: strided depth, pads beyond the kernel
        case = _winograd3d_case(rng, backward=False)
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = rng.standard_normal(case["w"]).astype(dtype)
        b = rng.standard_normal(case["w"][0]).astype(dtype)
        y = F.conv3d(x, w, b, stride=case["stride"], padding=case["padding"],
                     dilation=case["dilation"], groups=case["groups"], algo=algo)
        assert_close(y, ref.conv(x, w, b, stride=case["stride"], pad=case["pad"],
                                 dilation=case["dilation"], groups=case["groups"]),
                     tol, f"forward {case}")


def test_conv3d_winograd_under_auto(rng):
    # the benchmark's layer shape, scaled down: 'auto' picks Winograd forward and backward-data
    case = dict(x=(2, 32, 4, 14, 13), w=(32, 32, 3, 3, 3), stride=(1, 1, 1), padding=1,
                pad=(1,) * 6, dilation=(1, 1, 1), groups=1)
    run_conv_case(rng, 3, case, np.float32, 1e-4)
    # two workspace blocks per image (1M elements: a ring of 6 slices of 64 channels, 15-tile rows)
    case = dict(x=(1, 64, 4, 30, 29), w=(64, 64, 3, 3, 3), stride=(1, 1, 1), padding=1,
                pad=(1,) * 6, dilation=(1, 1, 1), groups=1)
    run_conv_case(rng, 3, case, np.float32, 1e-4, algo="winograd")


def test_conv3d_winograd_rejects_other_shapes():
    x = np.ones((1, 2, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="winograd"):
        F.conv3d(x, np.ones((2, 2, 3, 5, 3), np.float32), algo="winograd")
    with pytest.raises(ValueError, match="winograd"):
        F.conv3d(x, np.ones((2, 2, 3, 3, 3), np.float32), stride=(1, 2, 1), algo="winograd")
    w = np.ones((2, 2, 3, 3, 3), np.float32)
    y = F.conv3d(x, w, stride=(2, 1, 1), padding=1, algo="winograd")  # the forward applies
    with pytest.raises(ValueError, match="winograd"):
        F.conv3d_backward(y, x, w, stride=(2, 1, 1), padding=1, algo="winograd")


# ---- gradients by float64 finite differences ------------------------------------------------------

@pytest.mark.parametrize("nd,cfg", [
    (1, dict(stride=2, padding="same", dilation=1, groups=2)),
    (1, dict(stride=1, padding="full", dilation=2, groups=1)),
    (3, dict(stride=(1, 2, 1), padding=(1, 0, 0, 1, 2, 1), dilation=(1, 1, 2), groups=2)),
    (3, dict(stride=2, padding="same", dilation=1, groups=1)),
    (3, dict(stride=1, padding=(1, 0, 2, 1, 0, 3), dilation=(1, 1, 2), groups=2,
             algo="winograd_f2")),
    (3, dict(stride=(1, 1, 1), padding=(0, 2, 1, 1, 2, 0), dilation=(2, 1, 1), groups=1,
             algo="winograd_f4")),
])
def test_conv_gradients_finite_differences(isa, rng, nd, cfg):
    fwd, bwd = CONV[nd]
    x = rng.standard_normal((2, 4) + ((11,) if nd == 1 else (4, 5, 6)))
    kernel = (3,) if nd == 1 else (2, 3, 3) if "winograd" in cfg.get("algo", "") else (2, 3, 2)
    w = rng.standard_normal((6, 4 // cfg["groups"]) + kernel)
    b = rng.standard_normal(6)
    g = rng.standard_normal(fwd(x, w, b, **cfg).shape)
    directional_fd(lambda a: float(np.sum(fwd(*a, **cfg) * g)), [x, w, b],
                   bwd(g, x, w, b, **cfg), rng)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_gradients_finite_differences(isa, rng, nd):
    fwd, bwd = TCONV[nd]
    cfg = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=(1,) * (nd - 1) + (2,))
    x = rng.standard_normal((2, 4) + (4, 3, 5)[:nd])
    w = rng.standard_normal((4, 3) + (3, 2, 3)[:nd])
    b = rng.standard_normal(6)
    g = rng.standard_normal(fwd(x, w, b, **cfg).shape)
    directional_fd(lambda a: float(np.sum(fwd(*a, **cfg) * g)), [x, w, b],
                   bwd(g, x, w, b, **cfg), rng)


def test_needs_input_grad(rng):
    x = rng.standard_normal((2, 4, 5, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 2, 3, 3, 3)).astype(np.float32)
    y = F.conv_transpose3d(x, w, stride=2)
    gx, gw, gb = F.conv_transpose3d_backward(np.ones_like(y), x, w, stride=2,
                                             needs_input_grad=(False, True, True))
    assert gx is None and gb is None and gw.shape == w.shape
    gx, gw, gb = F.conv3d_backward(rng.standard_normal((2, 4, 3, 3, 3)).astype(np.float32), x,
                                   np.ones((4, 4, 3, 3, 3), np.float32), np.ones(4, np.float32),
                                   needs_input_grad=(True, False, True))
    assert gw is None and gx.shape == x.shape and gb.shape == (4,)


def test_thread_count_invariance(rng):
    x = rng.standard_normal((3, 8, 6, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((3, 8, 6, 10, 10)).astype(np.float32)
    before = cnnfast.get_num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            cnnfast.set_num_threads(n)
            out.append((F.conv3d(x, w, padding=1),) + F.conv3d_backward(gy, x, w, padding=1)[:2]
                       + (F.conv_transpose3d(gy, w, padding=1),))
    finally:
        cnnfast.set_num_threads(before)
    for other in out[1:]:
        np.testing.assert_array_equal(other[0], out[0][0])
        np.testing.assert_array_equal(other[1], out[0][1])
        assert_close(other[2], out[0][2], 1e-6)
        np.testing.assert_array_equal(other[3], out[0][3])


@pytest.mark.parametrize("algo", ["auto", "gemm", "implicit", "ref", "winograd", "winograd_f2",
                                  "winograd_f4"])
def test_empty_batch(rng, algo):
    x = np.empty((0, 3, 4, 4, 4), np.float32)
    w = rng.standard_normal((2, 3, 3, 3, 3)).astype(np.float32)
    y = F.conv3d(x, w, padding=1, algo=algo)
    assert y.shape == (0, 2, 4, 4, 4)
    gx, gw, gb = F.conv3d_backward(y, x, w, np.ones(2, np.float32), padding=1, algo=algo)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)
    xt = np.empty((0, 2, 5, 5), np.float32)  # the transposed conv: conv2d's backward-data
    assert F.conv_transpose2d(xt, w[:, :, 0], stride=1, padding=1).shape == (0, 3, 5, 5)


# ---- PyTorch agreement (optional reference) ------------------------------------------------------

def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    for nd in (1, 3):
        x = rng.standard_normal((2, 4) + (9, 7, 8)[:nd] if nd == 3 else (2, 4, 23))
        w = rng.standard_normal((6, 2) + ((3, 2, 3) if nd == 3 else (5,)))
        b = rng.standard_normal(6)
        kw = dict(stride=2, padding=1, dilation=(1,) * (nd - 1) + (2,), groups=2)
        want = getattr(tf, f"conv{nd}d")(*map(torch.from_numpy, (x, w, b)), **kw).numpy()
        assert_close(CONV[nd][0](x, w, b, **kw), want, 1e-12, f"conv{nd}d")
    for nd in (1, 2, 3):
        x = torch.from_numpy(rng.standard_normal((2, 4) + (5, 4, 6)[:nd])).requires_grad_()
        w = torch.from_numpy(rng.standard_normal((4, 3) + (4, 3, 2)[:nd])).requires_grad_()
        b = torch.from_numpy(rng.standard_normal(6)).requires_grad_()
        kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
        y = getattr(tf, f"conv_transpose{nd}d")(x, w, b, **kw)
        g = torch.from_numpy(rng.standard_normal(tuple(y.shape)))
        y.backward(g)
        args = (x.detach().numpy(), w.detach().numpy(), b.detach().numpy())
        assert_close(TCONV[nd][0](*args, **kw), y.detach().numpy(), 1e-12, f"tconv{nd}d")
        for got, want in zip(TCONV[nd][1](g.numpy(), *args, **kw), (x.grad, w.grad, b.grad)):
            assert_close(got, want.numpy(), 1e-12, f"tconv{nd}d grad")
