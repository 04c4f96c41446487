"""Pooling / unpooling / interpolation at the limits: huge kernels and paddings, int64-sized
arguments, empty batches with huge extents, flags that are not bools, Switches built by hand.
Each case once broke something (a wrong answer, gigabytes allocated, a hang, a pybind11 error
naming no argument); each runs in a subprocess with a memory cap, so a regression fails here
instead of exhausting the machine."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnnfast.functional as F

F32 = np.float32


# ASan reserves terabytes of address space for its shadow: no cap fits under it.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def run_capped(code: str, mem_gb: float = 1.0, timeout: float = 60) -> str:
    """Runs code in a fresh interpreter with its address space capped (not under ASan); returns
    its stdout."""
    prog = textwrap.dedent(f"""
        import resource
        cap = int({mem_gb} * 2**30)
        if not {UNDER_ASAN}:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        import numpy as np
        import cnnfast
        import cnnfast.functional as F
        cnnfast.set_num_threads(1)
    """) + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.parametrize("algo", ["auto", "ref"])
def test_avg_divisor_of_huge_windows_does_not_overflow(algo):
    """count_include_pad divisor (2^21)^3 = 2^63 once overflowed int64: a negative mean of ones
    (2^22 per dim: inf). In double it is exact."""
    y = F.avg_pool3d(np.ones((1, 1, 1, 1, 1)), 2**21, padding=2**20, algo=algo)
    assert y.shape == (1, 1, 1, 1, 1) and y.item() == 2.0**-63
    y = F.avg_pool3d(np.ones((1, 1, 1, 1, 1)), 2**22, padding=2**21, algo=algo)
    assert y.item() == 2.0**-66


def test_huge_kernel_over_padding_stays_small():
    """A kernel of 2^30 over 5 columns (padding 2^29) once built a 4 GiB zero-padded row
    (forward) and a (stride, kernel) tap table (backward); now the memory follows the sizes."""
    out = run_capped("""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, 2, 5)).astype(np.float32)
        y = F.avg_pool1d(x, 2**30, padding=2**29, stride=1)
        assert y.shape == (1, 2, 6), y.shape
        # each window holds the whole row: its sum over the kernel size
        assert np.allclose(y, x.sum(-1, keepdims=True) / 2**30, rtol=1e-6)
        g = rng.standard_normal(y.shape).astype(np.float32)
        dx = F.avg_pool1d_backward(g, x, 2**30, padding=2**29, stride=1)
        assert np.allclose(dx, g.sum(-1, keepdims=True) / 2**30, rtol=1e-6)
        y = F.avg_pool2d(np.ones((1, 1, 1, 1), np.float32), 2**28, padding=2**27)
        assert y.item() == np.float32(2.0**-56), y
        print("ok")
    """)
    assert out.strip() == "ok"


@pytest.mark.parametrize("op", ["max", "avg"])
def test_ref_path_with_huge_padding_returns(op):
    """The naive twin stepped its first tap over the padding one dilation at a time: 2^40
    iterations per window (a hang). It now jumps there."""
    out = run_capped(f"""
        y = F.{op}_pool1d(np.arange(5, dtype=np.float32).reshape(1, 1, 5), 2**41,
                          padding=2**40, stride=1, algo="ref")
        print(y.shape, float(y.max()))
    """, timeout=20)
    assert out.split(")")[0] == "(1, 1, 6"


@pytest.mark.skipif(UNDER_ASAN, reason="needs an address-space cap, which ASan's shadow exceeds")
def test_unpool_backward_gives_back_a_huge_writer_table():
    """The per-thread table (8 bytes per output element) of a 2^26-element plane, 512 MiB, was
    kept for the life of the thread: the 1 GiB asked for after the call did not fit the cap."""
    out = run_capped("""
        g = np.ones((1, 1, 2**26), np.float32)
        dx = F.max_unpool1d_backward(g, np.ones((1, 1, 1), np.float32),
                                     np.zeros((1, 1, 1), np.int64), output_size=2**26)
        assert dx.item() == 1.0
        del g, dx
        big = np.ones(2**28, np.float32)
        print(big.nbytes // 2**20)
    """, mem_gb=1.4)
    assert out.strip() == "1024"


@pytest.mark.parametrize("call", [
    "F.adaptive_avg_pool1d(np.empty((0, 1, 4), np.float32), 2**40)",
    "F.adaptive_max_pool1d(np.empty((1, 0, 4), np.float32), 2**40)",
    "F.interpolate(np.empty((0, 1, 4), np.float32), size=2**40)",
    "F.max_pool1d(np.empty((0, 1, 2**40), np.float32), 2)",
    "F.avg_pool1d(np.empty((0, 1, 2**40), np.float32), 2)",
    "F.lp_pool1d(np.empty((0, 1, 2**40), np.float32), 2, 2)",
])
def test_empty_batch_with_huge_extents(call):
    """N or C = 0: an empty result, without the per-dim tables sized by the extents."""
    out = run_capped(f"y = {call}\nprint(y.size, y.shape[2])")
    size, extent = out.split()
    assert size == "0" and int(extent) >= 2**39


@pytest.mark.parametrize("fn,kwargs,match", [
    (F.max_pool2d, {"kernel_size": 2, "stride": 2**63}, "stride.*int64"),
    (F.avg_pool2d, {"kernel_size": 2, "divisor_override": 2**63}, "divisor_override"),
    (F.adaptive_avg_pool2d, {"output_size": (2**63, 1)}, "output_size.*int64"),
    (F.interpolate, {"size": (2**63, 1)}, "size.*int64"),
    (F.interpolate, {"scale_factor": 1e300}, "scale_factor.*int64"),
])
def test_int64_sized_arguments_name_the_argument(fn, kwargs, match):
    x = np.ones((1, 1, 4, 4), F32)
    with pytest.raises(ValueError, match=match):
        fn(x, **kwargs)


def test_unpool_default_size_past_int64():
    y, idx = np.ones((1, 1, 3), F32), np.zeros((1, 1, 3), np.int64)
    with pytest.raises(ValueError, match="kernel_size.*int64"):
        F.max_unpool1d(y, idx, 2**62)


@pytest.mark.parametrize("fn,kwargs,name", [
    (F.avg_pool2d, {"kernel_size": 2, "count_include_pad": "no"}, "count_include_pad"),
    (F.max_pool2d, {"kernel_size": 2, "return_indices": "yes"}, "return_indices"),
    (F.global_max_pool, {"return_indices": 1}, "return_indices"),
    (F.interpolate, {"size": 8, "mode": "bilinear", "align_corners": "yes"}, "align_corners"),
    (F.interpolate, {"size": 8.0}, "size"),
    (F.interpolate, {"scale_factor": 2 + 0j}, "scale_factor"),
])
def test_flags_and_sizes_have_their_types(fn, kwargs, name):
    with pytest.raises(TypeError, match=name):
        fn(np.ones((1, 1, 4, 4), F32), **kwargs)


@pytest.mark.parametrize("sf", [np.float32(2), np.int64(2), (np.float32(2), 2)])
def test_interpolate_takes_numpy_scalars(sf):
    y = F.interpolate(np.ones((1, 1, 3, 3), F32), scale_factor=sf)
    assert y.shape == (1, 1, 6, 6)


@pytest.mark.parametrize("x", [[[[1.0]]], None, 3.0])
def test_global_pools_want_an_array(x):
    for fn in (F.global_avg_pool, F.global_max_pool):
        with pytest.raises(TypeError, match="input"):
            fn(x)


def test_unpool_checks_what_switches_already_say(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(F32)
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="recorded"):
        F.max_unpool2d(y, sw, kernel_size=3)
    np.testing.assert_array_equal(F.max_unpool2d(y, sw, kernel_size=2, stride=2),
                                  F.max_unpool2d(y, sw))
    hand_made = F.Switches(sw.indices, x.shape, kernel_size=[2, 2])  # a list, stride implied
    np.testing.assert_array_equal(F.max_unpool2d(y, hand_made, kernel_size=2),
                                  F.max_unpool2d(y, sw))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.max_unpool2d(y, sw.indices, output_size=(9, 9, 8, 8))
    assert F.max_unpool2d(y, sw.indices, output_size=(2, 3, 8, 8)).shape == x.shape


@pytest.mark.parametrize("shape,exc", [(None, TypeError), ((1, 2.0, 4, 4), TypeError),
                                       ((1, 2, 4, 4, 4), ValueError), ((1, 2, -4, 4), ValueError)])
def test_switches_built_by_hand_are_checked(shape, exc):
    with pytest.raises(exc, match="input_shape"):
        F.Switches(np.zeros((1, 2, 2, 2), np.int64), shape)


def test_lp_pool_bad_keyword_names_the_public_function():
    with pytest.raises(TypeError, match=r"^lp_pool2d\(\) got an unexpected keyword"):
        F.lp_pool2d(np.ones((1, 1, 4, 4), F32), 2, 2, padding=1)


def test_window_in_padding_message_names_the_arguments():
    # in the caller's own dims (it quoted the internal 3-D form: padding (0, 0, 1))
    with pytest.raises(ValueError, match=r"padding \(1,\) / dilation \(3,\): output 0 along "
                                         r"spatial dim 0 of input \(1, 1, 2\)"):
        F.max_pool1d(np.ones((1, 1, 2), F32), 2, padding=1, dilation=3)
    with pytest.raises(ValueError, match=r"padding \(0, 1\) / dilation \(1, 3\): output 0 along "
                                         r"spatial dim 1"):
        F.max_pool2d(np.ones((1, 1, 4, 2), F32), 2, padding=(0, 1), dilation=(1, 3))


def test_uint64_indices_past_int64_say_so(rng):
    x = rng.standard_normal((1, 1, 4, 4)).astype(F32)
    y, sw = F.max_pool2d(x, 2, return_indices=True)
    bad = sw.indices.astype(np.uint64)
    bad[0, 0, 0, 0] = 2**64 - 1  # was reported as "value -1"
    with pytest.raises(ValueError, match=str(2**64 - 1)):
        F.max_unpool2d(y, bad, output_size=(4, 4))


def test_avg_pool_message_mentions_no_dilation():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) spans 5") as e:
        F.avg_pool2d(np.ones((1, 1, 4, 4), F32), 5)
    assert "dilation" not in str(e.value)
