"""CUDA batch norm, softmax cross-entropy and SGD / Adam against the CPU ops; DeviceArray
transfers; a failing CUDA call names itself; zero-copy interop with PyTorch CUDA tensors (CUDA
array interface and DLPack, both directions). Runs only where a CUDA device exists."""
from __future__ import annotations

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core, cuda

from cuda_helpers import close, dev, f32, host, requires_gpu

pytestmark = requires_gpu


def test_device_array_transfers_views_and_dtypes(rng):
    for dt in (np.float32, np.float64, np.int64, np.int32, np.uint8, np.bool_):
        a = (rng.standard_normal((3, 4, 5)) * 10).astype(dt)
        d = cuda.from_numpy(a[:, ::2])  # non-contiguous host source: copied contiguously
        assert d.dtype == a.dtype and np.array_equal(d.to_numpy(), a[:, ::2])
    d = cuda.from_numpy(f32(rng, 6, 5))
    assert np.array_equal(d.reshape(3, -1).to_numpy(), d.to_numpy().reshape(3, 10))
    c = d.copy()
    assert c.data_ptr != d.data_ptr and np.array_equal(c.to_numpy(), d.to_numpy())
    assert np.array_equal(cuda.zeros((2, 3)).to_numpy(), np.zeros((2, 3), np.float32))
    assert cuda.empty((0, 3)).to_numpy().shape == (0, 3)
    assert float(cuda.from_numpy(np.array([2.5], np.float32))) == 2.5


def test_a_failing_cuda_call_raises_cuda_error_naming_it():
    with pytest.raises(cuda.CudaError,
                       match=r"cudaMalloc\w*\(.*\) failed: cudaErrorMemoryAllocation"):
        cuda.empty((1 << 42,))
    close(F.relu(dev(np.ones(3, np.float32))), np.ones(3, np.float32))  # still usable


@pytest.mark.parametrize("shape", [(6, 5), (4, 3, 7), (3, 4, 5, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_and_eval(rng, shape, affine):
    x = f32(rng, *shape) * 3 + 1
    c = shape[1]
    w, b = (f32(rng, c), f32(rng, c)) if affine else (None, None)
    rm, rv = f32(rng, c), np.abs(f32(rng, c)) + 0.5
    rmd, rvd = dev(rm, rv)
    y, mean, invstd = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, return_stats=True)
    yd, meand, invstdd = F.batch_norm(dev(x), rmd, rvd, dev(w), dev(b), training=True,
                                      momentum=0.3, return_stats=True)
    for got, want, what in ((yd, y, "y"), (meand, mean, "mean"), (invstdd, invstd, "invstd"),
                            (rmd, rm, "running_mean"), (rvd, rv, "running_var")):
        close(got, want, what=what)
    gy = f32(rng, *shape)
    for training in (True, False):
        want = F.batch_norm_backward(gy, x, rm, rv, w, b, training=training)
        got = F.batch_norm_backward(dev(gy), dev(x), rmd, rvd, dev(w), dev(b), training=training)
        for g, wnt, what in zip(got, want, ("grad_input", "grad_weight", "grad_bias")):
            close(g, wnt, tol=1e-4, what=f"{what} training={training}")
    close(F.batch_norm(dev(x), rmd, rvd, dev(w), dev(b)), F.batch_norm(x, rm, rv, w, b))
    got = F.batch_norm_backward(dev(gy), dev(x), None, None, dev(w), dev(b), training=True,
                                stats=(meand, invstdd))
    close(got[0], F.batch_norm_backward(gy, x, None, None, w, b, training=True,
                                        stats=(mean, invstd))[0], tol=1e-4)


CE_VARIANTS = [dict(), dict(weight=True), dict(ignore=True), dict(label_smoothing=0.1),
               dict(weight=True, ignore=True, label_smoothing=0.2, pixel_weight=True)]


@pytest.mark.parametrize("shape", [(7, 5), (3, 4, 5, 6)])
@pytest.mark.parametrize("variant", CE_VARIANTS, ids=lambda v: "-".join(v) or "plain")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_forward_backward(rng, shape, variant, reduction):
    x = f32(rng, *shape) * 2
    n, c, spatial = shape[0], shape[1], shape[2:]
    t = rng.integers(0, c, (n,) + spatial).astype(np.int64)
    if variant.get("ignore"):
        t.reshape(-1)[::3] = -100
    kw = dict(weight=np.abs(f32(rng, c)) + 0.1 if variant.get("weight") else None,
              label_smoothing=variant.get("label_smoothing", 0.0), reduction=reduction,
              pixel_weight=np.abs(f32(rng, *t.shape)) if variant.get("pixel_weight") else None)
    dkw = {**kw, "weight": dev(kw["weight"]), "pixel_weight": dev(kw["pixel_weight"])}
    loss, lse = F.cross_entropy(x, t, return_lse=True, **kw)
    lossd, lsed = F.cross_entropy(dev(x), dev(t), return_lse=True, **dkw)
    close(lossd, loss, what="loss")
    close(lsed, lse, what="lse")
    grads = [(f32(rng, *t.shape), None)] if reduction == "none" else [(1.7, None), (1.7, "dev")]
    for g, kind in grads:
        want = F.cross_entropy_backward(g, x, t, lse=lse, **kw)
        if kind == "dev":
            gd = dev(np.float32(g).reshape(()))  # a 0-d device scalar
        else:
            gd = dev(g) if reduction == "none" else g
        close(F.cross_entropy_backward(gd, dev(x), dev(t), lse=lsed, **dkw), want, tol=1e-4)
        close(F.cross_entropy_backward(gd, dev(x), dev(t), **dkw), want, tol=1e-4)


def test_cross_entropy_bad_target_raises(rng):
    t = np.array([0, 3, 1], np.int64)
    with pytest.raises(ValueError, match="class index 3 out of range"):
        F.cross_entropy(dev(f32(rng, 3, 3)), dev(t))


def test_sgd_and_adam_steps_match_cpu(rng):
    p, g = f32(rng, 1000), f32(rng, 1000)
    pd, gd = dev(p, g)
    buf, bufd = np.empty_like(p), cuda.empty(p.shape)
    for step in range(3):
        _core.sgd_step(p, g, buf, 0.1, 0.9, 0.0, 1e-2, True, step == 0)
        cuda.sgd_step(pd, gd, bufd, 0.1, 0.9, 0.0, 1e-2, True, step == 0)
    close(pd, p, tol=1e-6)
    close(bufd, buf, tol=1e-6)
    for decoupled, amsgrad in ((False, False), (True, True)):
        p2 = f32(rng, 777)
        st = [np.zeros_like(p2), np.zeros_like(p2), np.zeros_like(p2) if amsgrad else None]
        p2d, std = dev(p2), [cuda.zeros(p2.shape), cuda.zeros(p2.shape),
                             cuda.zeros(p2.shape) if amsgrad else None]
        for t in range(1, 4):
            gg = f32(rng, 777)
            _core.adam_step(p2, gg, *st, t, 1e-2, 0.9, 0.99, 1e-8, 1e-2, decoupled)
            cuda.adam_step(p2d, dev(gg), *std, t, 1e-2, 0.9, 0.99, 1e-8, 1e-2, decoupled)
        close(p2d, p2, tol=1e-6)


def test_torch_cuda_tensors_zero_copy_both_ways(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = torch.from_numpy(f32(rng, 2, 3, 8, 8)).cuda()
    w = torch.from_numpy(f32(rng, 4, 3, 3, 3)).cuda()
    assert cuda.as_device_array(t).data_ptr == t.data_ptr()  # CUDA array interface
    assert cuda.from_dlpack(t).data_ptr == t.data_ptr()  # DLPack
    y = F.conv2d(t, w, padding=1)  # torch tensors straight into the ops
    want = torch.nn.functional.conv2d(t.double(), w.double(), padding=1)
    close(y, want.cpu().numpy())
    ty = torch.from_dlpack(y)
    assert ty.data_ptr() == y.data_ptr and ty.is_cuda
    assert torch.as_tensor(y, device="cuda").data_ptr() == y.data_ptr
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        tz = torch.from_dlpack(F.relu(y))  # torch passes its stream: ours is published to it
        assert torch.equal(tz, torch.relu(ty))
    with pytest.raises(TypeError, match="mixes CUDA device arrays"):
        F.conv2d(t, w.cpu().numpy())
    assert np.array_equal(host(cuda.as_device_array(t.transpose(2, 3).contiguous())),
                          t.transpose(2, 3).cpu().numpy())


def test_cupy_arrays_zero_copy_both_ways(rng):
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception as e:  # a CuPy without a usable device
        pytest.skip(f"cupy without CUDA: {e}")
    x, w, b = f32(rng, 2, 3, 9, 7), f32(rng, 5, 3, 3, 3), f32(rng, 5)
    cx, cw, cb = cp.asarray(x), cp.asarray(w), cp.asarray(b)
    assert cuda.as_device_array(cx).data_ptr == cx.data.ptr  # CUDA array interface
    assert cuda.from_dlpack(cx).data_ptr == cx.data.ptr  # DLPack
    y = F.conv2d(cx, cw, cb, stride=2, padding=1, activation="relu")  # CuPy straight in
    close(y, F.conv2d(x, w, b, stride=2, padding=1, activation="relu"))
    cy = cp.asarray(y)  # and back out through our __cuda_array_interface__
    assert cy.data.ptr == y.data_ptr and cy.shape == y.shape
    assert cp.from_dlpack(y).data.ptr == y.data_ptr
    pooled, sw = F.max_pool2d(cx, 2, return_indices=True)
    hp, hsw = F.max_pool2d(x, 2, return_indices=True)
    assert np.array_equal(host(pooled), hp) and np.array_equal(host(sw.indices), hsw.indices)
    with pytest.raises(TypeError, match="mixes CUDA device arrays"):
        F.conv2d(cx, w)
