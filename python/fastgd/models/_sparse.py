"""Checks and statistics of scipy.sparse input (CSR rows read in place by the kernels).

scipy is not a dependency of fastgd: nothing here imports it unless a sparse matrix is
handled, and a user who passes one has it.

Every pass over a matrix in NumPy goes through its rows in blocks of about
:data:`_BLOCK_NNZ` stored values (whole rows; one row longer than that is a block of its
own), so that the temporaries stay bounded whatever the matrix size; the column moments are
one compiled call, with arrays of one value per column. The only allocations in proportion
to the matrix are the copy of a matrix that must be converted, and nothing at all for one
taken as it is. Rows are visited in order, so the statistics are the same bits on every
run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastgd import _core
from fastgd._sparse_check import is_sparse
from fastgd.models._base import (
    check_csr_values,
    check_not_empty,
    check_X,
    csr_row_of,
    first_nonfinite,
    warn_copy_once,
)
from fastgd.models._data import is_unit_weights
from fastgd.streaming import RunningMoments, pow2_scale

__all__ = ["check_X_or_csr", "check_csr", "check_csr_values", "is_sparse", "sparse_feature_scale", "sparse_moments"]

# Stored values per block of rows (also the most rows per block): the block's temporaries
# are a few arrays of this many elements (24 bytes each for the statistics: 6 MiB), small
# enough to stay in cache between the block's passes. A test makes it small to exercise the
# merge.
_BLOCK_NNZ = 1 << 18

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def check_X_or_csr(X: Any, *, sparse: bool, dtype: Any = None, finite: bool = True, warn_copy: bool = False) -> Any:
    """:func:`check_csr` for a sparse X when the caller reads sparse rows (``sparse``), else
    :func:`fastgd.models._base.check_X` (which refuses a sparse X)."""
    if sparse and is_sparse(X):
        return check_csr(X, dtype=dtype, finite=finite, warn_copy=warn_copy)
    return check_X(X, dtype=dtype, finite=finite, warn_copy=warn_copy)


def check_csr(X: Any, *, dtype: Any = None, name: str = "X", warn_copy: bool = True, finite: bool = True) -> Any:
    """``X`` as a CSR matrix whose arrays the kernels read in place: float32 or float64 data
    (native byte order), int32 or int64 ``indices`` with an ``indptr`` of the same dtype,
    each contiguous, the structure well formed. Such a matrix (``csr_matrix`` or
    ``csr_array``) is returned as it is, the same object; ``dtype`` (a ``partial_fit`` that
    continues a fit) asks for that data dtype.

    Anything else is converted once (CSC, COO, BSR, DOK, LIL to CSR; integer or boolean data
    to float64, float16 to float32, or to ``dtype``; index arrays of different or other
    dtypes both to int64), with a DataConversionWarning giving the copy's size when
    ``warn_copy``. The result stays a sparse array if ``X`` is one, a matrix if it is one,
    and shares with ``X`` the arrays that needed no conversion (fastgd never writes them).

    Errors (ValueError naming ``name``): not 2-D; no rows or no columns; a malformed
    structure (``indptr`` of the wrong length, not starting at 0, decreasing, or not ending
    at the number of stored values); a column index out of range; a column stored twice in a
    row (scipy sums such duplicates, fastgd would read each: ``X.sum_duplicates()`` first); a
    NaN or an infinity among the values when ``finite`` (False: the caller's next read checks
    them, e.g. :func:`sparse_moments` with ``check=name``).

    Unsorted column indices within rows are taken as they are: the sums over a row then run
    in its stored order, so results may differ in the last bits from those of the same
    matrix with sorted indices (``X.sort_indices()``). Empty rows are fine. int64 indices
    are kept (never narrowed), and no array of the column count is allocated: a matrix of
    more than 2**31 columns is checked like any other.

    Time O(nnz); memory: the blocks' temporaries (see the module's docstring), plus the
    conversion's copy if there is one. A matrix scipy knows is canonical (sorted indices, no
    duplicates: ``has_canonical_format``) skips the duplicate scan."""
    if not is_sparse(X):
        raise TypeError(f"{name} is not a scipy.sparse matrix (got {type(X).__name__})")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D sparse matrix for {name}, got {X.ndim}D with shape {X.shape}")
    check_not_empty(X.shape, name)
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {X.dtype}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} has data of dtype {X.dtype}; fastgd reads numbers: pass X.astype(np.float64)")

    converted, changes, fix = _as_readable_csr(X, dtype, name)
    _check_structure(converted, name)
    if finite:
        check_csr_values(converted, name)
    if converted is not X and warn_copy:
        nbytes = converted.data.nbytes + converted.indices.nbytes + converted.indptr.nbytes
        warn_copy_once(f"{name} needs converting ({changes})", "a CSR matrix", nbytes,
                       f"{fix} to make (and keep) that copy yourself")
    return converted


def sparse_feature_scale(X: Any, sw: np.ndarray, *, check: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scale-only standardization of a CSR ``X`` (``StandardScaler(with_mean=False)``):
    ``(mean, scale)`` with ``mean`` zeros (nothing is centred, so the matrix stays sparse) and
    ``scale`` the weighted standard deviation of each column, implicit zeros included, in
    float64. A zero (or rounding-level) deviation becomes 1, by the dense path's rule
    (:meth:`fastgd.streaming.RunningMoments.mean_std`, relative to the column's own mean).
    See :func:`sparse_moments` for ``sw``, ``check`` and the accuracy."""
    moments = sparse_moments(X, sw, check=check)
    _, scale = moments.mean_std(X.dtype)
    return np.zeros(X.shape[1]), scale


def sparse_moments(X: Any, sw: np.ndarray, *, check: str | None = None) -> RunningMoments:
    """The weighted mean and variance of each column of a CSR ``X`` (one that
    :func:`check_csr` returned), implicit zeros included, as :class:`RunningMoments`, which
    merge with other ranks' (``fastgd.models._inputs.merge_moments``) as the dense path's do.

    ``sw``: ``n_samples`` float64 weights (0 allowed), or ``unit_weights(n)`` (a broadcast of
    one value, detected and never expanded). ``check``: the name of ``X`` for
    :func:`check_csr`'s error when it holds a NaN or an infinity (one read of its values
    first); else such a value makes its column's moments non-finite.

    The corrected two-pass algorithm over the whole matrix, in one compiled call
    (``_core.sparse_column_moments``): the weighted column sums give a first mean; the
    deviations of the stored values from it, and those of the implicit zeros (minus the mean,
    with the weight the column does not store), summed, correct it, and squared give the
    variance. The variance is never the difference E[x^2] - E[x]^2. The implicit zeros' weight
    is exact without weights (whole numbers) and where every row of positive weight stores
    the column; otherwise it is the total weight less the stored weight, within ``eps *
    total weight``: a column whose missing rows carry a fraction ``f`` of the weight gets a
    relative error near ``1e-16 / f``. Columns whose squares overflow (values beyond about
    1e154) are taken again in units of a power of two, as the dense path does."""
    unit = _is_unit(sw)
    if not unit:
        sw = np.asarray(sw, dtype=np.float64)
        if sw.shape != (X.shape[0],):
            raise ValueError(f"sample weights of shape {sw.shape}, expected ({X.shape[0]},)")
    if check is not None:
        check_csr_values(X, check)
    moments = _moments_pass(X, sw, unit, None)
    if moments.mean is not None and moments.var is not None and not (
            np.isfinite(moments.mean).all() and np.isfinite(moments.var).all()):
        first_nan, first_inf = first_nonfinite(X.data)
        if first_nan < 0 and first_inf < 0:  # finite values whose squares or sums overflowed
            bad = ~(np.isfinite(moments.mean) & np.isfinite(moments.var))
            units = np.ones(X.shape[1])
            units[bad] = pow2_scale(_column_max_abs(X)[bad])
            moments = _moments_pass(X, sw, unit, units)
    return moments


# -- conversion ------------------------------------------------------------------------------

def _as_readable_csr(X: Any, dtype: Any, name: str) -> tuple[Any, str, str]:
    """``X`` itself if the kernels can read it, else its one converted copy (sharing the
    arrays that need no conversion); and, for the warning, what was converted and the call
    that would do it."""
    changes: list[str] = []
    chain = name
    if X.format != "csr":
        changes.append(f"{X.format.upper()} to CSR")
        chain += ".tocsr()"
        X = X.tocsr()  # a new matrix, whose arrays the conversions below may reuse
    data_dtype = np.dtype(dtype) if dtype is not None else _float_dtype(X.dtype)
    index_ok = X.indices.dtype == X.indptr.dtype and X.indices.dtype in _INDEX_DTYPES
    contiguous = all(a.ndim == 1 and a.flags.c_contiguous for a in (X.data, X.indices, X.indptr))
    if X.dtype == data_dtype and index_ok and contiguous:
        return X, ", ".join(changes), f"pass {chain}"
    fixes = []
    if X.dtype != data_dtype:
        changes.append(f"{X.dtype} data to {data_dtype.name}")
        chain += f".astype(np.{data_dtype.name})"
    if chain != name:
        fixes.append(f"pass {chain}")
    if not index_ok:
        changes.append(f"{X.indices.dtype} indices and {X.indptr.dtype} indptr to int64")
        fixes.append("give its indices and indptr one dtype, int32 or int64")
    if not changes:
        changes.append("strided views to contiguous arrays")
        fixes.append(f"pass {name}.copy()")
    index_dtype = X.indices.dtype if index_ok else np.dtype(np.int64)
    # A new matrix around the converted arrays, assigned rather than given to the
    # constructor, which would narrow int64 indices whose values fit in int32.
    out = (_scipy_sparse().csr_array if _is_sparray(X) else _scipy_sparse().csr_matrix)(X.shape, dtype=data_dtype)
    out.data = np.ascontiguousarray(X.data, dtype=data_dtype)
    out.indices = np.ascontiguousarray(X.indices, dtype=index_dtype)
    out.indptr = np.ascontiguousarray(X.indptr, dtype=index_dtype)
    return out, ", ".join(changes), " and ".join(fixes)


def _float_dtype(dt: np.dtype) -> np.dtype:
    """The data dtype fastgd reads for data of dtype ``dt``: float32 for float32 and float16,
    float64 for the rest (native byte order)."""
    if dt.kind == "f" and dt.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _is_sparray(X: Any) -> bool:
    sparray = getattr(sys.modules.get("scipy.sparse"), "sparray", None)
    return sparray is not None and isinstance(X, sparray)


def _scipy_sparse() -> Any:
    return sys.modules["scipy.sparse"]  # loaded: X is one of its matrices


# -- structure -------------------------------------------------------------------------------

def _check_structure(X: Any, name: str) -> None:
    """The errors of :func:`check_csr` for a malformed CSR structure, column indices out of
    range and duplicate columns in a row."""
    n, d = X.shape
    indptr, indices = X.indptr, X.indices
    fix = "rebuild it with scipy (X.check_format() says what is wrong)"
    if len(indptr) != n + 1:
        raise ValueError(f"{name} is a malformed CSR matrix: its indptr has {len(indptr)} entries, expected "
                         f"n_rows + 1 = {n + 1}; {fix}")
    if indptr[0] != 0:
        raise ValueError(f"{name} is a malformed CSR matrix: its indptr starts at {indptr[0]}, not 0; {fix}")
    if len(X.data) != len(indices):
        raise ValueError(f"{name} is a malformed CSR matrix: {len(X.data)} values but {len(indices)} column "
                         f"indices; {fix}")
    if indptr[-1] != len(indices):
        raise ValueError(f"{name} is a malformed CSR matrix: its indptr ends at {indptr[-1]}, but it stores "
                         f"{len(indices)} values; {fix}")
    step = max(1, _BLOCK_NNZ)
    for start in range(0, n, step):
        down = np.flatnonzero(np.diff(indptr[start:start + step + 1]) < 0)
        if len(down):
            r = start + int(down[0])
            raise ValueError(f"{name} is a malformed CSR matrix: its indptr decreases at row {r} "
                             f"(indptr[{r}] = {indptr[r]} > indptr[{r + 1}] = {indptr[r + 1]}); {fix}")
    # From here on indptr is monotone from 0 to nnz: the blocks below can slice by it.
    for r0, r1 in _row_blocks(indptr, n, _BLOCK_NNZ):
        k0, k1 = int(indptr[r0]), int(indptr[r1])
        if k0 == k1:
            continue
        idx = indices[k0:k1]
        if idx.min() < 0 or idx.max() >= d:
            k = k0 + int(np.flatnonzero((idx < 0) | (idx >= d))[0])
            raise ValueError(f"{name} has a column index out of range in row {csr_row_of(indptr, k)}: {indices[k]} "
                             f"(it has {d} columns, indices 0 to {d - 1}); {fix}")
    # scipy's own O(nnz) test, safe to call now that the structure is sound.
    if not len(indices) or X.has_canonical_format:
        return
    if d <= _MARKED_COLUMNS and indptr.dtype == indices.dtype and indices.dtype in (np.int32, np.int64):
        # One pass with a mark per column (no sort of the indices).
        row, col = _core.csr_first_duplicate(np.ascontiguousarray(indptr), np.ascontiguousarray(indices), d)
        dup = None if row < 0 else (int(row), int(col))
    else:
        dup = None
        for r0, r1 in _row_blocks(indptr, n, _BLOCK_NNZ):
            k0, k1 = int(indptr[r0]), int(indptr[r1])
            dup = _first_duplicate(indptr, indices[k0:k1], r0, r1, d) if k1 > k0 else None
            if dup is not None:
                break
    if dup is not None:
        raise ValueError(f"{name} has duplicate entries in row {dup[0]} (column {dup[1]}); scipy sums "
                         f"them, fastgd would read each: call {name}.sum_duplicates() first")


# Up to this many columns, the duplicate scan keeps a 4-byte mark per column (64 MiB at most);
# beyond, it sorts each block of rows' (row, column) keys.
_MARKED_COLUMNS = 2**24


def _first_duplicate(indptr: np.ndarray, idx: np.ndarray, r0: int, r1: int, d: int) -> tuple[int, int] | None:
    """(row, column) of the first column stored twice in a row of the block ``r0:r1`` (whose
    column indices are ``idx``), None if none. Rows whose indices increase strictly (sorted
    rows: the usual case) are seen to hold none from one difference per value; otherwise the
    block's (row, column) keys are sorted."""
    counts = np.diff(indptr[r0:r1 + 1])
    steps = np.diff(idx)
    # The step from one row's last value to the next row's first says nothing: set positive.
    ends = np.cumsum(counts[:-1]) - 1
    ends = ends[(ends >= 0) & (ends < len(steps))]
    steps[ends] = 1
    if len(steps) == 0 or steps.min() > 0:
        return None
    rows = np.repeat(np.arange(r1 - r0, dtype=np.int64), counts)
    if (r1 - r0) * d < 2**63:
        keys = np.sort(rows * d + idx)
        same = np.flatnonzero(keys[1:] == keys[:-1])
        if not len(same):
            return None
        key = int(keys[same[0]])
        return r0 + key // d, key % d
    order = np.lexsort((idx, rows))
    rows, cols = rows[order], idx[order]
    same = np.flatnonzero((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1]))
    if not len(same):
        return None
    return r0 + int(rows[same[0]]), int(cols[same[0]])


def _row_blocks(indptr: np.ndarray, n: int, max_nnz: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges ``(r0, r1)`` covering ``0:n``, each of at most ``max_nnz`` rows
    and stored values (or a single row), for a monotone ``indptr``."""
    max_nnz = max(1, int(max_nnz))
    top = int(np.iinfo(indptr.dtype).max)
    r0 = 0
    while r0 < n:
        # The bound in indptr's own dtype: a wider one would make searchsorted copy indptr.
        bound = indptr.dtype.type(min(int(indptr[r0]) + max_nnz, top))
        r1 = int(np.searchsorted(indptr, bound, side="right")) - 1
        r1 = min(max(r1, r0 + 1), n, r0 + max_nnz)
        yield r0, r1
        r0 = r1


# -- statistics ------------------------------------------------------------------------------

def _is_unit(sw: np.ndarray) -> bool:
    return isinstance(sw, np.ndarray) and is_unit_weights(sw)


def _moments_pass(X: Any, sw: np.ndarray, unit: bool, units: np.ndarray | None) -> RunningMoments:
    """One pass of :func:`sparse_moments` over ``X`` (``_core.sparse_column_moments``); with
    ``units`` (one power of two per column), of the values divided by them, the variance kept
    in those units."""
    n = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        weight, mean, var = _core.sparse_column_moments(X, None if unit else np.ascontiguousarray(sw), units)
    if not weight > 0:
        moments = RunningMoments()
        moments.count = n
        return moments
    if units is not None:
        return RunningMoments.from_summary((weight, n, mean * units, var, units))
    return RunningMoments.from_summary((weight, n, mean, var, None))


def _column_max_abs(X: Any) -> np.ndarray:
    """The largest magnitude stored in each column (0 for an empty one), block by block."""
    top = np.zeros(X.shape[1])
    for r0, r1 in _row_blocks(X.indptr, X.shape[0], _BLOCK_NNZ):
        k0, k1 = int(X.indptr[r0]), int(X.indptr[r1])
        np.maximum.at(top, X.indices[k0:k1], np.abs(X.data[k0:k1]).astype(np.float64))
    return top
