"""Sequential's Conv2d+ReLU fusion (the ReLU runs as the conv's epilogue) and skipping the input
gradient of the first layer (set_needs_input_grad): same outputs and parameter gradients as the
plain layer-by-layer chain, in float64."""
from __future__ import annotations

import numpy as np
import pytest

from cnnfast import init, nn
from cnnfast.train import fit


def _model(seed):
    init.seed(seed)
    return nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(5, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 3),
                         nn.ReLU(), nn.Linear(3, 2)).to(np.float64)


def _layer_by_layer(model, x, g):
    """Forward and backward calling each module in turn (no fusion)."""
    h = x
    for m in model:
        h = m(h)
    y = h
    for m in reversed(list(model)):
        g = m.backward(g)
    return y, g


def test_fused_chain_matches_layer_by_layer(rng):
    seed = int(rng.integers(1 << 30))
    x = rng.standard_normal((3, 2, 8, 8))
    fused, plain = _model(seed), _model(seed)
    y = fused(x)
    assert 0 in fused._fused and 3 in fused._fused  # both conv+relu pairs ran fused
    g = rng.standard_normal(y.shape)
    gx = fused.backward(g)
    y_ref, gx_ref = _layer_by_layer(plain, x, g)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)
    for (name, p), (_, q) in zip(fused.named_parameters(), plain.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-12, err_msg=name)


def test_instrumented_forward_is_not_fused(rng):
    model = _model(int(rng.integers(1 << 30)))
    calls = []
    relu = model[1]
    object.__setattr__(relu, "forward", lambda h: calls.append(1) or nn.ReLU.forward(relu, h))
    model(rng.standard_normal((1, 2, 8, 8)))
    assert calls == [1] and 0 not in model._fused


def test_skipping_the_input_gradient(rng):
    seed = int(rng.integers(1 << 30))
    x = rng.standard_normal((2, 2, 8, 8))
    a, b = _model(seed), _model(seed)
    a.set_needs_input_grad(False)
    assert not a.needs_input_grad and not a[0].needs_input_grad and a[3].needs_input_grad
    g = rng.standard_normal(a(x).shape)
    b(x)
    assert a.backward(g) is None
    assert b.backward(g).shape == x.shape
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
    # a lone Linear honours it too
    lin = nn.Linear(4, 3).to(np.float64).set_needs_input_grad(False)
    lin(rng.standard_normal((5, 4)))
    assert lin.backward(rng.standard_normal((5, 3))) is None


def test_fit_restores_the_flag(rng):
    model = _model(int(rng.integers(1 << 30))).to(np.float32)
    x = rng.standard_normal((16, 2, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, 16)
    from cnnfast import optim
    fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=1,
        batch_size=8, progress=False, seed=0)
    assert model.needs_input_grad and model[0].needs_input_grad


@pytest.mark.parametrize("kind", ["residual", "concat"])
def test_skipping_the_input_gradient_through_branches(rng, kind):
    """Residual and Concat hand the flag to every path that sees their input: each first conv
    skips its dx pass, backward returns None, parameter gradients are unchanged."""
    def build(seed):
        r = np.random.default_rng(seed)

        def conv():
            c = nn.Conv2d(3, 3, 3, padding=1).to(np.float64)
            c.weight.data[...] = r.standard_normal(c.weight.shape)
            c.bias.data[...] = r.standard_normal(c.bias.shape)
            return c
        if kind == "residual":
            return nn.Residual(nn.Sequential(conv(), nn.ReLU(), conv()), shortcut=conv())
        # a branch whose first layer still returns a gradient (MaxPool) beside conv branches
        return nn.Concat([conv(), nn.Sequential(nn.MaxPool2d(3, 1, 1), conv()), nn.Identity()])
    seed = int(rng.integers(1 << 30))
    a, b = build(seed), build(seed)
    a.set_needs_input_grad(False)
    x = rng.standard_normal((2, 3, 6, 7))
    g = rng.standard_normal(a(x).shape)
    b(x)
    assert a.backward(g) is None
    assert b.backward(g).shape == x.shape
    firsts = ([a.block[0], a.shortcut] if kind == "residual"
              else [getattr(a, "0"), getattr(a, "1")[0]])
    assert all(not m.needs_input_grad for m in firsts)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)
