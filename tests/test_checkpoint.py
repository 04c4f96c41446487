"""Checkpoint .npz files: exact round trip of nested state without pickle, atomic replacement
that survives a crash mid-save, clear errors for files that are not checkpoints."""
from __future__ import annotations

import os

import numpy as np
import pytest

import cnnfast.checkpoint as ckpt
from cnnfast.checkpoint import load_checkpoint, save_checkpoint


def _tree(rng):
    return {
        "epoch": 3, "seed": 2**40 + 7, "lr": 0.1 + 1e-17, "name": "lenet5", "none": None,
        "flag": True, "nan": float("nan"),
        "model": {"features.0.weight": rng.standard_normal((6, 1, 5, 5)).astype(np.float32),
                  "features.0.bias": rng.standard_normal(6)},
        "optimizer": {"state": {0: {"momentum_buffer": rng.standard_normal((3, 2))},
                                1: {"step": np.int64(12)}},
                      "param_groups": [{"lr": 0.05, "betas": (0.9, 0.999), "params": [0, 1]}]},
        "history": {"loss": [1.5, 0.7], "val_loss": [None, None]},
        "ints": rng.integers(0, 9, (2, 2), dtype=np.uint8), "empty": np.zeros((0, 3)),
    }


def _assert_same(a, b, where="state"):
    assert type(a) is type(b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)), \
        f"{where}: {type(a)} vs {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def test_roundtrip_exact(tmp_path, rng):
    state = _tree(rng)
    path = tmp_path / "sub" / "c.npz"
    save_checkpoint(path, state)
    _assert_same(state, load_checkpoint(path))
    with np.load(path, allow_pickle=False) as npz:  # a plain npz, readable without pickle
        assert ckpt.TREE_KEY in npz.files
    assert os.listdir(path.parent) == ["c.npz"]  # no temp files left behind


def test_refuses_what_needs_pickle(tmp_path):
    with pytest.raises(TypeError, match=r"state\['x'\] is an object array"):
        save_checkpoint(tmp_path / "c.npz", {"x": np.array([1, "a"], dtype=object)})
    with pytest.raises(TypeError, match="cannot store"):
        save_checkpoint(tmp_path / "c.npz", {"x": {1, 2}})
    with pytest.raises(TypeError, match="not a str or int"):
        save_checkpoint(tmp_path / "c.npz", {"x": {(1, 2): 3}})
    assert not os.listdir(tmp_path)


def test_crash_mid_save_keeps_previous(tmp_path, rng, monkeypatch):
    path = tmp_path / "c.npz"
    first = _tree(rng)
    save_checkpoint(path, first)

    def crashing_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("killed mid-save")
    monkeypatch.setattr(ckpt.np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 99})
    monkeypatch.undo()
    _assert_same(first, load_checkpoint(path))
    assert os.listdir(tmp_path) == ["c.npz"]


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_checkpoint(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.npz"):
        load_checkpoint(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.arange(3))
    with pytest.raises(ValueError, match="not a cnnfast checkpoint"):
        load_checkpoint(plain)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __tree__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz"):
        load_checkpoint(pickled)
