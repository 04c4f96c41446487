"""Shared pieces of the test_fuzz_*.py files: hypothesis settings scaled by CNNFAST_FUZZ_EXAMPLES
(conv2d's per-test count; 3000 by default, 400 in the sanitizer stage, 50,000 with CNNFAST_SOAK=1),
elementwise error bounds against float64 references, and checks of backward ops along random
directions (exact for ops linear in the argument, a central difference of the reference otherwise).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import cnnfast

SOAK = bool(os.environ.get("CNNFAST_SOAK"))
BASE = int(os.environ.get("CNNFAST_FUZZ_EXAMPLES", 50000 if SOAK else 3000))

DTYPES = st.sampled_from([np.float32, np.float32, np.float64])
BAD_DTYPES = st.sampled_from([np.int8, np.int64, np.float16, np.complex64, bool])
EPS = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}


def fuzz(default: int):
    """Settings for a test that runs `default` cases when test_fuzz_conv2d runs 3000 (the same
    CNNFAST_FUZZ_EXAMPLES / CNNFAST_SOAK scale every fuzz file)."""
    return settings(max_examples=max(10, default * BASE // 3000), deadline=None,
                    derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


# Kernel thread count per case: mostly 1 (fast on a loaded machine; each case is tiny), a quarter
# at 2 so the threaded splits (ranges, per-thread partials, scratch) are fuzzed too.
THREADS = st.sampled_from([1, 1, 1, 2])


@contextlib.contextmanager
def num_threads(n: int):
    before = cnnfast.get_num_threads()
    cnnfast.set_num_threads(n)
    try:
        yield
    finally:
        cnnfast.set_num_threads(before)


def threaded(test):
    """Appends a `threads` argument (give it THREADS in @given) and runs the test under that
    kernel thread count."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        if "threads" in kwargs:
            threads = kwargs.pop("threads")
        else:
            *args, threads = args
        with num_threads(threads):
            return test(*args, **kwargs)
    params = list(inspect.signature(test).parameters.values())
    run.__signature__ = inspect.Signature(
        params + [inspect.Parameter("threads", inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    return run


def corrupt(draw, share: int = 4) -> bool:
    """True in share/10 of the draws: the draw then corrupts one argument."""
    return draw(st.integers(0, 9)) < share


def assert_bounded(got, want, scale, what="", factor=16.0):
    """|got − want| ≤ ε·factor·scale elementwise (scale: the same op on absolute values, the
    rounding bound of a sum of products, or |want| for a few-operation formula)."""
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    eps = EPS[got.dtype]
    bound = eps * factor * (np.asarray(scale, np.float64) + 1e-30) + 1e-300
    bad = ~(np.abs(got.astype(np.float64) - want) <= bound)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements off, first at {i}: "
                             f"got {got[i]!r}, want {want[i]!r}")


def assert_near(got, want, rtol, what="", terms=None):
    """|got − want| ≤ rtol·(|want| + max|want| / 1000) elementwise (nonlinear formulas); where
    want is a sum that cancels, `terms` (the sum of the terms' magnitudes) replaces |want|."""
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    mag = np.abs(want) if terms is None else np.maximum(np.abs(want), terms)
    floor = np.max(mag) / 1000 if want.size else 0.0
    bad = ~(np.abs(got.astype(np.float64) - want) <= rtol * (mag + floor) + 1e-300)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape)
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements off, first at {i}: "
                             f"got {got[i]!r}, want {want[i]!r}")


def check_directional(f, args, grads, gy, rng, what="", linear=False):
    """For every grads[i] not None: <grads[i], v> equals d/dt Σ gy·f(args with args[i] + t·v)
    at t = 0, for a random v. f is a float64 reference forward of all args. For f linear in
    args[i] the derivative is exactly Σ gy·f(args with args[i] = v); otherwise a central
    difference. Tolerance relative to Σ|grads[i]·v| (cancellation-proof)."""
    args = [np.asarray(a, np.float64) for a in args]
    gy = np.asarray(gy, np.float64)
    single = [g for g in grads if g is not None]
    f32 = any(g.dtype == np.float32 for g in single)
    for i, g in enumerate(grads):
        if g is None:
            continue
        assert g.shape == args[i].shape, f"{what}: grad {i} shape {g.shape} != {args[i].shape}"
        assert np.all(np.isfinite(g)), f"{what}: grad {i} has NaN/Inf"
        v = rng.standard_normal(args[i].shape)
        an = float(np.sum(g.astype(np.float64) * v))
        mag = float(np.sum(np.abs(g.astype(np.float64) * v)))
        if linear:
            a = list(args)
            a[i] = v
            want, noise = float(np.sum(gy * f(*a))), 0.0
            tol = 1e-4 if f32 else 1e-10
        else:
            h = 1e-6 * (1.0 + float(np.max(np.abs(args[i]), initial=0.0)))
            plus, minus = list(args), list(args)
            plus[i], minus[i] = args[i] + h * v, args[i] - h * v
            fp, fm = np.sum(gy * f(*plus)), np.sum(gy * f(*minus))
            want = float((fp - fm) / (2 * h))
            noise = 1e-14 * float(np.sum(np.abs(gy * f(*args)))) / h
            tol = 2e-3 if f32 else 2e-6
        # Cancellation floor: ops like LCN on two pixels are nearly scale-invariant, so the exact
        # <grad, v> is ~0 and both sides are rounding noise of unit-Jacobian size.
        floor = 0.01 * tol * float(np.linalg.norm(gy) * np.linalg.norm(v))
        assert abs(an - want) <= tol * mag + noise + floor + 1e-300, \
            f"{what}: grad {i}: <grad, v> = {an!r}, reference derivative {want!r} (|.| {mag:.3g})"
