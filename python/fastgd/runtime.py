"""Threads and SIMD level of the kernels."""

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
    (``OMP_NUM_THREADS``, or threadpoolctl's limit), read at each call."""
    global _setting
    _core.set_num_threads(int(n))
    _setting = int(n)


def get_num_threads() -> int:
    """Threads the kernels use for calls above the parallel threshold."""
    return _core.get_num_threads()


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
