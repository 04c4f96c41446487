"""Shared test helpers: relative error, ISA lists, directional finite-difference checks, small
MNIST-layout IDX files."""
from __future__ import annotations

import os

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


def write_mnist_like(root, rng, n_train=40, n_test=12, size=28, gz=True):
    """Small MNIST-layout IDX files (random uint8 images, labels 0..9) in root; returns root."""
    from cnnfast.data import write_idx
    os.makedirs(root, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        ext = ".gz" if gz else ""
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte{ext}"), images)
        write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte{ext}"), labels)
    return root
