"""Concurrent calls from many Python threads (the GIL is released) give the serial results, for a
mix of op families (conv family, pooling, unpooling, matmul/linear, normalization, interpolation,
activations, losses); the process-wide thread budget keeps concurrent calls within
set_num_threads() threads.

Under the budget a call may run on fewer threads than configured while others hold them. Every
result but the convolution family's grad_weight is bitwise independent of the thread count
(test_determinism.py), so those compare bitwise at any count; grad_weight must equal the serial
result at one of the thread counts 1..configured.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cnnfast
import cnnfast.functional as F
from cnnfast import _core

F32 = np.float32


def _jobs(rng):
    """(name, fn, indices of the outputs that may depend on the thread count)."""
    def r(*s):
        return rng.standard_normal(s).astype(F32)
    jobs = []
    for i in range(4):
        x, w, b = r(3, 6, 14 + i, 11), r(8, 6, 3, 2), r(8)
        kw = dict(stride=1 + i % 2, padding=["same", 1, "valid", "full"][i], dilation=1 + i // 3)
        gy = r(*F.conv2d(x, w, b, **kw).shape)
        jobs.append((f"conv2d{i}", lambda x=x, w=w, b=b, kw=kw, gy=gy: (
            F.conv2d(x, w, b, **kw),) + F.conv2d_backward(gy, x, w, b, **kw), (2,)))
    x1, w1 = r(4, 5, 40), r(7, 5, 3)
    g1 = r(4, 7, 38)
    jobs.append(("conv1d", lambda: (F.conv1d(x1, w1),) + F.conv1d_backward(g1, x1, w1), (2,)))
    x3, w3 = r(2, 3, 6, 7, 5), r(4, 3, 2, 3, 2)
    g3 = r(*F.conv3d(x3, w3, padding=1).shape)
    jobs.append(("conv3d", lambda: (F.conv3d(x3, w3, padding=1),) + F.conv3d_backward(
        g3, x3, w3, padding=1), (2,)))
    xt, wt, bt = r(2, 4, 7, 6), r(4, 3, 3, 3), r(3)
    gt = r(*F.conv_transpose2d(xt, wt, bt, stride=2).shape)
    jobs.append(("conv_transpose2d", lambda: (F.conv_transpose2d(xt, wt, bt, stride=2),)
                 + F.conv_transpose2d_backward(gt, xt, wt, bt, stride=2), (2,)))
    wtl = r(2, 3, 5, 4, 3, 3)
    xtl = r(2, 4, 9, 10)
    gtl = r(*F.tiled_conv2d(xtl, wtl, padding=1).shape)
    jobs.append(("tiled_conv2d", lambda: (F.tiled_conv2d(xtl, wtl, padding=1),)
                 + F.tiled_conv2d_backward(gtl, xtl, wtl, padding=1), (2,)))
    xp = r(4, 6, 17, 13)
    y, sw = F.max_pool2d(xp, 3, 2, 1, return_indices=True)
    gp, gu = r(*y.shape), r(*xp.shape)
    jobs.append(("pool", lambda: (F.max_pool2d(xp, 3, 2, 1), F.max_pool2d_backward(
        gp, xp, 3, 2, 1, indices=sw), F.avg_pool2d(xp, 2), F.adaptive_max_pool2d(xp, 5),
        F.lp_pool2d(xp, 2, 3)), ()))
    jobs.append(("unpool", lambda: (F.max_unpool2d(y, sw), F.max_unpool2d_backward(gu, y, sw)),
                 ()))
    a, bm = r(70, 90), r(90, 50)
    gm = r(70, 50)
    xl, wl, bl = r(5, 3, 40), r(30, 40), r(30)
    gl = r(5, 3, 30)
    jobs.append(("matmul_linear", lambda: (F.matmul(a, bm),) + F.matmul_backward(gm, a, bm)
                 + (F.linear(xl, wl, bl),) + F.linear_backward(gl, xl, wl, bl), ()))
    xn = r(6, 5, 9, 8)
    gn = r(*xn.shape)
    ones, zeros = np.ones(5, F32), np.zeros(5, F32)
    jobs.append(("norm", lambda: F.batch_norm(xn, None, None, ones, zeros, training=True,
                                              return_stats=True)
                 + F.batch_norm_backward(gn, xn, None, None, ones, zeros, training=True)
                 + (F.local_response_norm(xn, 3), F.local_contrast_norm_backward(gn, xn, 5),
                    F.global_contrast_norm(xn)), ()))
    jobs.append(("interp_act_loss", lambda: (
        F.interpolate(xn, scale_factor=2, mode="bilinear"), F.softmax(xn), F.tanh(xn),
        F.cross_entropy_backward(1.0, xn, np.zeros((6, 9, 8), np.int64))), ()))
    return jobs


def _run(job):
    return [None if v is None else np.array(v) for v in job[1]()]


def _serial_at(jobs, nt):
    cnnfast.set_num_threads(nt)
    return [_run(j) for j in jobs]


@pytest.fixture
def restore_threads():
    before = cnnfast.get_num_threads()
    yield
    cnnfast.set_num_threads(before)


@pytest.mark.parametrize("nt", [1, 2, 3])
def test_many_threads_mixed_ops_match_serial(rng, nt, restore_threads):
    jobs = _jobs(rng)
    serial = {k: _serial_at(jobs, k) for k in range(1, nt + 1)}
    cnnfast.set_num_threads(nt)
    order = [i for _ in range(3) for i in rng.permutation(len(jobs))]
    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(lambda i: (i, _run(jobs[i])), order))
    for i, got in results:
        name, _, split_dependent = jobs[i]
        for o, g in enumerate(got):
            if o in split_dependent:  # grad_weight: the serial result at some thread count
                assert any(np.array_equal(g, serial[k][i][o]) for k in serial), f"{name}[{o}]"
            else:
                np.testing.assert_array_equal(g, serial[nt][i][o], err_msg=f"{name}[{o}]")


@pytest.mark.skipif(not cnnfast.info()["openmp"], reason="built without OpenMP")
def test_thread_budget_caps_concurrent_calls(rng, restore_threads):
    """6 Python threads hammer a threaded GEMM with set_num_threads(4): the OpenMP workers
    running at once besides the callers never exceed 3 (6 · 3 = 18 without the budget), while
    one call alone gets all 4 threads."""
    a = rng.standard_normal((256, 256)).astype(F32)
    cnnfast.set_num_threads(4)
    want = F.matmul(a, a)
    _core._reset_thread_stats()
    F.matmul(a, a)
    alone = _core._thread_stats()
    assert alone["peak_workers"] == 3 and alone["shrunk"] == 0, alone

    start = threading.Barrier(6)

    def hammer(_):
        start.wait()
        return all(np.array_equal(F.matmul(a, a), want) for _ in range(25))

    _core._reset_thread_stats()
    with ThreadPoolExecutor(max_workers=6) as ex:
        assert all(ex.map(hammer, range(6)))
    busy = _core._thread_stats()
    assert busy["regions"] == 150
    assert busy["peak_workers"] <= 3, busy
    assert busy["shrunk"] > 0, f"no two calls overlapped, the budget was not exercised: {busy}"


_FORK_SCRIPT = r"""
import os, sys, warnings
import numpy as np
import cnnfast, cnnfast.functional as F
from cnnfast import _core
rng = np.random.default_rng(int(sys.argv[1]))
x = rng.standard_normal((4, 8, 40, 40)).astype(np.float32)
w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
cnnfast.set_num_threads(2)

def forked(check):
    pid = os.fork()
    if pid == 0:
        try:
            check()
            code = 0
        except BaseException as e:
            print("child:", repr(e), flush=True)
            code = 1
        os._exit(code)
    return os.waitpid(pid, 0)[1]

def early():  # forked before any team: free to run its own
    assert not cnnfast.info()["threads_limited_by_fork"]
    assert cnnfast.get_num_threads() == 2
    _core._reset_thread_stats()
    F.conv2d(x, w, algo="gemm")
    assert _core._thread_stats()["peak_workers"] == 1, _core._thread_stats()

assert forked(early) == 0
_core._reset_thread_stats()
want = F.conv2d(x, w, algo="gemm")
assert _core._thread_stats()["peak_workers"] == 1, "the parent ran no team"

def late():  # forked after a team: one thread, same result, a warning for more
    assert cnnfast.info()["threads_limited_by_fork"] and cnnfast.get_num_threads() == 1
    assert np.array_equal(F.conv2d(x, w, algo="gemm"), want)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cnnfast.set_num_threads(2)
    assert [c.category for c in caught] == [RuntimeWarning], caught
    assert cnnfast.get_num_threads() == 1
    assert np.array_equal(F.conv2d(x, w, algo="gemm"), want)

assert forked(late) == 0
assert not cnnfast.info()["threads_limited_by_fork"] and cnnfast.get_num_threads() == 2
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
@pytest.mark.skipif(not cnnfast.info()["openmp"], reason="built without OpenMP")
def test_a_child_forked_after_threads_ran_stays_on_one_thread(rng):
    """GNU OpenMP's pool does not survive fork(): before the fork handler a child that convolved
    after its parent had run a team waited forever. Now it runs on one thread with the parent's
    result, and a child forked before any team keeps its threads."""
    seed = str(int(rng.integers(2**31)))
    try:
        out = subprocess.run([sys.executable, "-c", _FORK_SCRIPT, seed], capture_output=True,
                             text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the forked child hung")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr
