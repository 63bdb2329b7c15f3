"""The BLAS SGEMM that NumPy's matmul calls, as an address the compiled network step can call
(``fastgd._core.mlp_train_step_``): the same products as ``np.matmul``, without a return to
Python between them.

Found once per process among the BLAS libraries loaded (threadpoolctl lists them): an OpenBLAS
(NumPy's wheels bundle one, ``scipy_openblas``), its integer width (32 or 64 bits) read from
its configuration string. Accepted only if it gives the bits of ``np.matmul`` on a
test product; otherwise (another BLAS, or none found) the network keeps its NumPy passes.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import NamedTuple

import numpy as np

from fastgd import _core

__all__ = ["Sgemm", "numpy_sgemm"]


class Sgemm(NamedTuple):
    address: int
    ilp64: bool  # 64-bit integer arguments


def _candidates() -> list[tuple[str, str]]:
    """(library path, symbol prefix) of the OpenBLAS libraries loaded, NumPy's first."""
    from threadpoolctl import threadpool_info

    libs = [(i["filepath"], i.get("prefix", "")) for i in threadpool_info()
            if i.get("user_api") == "blas" and i.get("internal_api") == "openblas"]
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    return sorted(libs, key=lambda lib: not lib[0].startswith(numpy_dir))


def _symbol(lib: ctypes.CDLL, prefix: str) -> Sgemm | None:
    # scipy-openblas (NumPy's wheels) prefixes its symbols with "scipy_" and, built with
    # 64-bit integers, suffixes them with "64_"; the integer width is read from the library's
    # own configuration string (USE64BITINT), never guessed from a name.
    prefixes = ["scipy_", ""] if prefix.startswith("libscipy") else ["", "scipy_"]
    for p in prefixes:
        for suffix in ("64_", ""):
            try:
                fn = getattr(lib, f"{p}cblas_sgemm{suffix}")
                config = getattr(lib, f"{p}openblas_get_config{suffix}")
            except AttributeError:
                continue
            config.restype = ctypes.c_char_p
            ilp64 = b"USE64BITINT" in (config() or b"")
            return Sgemm(ctypes.cast(fn, ctypes.c_void_p).value or 0, ilp64)
    return None


def _matches_numpy(g: Sgemm) -> bool:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 70), dtype=np.float32)
    b = rng.standard_normal((70, 53), dtype=np.float32)
    c = np.empty((37, 53), np.float32)
    _core.sgemm_(g.address, g.ilp64, a, b, c)
    return bool(np.array_equal(c, a @ b))


@functools.cache
def numpy_sgemm() -> Sgemm | None:
    """NumPy's SGEMM, or None where it cannot be found (see the module docstring)."""
    try:
        for path, prefix in _candidates():
            g = _symbol(ctypes.CDLL(path), prefix)
            if g is not None and g.address and _matches_numpy(g):
                return g
    except Exception:  # no usable library: the NumPy passes remain
        return None
    return None
