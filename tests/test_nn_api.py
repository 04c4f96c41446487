"""torch.nn / torch.optim API parity that ported code relies on: positional argument orders
(ConvTranspose, Conv padding_mode, MaxPool return_indices/ceil_mode, Dropout inplace), what
return_indices returns, zero_grad(set_to_none) and optimizers skipping parameters without a
gradient, containers (OrderedDict, slices keeping names, ModuleList), Module/Parameter helpers,
ExponentialLR / LambdaLR, and argument checks at construction. Values are stated (torch's), and
compared with torch where it is installed."""
from __future__ import annotations

import importlib.util
from collections import OrderedDict

import numpy as np
import pytest

from cnnfast import nn, optim

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def test_conv_positional_orders_are_torchs(rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    # torch: (in, out, k, stride, padding, output_padding, groups, bias, dilation)
    t = nn.ConvTranspose2d(3, 4, 3, 2, 1, 1)
    assert (t.output_padding, t.dilation) == ((1, 1), (1, 1)) and t(x).shape == (2, 4, 14, 12)
    assert t.stride == (2, 2) and t.padding == (1, 1)  # tuples, as torch stores them
    assert repr(t) == "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), " \
        "output_padding=(1, 1))"
    assert nn.MaxPool2d(2).stride == 2  # torch: stride None means the kernel size
    g = nn.ConvTranspose2d(3, 6, 3, 1, 0, 0, 3)
    assert g.groups == 3 and g.weight.shape == (3, 2, 3, 3)
    # torch: (in, out, k, stride, padding, dilation, groups, bias, padding_mode)
    c = nn.Conv2d(3, 4, 3, 1, 1, 1, 1, True, "reflect")
    assert c.padding_mode == "reflect"
    with pytest.raises(TypeError):  # dtype is keyword-only: a 10th positional is refused
        nn.Conv2d(3, 4, 3, 1, 1, 1, 1, True, "zeros", np.float64)
    for make, msg in ((lambda: nn.Conv2d(3, 4, 3, padding="bogus"), "padding"),
                      (lambda: nn.Conv2d(3, 4, 3, padding=-1), "padding"),
                      (lambda: nn.Conv2d(3, 4, 3, stride=0), "stride"),
                      (lambda: nn.Conv1d(3, 4, 3, dilation=0), "dilation")):
        with pytest.raises(ValueError, match=msg):  # at construction, not the first forward
            make()


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is an optional reference")
def test_conv_transpose_positional_matches_torch(rng):
    import torch
    x = rng.standard_normal((2, 3, 7, 6))
    args = (3, 6, 3, 2, 1, 1, 3, True, 2)
    ours = nn.ConvTranspose2d(*args, dtype=np.float64)
    theirs = torch.nn.ConvTranspose2d(*args).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), atol=1e-12)


def test_max_pool_positional_order_and_return_indices(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    y, sw = nn.MaxPool2d(3, 2, 0, 1, True)(x)  # torch: ..., dilation, return_indices, ceil_mode
    assert y.shape == (2, 3, 3, 3) and sw.indices.shape == y.shape
    assert nn.MaxPool2d(3, 2, 0, 1, False, True)(x).shape == (2, 3, 4, 4)  # ceil_mode
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y, sw = pool(x)
    u = unpool(y, sw)
    assert u.shape == x.shape
    np.testing.assert_array_equal(np.sort(u[u != 0]), np.sort(y[y != 0]))
    ya, swa = nn.AdaptiveMaxPool2d(3, return_indices=True)(x)
    assert ya.shape == (2, 3, 3, 3) and swa.indices.shape == ya.shape
    with pytest.raises(TypeError, match="return_indices"):
        nn.MaxPool2d(2, return_indices="yes")
    if HAVE_TORCH:
        import torch
        ty, ti = torch.nn.MaxPool2d(3, 2, 0, 1, True)(torch.from_numpy(x))
        y, sw = nn.MaxPool2d(3, 2, 0, 1, True)(x)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(sw.indices, ti.numpy())


def test_inplace_flags_are_taken_and_leave_the_input(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    keep = x.copy()
    for layer in (nn.ReLU(inplace=True), nn.LeakyReLU(0.1, True), nn.Dropout(0.5, True),
                  nn.Dropout2d(0.2, False)):
        y = layer(x)
        assert y.shape == x.shape
        np.testing.assert_array_equal(x, keep)
    np.testing.assert_array_equal(nn.ReLU(True)(x), np.maximum(x, 0))
    with pytest.raises(TypeError, match="inplace"):
        nn.ReLU(inplace="no")
    with pytest.raises(TypeError, match="rng"):
        nn.Dropout(0.5, rng=3)
    d = nn.Dropout(0.5, rng=np.random.default_rng(1))
    d2 = nn.Dropout(0.5, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(d(x), d2(x))


@pytest.mark.parametrize("make, moved_twice", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1), (0.89, 0.782)),
    (lambda ps: optim.Adam(ps, lr=0.1), (0.9, 0.8333)),
])
def test_zero_grad_set_to_none_leaves_unused_parameters_alone(make, moved_twice):
    """torch's optimizers skip a None grad; cnnfast keeps that as Parameter.has_grad."""
    for set_to_none, want in ((True, moved_twice[0]), (False, moved_twice[1])):
        p = nn.Parameter(np.ones(1))
        opt = make([p])
        opt.zero_grad(set_to_none)
        p.grad = np.ones(1)  # a backward's gradient
        opt.step()
        opt.zero_grad(set_to_none)
        opt.step()  # no backward since: skipped (None grad), or a step on zeros
        assert abs(float(p.data[0]) - want) < 1e-3, (set_to_none, p.data)
    p = nn.Parameter(np.ones(1))
    assert not p.has_grad  # a new parameter has no gradient (torch: grad is None)
    opt = optim.SGD([p], lr=0.1, weight_decay=0.5)
    opt.step()
    assert p.data[0] == 1.0
    p.grad[...] = 1.0  # reading .grad to write into it counts as a gradient
    opt.step()
    assert p.data[0] < 1.0
    m = nn.Linear(3, 2)
    m.double().float().to("cpu")  # casting and moving are not gradients
    assert not m.weight.has_grad and not m.bias.has_grad
    w = m.weight.data
    assert m.float().weight.data is w  # the same dtype: nothing copied
    m(np.ones((1, 3), np.float32))
    m.zero_grad()
    assert not m.weight.has_grad
    m.backward(np.ones((1, 2), np.float32))  # the in-place GEMM accumulation counts too
    assert m.weight.has_grad and m.bias.has_grad


def test_containers(rng):
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU()).append(lambda v: v)
    seq = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU()),
                                     ("fc", nn.Flatten())]))
    assert list(seq.state_dict()) == ["conv.weight", "conv.bias"]
    tail = nn.Sequential(nn.ReLU(), nn.Conv2d(1, 2, 3), nn.ReLU())[1:]
    assert list(tail.state_dict()) == ["1.weight", "1.bias"]  # torch keeps the names
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2)])
            self.blocks.append(nn.ReLU())

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x
    net = Net()
    assert list(net.state_dict()) == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                                      "blocks.1.bias"]
    assert len(net.blocks) == 3 and net(np.ones((1, 4), np.float32)).shape == (1, 2)
    net.blocks[2] = nn.Identity()
    assert type(net.blocks[2]) is nn.Identity
    with pytest.raises(TypeError, match="not a Module"):
        net.blocks.append(3)
    with pytest.raises(NotImplementedError):
        net.blocks(np.ones(1))


def test_module_and_parameter_helpers():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Conv2d", "BatchNorm2d", "Sequential"]  # children first, as torch
    assert len(list(m.buffers())) == 3
    m.add_module("head", nn.ReLU())
    assert "head" in dict(m.named_children())
    with pytest.raises(TypeError):
        m.add_module("bad", 3)
    assert m.double()[0].weight.dtype == np.float64 and m.float()[0].weight.dtype == np.float32
    w = m[0].weight
    assert w.numel() == 18 and w.ndim == 4 and w.size() == (2, 1, 3, 3) and w.size(1) == 1
    assert sum(p.numel() for p in m.parameters()) == 18 + 2 + 2 + 2


def test_loss_weights_may_be_lists():
    x = np.array([[1.0, 2.0, 0.5]], np.float32)
    t = np.array([1])
    a = nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])(x, t)
    b = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0], np.float32))(x, t)
    assert a == pytest.approx(b)
    with pytest.raises(TypeError, match="weight: expected an array of numbers"):
        nn.CrossEntropyLoss(weight=["a", "b"])
    assert nn.BCEWithLogitsLoss(pos_weight=[2.0])(x, np.ones_like(x)) > 0


def test_schedulers_exponential_lambda_and_checks():
    def lrs(make, steps=5):
        p = nn.Parameter(np.ones(1))
        opt = optim.SGD([p], lr=0.1)
        s = make(opt)
        out = []
        for _ in range(steps):
            out.append(s.get_last_lr()[0])
            s.step()
        return out
    np.testing.assert_allclose(lrs(lambda o: optim.ExponentialLR(o, 0.5)),
                               [0.1, 0.05, 0.025, 0.0125, 0.00625])
    np.testing.assert_allclose(lrs(lambda o: optim.LambdaLR(o, lambda e: 1 / (e + 1))),
                               [0.1, 0.05, 0.1 / 3, 0.025, 0.02])
    p, q = nn.Parameter(np.ones(1)), nn.Parameter(np.ones(1))
    opt = optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.1}], lr=0.1)
    s = optim.LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5 ** e])
    s.step()
    assert s.get_last_lr() == [0.1, 0.05]  # one function per group, though the bases are equal
    state = s.state_dict()
    assert "_fns" not in state
    s.load_state_dict(state)
    for make, name in ((lambda o: optim.StepLR(o, 0), "step_size"),
                       (lambda o: optim.CosineAnnealingLR(o, T_max=0), "T_max"),
                       (lambda o: optim.LinearLR(o, total_iters=0), "total_iters")):
        with pytest.raises(ValueError, match=name):
            make(optim.SGD([nn.Parameter(np.ones(1))], lr=0.1))
    if HAVE_TORCH:
        import torch
        tp = torch.nn.Parameter(torch.ones(1))
        topt = torch.optim.SGD([tp], lr=0.1)
        ts = torch.optim.lr_scheduler.ExponentialLR(topt, 0.5)
        want = []
        for _ in range(5):
            want.append(ts.get_last_lr()[0])
            topt.step()
            ts.step()
        np.testing.assert_allclose(lrs(lambda o: optim.ExponentialLR(o, 0.5)), want)


def test_a_refused_batch_norm_batch_is_not_counted():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError):
        bn(np.ones((1, 3), np.float32))  # one value a channel in training
    assert int(bn.num_batches_tracked) == 0
    bn(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    assert int(bn.num_batches_tracked) == 1


def test_a_shared_module_is_traversed_once_and_saved_under_each_name(rng):
    # One layer used at two places (weight tying): named_modules / modules / named_buffers yield
    # it once, under its first name, and the optimizer steps its parameters once; state_dict and
    # load_state_dict keep an entry under each name — torch's behaviour for all of these.
    lin, bn = nn.Linear(3, 3), nn.BatchNorm2d(3)
    model = nn.Sequential(lin, nn.ReLU(), lin, bn, bn)
    assert [n for n, _ in model.named_modules()] == ["", "0", "1", "3"]
    assert [n for n, _ in model.named_modules(remove_duplicate=False)] == \
        ["", "0", "1", "2", "3", "4"]
    assert len(list(model.modules())) == 4
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert [n for n, _ in model.named_buffers()] == \
        ["3.running_mean", "3.running_var", "3.num_batches_tracked"]
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias",
                        "3.running_mean", "3.running_var", "3.num_batches_tracked",
                        "4.weight", "4.bias", "4.running_mean", "4.running_var",
                        "4.num_batches_tracked"]
    model.load_state_dict(sd)
    if importlib.util.find_spec("torch"):
        import torch
        tl, tb = torch.nn.Linear(3, 3), torch.nn.BatchNorm2d(3)
        tm = torch.nn.Sequential(tl, torch.nn.ReLU(), tl, tb, tb)
        assert [n for n, _ in tm.named_modules()] == [n for n, _ in model.named_modules()]
        assert list(tm.state_dict()) == list(sd)
    w0 = lin.weight.data.copy()
    lin.weight.grad = np.ones_like(w0)
    opt = optim.SGD(model.parameters(), lr=0.5)
    opt.step()
    np.testing.assert_allclose(lin.weight.data, w0 - 0.5)  # one step, not two


def test_one_instance_at_two_places_refuses_the_wrong_backward(rng):
    # Forwards save their inputs on the instance, so a second call overwrites the first's: the
    # backward for the first call would use the second call's input (here: a weight gradient
    # off by ~1.6 before this check). It raises instead; one backward per forward, repeated
    # backwards of one forward, and two instances sharing Parameters still work (vs torch).
    x = rng.standard_normal((4, 3)).astype(np.float32)
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    y = model(x)
    with pytest.raises(RuntimeError, match="sharing Parameters"):
        model.backward(np.ones_like(y))

    class Siamese(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Conv2d(1, 2, 3)

        def forward(self, a, b):
            return self.enc(a), self.enc(b)

        def backward(self, ga, gb):
            return self.enc.backward(gb), self.enc.backward(ga)

    s, a = Siamese(), rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    ya, yb = s(a, a + 1)
    with pytest.raises(RuntimeError, match="Conv2d.backward"):
        s.backward(np.ones_like(ya), np.ones_like(yb))

    lin.zero_grad()
    g = np.ones((4, 3), np.float32)
    for _ in range(2):  # forward, backward in turn; then two backwards of one forward
        lin(x)
        lin.backward(g)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, 3 * g.T @ x, rtol=1e-5)

    second = nn.Linear(3, 3)
    second.weight, second.bias = lin.weight, lin.bias  # tied by sharing Parameters
    tied = nn.Sequential(lin, nn.ReLU(), second)
    lin.zero_grad()
    y = tied(x)
    tied.backward(np.ones_like(y))
    if importlib.util.find_spec("torch"):
        import torch
        tl = torch.nn.Linear(3, 3)
        tl.weight.data, tl.bias.data = (torch.from_numpy(p.data.copy()) for p in (lin.weight,
                                                                                   lin.bias))
        tm = torch.nn.Sequential(tl, torch.nn.ReLU(), tl)
        tm(torch.from_numpy(x)).sum().backward()
        np.testing.assert_allclose(lin.weight.grad, tl.weight.grad.numpy(), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(lin.bias.grad, tl.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_flatten_empty_batch_and_bad_dims(rng):
    # numpy cannot infer a -1 dim of an empty array: Flatten raised on a batch of 0, breaking
    # Conv -> Flatten -> Linear on N = 0 (torch gives (0, 48)).
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 5))
    y = model(np.zeros((0, 3, 4, 4), np.float32))
    assert y.shape == (0, 5)
    assert model.backward(np.zeros((0, 5), np.float32)).shape == (0, 3, 4, 4)
    assert nn.Flatten()(np.zeros((0, 3, 4, 4), np.float32)).shape == (0, 48)
    assert nn.Flatten(0, -1)(np.zeros((2, 3), np.float32)).shape == (6,)
    assert nn.Flatten(1, 2)(np.zeros((2, 3, 4, 5), np.float32)).shape == (2, 12, 5)
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        nn.Flatten(2, 1)(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="end_dim 5 is out of range"):
        nn.Flatten(1, 5)(np.zeros((2, 3), np.float32))
