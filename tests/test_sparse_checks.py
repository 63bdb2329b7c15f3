"""Checks and statistics of scipy.sparse input (fastgd.models._sparse) against scipy's own
view of the matrix (toarray) and a NumPy reference of the weighted scale."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest

from fastgd import _core
from fastgd.models import _sparse
from fastgd.models._base import DataConversionWarning
from fastgd.models._data import weighted_moments
from fastgd.models._inputs import unit_weights
from fastgd.models._sparse import check_csr, check_csr_values, is_sparse, sparse_feature_scale, sparse_moments

sp = pytest.importorskip("scipy.sparse")

CONTAINERS = {"matrix": sp.csr_matrix, "array": sp.csr_array}


def random_csr(n, d, density=0.3, dtype=np.float64, seed=0, container=sp.csr_matrix):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, d)) * (rng.random((n, d)) < density)
    return container(dense.astype(dtype))


def with_index_dtype(X, index_dtype):
    """``X`` with its index arrays of ``index_dtype`` (scipy's constructor would narrow int64
    indices whose values fit in int32)."""
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X


def no_warnings():
    catcher = warnings.catch_warnings()
    catcher.__enter__()
    warnings.simplefilter("error")
    return catcher


# -- is_sparse -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dok", "lil", "dia"])
def test_is_sparse_matrices_and_arrays(fmt):
    X = random_csr(4, 3)
    assert is_sparse(X.asformat(fmt))
    assert is_sparse(sp.csr_array(X).asformat(fmt))


@pytest.mark.parametrize("value", [np.zeros((2, 2)), [[1.0]], None, 3.0, np.ones(3, np.float16)])
def test_is_sparse_false_for_dense(value):
    assert not is_sparse(value)


def test_is_sparse_does_not_import_scipy():
    code = ("import sys, numpy as np\n"
            "from fastgd.models._sparse import is_sparse\n"
            "assert not is_sparse(np.zeros((2, 2))) and not is_sparse([[1.0]])\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'scipy'], 'scipy was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- check_csr: taken as it is ---------------------------------------------------------------

@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_valid_csr_is_returned_as_it_is(container, dtype, index_dtype):
    X = with_index_dtype(random_csr(20, 9, dtype=dtype, container=CONTAINERS[container]), index_dtype)
    arrays = (X.data, X.indices, X.indptr)
    catcher = no_warnings()
    try:
        out = check_csr(X)
        assert check_csr(X, dtype=dtype) is X
    finally:
        catcher.__exit__(None, None, None)
    assert out is X
    assert all(a is b for a, b in zip((out.data, out.indices, out.indptr), arrays))
    assert out.indices.dtype == index_dtype


def test_unsorted_rows_without_duplicates_are_accepted():
    # Row 0 stores columns 2, 0, 1: not canonical, yet no column twice.
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0, 4.0]), np.array([2, 0, 1, 1]), np.array([0, 3, 3, 4])), shape=(3, 3))
    assert not X.has_sorted_indices
    assert check_csr(X) is X


def test_empty_rows_and_no_stored_values_are_fine():
    X = sp.csr_matrix((5, 4))
    assert check_csr(X) is X
    Y = sp.csr_matrix(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
    assert check_csr(Y) is Y


def test_more_than_2_31_columns_with_int64_indices():
    d = 2**31 + 10
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0, 4.0]), np.array([d - 1, 5, 2**31, 0], dtype=np.int64),
                       np.array([0, 2, 2, 4], dtype=np.int64)), shape=(3, d))
    assert X.indices.dtype == np.int64
    tracemalloc.start()
    try:
        assert check_csr(X) is X
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing of the column count (16 GiB of float64)
    with pytest.raises(ValueError, match=r"out of range in row 2: 2147483658 \(it has 2147483658 columns"):
        bad = X.copy()
        bad.indices[3] = d
        check_csr(bad)
    with pytest.raises(ValueError, match=r"duplicate entries in row 2 \(column 2147483648\)"):
        dup = X.copy()
        dup.indices[3] = 2**31
        dup.has_canonical_format = False
        check_csr(dup)


# -- check_csr: conversions ------------------------------------------------------------------

@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("fmt", ["csc", "coo", "bsr", "dok", "lil", "dia"])
def test_other_formats_are_converted_once_with_a_warning(container, fmt):
    X = random_csr(30, 9, container=CONTAINERS[container])
    Y = X.asformat(fmt)
    with pytest.warns(DataConversionWarning,
                      match=rf"X needs converting \({fmt.upper()} to CSR\): fit copies it once into a CSR matrix "
                            rf"of \d+\.\d MiB.*pass X\.tocsr\(\) to make"):
        out = check_csr(Y)
    assert out.format == "csr"
    assert isinstance(out, sp.sparray) == (container == "array")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.toarray(), X.toarray())


@pytest.mark.parametrize(("data_dtype", "expected"), [
    (np.int64, np.float64), (np.int32, np.float64), (np.uint8, np.float64), (np.bool_, np.float64),
    (np.float16, np.float32), (np.dtype(">f8"), np.float64), (np.dtype(">f4"), np.float32)])
def test_data_dtype_is_converted_with_a_warning(data_dtype, expected):
    X = random_csr(30, 7)
    X.data = np.abs(np.round(X.data * 3))  # whole numbers >= 0, so every dtype holds them
    Y = X.copy()
    Y.data = Y.data.astype(data_dtype)  # assigned: scipy's astype knows no float16
    name = np.dtype(data_dtype)
    with pytest.warns(DataConversionWarning, match=rf"\({name} data to {np.dtype(expected).name}\)"):
        out = check_csr(Y)
    assert out.dtype == expected and out.data.dtype.isnative
    assert out.indices is Y.indices and out.indptr is Y.indptr  # shared: already readable
    np.testing.assert_array_equal(out.toarray(), X.toarray().astype(data_dtype).astype(expected))


def test_dtype_of_a_continued_fit():
    X = random_csr(20, 5)
    with pytest.warns(DataConversionWarning, match=r"\(float64 data to float32\).*X\.astype\(np\.float32\)"):
        out = check_csr(X, dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.toarray(), X.toarray().astype(np.float32))
    Z = X.tocoo().astype(np.int64)
    with pytest.warns(DataConversionWarning, match=r"\(COO to CSR, int64 data to float32\)"):
        assert check_csr(Z, dtype=np.float32).dtype == np.float32


def test_mismatched_index_dtypes_become_int64():
    X = random_csr(20, 5)
    Y = X.copy()
    Y.indptr = Y.indptr.astype(np.int64)  # indices stay int32
    with pytest.warns(DataConversionWarning, match=r"\(int32 indices and int64 indptr to int64\)"):
        out = check_csr(Y)
    assert out.indices.dtype == out.indptr.dtype == np.int64
    assert out.data is Y.data
    np.testing.assert_array_equal(out.toarray(), X.toarray())


def test_strided_arrays_are_copied_contiguous():
    X = random_csr(20, 5)
    Y = X.copy()
    Y.data = np.repeat(Y.data, 2)[::2]
    with pytest.warns(DataConversionWarning, match=r"strided views to contiguous arrays.*X\.copy\(\)"):
        out = check_csr(Y)
    assert out.data.flags.c_contiguous
    np.testing.assert_array_equal(out.toarray(), X.toarray())


def test_warn_copy_false_converts_quietly():
    X = random_csr(20, 5).tocsc()
    catcher = no_warnings()
    try:
        out = check_csr(X, warn_copy=False)
    finally:
        catcher.__exit__(None, None, None)
    assert out.format == "csr"


def test_warning_gives_the_size_in_mib():
    X = random_csr(2000, 300, density=0.5).tocoo()  # about 3.6 MiB of CSR
    with pytest.warns(DataConversionWarning) as record:
        out = check_csr(X)
    size = (out.data.nbytes + out.indices.nbytes + out.indptr.nbytes) / 2**20
    assert f"of {size:.1f} MiB" in str(record[0].message)


def test_conversion_keeps_int64_indices():
    X = with_index_dtype(random_csr(20, 5), np.int64)
    X.data = np.round(X.data).astype(np.int64)
    with pytest.warns(DataConversionWarning):
        out = check_csr(X)
    assert out.indices.dtype == np.int64


# -- check_csr: errors -----------------------------------------------------------------------

def malformed(**arrays):
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([0, 2, 1]), np.array([0, 2, 2, 3])), shape=(3, 3))
    for k, v in arrays.items():
        setattr(X, k, np.asarray(v, dtype=getattr(X, k).dtype))
    return X


@pytest.mark.parametrize(("X", "message"), [
    (malformed(indptr=[0, 2, 3]), r"X is a malformed CSR matrix: its indptr has 3 entries, expected n_rows \+ 1 = 4"),
    (malformed(indptr=[1, 2, 2, 3]), r"its indptr starts at 1, not 0"),
    (malformed(indptr=[0, 2, 2, 2]), r"its indptr ends at 2, but it stores 3 values"),
    (malformed(indptr=[0, 2, 1, 3]), r"its indptr decreases at row 1 \(indptr\[1\] = 2 > indptr\[2\] = 1\)"),
    (malformed(data=[1.0, 2.0]), r"2 values but 3 column indices"),
    (malformed(indices=[0, 3, 1]), r"X has a column index out of range in row 0: 3 \(it has 3 columns, indices 0 "
                                   r"to 2\)"),
    (malformed(indices=[0, 2, -1]), r"out of range in row 2: -1"),
])
def test_malformed_structure(X, message):
    with pytest.raises(ValueError, match=message):
        check_csr(X)


@pytest.mark.parametrize(("indices", "indptr", "row", "col"), [
    ([0, 0, 1, 2, 1], [0, 2, 5, 5], 0, 0),        # adjacent, sorted
    ([0, 1, 2, 0, 2], [0, 2, 5, 5], 1, 2),        # unsorted, apart
    ([1, 2, 2, 0, 0, 2], [0, 2, 6, 6], 1, 0),     # two in a row: its smallest column
    ([1, 2, 2, 0, 1, 1], [0, 2, 4, 6], 2, 1),     # sorted rows before it
])
@pytest.mark.parametrize("scan", ["marks", "sort"])
def test_duplicate_entries(indices, indptr, row, col, scan, monkeypatch):
    if scan == "sort":  # the scan of matrices with more columns than the marks take
        monkeypatch.setattr(_sparse, "_MARKED_COLUMNS", 0)
    X = sp.csr_matrix((np.ones(len(indices)), np.array(indices), np.array(indptr)), shape=(3, 3))
    with pytest.raises(ValueError, match=rf"X has duplicate entries in row {row} \(column {col}\); .*call "
                                         r"X\.sum_duplicates\(\) first"):
        check_csr(X)


def test_canonical_matrix_skips_the_duplicate_scan(monkeypatch):
    X = random_csr(50, 9)
    assert X.has_canonical_format
    monkeypatch.setattr(_sparse, "_first_duplicate", lambda *a: pytest.fail("scanned a canonical matrix"))
    assert check_csr(X) is X


def test_not_2d():
    X = sp.coo_array(np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match=r"Expected a 2D sparse matrix for X, got 1D with shape \(3,\)"):
        check_csr(X)


@pytest.mark.parametrize(("shape", "message"), [((0, 3), r"0 sample\(s\).*X has no rows"),
                                                ((3, 0), r"0 feature\(s\).*X has no columns")])
def test_empty(shape, message):
    with pytest.raises(ValueError, match=message):
        check_csr(sp.csr_matrix(shape))


def test_complex_and_dense():
    with pytest.raises(ValueError, match="Complex data not supported: X has dtype complex128"):
        check_csr(sp.csr_matrix(np.array([[1j, 0]])))
    with pytest.raises(TypeError, match="not a scipy.sparse matrix"):
        check_csr(np.zeros((2, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_values(dtype):
    X = random_csr(30, 7, dtype=dtype, density=0.5)
    k = len(X.data) // 2
    row, col = int(np.searchsorted(X.indptr, k, side="right")) - 1, int(X.indices[k])
    X.data[k] = np.inf
    with pytest.raises(ValueError, match=rf"Input X contains infinity or a value too large for "
                                         rf"dtype\('{np.dtype(dtype).name}'\) \(row {row}, column {col}\)"):
        check_csr(X)
    X.data[-1] = np.nan  # a NaN is reported first, wherever it is (as for dense X)
    last_row, last_col = X.shape[0] - 1, int(X.indices[-1])
    assert X.indptr[-2] < len(X.data)
    with pytest.raises(ValueError, match=rf"Input Z contains NaN \(row {last_row}, column {last_col}\)"):
        check_csr(X, name="Z")
    assert check_csr(X, finite=False) is X
    with pytest.raises(ValueError, match="contains NaN"):
        check_csr_values(X)


def test_name_in_messages():
    with pytest.raises(ValueError, match="X_val is a malformed CSR matrix"):
        check_csr(malformed(indptr=[0, 2, 3]), name="X_val")
    X = sp.csr_matrix((np.ones(2), np.array([1, 1]), np.array([0, 2])), shape=(1, 2))
    with pytest.raises(ValueError, match=r"X_val has duplicate entries in row 0 \(column 1\).*X_val\.sum_dup"):
        check_csr(X, name="X_val")


# -- blocks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [1, 2, 3, 7, 64])
def test_blocked_checks_find_the_same_first_error(monkeypatch, block):
    X = random_csr(40, 6, density=0.6, seed=3)
    X.has_canonical_format = False  # force the duplicate scan
    monkeypatch.setattr(_sparse, "_BLOCK_NNZ", block)
    assert check_csr(X) is X
    for row in (0, 17, 39):
        bad = X.copy()
        bad.has_canonical_format = False
        start, stop = bad.indptr[row], bad.indptr[row + 1]
        assert stop - start >= 2
        bad.indices[stop - 1] = bad.indices[start]
        with pytest.raises(ValueError, match=rf"duplicate entries in row {row} \(column {bad.indices[start]}\)"):
            check_csr(bad)
        bad = X.copy()
        bad.indices[stop - 1] = 6
        with pytest.raises(ValueError, match=rf"out of range in row {row}: 6"):
            check_csr(bad)
        bad = X.copy()
        bad.data[stop - 1] = np.nan
        with pytest.raises(ValueError, match=rf"NaN \(row {row}, column {bad.indices[stop - 1]}\)"):
            check_csr(bad)
    bad = X.copy()
    bad.indptr[30] = bad.indptr[29] - 1
    with pytest.raises(ValueError, match=r"indptr decreases at row 29"):
        check_csr(bad)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("block", [1, 5, 33])
def test_blocked_scale_matches_one_block(monkeypatch, block, weighted):
    X = random_csr(300, 17, density=0.4, seed=5)
    sw = np.random.default_rng(1).random(300) if weighted else unit_weights(300)
    _, whole = sparse_feature_scale(X, sw)
    monkeypatch.setattr(_sparse, "_BLOCK_NNZ", block)
    _, blocked = sparse_feature_scale(X, sw)
    np.testing.assert_allclose(blocked, whole, rtol=1e-13)


def test_row_blocks_cover_the_rows():
    indptr = np.array([0, 0, 5, 5, 6, 20, 20, 21], dtype=np.int32)
    for max_nnz in (1, 2, 5, 6, 100):
        blocks = list(_sparse._row_blocks(indptr, 7, max_nnz))
        assert [b[0] for b in blocks] == [0] + [b[1] for b in blocks[:-1]] and blocks[-1][1] == 7
        for r0, r1 in blocks:
            assert r1 - r0 <= max_nnz
            assert r1 - r0 == 1 or indptr[r1] - indptr[r0] <= max_nnz


# -- scale -----------------------------------------------------------------------------------

def reference_scale(dense, w, dtype):
    """NumPy: the weighted standard deviation of each column, 1 where it is at rounding level
    of the column's mean (the dense path's rule)."""
    dense = dense.astype(np.float64)
    mean = np.average(dense, axis=0, weights=w)
    std = np.sqrt(np.average((dense - mean) ** 2, axis=0, weights=w))
    return np.where(std <= 100 * np.finfo(dtype).eps * np.maximum(np.abs(mean), 1e-300), 1.0, std)


WEIGHTS = ["unit", "random", "with zeros"]


def weights(kind, n, seed=0):
    if kind == "unit":
        return unit_weights(n)
    w = np.random.default_rng(seed).random(n) * 3
    if kind == "with zeros":
        w[::4] = 0
    return w


@pytest.mark.parametrize("d", [1, 7, 8, 9, 17, 1023])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", WEIGHTS)
def test_scale_against_numpy(d, dtype, kind):
    n = 61
    X = random_csr(n, d, density=0.3, dtype=dtype, seed=d)
    X = sp.lil_matrix(X)
    X[5, :] = 0.0           # an empty row (but for the constant column)
    if d > 1:
        X[:, d - 1] = 0.0   # an empty column
    if d > 2:
        X[:, 2] = 2.5       # a constant column: scale 1
    X = sp.csr_matrix(X)
    X.eliminate_zeros()
    w = weights(kind, n)
    mean, scale = sparse_feature_scale(X, w)
    assert mean.dtype == scale.dtype == np.float64 and mean.shape == scale.shape == (d,)
    assert not mean.any()
    np.testing.assert_allclose(scale, reference_scale(X.toarray(), np.asarray(w), dtype), rtol=1e-13)
    if d > 1:
        assert scale[d - 1] == 1.0
    if d > 2:
        assert scale[2] == 1.0
    # The dense path's convention, bit for bit where it matters (the constant columns).
    dense_mean, dense_scale = weighted_moments(X.toarray(), np.asarray(w, dtype=np.float64))
    np.testing.assert_allclose(scale, dense_scale, rtol=1e-12)
    moments = sparse_moments(X, w)
    np.testing.assert_allclose(moments.mean, dense_mean, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", WEIGHTS)
@pytest.mark.parametrize("block", [None, 7])
def test_scale_of_columns_whose_mean_dwarfs_their_deviation(monkeypatch, kind, block):
    if block is not None:
        monkeypatch.setattr(_sparse, "_BLOCK_NNZ", block)
    rng = np.random.default_rng(2)
    n = 5000
    dense = 1e3 + 1e-3 * rng.standard_normal((n, 3))
    dense[rng.random(n) < 0.01, 1] = 0.0  # a few implicit zeros in column 1
    dense[::4, 2] = 0.0  # column 2: implicit zeros in the rows that "with zeros" weighs 0 only
    X = sp.csr_matrix(dense)
    w = weights(kind, n)
    _, scale = sparse_feature_scale(X, w)
    # The reference in extended precision (where the platform has it), column by column.
    w64 = np.asarray(w, dtype=np.float64)
    cols = np.ascontiguousarray(dense.T).astype(np.longdouble)
    mean = (cols * w64).sum(axis=1) / w64.astype(np.longdouble).sum()
    ref = np.sqrt((((cols - mean[:, None]) ** 2) * w64).sum(axis=1) / w64.astype(np.longdouble).sum())
    ref = ref.astype(np.float64)
    assert ref[0] < 2e-3 and (ref[2] < 2e-3) == (kind == "with zeros")
    # Default blocks: to 1e-12; blocks of a few rows merge thousands of times: 1e-10.
    np.testing.assert_allclose(scale, ref, rtol=1e-12 if block is None else 1e-10)


def test_scale_of_huge_values():
    rng = np.random.default_rng(4)
    dense = rng.standard_normal((50, 3)) * (rng.random((50, 3)) < 0.5)
    dense[:, 0] *= 1e300  # squares overflow float64
    X = sp.csr_matrix(dense)
    _, scale = sparse_feature_scale(X, unit_weights(50))
    s = 2.0**997
    np.testing.assert_allclose(scale[0], reference_scale(dense[:, :1] / s, None, np.float64)[0] * s, rtol=1e-12)
    np.testing.assert_allclose(scale[1:], reference_scale(dense[:, 1:], None, np.float64), rtol=1e-13)


def test_scale_check_and_non_finite():
    X = random_csr(30, 4, density=0.6)
    X.data[3] = np.nan
    col = int(X.indices[3])
    with pytest.raises(ValueError, match=r"Input X contains NaN \(row \d+, column \d+\)"):
        sparse_feature_scale(X, unit_weights(30), check="X")
    _, scale = sparse_feature_scale(X, unit_weights(30))  # unchecked: the column's moments are NaN
    assert np.isnan(scale[col]) and np.isfinite(np.delete(scale, col)).all()


def test_scale_needs_positive_weight():
    X = random_csr(10, 3)
    with pytest.raises(ValueError, match="no sample with a positive weight"):
        sparse_feature_scale(X, np.zeros(10))
    with pytest.raises(ValueError, match=r"sample weights of shape \(9,\), expected \(10,\)"):
        sparse_feature_scale(X, np.ones(9))


def test_unit_weights_are_not_expanded(monkeypatch):
    X = random_csr(100, 5)
    real_repeat = np.repeat

    def repeat(a, *args, **kwargs):
        assert np.ndim(a) == 0 or len(a) != 100 or a.strides != (0,), "unit weights expanded"
        return real_repeat(a, *args, **kwargs)

    monkeypatch.setattr(np, "repeat", repeat)
    _, scale = sparse_feature_scale(X, unit_weights(100))
    np.testing.assert_allclose(scale, reference_scale(X.toarray(), None, np.float64), rtol=1e-13)


def test_column_moments_kernel_refuses_a_malformed_matrix():
    """_core.sparse_column_moments checks the structure it reads (an index out of range, a
    decreasing indptr) before its second pass, naming the row."""
    X = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    bad_index = X.copy()
    bad_index.indices[1] = 7
    with pytest.raises(ValueError, match="column index 7 in row 0"):
        _core.sparse_column_moments(bad_index)
    bad_rows = X.copy()
    bad_rows.indptr[1] = 5
    with pytest.raises(ValueError, match="row 0 spans nonzeros"):
        _core.sparse_column_moments(bad_rows)
    with pytest.raises(ValueError, match="sample_weight"):
        _core.sparse_column_moments(X, np.ones(3))


def test_column_moments_kernel_matches_numpy():
    """Weighted mean and variance per column, implicit zeros included, against NumPy on the
    dense matrix; rows of weight 0 count for nothing."""
    rng = np.random.default_rng(3)
    X = sp.random(50, 9, density=0.3, format="csr", random_state=4) * 10
    w = rng.uniform(0, 2, 50)
    w[:5] = 0.0
    weight, mean, var = _core.sparse_column_moments(X, w)
    dense = X.toarray()
    ref_mean = np.average(dense, axis=0, weights=w)
    assert weight == pytest.approx(w.sum(), rel=1e-15)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(var, np.average((dense - ref_mean) ** 2, axis=0, weights=w), rtol=1e-12, atol=1e-15)
