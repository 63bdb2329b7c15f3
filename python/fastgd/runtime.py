"""Threads and SIMD level of the kernels.

**Threads.** Calls above the parallel threshold run on :func:`get_num_threads` OpenMP
threads: the count given to :func:`set_num_threads`, else OpenMP's own setting
(``OMP_NUM_THREADS``, or a ``threadpoolctl.threadpool_limits`` limit on the "openmp" API),
read at each call. Results do not depend on the count.

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

    In a process forked after a parallel region, kernels run on one thread until this is
    called with ``n >= 2`` (see the module docstring: at your risk with GNU OpenMP)."""
    global _setting
    _core.set_num_threads(int(n))
    _setting = int(n)


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
