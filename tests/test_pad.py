"""F.pad / F.pad_backward (torch.nn.functional.pad's argument order and four modes) against a
naive per-element index map, the backward as the forward's adjoint, and the conv layers'
padding_mode against the layer convolving an explicitly padded input and against torch.nn."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import nn
from helpers import directional_fd

MODES = ["constant", "reflect", "replicate", "circular"]
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _source_index(j, n, before, mode):
    """The input index that padded position j copies, or None (the constant)."""
    i = j - before
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


def pad_ref(x, pad, mode, value=0.0):
    """Naive: every output element looked up through the per-dim index maps."""
    shape, maps = list(x.shape), [list(range(s)) for s in x.shape]
    for k in range(len(pad) // 2):
        axis, before, after = x.ndim - 1 - k, pad[2 * k], pad[2 * k + 1]
        n = x.shape[axis]
        shape[axis] = n + before + after
        maps[axis] = [_source_index(j, n, before, mode) for j in range(shape[axis])]
    out = np.empty(shape, x.dtype)
    for idx in np.ndindex(*shape):
        src = tuple(m[j] for m, j in zip(maps, idx))
        out[idx] = value if None in src else x[src]
    return out, maps


def pad_backward_ref(g, x, maps):
    """Naive scatter: each padded element adds its gradient to its source element."""
    gx = np.zeros_like(x)
    for idx in np.ndindex(*g.shape):
        src = tuple(m[j] for m, j in zip(maps, idx))
        if None not in src:
            gx[src] += g[idx]
    return gx


def _random_pad(rng, shape, dims, mode):
    pad = []
    for k in range(dims):
        n = shape[-1 - k]
        if mode == "constant":
            pad += [int(v) for v in rng.integers(-(min(n, 2) // 2), 4, 2)]  # crops leave >= 0
        else:
            hi = {"reflect": n - 1, "circular": n, "replicate": 4}[mode]
            pad += [int(v) for v in rng.integers(0, hi + 1, 2)]
    return pad


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_pad_and_its_backward_match_the_index_map(rng, mode, dims, dt):
    for _ in range(4):
        shape = tuple(int(v) for v in rng.integers(1, 6, 2 + dims))
        x = rng.standard_normal(shape).astype(dt)
        pad = _random_pad(rng, shape, dims, mode)
        want, maps = pad_ref(x, pad, mode, value=2.5)
        got = F.pad(x, pad, mode, value=2.5) if mode == "constant" else F.pad(x, pad, mode)
        if mode != "constant":
            want, maps = pad_ref(x, pad, mode)
        assert got.dtype == dt and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=f"{mode} {pad} on {shape}")
        g = rng.standard_normal(want.shape).astype(dt)
        tol = 1e-5 if dt == np.float32 else 1e-12  # a corner sums up to ~60 terms (replicate)
        np.testing.assert_allclose(F.pad_backward(g, x, pad, mode), pad_backward_ref(g, x, maps),
                                   rtol=tol, atol=tol, err_msg=f"{mode} {pad} on {shape}")


@pytest.mark.parametrize("mode", MODES)
def test_pad_backward_is_the_adjoint(rng, mode):
    x = rng.standard_normal((2, 3, 7, 6))
    pad = [2, 3, 1, 4] if mode != "constant" else [2, -1, -3, 4]
    g = rng.standard_normal(F.pad(x, pad, mode).shape)
    lhs = float(np.sum(F.pad(x, pad, mode) * g))
    rhs = float(np.sum(x * F.pad_backward(g, x, pad, mode)))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is an optional reference")
@pytest.mark.parametrize("mode", MODES)
def test_pad_matches_torch(rng, mode):
    import torch
    for pad in ([1, 2], [3, 0, 2, 1], [1, 1, 2, 0, 3, 2]):
        # torch takes non-constant modes on (N, C) + the padded dims only
        x = rng.standard_normal((2, 3, 5, 6, 4)[:2 + len(pad) // 2])
        t = torch.from_numpy(x).requires_grad_()
        ty = torch.nn.functional.pad(t, pad, mode=mode)
        g = rng.standard_normal(ty.shape)
        ty.backward(torch.from_numpy(g))
        np.testing.assert_array_equal(F.pad(x, pad, mode), ty.detach().numpy())
        np.testing.assert_allclose(F.pad_backward(g, x, pad, mode), t.grad.numpy(), atol=1e-12)


def test_pad_errors():
    x = np.zeros((1, 2, 3, 4), np.float32)
    cases = [
        (dict(pad=[1, 1], mode="wrap"), ValueError, "mode: expected one of"),
        (dict(pad=[1]), ValueError, "even number"),
        (dict(pad=[1] * 10), ValueError, "at most 2 per dim"),
        (dict(pad=[1.5, 1]), TypeError, "sequence of ints"),
        (dict(pad="1,1"), TypeError, "sequence of ints"),
        (dict(pad=[4, 0], mode="reflect"), ValueError, "'reflect' needs amounts < the dim"),
        (dict(pad=[0, 0, 0, 4], mode="circular"), ValueError, "'circular' needs amounts <="),
        (dict(pad=[-1, 0], mode="replicate"), ValueError, "amounts >= 0"),
        (dict(pad=[-3, -2]), ValueError, "negative size"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            F.pad(x, **kw)
    with pytest.raises(ValueError, match=r"grad_out: expected shape \(1, 2, 3, 6\)"):
        F.pad_backward(np.zeros((1, 2, 3, 5), np.float32), x, [1, 1])
    with pytest.raises(TypeError, match="dtype"):
        F.pad_backward(np.zeros((1, 2, 3, 6)), x, [1, 1])
    with pytest.raises(ValueError, match="padding_mode: expected one of"):
        nn.Conv2d(2, 3, 3, padding_mode="reflection")
    with pytest.raises(ValueError, match="only padding_mode 'zeros'"):
        nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect")


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("layer,nd,kw", [
    (nn.Conv1d, 1, dict(padding=2, stride=2)),
    (nn.Conv2d, 2, dict(padding=(1, 2), dilation=(2, 1))),
    (nn.Conv2d, 2, dict(padding="same", stride=2)),
    (nn.Conv3d, 3, dict(padding=1)),
])
def test_conv_padding_mode_is_conv_of_the_padded_input(rng, mode, layer, nd, kw):
    size = (7, 6, 5)[:nd]
    x = rng.standard_normal((2, 4) + size)
    m = layer(4, 3, 3, dtype=np.float64, padding_mode=mode, **kw)
    plain = layer(4, 3, 3, dtype=np.float64, **{**kw, "padding": 0})
    plain.load_state_dict(m.state_dict())
    pads = m._pads(size)
    y = m(x)
    np.testing.assert_allclose(y, plain(F.pad(x, pads, mode)), rtol=1e-12, atol=1e-12)
    assert f"padding_mode={mode}" in repr(m)  # torch's repr
    g = rng.standard_normal(y.shape)
    m.zero_grad()
    gx = m.backward(g)
    gw = m.weight.grad.copy()

    def loss(args):
        m2 = layer(4, 3, 3, dtype=np.float64, padding_mode=mode, **kw)
        m2.load_state_dict({**m.state_dict(), "weight": args[1]})
        return float(np.sum(m2(args[0]) * g))
    directional_fd(loss, [x, m.weight.data.copy()], [gx, gw], rng, eps=1e-4, tol=1e-6)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is an optional reference")
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_mode_matches_torch(rng, mode):
    import torch
    x = rng.standard_normal((2, 3, 9, 8))
    m = nn.Conv2d(3, 5, (3, 5), padding=(1, 2), stride=(2, 1), dtype=np.float64,
                  padding_mode=mode)
    t = torch.nn.Conv2d(3, 5, (3, 5), padding=(1, 2), stride=(2, 1), padding_mode=mode).double()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    tx = torch.from_numpy(x).requires_grad_()
    ty = t(tx)
    g = rng.standard_normal(ty.shape)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(m(x), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    m.zero_grad()
    np.testing.assert_allclose(m.backward(g), tx.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m.weight.grad, t.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
