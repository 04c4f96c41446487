"""The layer API on the GPU (issue 9): Module.to('cuda'), module forward/backward, optimizer
steps, fit/evaluate/predict(device='cuda') against the same on the CPU, the device dropout, the
DeviceArray sums and the device accuracy count. These need a CUDA device; the host-side half
(errors without a device, the device path's Python logic on a host stand-in for the kernels)
is tests/test_cuda_layers_host.py."""
from __future__ import annotations

import numpy as np
import pytest

from cnnfast import cuda, nn, optim
from cnnfast.cuda._ops_layers import count_correct
from cnnfast.models import lenet5, resnet18
from cnnfast.train import evaluate, fit, predict

from cuda_helpers import f32, requires_gpu
from helpers import rel_err

pytestmark = requires_gpu
TOL = 1e-4  # float32 sums in other orders than the CPU's, through a few layers


def vgg_style(dropout=0.0):
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(32, 10))


NETS = {  # name: (builder, input shape (C, H, W))
    "lenet5": (lenet5, (1, 28, 28)),
    "vgg_style": (vgg_style, (3, 16, 16)),
    "resnet_style": (lambda: resnet18(num_classes=10, in_channels=3, width=4), (3, 16, 16)),
    "transposed": (lambda: nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2), nn.ReLU(),
                                         nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(4, 10)),
                   (3, 6, 6)),
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(),
                                     nn.Linear(20, 10)), (2, 12)),
}


def twins(name):
    """The same initial weights on the CPU and on the GPU."""
    build, shape = NETS[name]
    cpu = build()
    gpu = build()
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda"), shape


def assert_close(got, want, tol=TOL, what=""):
    """Relative error, against an absolute floor of 1e-3 per sqrt(element): a gradient that
    cancels to rounding noise (a conv bias under batch norm: exactly 0 in exact arithmetic) has
    no relative accuracy to compare."""
    if isinstance(got, cuda.DeviceArray):
        got = got.to_numpy()
    want = np.asarray(want, np.float64)
    norm = np.linalg.norm(want)
    floor = 1e-3 * np.sqrt(max(want.size, 1))
    err = rel_err(got, want) * (norm if norm > 0 else 1.0) / max(norm, floor)
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol:.0e} (|want| {norm:.1e})"


@pytest.mark.parametrize("name", sorted(NETS))
def test_forward_backward_and_grads_match_cpu(rng, name):
    cpu, gpu, shape = twins(name)
    x = f32(rng, 8, *shape)
    y = rng.integers(0, 10, 8)
    crit_c, crit_g = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
    logits_c, logits_g = cpu(x), gpu(cuda.from_numpy(x))
    assert isinstance(logits_g, cuda.DeviceArray)
    assert_close(logits_g, logits_c, what="logits")
    loss_c, loss_g = crit_c(logits_c, y), crit_g(logits_g, cuda.from_numpy(y))
    assert abs(float(loss_g) - float(loss_c)) <= TOL * abs(float(loss_c))
    for _ in range(2):  # the second backward accumulates onto the first's gradients
        gx_c = cpu.backward(crit_c.backward())
        gx_g = gpu.backward(crit_g.backward())
    assert_close(gx_g, gx_c, what="grad_input")
    grads_c = {k: p.grad for k, p in cpu.named_parameters()}
    for k, p in gpu.named_parameters():
        assert_close(p.grad, grads_c[k], tol=3 * TOL, what=f"{k}.grad")
    sd_c = cpu.state_dict()  # BatchNorm running statistics updated alike
    for k, v in gpu.state_dict().items():
        assert isinstance(v, np.ndarray)
        if v.dtype.kind == "f":
            assert_close(v, sd_c[k], what=k)
        else:
            assert np.array_equal(v, sd_c[k]), k


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    lambda ps: optim.SGD(ps, lr=0.05),
    lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
], ids=["sgd-nesterov", "sgd-plain", "adam-amsgrad", "adamw"])
def test_optimizer_steps_match_cpu(rng, make):
    cpu, gpu, shape = twins("lenet5")
    opt_c, opt_g = make(cpu.parameters()), make(gpu.parameters())
    crit = nn.CrossEntropyLoss()
    for _ in range(3):
        x, y = f32(rng, 16, *shape), rng.integers(0, 10, 16)
        for model, opt, xb, yb in ((cpu, opt_c, x, y),
                                   (gpu, opt_g, cuda.from_numpy(x), cuda.from_numpy(y))):
            opt.zero_grad()
            crit(model(xb), yb)
            model.backward(crit.backward())
            opt.step()
    sd_c = cpu.state_dict()
    for k, v in gpu.state_dict().items():
        assert_close(v, sd_c[k], tol=1e-3, what=k)
    st_c, st_g = opt_c.state_dict(), opt_g.state_dict()  # optimizer state comes back as NumPy
    for i, s in st_g["state"].items():
        for k, v in s.items():
            if isinstance(v, np.ndarray):
                assert_close(v, st_c["state"][i][k], tol=1e-3, what=f"state {i} {k}")


# A ResNet with batch norm over few values amplifies float32 differences from step to step: one
# epoch and looser tolerances there; LeNet-5 stays close over epochs.
@pytest.mark.parametrize("name,epochs,tol", [("lenet5", 2, 1e-3), ("resnet_style", 1, 1e-2)])
def test_fit_epochs_match_cpu_and_the_model_stays_on_the_gpu(rng, name, epochs, tol):
    cpu, gpu, shape = twins(name)
    x = f32(rng, 200, *shape)
    y = rng.integers(0, 10, 200)
    hist = {}
    for dev, model in (("cpu", cpu), ("cuda", gpu)):
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        hist[dev] = fit(model, nn.CrossEntropyLoss(), opt, (x, y), val_data=(x[:64], y[:64]),
                        epochs=epochs, batch_size=32, seed=5, progress=False, device=dev)
    assert gpu.device == "cuda" and cpu.device == "cpu"
    for key in ("loss", "val_loss"):
        assert np.allclose(hist["cuda"][key], hist["cpu"][key], rtol=tol), key
    for key in ("accuracy", "val_accuracy"):  # a near-tie may flip a prediction
        assert np.allclose(hist["cuda"][key], hist["cpu"][key], atol=0.05), key
    sd_c = cpu.state_dict()
    for k, v in gpu.state_dict().items():
        if v.dtype.kind == "f":
            assert_close(v, sd_c[k], tol=2 * tol, what=k)
    r_c = evaluate(cpu, (x, y), nn.CrossEntropyLoss(), batch_size=64)
    r_g = evaluate(gpu, (x, y), nn.CrossEntropyLoss(), batch_size=64)  # device: the model's
    assert abs(r_c["loss"] - r_g["loss"]) <= tol * r_c["loss"]
    assert abs(r_c["accuracy"] - r_g["accuracy"]) <= 0.05
    assert_close(predict(gpu, x[:50], batch_size=16), predict(cpu, x[:50]), tol=tol,
                 what="predict")
    gpu.to("cpu")
    assert type(gpu[0].weight.data if name == "lenet5" else gpu.conv1.weight.data) is np.ndarray


@pytest.mark.parametrize("two_d", [False, True])
def test_dropout_on_the_device(rng, two_d):
    p = 0.3
    x = np.abs(f32(rng, 64, 16, 3, 3)) + 0.5
    layer = (nn.Dropout2d if two_d else nn.Dropout)(p, rng=np.random.default_rng(7))
    y = layer(cuda.from_numpy(x)).to_numpy()
    kept = y != 0
    assert np.allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < (0.1 if two_d else 0.03)  # > 6 sigma
    if two_d:  # whole (n, c) planes kept or dropped
        per_plane = kept.reshape(64 * 16, -1)
        assert np.all(per_plane.all(axis=1) | ~per_plane.any(axis=1))
    g = f32(rng, *x.shape)
    gx = layer.backward(cuda.from_numpy(g)).to_numpy()
    assert np.allclose(gx, np.where(kept, g / (1 - p), 0), rtol=1e-6)
    again = (nn.Dropout2d if two_d else nn.Dropout)(p, rng=np.random.default_rng(7))
    assert np.array_equal(again(cuda.from_numpy(x)).to_numpy(), y)  # same rng: same mask
    layer.eval()
    assert np.array_equal(layer(cuda.from_numpy(x)).to_numpy(), x)


def test_device_array_sums_and_the_accuracy_count(rng):
    a, b = f32(rng, 4, 5, 3), f32(rng, 4, 5, 3)
    da, db = cuda.from_numpy(a), cuda.from_numpy(b)
    assert np.allclose((da + db).to_numpy(), a + b)
    before = da.data_ptr
    da += db
    assert da.data_ptr == before and np.allclose(da.to_numpy(), a + b)
    with pytest.raises(ValueError, match=r"shapes \(4, 5, 3\) and \(3,\) differ"):
        da + cuda.from_numpy(b[0, 0])
    logits = f32(rng, 50, 7, 3)
    logits[0, :, 0] = 1.0  # a tie: the first maximum wins
    logits[1, 4, 1] = np.nan  # NaN counts as the maximum
    target = rng.integers(0, 7, (50, 3))
    target[0, 0], target[1, 1] = 0, 4
    count = cuda.zeros((), np.int64)
    for _ in range(2):
        count_correct(count, cuda.from_numpy(logits), cuda.from_numpy(target))
    assert int(count.to_numpy()) == 2 * int(np.sum(np.argmax(logits, axis=1) == target))
