"""Checkpoints as NumPy .npz without pickle: nested dicts/lists/tuples of arrays and plain
scalars (model, optimizer and scheduler state dicts, history, config).

The tree's structure goes into one JSON string (`__tree__`); every array is its own npz entry.
Writes are atomic: a temporary file in the same directory, fsync, then os.replace, so a crash
mid-save leaves the previous checkpoint intact (a process killed mid-save may leave its
`<name>.*.tmp` behind, never a half checkpoint). Reads never unpickle (allow_pickle=False) and
check every entry's .npy header against the bytes the file holds before NumPy allocates the
declared shape, so a corrupt or malicious file raises ValueError instead of allocating unbounded
memory or running code.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from typing import Any, Dict

import numpy as np
from numpy.lib import format as npy_format

TREE_KEY = "__tree__"
FORMAT = "cnnfast-checkpoint-1"
_MAX_DEFLATE_RATIO = 1032  # no deflate stream expands more than ~1032:1


def _encode(obj, arrays: Dict[str, np.ndarray], where: str):
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        arr = np.asarray(obj)
        if arr.dtype == object:
            raise TypeError(f"checkpoint: {where} is an object array (would need pickle)")
        key = f"a{len(arrays)}"
        arrays[key] = arr
        return {"array": key, "scalar": isinstance(obj, np.generic)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"checkpoint: {where} has a key {k!r} that is not a str or int")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        return {"tuple" if isinstance(obj, tuple) else "list":
                [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if hasattr(obj, "__array__"):  # e.g. a torch tensor handed over by mistake: store its values
        return _encode(np.asarray(obj), arrays, where)
    raise TypeError(f"checkpoint: cannot store {where} of type {type(obj).__name__}")


def _decode(node, arrays):
    if "array" in node:
        arr = arrays[node["array"]]
        return arr[()] if node["scalar"] else arr
    if "value" in node:
        return node["value"]
    if "dict" in node:
        return {k: _decode(v, arrays) for k, v in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    raise ValueError(f"checkpoint: unknown node {sorted(node)}")


def save_checkpoint(path, state: Dict[str, Any]) -> None:
    """Writes `state` (a dict tree) to `path` atomically."""
    path = os.fspath(path)
    arrays: Dict[str, np.ndarray] = {}
    tree = _encode(dict(state), arrays, "state")
    arrays[TREE_KEY] = np.array(json.dumps({"format": FORMAT, "tree": tree}))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # mkstemp's 0600 -> what open() would have given
                os.fchmod(f.fileno(), 0o666 & ~_umask())
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask() -> int:
    """The process umask: from /proc (no change to it), else set and restored at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_entries(zf: zipfile.ZipFile) -> None:
    """Every entry is a .npy of a plain (non-object) dtype whose header's shape needs exactly
    the bytes the entry holds (np.load allocates the declared shape before reading it)."""
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise ValueError(f"unexpected entry {name!r}")
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 4096:
            raise ValueError(f"entry {name!r} declares {info.file_size} bytes, more than its "
                             f"{info.compress_size} compressed bytes can hold")
        with zf.open(info) as f:
            try:
                version = npy_format.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"unsupported .npy version {version}")
                read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                               else npy_format.read_array_header_2_0)
                shape, _, dtype = read_header(f)
            except ValueError as e:
                raise ValueError(f"entry {name!r}: {e}") from None
            header = f.tell()
        if dtype.hasobject:
            raise ValueError(f"entry {name!r} is an object array (pickled data is refused)")
        count = 1
        for d in shape:
            count *= d  # Python ints: no overflow
        if header + count * dtype.itemsize != info.file_size:
            raise ValueError(f"entry {name!r} declares shape {shape} of {dtype} "
                             f"({count * dtype.itemsize} bytes) but holds "
                             f"{info.file_size - header}")


def load_checkpoint(path) -> Dict[str, Any]:
    """Reads a checkpoint written by save_checkpoint (never unpickles anything). ValueError
    naming the file for anything that is not an intact checkpoint."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_entries(zf)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path}: not a readable .npz checkpoint ({e})") from None
    if TREE_KEY not in arrays:
        raise ValueError(f"{path}: not a cnnfast checkpoint (no {TREE_KEY} entry)")
    try:
        meta = json.loads(str(arrays.pop(TREE_KEY)))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"unknown checkpoint format "
                             f"{meta.get('format') if isinstance(meta, dict) else meta!r}")
        return _decode(meta["tree"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise ValueError(f"{path}: corrupt checkpoint ({type(e).__name__}: {e})") from None
