"""Threads and SIMD level of the kernels.

**Threads.** Calls above the parallel threshold run on :func:`get_num_threads` OpenMP
threads: the count given to :func:`set_num_threads`, else OpenMP's own setting
(``OMP_NUM_THREADS``, or a ``threadpoolctl.threadpool_limits`` limit on the "openmp" API),
read at each call. Results do not depend on the count.

**Limit.** The kernels run on at most ``4 x`` the CPUs this process may run on (its affinity
mask on Linux, ``os.sched_getaffinity``; else the machine's hardware threads): more threads
than that only slow kernels that are bound by memory, and some thousands exhaust the OpenMP
runtime (a crash). A few threads per CPU stay allowed, so that a small machine can run the
thread counts whose results one compares. ``set_num_threads(n)`` above the limit warns once
(``RuntimeWarning``) and uses the limit; OpenMP's own setting (``OMP_NUM_THREADS``,
threadpoolctl) is capped alike, silently: :func:`get_num_threads` says the count in use.

**Fork.** GNU OpenMP (libgomp, the usual runtime on Linux) does not survive ``fork()``: a
child forked after the parent ran a parallel region can hang in its first parallel region.
So in such a child (e.g. a ``multiprocessing`` worker with the "fork" start method) fastgd
runs every kernel on one thread, without calling into OpenMP, and :func:`get_num_threads`
returns 1. Results are the same bits, only slower. ``set_num_threads(n)`` with ``n >= 2`` in
the child asks for threads again: that is safe with runtimes that handle fork (LLVM's
libomp), and at the caller's risk with GNU OpenMP. A child forked before any parallel
region, or started with "spawn" / "forkserver", is unaffected. Only fastgd's own parallel
regions are tracked: after another library's regions on the same OpenMP runtime, prefer
the "spawn" or "forkserver" start method.

The thread count is process-wide: :func:`num_threads` in one Python thread also changes
the count another Python thread's kernels run on (never their results). Several Python
threads may train at once; each model's result is the one it gets alone.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import os
import warnings
from collections.abc import Iterator

from fastgd import _core

__all__ = ["set_num_threads", "get_num_threads", "num_threads", "simd_level", "available_simd_levels",
           "set_simd_level"]


# What set_num_threads was last given (0 = follow OpenMP), so num_threads() can restore it.
_setting = 0


def set_num_threads(n: int) -> None:
    """Threads for large kernel calls. 0 restores the default: OpenMP's own setting
    (``OMP_NUM_THREADS``, or threadpoolctl's limit), read at each call.

    ``n`` must be an integer (``TypeError``) and ``>= 0`` (``ValueError``). Above the limit
    (``4 x`` the CPUs available, see the module docstring) it warns (``RuntimeWarning``) and
    uses the limit.

    In a process forked after a parallel region, kernels run on one thread until this is
    called with ``n >= 2`` (see the module docstring: at your risk with GNU OpenMP)."""
    global _setting
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an integer (a number of threads, 0 = OpenMP's setting), got {n!r}")
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0 (a number of threads, 0 = OpenMP's setting), got {n}")
    limit = _core.thread_limit()
    if n > limit:
        warnings.warn(f"set_num_threads({n}): using {limit} threads, {_core.threads_per_cpu} per CPU available to "
                      f"this process ({_core.available_cpus()}); more only slow the kernels", RuntimeWarning,
                      stacklevel=_caller_level())
        n = limit
    _core.set_num_threads(n)
    _setting = n


def _caller_level() -> int:
    """set_num_threads' stacklevel for warnings.warn: the first frame outside this module and
    contextlib (the user's line, also through ``with num_threads(n)``)."""
    frame, level = inspect.currentframe(), 0
    frame = frame.f_back if frame is not None else None  # set_num_threads: level 1
    while frame is not None and frame.f_code.co_filename in (__file__, contextlib.__file__):
        frame, level = frame.f_back, level + 1
    return level + 1


def get_num_threads() -> int:
    """Threads the kernels use for calls above the parallel threshold (1 in a child forked
    after a parallel region, see the module docstring)."""
    return _core.get_num_threads()


def _after_fork_in_child() -> None:
    # The parent's count is not the child's request: `with num_threads(1)` in the child must
    # not restore it on exit (the C++ side has dropped it already).
    global _setting
    if _core.forked_serial():
        _setting = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """``with fastgd.num_threads(1): ...`` runs the block's kernels on n threads."""
    previous = _setting
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def simd_level() -> str:
    """The instruction-set level of the kernels in use: 'avx512', 'avx2', 'baseline' (x86-64
    SSE2), 'neon' or 'scalar'."""
    return _core.simd_level()


def available_simd_levels() -> list[str]:
    """Levels compiled into this build that this CPU can run, lowest first."""
    return list(_core.supported_simd_levels())


def set_simd_level(name: str) -> None:
    """Use another level (one of :func:`available_simd_levels`): for tests and comparisons.
    The environment variable ``FASTGD_ISA`` does the same at import."""
    _core.set_simd_level(name)


def _check_env_level() -> None:
    want = os.environ.get("FASTGD_ISA")
    if want and want != simd_level() and not (want == "baseline" and simd_level() in ("neon", "scalar")):
        warnings.warn(f"FASTGD_ISA={want!r} is not available here (levels: {available_simd_levels()}); "
                      f"using {simd_level()!r}", RuntimeWarning, stacklevel=3)
