"""CUDA backend, the host-side half (runs on every machine, GPU or not): what the build reports,
import without a device, DeviceArray bookkeeping, the CUDA array interface and DLPack capsules,
the host/device dispatch of cnnfast.functional (decided on fake device arrays that expose
__cuda_array_interface__ over a bogus pointer — never dereferenced), the pooling window formula
the kernels use, and the errors raised when no device is present."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F
from cnnfast import _core, cuda
from cnnfast.functional._dispatch import location

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
needs_no_device = pytest.mark.skipif(
    cuda.is_available(), reason="a CUDA device is present: fake device pointers would be used")
needs_cuda_build = pytest.mark.skipif(not _core.cuda_built(), reason="built without CUDA")


class FakeDeviceArray:
    """Exposes only __cuda_array_interface__ (like a CuPy array) over a made-up address."""

    def __init__(self, shape, dtype=np.float32, ptr=1 << 20, strides=None, **extra):
        self.shape = tuple(shape)
        self.__cuda_array_interface__ = {"shape": self.shape, "typestr": np.dtype(dtype).str,
                                         "data": (ptr, False), "version": 3,
                                         "strides": strides, **extra}


def fake(*shape, dtype=np.float32):
    return FakeDeviceArray(shape, dtype)


# ---- build and import --------------------------------------------------------------------------

def test_info_reports_the_build_and_device_consistently():
    info = cnnfast.info()
    assert info["cuda_built"] == bool(_core.cuda_built()) == hasattr(_core, "cuda_conv2d_forward")
    expected = os.environ.get("CNNFAST_EXPECT_CUDA_BUILT")  # set by .ci/run per build
    if expected is not None:
        assert info["cuda_built"] == (expected == "1")
    assert info["cuda_device_found"] == cuda.is_available()
    if info["cuda_device_found"]:
        assert info["cuda_device_name"] and info["cuda_reason"] is None
    else:
        assert info["cuda_device_name"] is None and info["cuda_reason"]
        assert cuda.reason() == info["cuda_reason"]


def test_import_never_queries_the_device_and_works_with_gpus_hidden():
    code = ("import cnnfast, cnnfast.cuda._runtime as r; "
            "assert r._device_info.cache_info().currsize == 0, 'queried at import'; "
            "i = cnnfast.info(); print(i['cuda_device_found'], bool(i['cuda_reason']))")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


@needs_no_device
def test_device_calls_without_a_device_raise_a_clear_error():
    for call in (lambda: cuda.from_numpy(np.ones(3, np.float32)),
                 lambda: cuda.empty((2, 3)), lambda: cuda.zeros(4), cuda.synchronize):
        with pytest.raises(RuntimeError, match="no CUDA device: .+"):
            call()
    if _core.cuda_built():
        assert "driver" in cuda.reason() or "device" in cuda.reason()
    else:
        assert "built without" in cuda.reason()


# ---- DeviceArray bookkeeping and the CUDA array interface ----------------------------------------

def test_device_array_wraps_the_cuda_array_interface_zero_copy():
    src = FakeDeviceArray((2, 3, 5), np.float32, ptr=123456)
    d = cuda.as_device_array(src)
    assert (d.shape, d.dtype, d.data_ptr, d.ndim, d.size, d.nbytes) == (
        (2, 3, 5), np.float32, 123456, 3, 30, 120)
    assert d.is_c_contiguous and d.strides == (60, 20, 4) and not d.readonly
    cai = d.__cuda_array_interface__
    assert cai["data"] == (123456, False) and cai["version"] == 3 and cai["strides"] is None
    assert cai["shape"] == (2, 3, 5) and cai["typestr"] == "<f4" and cai["stream"] == 1
    v = d.reshape(6, -1)
    assert v.shape == (6, 5) and v.data_ptr == 123456
    with pytest.raises(ValueError, match="cannot reshape"):
        d.reshape(7, -1)
    assert cuda.as_device_array(d) is d and location(d) == "device" == location(src)


def test_strided_readonly_and_malformed_interfaces():
    s = cuda.as_device_array(FakeDeviceArray((4, 3), strides=(4, 16)))  # a transposed view
    assert not s.is_c_contiguous and s.strides == (4, 16)
    with pytest.raises(ValueError, match="C-contiguous"):
        s.reshape(12)
    ro = cuda.as_device_array(FakeDeviceArray((3,), data=(64, True)))
    assert ro.readonly and ro.__cuda_array_interface__["data"] == (64, True)
    with pytest.raises(ValueError, match="masked"):
        cuda.as_device_array(FakeDeviceArray((3,), mask=object()))
    with pytest.raises(ValueError, match="stream"):
        cuda.as_device_array(FakeDeviceArray((3,), stream=0))
    with pytest.raises(TypeError, match="complex64 is not supported"):
        cuda.as_device_array(FakeDeviceArray((3,), np.complex64))
    with pytest.raises(TypeError, match="from_numpy"):
        cuda.as_device_array(np.ones(3))
    with pytest.raises(TypeError, match="to_numpy"):
        np.asarray(cuda.as_device_array(fake(3)))
    with pytest.raises(TypeError, match="create one with"):
        cuda.DeviceArray()


# ---- DLPack -------------------------------------------------------------------------------------

def test_dlpack_export_import_round_trip_keeps_the_owner_alive():
    src = FakeDeviceArray((3, 1, 4), np.int64, ptr=4096 * 7)
    owner = weakref.ref(src)
    d = cuda.as_device_array(src)
    assert d.__dlpack_device__()[0] == 2
    back = cuda.from_dlpack(d.__dlpack__(stream=None))
    assert (back.shape, back.dtype, back.data_ptr) == ((3, 1, 4), np.int64, 4096 * 7)
    del src, d
    gc.collect()
    assert owner() is not None  # the capsule's DLManagedTensor holds the exporter
    del back
    gc.collect()
    assert owner() is None  # ... until the consumer's deleter ran


def test_dlpack_strides_dtype_and_consumed_capsules():
    d = cuda.as_device_array(FakeDeviceArray((4, 3), np.float32, strides=(4, 16)))
    cap = d.__dlpack__()
    back = cuda.from_dlpack(cap)
    assert back.strides == (4, 16) and not back.is_c_contiguous
    with pytest.raises(ValueError, match="already consumed"):
        cuda.from_dlpack(cap)
    with pytest.raises(ValueError, match="stream"):
        d.__dlpack__(stream=0)
    with pytest.raises(BufferError, match="without a copy"):
        d.__dlpack__(dl_device=(1, 0))


def test_dlpack_of_host_arrays_is_refused_by_name():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(TypeError, match="on the CPU, not a CUDA device"):
        cuda.from_dlpack(a)
    # a raw capsule is consumed and inspected in C++: metadata of NumPy's own export
    holder, ptr, shape, strides, dtype, device = _core.dlpack_import(a.__dlpack__())
    assert ptr == a.ctypes.data and shape == [2, 3] and dtype == (2, 32, 1) and device == (1, 0)
    assert strides in (None, [3, 1])
    with pytest.raises(TypeError, match="on the CPU"):
        cuda.from_dlpack(a[:, 1:].__dlpack__())
    with pytest.raises(TypeError, match="does not support DLPack"):
        cuda.from_dlpack([1, 2])


# ---- dispatch ------------------------------------------------------------------------------------

def test_location_classifies_arguments(rng):
    assert location(rng.standard_normal(3)) == "host"
    for v in (None, 3, 2.5, np.float32(1), (1, 2), "same"):
        assert location(v) is None
    assert location(fake(2, 3)) == "device"
    sw = F.Switches(fake(1, 1, 2, 2, dtype=np.int64), (1, 1, 4, 4))
    assert location(sw) == "device"
    torch = pytest.importorskip("torch")
    assert location(torch.zeros(2)) is None  # a CPU tensor is neither: the op's own check decides


@pytest.mark.parametrize("call, names", [
    (lambda: F.conv2d(fake(2, 3, 9, 9), np.ones((4, 3, 3, 3), np.float32)), ("x", "weight")),
    (lambda: F.conv2d_backward(np.ones((2, 4, 7, 7), np.float32), fake(2, 3, 9, 9),
                               fake(4, 3, 3, 3)), ("x, weight", "grad_out")),
    (lambda: F.max_pool2d(np.ones((1, 1, 4, 4), np.float32), fake(2)), ("kernel_size", "x")),
    (lambda: F.relu_backward(fake(3), np.ones(3, np.float32)), ("grad_out", "x")),
    (lambda: F.max_unpool2d(fake(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64),
                            kernel_size=2), ("x", "indices")),
    (lambda: F.batch_norm(fake(4, 3), np.zeros(3, np.float32), np.ones(3, np.float32)),
     ("x", "running_mean, running_var")),
    (lambda: F.cross_entropy(fake(4, 3), np.zeros(4, np.int64)), ("x", "target")),
])
def test_mixing_host_and_device_arrays_is_a_type_error_naming_both(call, names):
    with pytest.raises(TypeError, match="mixes CUDA device arrays") as e:
        call()
    dev, host = names
    assert f"({dev})" in str(e.value) and f"({host})" in str(e.value)


def test_device_inputs_to_ops_without_a_cuda_kernel_say_so():
    with pytest.raises(TypeError):
        F.tiled_conv2d(fake(1, 2, 6, 6), fake(2, 2, 3, 2, 3, 3))
    with pytest.raises(TypeError, match="no CUDA kernel"):
        F.sigmoid(fake(3))


def test_device_argument_errors_come_before_any_device_use():
    with pytest.raises(ValueError, match="C/groups = 3"):
        F.conv2d(fake(2, 3, 8, 8), fake(4, 2, 3, 3))
    with pytest.raises(TypeError, match="take float32, got float64"):
        F.conv2d(fake(2, 3, 8, 8, dtype=np.float64), fake(4, 3, 3, 3, dtype=np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        F.relu(FakeDeviceArray((4, 3), strides=(4, 16)))
    with pytest.raises(ValueError, match="algo: the CUDA backend"):
        F.max_pool2d(fake(1, 1, 4, 4), 2, algo="ref")
    with pytest.raises(ValueError, match="CPU algorithms"):
        F.conv2d(fake(2, 3, 8, 8), fake(4, 3, 3, 3), algo="gemm")
    with pytest.raises(ValueError, match="algo: the CUDA backend's conv2d"):
        F.conv2d_backward(fake(2, 4, 6, 6), fake(2, 3, 8, 8), fake(4, 3, 3, 3), algo="fft")
    with pytest.raises(ValueError, match="grad_out: expected shape"):
        F.conv2d_backward(fake(2, 4, 5, 5), fake(2, 3, 8, 8), fake(4, 3, 3, 3))
    with pytest.raises(TypeError, match="target must be int64"):
        F.cross_entropy(fake(4, 3), fake(4, dtype=np.int32))
    with pytest.raises(ValueError, match="indices: expected shape"):
        F.max_unpool2d(fake(1, 1, 2, 2), fake(1, 1, 3, 2, dtype=np.int64), kernel_size=2)


@needs_no_device
@pytest.mark.parametrize("call", [
    lambda: F.conv2d(fake(2, 3, 9, 9), fake(4, 3, 3, 3), fake(4), padding="same"),
    lambda: F.max_pool2d(fake(1, 2, 5, 5), 2, return_indices=True),
    lambda: F.global_avg_pool(fake(2, 3, 4, 4)),
    lambda: F.cross_entropy(fake(4, 3), fake(4, dtype=np.int64)),
    lambda: cuda.sgd_step(fake(3), fake(3), lr=0.1),
])
def test_valid_device_calls_reach_the_device_check(call):
    with pytest.raises(RuntimeError, match="no CUDA device"):
        call()


# Without a driver nothing can execute, so the device twins can be driven down to their kernel
# launches with fake device arrays: every argument crosses into C++ (arity, types, the bindings'
# shape re-checks against what Python allocated), then the launch fails with a CudaError that
# names it. A TypeError / ValueError here would be a plumbing bug.
def fake_empty(shape, dtype=np.float32):
    return cuda.as_device_array(FakeDeviceArray(tuple(shape), dtype))


@pytest.fixture
def fake_device_memory(monkeypatch):
    from cnnfast.cuda import _ops, _ops_conv_family, _ops_nn
    for mod in (_ops, _ops_conv_family, _ops_nn):
        for name in ("empty", "zeros"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, fake_empty)
    monkeypatch.setattr(_ops_nn, "require", lambda: None)


@needs_no_device
@needs_cuda_build
@pytest.mark.parametrize("call", [
    lambda: F.conv2d(fake(2, 3, 9, 9), fake(4, 3, 3, 3), fake(4), padding=1, activation="relu"),
    lambda: F.conv2d(fake(2, 3, 9, 9), fake(4, 3, 3, 3), fake(4), padding=1, algo="winograd"),
    lambda: F.conv2d_backward(fake(2, 4, 9, 9), fake(2, 3, 9, 9), fake(4, 3, 3, 3), fake(4),
                              padding=1, needs_input_grad=(True, False, False)),
    lambda: F.conv2d_backward(fake(2, 4, 9, 9), fake(2, 3, 9, 9), fake(4, 3, 3, 3), fake(4),
                              padding=1, algo="winograd_f4"),
    lambda: F.conv2d_backward(fake(2, 4, 9, 9), fake(2, 3, 9, 9), fake(4, 3, 3, 3), fake(4),
                              padding=1, algo="winograd_f2", needs_input_grad=(False, True, True)),
    lambda: F.conv2d_backward(fake(2, 4, 5, 5), fake(2, 6, 9, 9), fake(4, 3, 3, 3), fake(4),
                              stride=2, padding=1, groups=2, needs_input_grad=(False, True, True)),
    lambda: F.conv2d_backward(fake(2, 4, 7, 7), fake(2, 3, 9, 9), fake(4, 3, 3, 3),
                              activation="relu", output=fake(2, 4, 7, 7)),
    lambda: F.conv1d(fake(2, 4, 11), fake(6, 2, 3), fake(6), stride=2, padding="same", groups=2),
    lambda: F.conv1d_backward(fake(2, 6, 9), fake(2, 4, 11), fake(6, 4, 3), fake(6)),
    lambda: F.conv1d_backward(fake(2, 6, 9), fake(2, 4, 11), fake(6, 4, 3), fake(6),
                              needs_input_grad=(False, True, True)),
    lambda: F.conv_transpose2d(fake(2, 4, 5, 5), fake(4, 3, 3, 3), fake(6), stride=2,
                               padding=1, output_padding=1, groups=2),
    lambda: F.conv_transpose2d_backward(fake(2, 3, 9, 9), fake(2, 4, 5, 5), fake(4, 3, 3, 3),
                                        needs_input_grad=(True, False, False), stride=2,
                                        padding=1),
    lambda: F.conv_transpose2d_backward(fake(2, 3, 9, 9), fake(2, 4, 5, 5), fake(4, 3, 3, 3),
                                        needs_input_grad=(False, True, False), stride=2,
                                        padding=1),
    lambda: F.conv_transpose1d_backward(fake(2, 6, 14), fake(2, 4, 5), fake(4, 3, 3), fake(6),
                                        needs_input_grad=(False, False, True), stride=2,
                                        groups=2, output_padding=1, dilation=2),
    lambda: F.conv3d(fake(2, 4, 5, 6, 7), fake(6, 2, 3, 2, 3), fake(6), stride=(2, 1, 2),
                     padding=1, dilation=(1, 2, 1), groups=2),
    lambda: F.conv3d_backward(fake(2, 6, 3, 3, 4), fake(2, 4, 5, 6, 7), fake(6, 4, 3, 3, 3),
                              fake(6), stride=2, padding=1),
    lambda: F.conv3d_backward(fake(2, 6, 3, 3, 4), fake(2, 4, 5, 6, 7), fake(6, 4, 3, 3, 3),
                              fake(6), stride=2, padding=1, needs_input_grad=(False, True, True)),
    lambda: F.conv_transpose3d(fake(2, 4, 3, 3, 3), fake(4, 3, 3, 3, 3), fake(3), stride=2,
                               padding=1, output_padding=1),
    lambda: F.conv_transpose3d_backward(fake(2, 3, 6, 6, 6), fake(2, 4, 3, 3, 3),
                                        fake(4, 3, 3, 3, 3), fake(3), stride=2, padding=1,
                                        output_padding=1),
    lambda: F.relu(fake(5, 2)),
    lambda: F.relu_backward(fake(5, 2), fake(5, 2)),
    lambda: F.max_pool2d(fake(2, 3, 9, 9), 3, 2, 1, return_indices=True),
    lambda: F.max_pool3d_backward(fake(1, 2, 2, 2, 2), fake(1, 2, 4, 4, 4), 2),
    lambda: F.max_pool1d_backward(fake(1, 2, 4), fake(1, 2, 8), 2,
                                  indices=fake(1, 2, 4, dtype=np.int64)),
    lambda: F.avg_pool2d(fake(2, 3, 9, 9), 3, 2, 1, ceil_mode=True, count_include_pad=False),
    lambda: F.avg_pool1d_backward(fake(2, 3, 5), fake(2, 3, 9), 3, 2, 1, divisor_override=2),
    lambda: F.adaptive_avg_pool2d(fake(2, 3, 9, 9), (4, 3)),
    lambda: F.adaptive_avg_pool3d_backward(fake(1, 2, 2, 2, 2), fake(1, 2, 5, 5, 5), 2),
    lambda: F.adaptive_max_pool2d(fake(2, 3, 9, 9), 4, return_indices=True),
    lambda: F.adaptive_max_pool2d_backward(fake(2, 3, 4, 4), fake(2, 3, 9, 9), 4),
    lambda: F.global_max_pool(fake(2, 3, 5, 7)),
    lambda: F.max_unpool2d(fake(2, 3, 4, 4), F.Switches(fake(2, 3, 4, 4, dtype=np.int64),
                                                        (2, 3, 9, 9))),
    lambda: F.max_unpool1d_backward(fake(2, 3, 8), fake(2, 3, 4),
                                    fake(2, 3, 4, dtype=np.int64), kernel_size=2),
    lambda: F.batch_norm(fake(4, 3, 5), fake(3), fake(3), fake(3), fake(3), training=True),
    lambda: F.batch_norm(fake(4, 3, 5), fake(3), fake(3)),
    lambda: F.batch_norm_backward(fake(4, 3, 5), fake(4, 3, 5), None, None, fake(3), fake(3),
                                  training=True, stats=(fake(3), fake(3))),
    lambda: F.cross_entropy(fake(4, 3, 2, 2), fake(4, 2, 2, dtype=np.int64), weight=fake(3),
                            pixel_weight=fake(4, 2, 2), reduction="sum"),
    lambda: F.cross_entropy(fake(4, 3), fake(4, dtype=np.int64), reduction="none"),
    lambda: F.cross_entropy_backward(fake(), fake(4, 3), fake(4, dtype=np.int64), lse=fake(4)),
    lambda: F.cross_entropy_backward(fake(4), fake(4, 3), fake(4, dtype=np.int64),
                                     reduction="none", lse=fake(4)),
    lambda: cuda.sgd_step(fake(7), fake(7), fake(7), lr=0.1, momentum=0.9),
    lambda: cuda.adam_step(fake(7), fake(7), fake(7), fake(7), fake(7), step=2),
])
def test_device_twins_reach_the_kernel_launch_with_consistent_arguments(fake_device_memory, call):
    with pytest.raises(cuda.CudaError,
                       match=r"(launch of \w|cuda\w+\(.*\) failed|no CUDA device)"):
        call()


def test_cpu_results_and_signatures_unchanged_by_the_dispatch(rng):
    import inspect
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = F.conv2d(x, w, padding=1)
    assert isinstance(y, np.ndarray) and y.shape == (2, 4, 7, 6)
    np.testing.assert_allclose(y, F.conv2d(x, w, padding=1, algo="ref"), rtol=1e-4, atol=1e-4)
    assert list(inspect.signature(F.conv2d).parameters)[:3] == ["x", "weight", "bias"]
    assert F.max_pool2d.__name__ == "max_pool2d"
    assert list(inspect.signature(F.max_pool2d).parameters)[:2] == ["x", "kernel_size"]


# ---- the CUDA benchmark without a GPU ------------------------------------------------------------

@needs_no_device
def test_bench_ops_cuda_exits_with_the_reason():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_ops.py"), "--device",
                        "cuda"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "no CUDA device" in r.stderr + r.stdout
