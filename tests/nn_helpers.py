"""Test helpers for cnnfast.nn: float64 finite-difference checks of a Module's input and
parameter gradients, and a forward+backward comparison against the same torch.nn module."""
from __future__ import annotations

import numpy as np

from helpers import assert_close, directional_fd


def seed_layer_init(rng):
    """Autouse-fixture body: seeds cnnfast.init's and (if imported) torch's generators from the
    test's rng, so layer weights too are reproducible from CNNFAST_TEST_SEED."""
    import sys
    from cnnfast import init
    init.seed(int(rng.integers(1 << 62)))
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(int(rng.integers(1 << 62)))
    yield


def check_module_grads(m, x, rng, eps=1e-5, tol=1e-7, extra=None):
    """Checks m.backward's input gradient and every accumulated parameter gradient against
    central differences of <m(x), g> (float64). extra(m) may reset state (e.g. dropout rng)."""
    m.to(np.float64)
    x = np.asarray(x, np.float64)
    run = (lambda a: (extra(m), m(a))[1]) if extra else m
    y = run(x)
    g = rng.standard_normal(y.shape)
    m.zero_grad()
    gx = m.backward(g)
    grads = [(p, p.grad.copy()) for p in m.parameters()]
    assert all(np.any(pg != 0) for _, pg in grads), "a parameter got no gradient"
    directional_fd(lambda a: float(np.sum(run(a[0]) * g)), [x], [gx], rng, eps, tol)
    for p, pg in grads:
        orig = p.data.copy()

        def f(a, p=p):
            p.data[...] = a[0]
            return float(np.sum(run(x) * g))
        directional_fd(f, [orig], [pg], rng, eps, tol)
        p.data[...] = orig
    return gx


def torch_state(tm):
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


def compare_with_torch(ours, theirs, x, rng, tol=1e-10, train=True):
    """Loads theirs' state into ours (float64 both), then compares the outputs, the input
    gradient, every parameter gradient (by torch name) and the buffers after the step."""
    import torch
    theirs = theirs.double().train(train)
    ours.to(np.float64).train(train)
    sd = torch_state(theirs)
    assert list(ours.state_dict().keys()) == list(sd.keys()), "state_dict keys differ from torch"
    ours.load_state_dict(sd)
    x = np.asarray(x, np.float64)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours(x)
    assert_close(y, yt.detach().numpy(), tol, f"{type(ours).__name__} forward")
    g = rng.standard_normal(y.shape)
    theirs.zero_grad()
    yt.backward(torch.tensor(g))
    ours.zero_grad()
    gx = ours.backward(g)
    assert_close(gx, xt.grad.numpy(), tol, f"{type(ours).__name__} grad_input")
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tp[name].grad.numpy(), tol, f"grad {name}")
    for name, b in ours.named_buffers():
        assert_close(b, theirs.state_dict()[name].numpy(), tol, f"buffer {name}")
