"""Runtime facts and controls: info(), threads, ISA forcing (API and CNNFAST_ISA)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import cnnfast


def test_info_keys():
    info = cnnfast.info()
    for key in ("version", "isa", "isa_available", "isa_emulated", "openmp", "num_threads",
                "cuda_built", "cuda_device_found", "cuda_device_name", "cuda_reason"):
        assert key in info
    assert info["isa"] in info["isa_available"]
    assert "scalar" in info["isa_available"]
    assert info["threads_limited_by_fork"] is False  # only in a child forked after a team ran
    # only the AVX-512 emulation test build emulates an ISA, and then avx512 alone
    assert info["isa_emulated"] in ([], ["avx512"])
    # the commit the build was made from (git describe: a hash, maybe -dirty), or 'unknown'
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown|.*-g[0-9a-f]{7,}(-dirty)?",
                        info["build_commit"]), info["build_commit"]
    assert set(info["isa_emulated"]) <= set(info["isa_available"])
    assert info["version"] == cnnfast.__version__
    # every listed microkernel is the picked ISA's (names end in __<isa>)
    assert info["kernels"] and all(k.endswith("__" + info["isa"]) for k in info["kernels"])


def test_threads_roundtrip():
    before = cnnfast.get_num_threads()
    try:
        cnnfast.set_num_threads(1)
        assert cnnfast.get_num_threads() == 1
        assert cnnfast.info()["num_threads"] == 1
    finally:
        cnnfast.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be >= 1"):
        cnnfast.set_num_threads(0)
    with pytest.raises(TypeError):
        cnnfast.set_num_threads(1.5)
    with pytest.raises(ValueError, match="fit in an int"):
        cnnfast.set_num_threads(2**40)
    try:
        cnnfast.set_num_threads(np.int64(1))  # a NumPy integer is an int
        assert cnnfast.get_num_threads() == 1
    finally:
        cnnfast.set_num_threads(before)


def test_set_isa():
    before = cnnfast.info()["isa"]
    try:
        cnnfast.set_isa("scalar")
        assert cnnfast.info()["isa"] == "scalar"
        assert all(k.endswith("__scalar") for k in cnnfast.info()["kernels"])
        cnnfast.set_isa("auto")
        assert cnnfast.info()["isa"] == cnnfast.info()["isa_detected"]
    finally:
        cnnfast.set_isa(before)
    with pytest.raises(ValueError, match="isa must be one of"):
        cnnfast.set_isa("sse9")


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_env_var_forces_isa(isa):
    env = dict(os.environ, CNNFAST_ISA=isa)
    code = "import cnnfast; print(cnnfast.info()['isa'])"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if isa in cnnfast.info()["isa_available"]:
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == isa
    else:
        assert r.returncode != 0 and "not supported" in r.stderr


@pytest.mark.parametrize("value", ["bogus", "AVX2", " avx2"])
def test_a_bad_env_var_fails_the_import_naming_it(value):
    r = subprocess.run([sys.executable, "-c", "import cnnfast"], capture_output=True, text=True,
                       env=dict(os.environ, CNNFAST_ISA=value))
    assert r.returncode != 0 and f"CNNFAST_ISA={value}: must be one of 'auto'" in r.stderr


def test_selfcheck_cli():
    r = subprocess.run([sys.executable, "-m", "cnnfast"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout and '"isa"' in r.stdout
