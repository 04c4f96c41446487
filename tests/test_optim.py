"""cnnfast.optim: SGD / Adam / AdamW steps against hand-computed updates (NumPy) and, where
installed, torch.optim; gradient clipping; schedulers; bad arguments."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cnnfast import nn, optim

from helpers import assert_close


def _params(rng, dtype=np.float64, shapes=((3, 4), (5,), (2, 3, 3, 3))):
    ps = [nn.Parameter(rng.standard_normal(s).astype(dtype)) for s in shapes]
    return ps


def _grads(rng, ps, steps):
    return [[rng.standard_normal(p.shape).astype(p.dtype) for p in ps] for _ in range(steps)]


def _run(opt, ps, grads):
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad[...] = g
        opt.step()


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.9, 0.0, False, 1e-2), (0.9, 0.0, True, 1e-2), (0.5, 0.3, False, 0)])
def test_sgd_hand_computed(rng, momentum, dampening, nesterov, wd):
    ps = _params(rng)
    p0 = [p.data.copy() for p in ps]
    grads = _grads(rng, ps, 3)
    _run(optim.SGD(ps, lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov,
                   weight_decay=wd), ps, grads)
    for i, want in enumerate(p0):
        buf = None
        for gs in grads:
            d = gs[i] + wd * want
            if momentum:
                buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
                d = d + momentum * buf if nesterov else buf
            want = want - 0.1 * d
        assert_close(ps[i].data, want, 1e-14, f"sgd param {i}")


@pytest.mark.parametrize("cls,wd,amsgrad", [(optim.Adam, 0.0, False), (optim.Adam, 0.1, True),
                                            (optim.AdamW, 0.1, False), (optim.AdamW, 0.0, True)])
def test_adam_hand_computed(rng, cls, wd, amsgrad):
    ps = _params(rng)
    p0 = [p.data.copy() for p in ps]
    grads = _grads(rng, ps, 4)
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
    _run(cls(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad), ps, grads)
    for i, p in enumerate(p0):
        m = v = vmax = 0
        for t, gs in enumerate(grads, 1):
            g = gs[i]
            if cls is optim.AdamW:
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vmax = np.maximum(vmax, v)
            vv = vmax if amsgrad else v
            p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)
        assert_close(ps[i].data, p, 1e-13, f"{cls.__name__} param {i}")


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True,
                                                  weight_decay=1e-3)),
                                     ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1)),
                                     ("Adam", dict(lr=1e-2, weight_decay=1e-2)),
                                     ("AdamW", dict(lr=1e-2, betas=(0.85, 0.99), amsgrad=True))])
def test_steps_match_torch_optim(rng, name, kw):
    torch = pytest.importorskip("torch")
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-6)):
        ps = _params(rng, dtype)
        tps = [torch.tensor(p.data.copy(), requires_grad=True) for p in ps]
        grads = _grads(rng, ps, 5)
        ours, theirs = getattr(optim, name)(ps, **kw), getattr(torch.optim, name)(tps, **kw)
        for gs in grads:
            for p, tp, g in zip(ps, tps, gs):
                p.grad[...] = g
                tp.grad = torch.tensor(g)
            ours.step()
            theirs.step()
        for p, tp in zip(ps, tps):
            assert_close(p.data, tp.detach().numpy(), tol, f"{name} {dtype.__name__}")


def test_param_groups_and_zero_grad(rng):
    a, b = _params(rng, shapes=((3,), (2,)))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a0, b0 = a.data.copy(), b.data.copy()
    a.grad[...] = 1
    b.grad[...] = 1
    opt.step()
    assert_close(a.data, a0 - 0.1, 1e-15, "group 0")
    assert_close(b.data, b0 - 0.5, 1e-15, "group 1")
    opt.zero_grad()
    assert not a.grad.any() and not b.grad.any()


def test_clip_grad_norm_and_value(rng):
    ps = _params(rng)
    for p in ps:
        p.grad[...] = rng.standard_normal(p.shape) * 3
    flat = np.concatenate([p.grad.ravel() for p in ps])
    total = optim.clip_grad_norm_(ps, 1.0)
    assert abs(total - np.linalg.norm(flat)) < 1e-10
    after = np.linalg.norm(np.concatenate([p.grad.ravel() for p in ps]))
    assert abs(after - 1.0) < 1e-5
    assert optim.clip_grad_norm_(ps, 10.0) == pytest.approx(after)  # no-op below the max
    optim.clip_grad_value_(ps, 0.01)
    assert max(np.abs(p.grad).max() for p in ps) <= 0.01


def test_schedulers(rng):
    p = _params(rng, shapes=((2,),))
    cases = [
        (lambda o: optim.StepLR(o, 3, 0.5), lambda e: 0.5 ** (e // 3)),
        (lambda o: optim.MultiStepLR(o, [2, 5], 0.1), lambda e: 0.1 ** ((e >= 2) + (e >= 5))),
        (lambda o: optim.CosineAnnealingLR(o, 10, 0.01),
         lambda e: 0.01 + 0.99 * (1 + math.cos(math.pi * e / 10)) / 2),
        (lambda o: optim.LinearLR(o, 0.25, 1.0, 4), lambda e: 0.25 + 0.75 * min(e, 4) / 4),
    ]
    for make, want in cases:
        opt = optim.SGD(p, lr=1.0)
        sched = make(opt)
        for e in range(8):
            assert sched.get_last_lr()[0] == pytest.approx(want(e), rel=1e-12), (make, e)
            opt.step()
            sched.step()


def test_schedulers_match_torch(rng):
    torch = pytest.importorskip("torch")
    for ours_make, theirs_make in (
            (lambda o: optim.CosineAnnealingLR(o, 7, 0.001),
             lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 0.001)),
            (lambda o: optim.LinearLR(o, 0.1, 1.0, 5),
             lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 5)),
            (lambda o: optim.MultiStepLR(o, [2, 4], 0.3),
             lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 4], 0.3))):
        ours = ours_make(optim.SGD(_params(rng, shapes=((1,),)), lr=0.2))
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
        theirs = theirs_make(topt)
        for _ in range(7):
            assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-9)
            topt.step()
            theirs.step()
            ours.step()


def test_chained_schedulers_and_a_changed_lr_match_torch(rng):
    torch = pytest.importorskip("torch")
    ours_opt = optim.SGD(_params(rng, shapes=((1,),)), lr=0.1)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ours = [optim.LinearLR(ours_opt, 0.1, 1.0, 3), optim.StepLR(ours_opt, 2, 0.5)]
    theirs = [torch.optim.lr_scheduler.LinearLR(topt, 0.1, 1.0, 3),
              torch.optim.lr_scheduler.StepLR(topt, 2, 0.5)]
    for _ in range(7):  # a warm-up then steps: the factors multiply (0.01, 0.04, 0.035, ...)
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"],
                                                               rel=1e-12)
        topt.step()
        for s in theirs + ours:
            s.step()
    # an lr changed before the first scheduler is made is the one it schedules
    o = optim.SGD(_params(rng, shapes=((1,),)), lr=0.1)
    o.param_groups[0]["lr"] = 0.01
    optim.StepLR(o, 1, 0.5).step()
    assert o.param_groups[0]["lr"] == pytest.approx(0.005)
    # a scheduler that is dropped stops counting
    o = optim.SGD(_params(rng, shapes=((1,),)), lr=0.1)
    optim.LinearLR(o, 0.1, 1.0, 3)  # not kept
    s = optim.StepLR(o, 2, 0.5)
    s.step()
    s.step()
    assert o.param_groups[0]["lr"] == pytest.approx(0.05)


def test_optimizer_bad_arguments(rng):
    ps = _params(rng)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(ps, lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(ps, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(ps, betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="Parameter"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):  # torch refuses it too
        optim.SGD([{"params": ps[:1]}, {"params": ps[:1], "lr": 1.0}], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.Adam([ps[0], ps[0]])


def test_optimizer_and_scheduler_state_dict_roundtrip_through_checkpoint(rng, tmp_path):
    from cnnfast.checkpoint import load_checkpoint, save_checkpoint

    def make():
        m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        return m
    for cls, kw in ((optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, dict(lr=0.01)),
                    (optim.AdamW, dict(lr=0.01, amsgrad=True))):
        a = make()
        b = make()
        b.load_state_dict(a.state_dict())
        oa, ob = cls(a.parameters(), **kw), cls(b.parameters(), **kw)
        sa = optim.StepLR(oa, step_size=1, gamma=0.5)
        x = rng.standard_normal((5, 4))
        a.to(np.float64), b.to(np.float64)
        for _ in range(2):  # build up state in a
            oa.zero_grad(); a.backward(np.ones_like(a(x))); oa.step(); sa.step()
        path = tmp_path / "opt.npz"
        save_checkpoint(path, {"opt": oa.state_dict(), "sched": sa.state_dict(),
                               "model": a.state_dict()})
        st = load_checkpoint(path)
        b.load_state_dict(st["model"])
        ob.load_state_dict(st["opt"])
        sb = optim.StepLR(ob, step_size=1, gamma=0.5)
        sb.load_state_dict(st["sched"])
        assert ob.param_groups[0]["lr"] == oa.param_groups[0]["lr"] == sb.get_last_lr()[0]
        for m, o in ((a, oa), (b, ob)):  # one more identical step on both
            o.zero_grad(); m.backward(np.ones_like(m(x))); o.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(pa.data, pb.data)
        with pytest.raises(ValueError, match="parameter groups"):
            cls(list(make().parameters())[:2], **kw).load_state_dict(oa.state_dict())
    # another optimizer type's state is refused, not half taken (Adam stepping at SGD's lr)
    ps = list(make().parameters())
    sgd = optim.SGD(ps, lr=0.1, momentum=0.9)
    adam = optim.Adam(ps, lr=1e-3)
    with pytest.raises(ValueError, match="saved by another optimizer type"):
        adam.load_state_dict(sgd.state_dict())
    assert adam.param_groups[0]["lr"] == 1e-3 and "momentum" not in adam.param_groups[0]
    with pytest.raises(ValueError, match="no 'state' or 'param_groups' entry"):
        adam.load_state_dict({})
    with pytest.raises(TypeError, match="expected a mapping"):
        adam.load_state_dict([1, 2])
