"""cnnfast — fast convolutional networks on NumPy arrays.

A C++ core (SIMD + OpenMP kernels, chosen at run time for this CPU) behind PyTorch-shaped
functions in :mod:`cnnfast.functional`. ``cnnfast.info()`` says what the build and CPU picked.
"""
from __future__ import annotations

import numbers
import warnings

from . import _core
from . import functional
from . import cuda, init, nn, optim
from .summary import summary  # cnnfast.summary(model, input_shape)

__version__: str = _core.version()
_core.isa_active()  # picks the ISA now: a bad CNNFAST_ISA fails the import, naming the variable
__all__ = ["functional", "nn", "optim", "init", "cuda", "info", "set_num_threads", "get_num_threads", "set_isa", "__version__"]
__all__ += ["summary"]


def info() -> dict:
    """Build and run-time facts: version and the commit built, ISA picked and available (and
    emulated, in the AVX-512 emulation test build only), OpenMP, threads, the float32
    microkernels the picked ISA runs, CUDA (built; device found — queried on first call, never
    at import — its name, or why none)."""
    return {
        "version": __version__,
        "build_commit": _core.build_commit(),  # the git commit this build was made from
        "isa": _core.isa_active(),
        "isa_detected": _core.isa_detected(),
        "isa_available": list(_core.isa_available()),
        "isa_emulated": list(_core.isa_emulated()),  # non-empty only in a test build
        "openmp": bool(_core.openmp_enabled()),
        "num_threads": _core.get_num_threads(),
        # a process forked after cnnfast ran threads stays on one (see set_num_threads)
        "threads_limited_by_fork": bool(_core.threads_limited_by_fork()),
        "kernels": list(_core.kernels()),
        "cuda_built": bool(_core.cuda_built()),
        "cuda_device_found": cuda.is_available(),
        "cuda_device_name": cuda.device_info()["name"] or None,
        "cuda_reason": cuda.reason() or None,
    }


def set_num_threads(n: int) -> None:
    """Threads used by every kernel (default: OMP_NUM_THREADS or the core count). More than the
    CPUs the process may run on oversubscribes them: OpenMP's waiting workers spin, and every op
    slows sharply (64 threads on 2 cores: a conv2d 31x slower).

    A process forked (``os.fork``, multiprocessing's 'fork' start method) after cnnfast ran a
    multi-threaded op stays single-threaded: GNU OpenMP's worker pool does not survive fork, and a
    team started there would wait forever. Use the 'spawn' or 'forkserver' start method for
    workers that need threads; here n > 1 only warns."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if n > 2**31 - 1:
        raise ValueError(f"set_num_threads: n must fit in an int, got {n}")
    _core.set_num_threads(int(n))
    if n > 1 and _core.threads_limited_by_fork():
        warnings.warn(f"set_num_threads({n}): this process was forked after cnnfast ran OpenMP "
                      "threads, whose pool does not survive fork; it stays on 1 thread (use the "
                      "'spawn' or 'forkserver' start method)", RuntimeWarning, stacklevel=2)


def get_num_threads() -> int:
    return _core.get_num_threads()


def set_isa(isa: str) -> None:
    """Force the kernel ISA ('scalar', 'avx2', 'avx512'); 'auto' returns to the detected best.

    Also settable at start-up with the environment variable CNNFAST_ISA.
    """
    if not isinstance(isa, str):
        raise TypeError(f"set_isa: isa must be a str, got {type(isa).__name__}")
    _core.set_isa(_core.isa_detected() if isa == "auto" else isa)
