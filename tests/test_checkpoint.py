"""Checkpoint .npz files: exact round trip of nested state without pickle, atomic replacement
that survives a crash (and a SIGKILL) mid-save, clear errors for files that are not checkpoints,
corrupt or malicious (pickled objects, huge declared shapes, truncated or bit-flipped zips)."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

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


def test_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        save_checkpoint(tmp_path / "m.npz", {"epoch": 1})
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o640  # not mkstemp's 0600


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


_SAVER = r"""
import sys
import numpy as np
from cnnfast.checkpoint import save_checkpoint
path, step = sys.argv[1], int(sys.argv[2])
big = np.empty(1_500_000)                       # 12 MB per save
while True:
    step += 1
    big.fill(step)
    save_checkpoint(path, {"step": step, "w": big, "tail": np.full(7, step, np.int64)})
    print(step, flush=True)
"""


def test_sigkill_mid_save_keeps_previous_intact(tmp_path, rng):
    """A process saving big checkpoints in a loop is SIGKILLed at random moments; every time the
    checkpoint on disk is a whole earlier save (never a half file), at least the last one the
    saver reported done."""
    path = tmp_path / "c.npz"
    step, mid_write_kills = 0, 0
    for kill in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(step)],
                                stdout=subprocess.PIPE, text=True)
        try:
            done = int(proc.stdout.readline())  # one save completed: the loop is running
            time.sleep(float(rng.uniform(0.0, 0.06)))
        finally:
            proc.send_signal(signal.SIGKILL)
            rest = proc.communicate()[0].split()
            proc.wait()
        done = int(rest[-1]) if rest else done
        state = load_checkpoint(path)
        assert state["step"] in (done, done + 1), (state["step"], done)  # +1: killed after replace
        assert state["w"].shape == (1_500_000,) and (state["w"] == state["step"]).all()
        np.testing.assert_array_equal(state["tail"], np.full(7, state["step"]))
        others = [p for p in os.listdir(tmp_path) if p != "c.npz"]
        assert all(p.startswith("c.npz.") and p.endswith(".tmp") for p in others), others
        mid_write_kills += len(others) > 0
        for p in others:
            os.remove(tmp_path / p)
        step = state["step"]
        if kill >= 3 and mid_write_kills:
            break
    assert mid_write_kills, "no kill landed inside a save (nothing was tested)"


def _npz_with(path, entries):
    """A zip of raw .npy entries (name -> bytes), as np.savez writes them."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)


def _npy(arr=None, header=None, payload=b""):
    buf = io.BytesIO()
    if arr is not None:
        np.lib.format.write_array(buf, arr, allow_pickle=True)
        return buf.getvalue()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


class _Evil:
    def __reduce__(self):
        return (open, (_Evil.marker, "w"))  # loading would create the marker file


def test_malicious_and_corrupt_npz(tmp_path, rng):
    good = tmp_path / "good.npz"
    save_checkpoint(good, {"w": rng.standard_normal(1000)})
    tree = _npy(np.array(json.dumps({"format": ckpt.FORMAT,
                                     "tree": {"dict": [["w", {"array": "a0", "scalar": False}]]}})))
    cases = {}
    _Evil.marker = str(tmp_path / "pwned")
    cases["pickle"] = ({"__tree__.npy": tree, "a0.npy": _npy(np.array([_Evil()], object))},
                       "object array")
    cases["huge_dims"] = ({"__tree__.npy": tree, "a0.npy": _npy(header={
        "descr": "<f8", "fortran_order": False, "shape": (2**31, 2**20)}, payload=b"\0" * 64)},
        "declares shape")
    cases["short_data"] = ({"__tree__.npy": tree, "a0.npy": _npy(header={
        "descr": "<f4", "fortran_order": False, "shape": (1000,)}, payload=b"\0" * 400)},
        "declares shape")
    cases["not_npy"] = ({"__tree__.npy": tree, "a0.npy": b"\x93NUMPY garbage"}, "a0.npy")
    cases["extra_entry"] = ({"__tree__.npy": tree, "a0.npy": _npy(np.ones(3)), "run.sh": b"x"},
                            "unexpected entry")
    cases["bad_tree"] = ({"__tree__.npy": _npy(np.array("[1, 2]"))}, "corrupt checkpoint")
    cases["dangling"] = ({"__tree__.npy": tree}, "corrupt checkpoint")  # a0 missing
    cases["bad_json"] = ({"__tree__.npy": _npy(np.array("{not json"))}, "corrupt checkpoint")
    for name, (entries, match) in cases.items():
        p = tmp_path / f"{name}.npz"
        _npz_with(p, entries)
        with pytest.raises(ValueError, match=match) as e:
            load_checkpoint(p)
        assert str(p) in str(e.value), name
    assert not os.path.exists(_Evil.marker)
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the array payload: the CRC no longer matches
    (tmp_path / "crc.npz").write_bytes(bytes(flipped))
    for name in ("trunc.npz", "crc.npz"):
        with pytest.raises(ValueError, match=name):
            load_checkpoint(tmp_path / name)
