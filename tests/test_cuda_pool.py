"""CUDA pooling (max with switches, average, adaptive, global; 1-D/2-D/3-D) and max-unpooling
against the CPU ops: odd sizes, padding, dilation, ceil_mode, count_include_pad,
divisor_override, overlapping windows sharing a switch (last writer wins), bad indices.
Runs only where a CUDA device exists."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import cnnfast.functional as F
from cnnfast import _core, cuda

from cuda_helpers import close, dev, f32, host, requires_gpu

pytestmark = requires_gpu

SHAPES = {1: (2, 3, 17), 2: (2, 3, 9, 11), 3: (1, 2, 5, 6, 7)}
# kernel, stride, padding, dilation, ceil_mode
MAX_WINDOWS = [(2, None, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False), (2, 3, 1, 1, True)]


def op(name, nd):
    return getattr(F, name.format(nd))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p, d, ceil", MAX_WINDOWS)
def test_max_pool_values_switches_and_backward(rng, nd, k, s, p, d, ceil):
    x = f32(rng, *SHAPES[nd])
    xd = dev(x)
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=ceil)
    y, sw = op("max_pool{}d", nd)(x, k, return_indices=True, **kw)
    yd, swd = op("max_pool{}d", nd)(xd, k, return_indices=True, **kw)
    close(yd, y, tol=0)
    assert np.array_equal(host(swd.indices), sw.indices)
    assert swd.input_shape == sw.input_shape and swd.kernel_size == sw.kernel_size
    gy = f32(rng, *y.shape)
    bwd = op("max_pool{}d_backward", nd)
    want = bwd(gy, x, k, indices=sw, **kw)
    close(bwd(dev(gy), xd, k, indices=swd, **kw), want)
    close(bwd(dev(gy), xd, k, **kw), want)  # switches recomputed on the device


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p, ceil, include_pad, divisor", [
    (2, None, 0, False, True, None), (3, 2, 1, True, True, None), (3, 2, 1, True, False, None),
    (3, 1, 1, False, True, 5)])
def test_avg_pool_forward_backward(rng, nd, k, s, p, ceil, include_pad, divisor):
    x = f32(rng, *SHAPES[nd])
    kw = dict(stride=s, padding=p, ceil_mode=ceil, count_include_pad=include_pad,
              divisor_override=divisor)
    y = op("avg_pool{}d", nd)(x, k, **kw)
    close(op("avg_pool{}d", nd)(dev(x), k, **kw), y)
    gy = f32(rng, *y.shape)
    close(op("avg_pool{}d_backward", nd)(dev(gy), dev(x), k, **kw),
          op("avg_pool{}d_backward", nd)(gy, x, k, **kw))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_and_global_pooling(rng, nd, kind):
    x = f32(rng, *SHAPES[nd])
    size = tuple(int(v) for v in rng.integers(1, 6, nd))
    fwd, bwd = op(f"adaptive_{kind}_pool{{}}d", nd), op(f"adaptive_{kind}_pool{{}}d_backward", nd)
    y = fwd(x, size)
    close(fwd(dev(x), size), y, tol=0 if kind == "max" else 3e-5)
    gy = f32(rng, *y.shape)
    close(bwd(dev(gy), dev(x), size), bwd(gy, x, size))
    g = getattr(F, f"global_{kind}_pool")
    close(g(dev(x)), g(x), tol=0 if kind == "max" else 3e-5)
    gg = f32(rng, *g(x).shape)
    close(getattr(F, f"global_{kind}_pool_backward")(dev(gg), dev(x)),
          getattr(F, f"global_{kind}_pool_backward")(gg, x))


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1)])  # the second overlaps
def test_unpool_round_trip_and_backward(rng, nd, k, s, p):
    x = f32(rng, *SHAPES[nd])
    y, sw = op("max_pool{}d", nd)(x, k, s, p, return_indices=True)
    yd, swd = op("max_pool{}d", nd)(dev(x), k, s, p, return_indices=True)
    u = op("max_unpool{}d", nd)(y, sw)
    close(op("max_unpool{}d", nd)(yd, swd), u, tol=0)
    gu = f32(rng, *u.shape)
    close(op("max_unpool{}d_backward", nd)(dev(gu), yd, swd),
          op("max_unpool{}d_backward", nd)(gu, y, sw), tol=0)


def test_unpool_random_shared_indices_last_writer_wins(rng):
    x = f32(rng, 2, 3, 6, 5)
    idx = rng.integers(0, 7 * 8, size=x.shape).astype(np.int64)  # many duplicates
    kw = dict(output_size=(7, 8))
    want = F.max_unpool2d(x, idx, **kw)
    close(F.max_unpool2d(dev(x), dev(idx), **kw), want, tol=0)
    g = f32(rng, *want.shape)
    close(F.max_unpool2d_backward(dev(g), dev(x), dev(idx), **kw),
          F.max_unpool2d_backward(g, x, idx, **kw), tol=0)


def test_bad_indices_raise_value_error(rng):
    x = f32(rng, 1, 2, 3, 3)
    idx = np.zeros(x.shape, np.int64)
    idx[0, 1, 2, 2] = 36  # output plane is 6 x 6
    with pytest.raises(ValueError, match="out of range"):
        F.max_unpool2d(dev(x), dev(idx), output_size=(6, 6))
    y, sw = F.max_pool2d(dev(f32(rng, 1, 2, 6, 6)), 2, return_indices=True)
    bad = host(sw.indices).copy()
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match="out of range"):
        F.max_pool2d_backward(dev(f32(rng, *y.shape)), dev(f32(rng, 1, 2, 6, 6)), 2,
                              indices=dev(bad))


@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1)])
def test_switches_off_their_window_take_the_general_path(rng, k, s, p):
    """The one-pass unpooling and the gather backward trust Switches' windows only after checking
    every switch against its window: tampered switches must give the CPU's scatter results."""
    x = f32(rng, 2, 3, 9, 11)
    y, sw = F.max_pool2d(x, k, s, p, return_indices=True)
    idx = sw.indices.copy()
    idx[1, 2, -1, -1] = 0  # far outside its window, and shared with the first window's slot
    idx[0, 0, 0, 0] = 0
    bad = dataclasses.replace(sw, indices=idx)
    bad_d = dataclasses.replace(sw, indices=dev(idx))
    gu, gy = f32(rng, *x.shape), f32(rng, *y.shape)
    close(F.max_unpool2d(dev(y), bad_d), F.max_unpool2d(y, bad), tol=0)
    close(F.max_unpool2d_backward(dev(gu), dev(y), bad_d),
          F.max_unpool2d_backward(gu, y, bad), tol=0)
    close(F.max_pool2d_backward(dev(gy), dev(x), k, s, p, indices=bad_d),
          F.max_pool2d_backward(gy, x, k, s, p, indices=bad), tol=1e-6)
    idx[0, 1, 1, 1] = x[0, 0].size
    with pytest.raises(ValueError, match="out of range"):
        F.max_unpool2d(dev(y), dataclasses.replace(sw, indices=dev(idx)))
    with pytest.raises(ValueError, match="out of range"):
        F.max_pool2d_backward(dev(gy), dev(x), k, s, p, indices=dev(idx))


@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1)])
def test_max_pools_own_switches_changed_later_are_reported_at_the_next_synchronization(
        rng, k, s, p):
    """Switches that max_pool made are used without the host waiting for their window check;
    memory written into them afterwards must still surface, as a ValueError, at the next
    synchronize() or copy to the host — once — while the same indices in a new Switches are
    checked before use and give the CPU's results."""
    x = f32(rng, 2, 3, 9, 11)
    y, sw = F.max_pool2d(dev(x), k, s, p, return_indices=True)
    idx = host(sw.indices).copy()
    idx[1, 2, -1, -1] = 0  # far outside its window
    _core.cuda_copy_from_host(sw.indices.data_ptr, idx)  # behind max_pool's back
    gu, gy = f32(rng, *x.shape), f32(rng, *y.shape)
    u = F.max_unpool2d(y, sw)
    logits = dev(f32(rng, 4, 5))  # an op's own wait (its target check) leaves the report alone
    F.cross_entropy(logits, dev(np.array([0, 4, 2, 1], np.int64)))
    with pytest.raises(ValueError, match="changed afterwards: index 0 is outside its pooling"):
        cuda.synchronize()
    cuda.synchronize()  # reported once
    assert u.shape == x.shape
    for call in (lambda: F.max_unpool2d_backward(dev(gu), y, sw),
                 lambda: F.max_pool2d_backward(dev(gy), dev(x), k, s, p, indices=sw)):
        out = call()
        with pytest.raises(ValueError, match="changed afterwards"):
            out.to_numpy()
    host_sw = F.Switches(idx, x.shape, sw.kernel_size, sw.stride, sw.padding, sw.dilation,
                         sw.ceil_mode)
    close(F.max_unpool2d(y, dataclasses.replace(sw)), F.max_unpool2d(host(y), host_sw), tol=0)
    close(F.max_pool2d_backward(dev(gy), dev(x), k, s, p, indices=dataclasses.replace(sw)),
          F.max_pool2d_backward(gy, x, k, s, p, indices=host_sw), tol=1e-6)
    cuda.synchronize()  # nothing left over
    y_host, sw_host = F.max_pool2d(x, k, s, p, return_indices=True)
    _core.cuda_copy_from_host(sw.indices.data_ptr, sw_host.indices)  # put back: trusted again
    close(F.max_unpool2d(y, sw), F.max_unpool2d(y_host, sw_host), tol=0)
    close(F.max_pool2d_backward(dev(gy), dev(x), k, s, p, indices=sw),
          F.max_pool2d_backward(gy, x, k, s, p, indices=sw_host), tol=1e-6)
    cuda.synchronize()


def test_2x2_max_pool_on_a_view_not_8_byte_aligned(rng):
    # a foreign C-contiguous view one float into a buffer: the 2x2 kernel's paired loads need
    # 8-byte alignment, so this takes the general path (a misaligned float2 load would fault)
    base = cuda.from_numpy(f32(rng, 1 + 2 * 3 * 6 * 8))

    class View:
        __cuda_array_interface__ = {"shape": (2, 3, 6, 8), "typestr": "<f4", "version": 3,
                                    "data": (base.data_ptr + 4, False), "strides": None}
    x = cuda.as_device_array(View())
    want, want_sw = F.max_pool2d(base.to_numpy()[1:].reshape(2, 3, 6, 8), 2, return_indices=True)
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    close(y, want, tol=0)
    assert np.array_equal(host(sw.indices), want_sw.indices)
