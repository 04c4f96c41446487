"""The layer API's device path, host-side half (no GPU needed): the clear errors without a device,
and the Python logic of Module.to / optimizers / fit(device='cuda') run end to end on
tests/fake_cuda.py, a host stand-in for the kernels (results equal to the CPU's; batches copied
once; the host waits for the device only at epoch ends; ops without a device path raise
TypeError). The kernels themselves: tests/test_cuda_layers.py on a GPU."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import cnnfast.__main__ as cli
import fake_cuda
from cnnfast import _core, cuda, nn, optim
from cnnfast.models import lenet5, resnet18
from cnnfast.train import evaluate, fit, predict

from cuda_helpers import f32

needs_no_device = pytest.mark.skipif(
    cuda.is_available(), reason="a CUDA device is present: the GPU tests cover this")


@pytest.fixture
def fake(monkeypatch):
    fake_cuda.install(monkeypatch)


def small_vgg():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.0), nn.Linear(16, 10))


BUILDERS = {"lenet5": lenet5, "vgg_style": small_vgg,
            "resnet_style": lambda: resnet18(num_classes=10, in_channels=1, width=2),
            "transposed": lambda: nn.Sequential(
                nn.ConvTranspose2d(1, 3, 3, stride=2), nn.ReLU(), nn.GlobalAvgPool(),
                nn.Flatten(), nn.Linear(3, 10))}


# ---- without a device ----------------------------------------------------------------------------

@needs_no_device
def test_without_a_device_every_entry_point_names_the_reason(rng, capsys):
    model = lenet5()
    x, y = f32(rng, 4, 1, 28, 28), rng.integers(0, 10, 4)
    why = re.escape(cuda.reason())
    with pytest.raises(RuntimeError, match=f"fit: device='cuda' needs a CUDA device: {why}"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters()), (x, y), device="cuda")
    with pytest.raises(RuntimeError, match=why):
        model.to("cuda")
    with pytest.raises(RuntimeError, match=why):
        evaluate(model, (x, y), device="cuda")
    with pytest.raises(RuntimeError, match=why):
        predict(model, x, device="cuda")
    assert model.device == "cpu" and type(model[0].weight.data) is np.ndarray  # nothing moved
    assert cli.main(["train", "--device", "cuda", "--quiet"]) == 2
    assert f"--device cuda: no CUDA device: {cuda.reason()}" in capsys.readouterr().err


def test_bad_device_names_are_value_errors(rng):
    model = lenet5()
    x, y = f32(rng, 4, 1, 28, 28), rng.integers(0, 10, 4)
    with pytest.raises(ValueError, match=r"fit: device: expected 'cpu' or 'cuda', got 'gpu'"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters()), (x, y), device="gpu")
    model.to("cpu")  # a no-op on the host: the very same arrays
    w = model[0].weight
    data, grad = w.data, w.grad
    model.to("cpu")
    assert w.data is data and w.grad is grad


# ---- the device path's Python logic on the host stand-in ------------------------------------------

@needs_no_device
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fit_on_the_stand_in_matches_the_cpu(fake, rng, name):
    shape = (1, 16, 16) if name != "lenet5" else (1, 28, 28)
    x, y = f32(rng, 150, *shape), rng.integers(0, 10, 150)
    models = {dev: BUILDERS[name]() for dev in ("cpu", "cuda")}
    models["cuda"].load_state_dict(models["cpu"].state_dict())
    hist = {dev: fit(m, nn.CrossEntropyLoss(), optim.SGD(m.parameters(), lr=0.01, momentum=0.9),
                     (x, y), val_data=(x[:40], y[:40]), epochs=2, batch_size=32, seed=2,
                     progress=False, device=dev) for dev, m in models.items()}
    assert models["cuda"].device == "cuda"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert np.allclose(hist["cuda"][key], hist["cpu"][key], rtol=1e-6), key
    sd = models["cpu"].state_dict()
    for k, v in models["cuda"].state_dict().items():
        assert isinstance(v, np.ndarray) and np.allclose(v, sd[k], rtol=1e-6, atol=1e-7), k


@needs_no_device
def test_fit_moves_each_batch_once_and_syncs_only_at_epoch_ends(fake, rng, monkeypatch):
    x, y = f32(rng, 96, 1, 28, 28), rng.integers(0, 10, 96)
    model = lenet5()
    calls = {"from_host": 0, "to_host": 0}
    up, down = _core.cuda_copy_from_host, _core.cuda_copy_to_host

    def count(key, fn):
        def wrapped(*a):
            calls[key] += 1
            return fn(*a)
        return wrapped
    monkeypatch.setattr(_core, "cuda_copy_from_host", count("from_host", up))
    monkeypatch.setattr(_core, "cuda_copy_to_host", count("to_host", down))
    monkeypatch.setattr(inspect.Signature, "bind", lambda *a, **k: pytest.fail(
        "an op bound its signature on the device path"))
    model.to("cuda")
    calls.update(from_host=0, to_host=0)
    fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01), (x, y), epochs=2,
        batch_size=32, seed=0, progress=False, device="cuda")
    assert calls["from_host"] == 2 * 3 * 2  # images + labels, 3 batches, 2 epochs
    assert calls["to_host"] == 2 * 2  # the loss buffer and the correct count, per epoch


@needs_no_device
def test_to_moves_parameters_grads_and_buffers_and_back(fake, rng):
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    model[0].weight.grad[...] = 1.5  # an accumulated gradient survives the moves
    before = model.state_dict()
    assert model.to("cuda") is model and model.device == "cuda"
    assert isinstance(model[0].weight.data, cuda.DeviceArray)
    assert isinstance(model[1].running_mean, cuda.DeviceArray)
    assert type(model[1].num_batches_tracked) is np.ndarray  # integer buffer: host
    assert np.array_equal(model[0].weight.grad.to_numpy(), np.full((3, 1, 3, 3), 1.5))
    after = model.state_dict()
    assert all(type(v) is np.ndarray and np.array_equal(v, before[k]) for k, v in after.items())
    model.zero_grad()  # on the device: dropped, reads as zeros
    assert np.array_equal(model[3].bias.grad.to_numpy(), np.zeros(2, np.float32))
    loaded = {k: v + 1 for k, v in before.items()}
    model.load_state_dict(loaded)  # in place, into device memory
    model.to("cpu")
    assert type(model[0].weight.data) is np.ndarray and type(model[3].weight.grad) is np.ndarray
    for k, v in model.state_dict().items():
        assert np.allclose(v, loaded[k]), k


@needs_no_device
def test_optimizer_state_follows_the_parameters(fake, rng):
    model = lenet5()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    x, y = f32(rng, 8, 1, 28, 28), rng.integers(0, 10, 8)

    def step(xb, yb):
        opt.zero_grad()
        crit(model(xb), yb)
        model.backward(crit.backward())
        opt.step()
    step(x, y)  # state created on the host
    model.to("cuda")
    step(cuda.from_numpy(x), cuda.from_numpy(y))  # moved to the device at the next step
    state = opt.state[id(model[0].weight)]
    assert isinstance(state["exp_avg"], cuda.DeviceArray) and state["step"] == 2
    saved = opt.state_dict()
    assert all(type(v) is np.ndarray for s in saved["state"].values() for v in s.values()
               if not isinstance(v, int))
    model.to("cpu")
    step(x, y)  # and back
    assert type(opt.state[id(model[0].weight)]["exp_avg"]) is np.ndarray


@needs_no_device
def test_ops_without_a_device_path_raise_type_errors(fake, rng):
    x = cuda.from_numpy(f32(rng, 2, 3, 4, 4))
    with pytest.raises(TypeError, match="a CUDA device array, but this op has no CUDA kernel"):
        nn.Tanh()(x)
    with pytest.raises(TypeError, match="Concat: concatenating CUDA device arrays has no"):
        nn.Concat([nn.Identity(), nn.Identity()])(x)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2)).to("cuda")
    with pytest.raises(TypeError, match="clip_grad_norm_: the gradients are CUDA device arrays"):
        optim.clip_grad_norm_(model.parameters(), 1.0)
    with pytest.raises(TypeError, match=r"to\(float64\): the module is on the GPU"):
        model.to(np.float64)
    with pytest.raises(TypeError, match="0.weight: the CUDA kernels take float32, got float64"):
        nn.Sequential(nn.Linear(2, 2, dtype=np.float64)).to("cuda")
    with pytest.raises(TypeError, match=r"linear: mixes CUDA device arrays \(x\) with NumPy "
                                        r"host arrays \(weight, bias\)"):
        nn.Linear(48, 2)(x.reshape(2, 48))  # a host model fed a device batch
    with pytest.raises(TypeError, match=r"\.to_numpy\(\)"):
        x + np.ones((2, 3, 4, 4), np.float32)  # no silent copies to or from the host

@needs_no_device
def test_linear_backward_into_checks_match_the_host_op(fake, rng):
    """grad_weight_into / grad_bias_into on the device path: the host op's errors, not a silent
    None (a bias gradient asked into a layer without bias) or a host array added into."""
    from cnnfast import functional as F
    x, w, g = (cuda.from_numpy(f32(rng, *s)) for s in ((4, 3), (2, 3), (4, 2)))
    gw0 = f32(rng, 2, 3)
    gw_into = cuda.from_numpy(gw0)
    _, gw, gb = F.linear_backward(g, x, w, None, grad_weight_into=gw_into)
    assert gw is gw_into and gb is None
    want = gw0 + g.to_numpy().T @ x.to_numpy()
    np.testing.assert_allclose(gw.to_numpy(), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="grad_bias_into: given but the layer has no bias"):
        F.linear_backward(g, x, w, None, grad_bias_into=cuda.from_numpy(f32(rng, 2)))
    with pytest.raises(TypeError, match=r"mixes CUDA device arrays .* host arrays "
                                        r"\(grad_weight_into\)"):
        F.linear_backward(g, x, w, None, grad_weight_into=f32(rng, 2, 3))
    with pytest.raises(TypeError, match="grad_weight_into: expected a CUDA device array"):
        F.linear_backward(g, x, w, None, grad_weight_into=f32(rng, 2, 3).tolist())
    with pytest.raises(ValueError, match=r"grad_weight_into: expected shape \(2, 3\)"):
        F.linear_backward(g, x, w, None, grad_weight_into=cuda.from_numpy(f32(rng, 3, 2)))


@needs_no_device
def test_only_max_pools_own_switches_skip_the_wait_for_their_window_check(fake, rng):
    """cuda/_ops.py tells the kernels (from_pool) which switches max_pool itself made for the
    very windows in use: those are window-checked without the host waiting. Any other indices —
    the same ones in a new Switches, a bare array, other windows of the same pooled shape — must
    be waited for (cuda.h). Results equal the CPU's either way."""
    import dataclasses

    from cnnfast import functional as F
    xh = f32(rng, 2, 3, 9, 11)
    x = cuda.from_numpy(xh)
    y, sw = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    gy, gu = f32(rng, *y.shape), f32(rng, *xh.shape)
    yh, swh = F.max_pool2d(xh, 3, 2, 1, return_indices=True)
    reads = fake_cuda.SWITCH_READS
    reads.clear()
    np.testing.assert_array_equal(F.max_unpool2d(y, sw).to_numpy(), F.max_unpool2d(yh, swh))
    np.testing.assert_array_equal(F.max_unpool2d_backward(cuda.from_numpy(gu), y, sw).to_numpy(),
                                  F.max_unpool2d_backward(gu, yh, swh))
    np.testing.assert_array_equal(
        F.max_pool2d_backward(cuda.from_numpy(gy), x, 3, 2, 1, indices=sw).to_numpy(),
        F.max_pool2d_backward(gy, xh, 3, 2, 1, indices=swh))
    F.max_pool2d_backward(cuda.from_numpy(gy), x, 3, 2, 1)  # switches made inside the call
    assert reads == [("max_unpool_forward", True), ("max_unpool_backward", True),
                     ("max_pool_backward", True), ("max_pool_backward", True)]
    reads.clear()
    rebuilt = dataclasses.replace(sw)  # the same device indices, not max_pool's Switches
    g = cuda.from_numpy(gy)
    F.max_unpool2d(y, rebuilt)
    F.max_unpool2d(y, sw.indices, 3, 2, 1, output_size=(9, 11))
    F.max_unpool2d_backward(cuda.from_numpy(gu), y, rebuilt)
    F.max_pool2d_backward(g, x, 3, 2, 1, indices=rebuilt)
    F.max_pool2d_backward(g, x, 3, 2, 1, indices=sw.indices)
    F.max_pool2d_backward(g, x, 2, 2, 1, indices=sw)  # pools 9 x 11 to 5 x 6 too
    F.max_pool2d_backward(g, x, 3, 2, 1, ceil_mode=True, indices=sw)  # so does this
    ya, swa = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)  # no windows: not trusted
    F.max_unpool2d(ya, swa)
    F.adaptive_max_pool2d_backward(cuda.from_numpy(f32(rng, *ya.shape)), x, (4, 3), indices=swa)
    assert len(reads) == 9 and not any(from_pool for _, from_pool in reads), reads
