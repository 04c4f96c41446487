"""Shared test helpers: relative error, ISA lists, directional finite-difference checks."""
from __future__ import annotations

import numpy as np

import cnnfast

ALL_ISAS = ("scalar", "avx2", "avx512")


def rel_err(got, want) -> float:
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert np.all(np.isfinite(got)), "result has NaN/Inf (unwritten output element?)"
    denom = np.linalg.norm(want)
    return float(np.linalg.norm(got - want) / (denom if denom > 0 else 1.0))


def assert_close(got, want, tol, what=""):
    err = rel_err(got, want)
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.1e}"


def directional_fd(f, args, grads, rng, eps=1e-3, tol=1e-7):
    """Checks <grad_i, v> against the central difference of f along a random v, for every i
    whose grad is not None. f takes the list of args (float64) and returns a scalar."""
    for i, g in enumerate(grads):
        if g is None:
            continue
        v = rng.standard_normal(args[i].shape)
        plus = [a.copy() for a in args]
        minus = [a.copy() for a in args]
        plus[i] += eps * v
        minus[i] -= eps * v
        fd = (f(plus) - f(minus)) / (2 * eps)
        an = float(np.sum(g * v))
        assert abs(fd - an) <= tol * max(1.0, abs(fd)), f"arg {i}: fd {fd!r} vs analytic {an!r}"


def skip_unless_isa(isa):
    import pytest
    if isa not in cnnfast.info()["isa_available"]:
        pytest.skip(f"ISA {isa} not supported by this CPU/build "
                    f"(available: {cnnfast.info()['isa_available']})")
