"""The column statistics kernel (``_core.column_moments``, ``_core.find_nonfinite``) against
plain NumPy in float64, and the invariants the estimators rely on: the same bits for any
thread count, for a memmap streamed in chunks as for the array in memory, and for blocks
merged by the kernel as for the same blocks merged by RunningMoments."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd
from fastgd import _core
from fastgd.models._base import check_labels, check_X, first_nonfinite
from fastgd.models._data import block_moments, weighted_moments
from fastgd.streaming import DEFAULT_CHUNK_BYTES, ChunkStream, RunningMoments

DTYPES = [np.float32, np.float64]
# Around the vector widths (8 and 16 floats, 4 and 8 doubles) and a kernel tile's rows.
ROWS = [1, 7, 8, 9, 15, 16, 17, 31, 33, 1023, 1025]
COLS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]


def _reference(X, w, block_rows):
    """Each block's weighted mean and variance by NumPy in float64, merged in order by Chan
    et al.'s formulas (blocks of weight 0 left out)."""
    W, mean, var = 0.0, None, None
    for s in range(0, len(X), block_rows):
        a, b = X[s:s + block_rows].astype(np.float64), w[s:s + block_rows]
        wb = b.sum()
        if not wb > 0:
            continue
        m = np.average(a, axis=0, weights=b)
        v = np.average((a - m) ** 2, axis=0, weights=b)
        if mean is None:
            W, mean, var = wb, m, v
            continue
        total = W + wb
        delta = m - mean
        var = (W * var + wb * v + delta**2 * (W * wb / total)) / total
        mean = mean + delta * (wb / total)
        W = total
    return W, mean, var


def _data(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-5, 5, d)).astype(dtype)
    return X, rng.uniform(0, 2, n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_column_moments_match_numpy(simd_level, dtype, weighted):
    rtol = 1e-12
    for n in ROWS:
        for d in COLS:
            X, w = _data(n, d, dtype, seed=n * 100 + d)
            ww = w if weighted else np.ones(n)
            for block_rows in (None, 7, 64):
                W, mean, var, nan, inf = _core.column_moments(X, ww if weighted else None, block_rows)
                rW, rmean, rvar = _reference(X, ww, block_rows or n)
                assert (nan, inf) == (-1, -1)
                np.testing.assert_allclose(W, rW, rtol=rtol)
                np.testing.assert_allclose(mean, rmean, rtol=rtol, atol=1e-13 * np.abs(rmean).max())
                np.testing.assert_allclose(var, rvar, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unit_weights_give_the_bits_of_no_weights(dtype):
    X, _ = _data(1025, 33, dtype)
    a = _core.column_moments(X, None, 100)
    b = _core.column_moments(X, np.ones(len(X)), 100)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])


def test_strided_widths_and_constant_columns():
    # Odd numbers of columns (strides of rows that are no multiple of a vector), a constant
    # column and a column of a large offset.
    for d in (3, 11, 13, 37, 101):
        X, w = _data(999, d, np.float64, seed=d)
        X[:, 0] = 3.25
        X[:, -1] = 1e6 + X[:, -1]
        W, mean, var, _, _ = _core.column_moments(X, w, 50)
        rW, rmean, rvar = _reference(X, w, 50)
        # Rounding-level spread only (the weighted mean of a constant rounds), which the
        # standardization takes for a constant feature: scale 1.
        assert abs(mean[0] - 3.25) < 1e-14 and var[0] < 1e-28
        assert weighted_moments(X, w)[1][0] == 1.0
        np.testing.assert_allclose(mean, rmean, rtol=1e-13)
        np.testing.assert_allclose(var[1:], rvar[1:], rtol=1e-8)


def test_weight_zero_blocks_and_empty_input():
    X, w = _data(300, 4, np.float64)
    w[:100] = 0
    W, mean, var, _, _ = _core.column_moments(X, w, 50)
    rW, rmean, rvar = _reference(X[100:], w[100:], 50)
    np.testing.assert_allclose(mean, rmean, rtol=1e-13)
    np.testing.assert_allclose(var, rvar, rtol=1e-11)
    W, mean, var, nan, inf = _core.column_moments(X, np.zeros(300), 50)
    assert W == 0 and np.isnan(mean).all() and np.isnan(var).all() and (nan, inf) == (-1, -1)
    W, mean, var, nan, inf = _core.column_moments(np.empty((0, 3)), None, None)
    assert W == 0 and mean.shape == (3,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_first_nan_and_infinity_are_found(simd_level, dtype):
    for n, d in [(1, 1), (9, 3), (1025, 17), (70000, 2)]:
        for pos_nan, pos_inf in [(None, 0), (0, None), (n * d - 1, 0), (n * d // 2, n * d // 3), (None, n * d - 1)]:
            X, w = _data(n, d, dtype)
            flat = X.reshape(-1)
            if pos_inf is not None:
                flat[pos_inf] = -np.inf
            if pos_nan is not None:
                flat[pos_nan] = np.nan
            want = (-1 if pos_nan is None else pos_nan,
                    -1 if pos_inf is None or pos_inf == pos_nan else pos_inf)
            w[: n // 2] = 0  # found at weight 0 too
            assert _core.column_moments(X, w, 100)[3:] == want
            assert _core.find_nonfinite(X) == want
            assert first_nonfinite(X) == want
            assert first_nonfinite(X.T) == tuple(-1 if p < 0 else (p % d) * n + p // d for p in want)
            # The column of a bad value, and only it, has a non-finite mean.
            mean = _core.column_moments(X, None, 100)[1]
            bad = {p % d for p in want if p >= 0}
            assert {j for j in range(d) if not np.isfinite(mean[j])} == bad


def test_check_X_names_the_first_bad_value():
    X = np.ones((6, 4), np.float32)
    X[4, 2] = np.inf
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN \(row 5, column 1\)\."):
        check_X(X)
    X[5, 1] = 0
    with pytest.raises(ValueError, match=r"contains infinity or a value too large for dtype\('float32'\) "
                                         r"\(row 4, column 2\)"):
        check_X(X)
    X[4, 2] = np.finfo(np.float32).max  # finite, however large: no error
    check_X(X)


def test_moments_check_X_in_the_same_read():
    X, w = _data(100, 3, np.float32)
    check_X(X, finite=False)
    X[70, 2] = np.nan
    X[10, 0] = np.inf
    check_X(X, finite=False)  # left to the moments
    with pytest.raises(ValueError, match=r"Input X contains NaN \(row 70, column 2\)\."):
        weighted_moments(X, w, check="X")
    X[70, 2] = 0
    with pytest.raises(ValueError, match=r"Input X contains infinity .* \(row 10, column 0\)\."):
        weighted_moments(X, w, check="X")
    assert not np.isfinite(weighted_moments(X, w)[0][0])  # unchecked: the column's mean says it


def test_bits_do_not_depend_on_the_thread_count(threaded):
    X, w = _data(50000, 33, np.float32)
    block_rows = 1000
    with fastgd.num_threads(1):
        one = _core.column_moments(X, w, block_rows)
    for t in (2, 3):
        with fastgd.num_threads(t):
            many = _core.column_moments(X, w, block_rows)
        assert one[0] == many[0] and one[3:] == many[3:]
        np.testing.assert_array_equal(one[1], many[1])
        np.testing.assert_array_equal(one[2], many[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_blocks_merge_as_running_moments_chunks(dtype):
    X, w = _data(5003, 9, dtype)
    w[1000:2000] = 0
    whole = RunningMoments()
    whole.update(X, w, block_rows=700)
    chunks = RunningMoments()
    for s in range(0, len(X), 700):
        chunks.update(X[s:s + 700], w[s:s + 700])
    assert whole.weight == chunks.weight and whole.count == chunks.count == 5003
    np.testing.assert_array_equal(whole.mean, chunks.mean)
    np.testing.assert_array_equal(whole.var, chunks.var)


def test_memmap_streamed_in_chunks_gives_the_bits_of_the_array(tmp_path):
    X, w = _data(30000, 40, np.float32)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    streamed = RunningMoments()
    for Xc, _, wc in ChunkStream(Xm, None, w).chunks():
        streamed.update(Xc, wc)
    assert len(X) * X.itemsize * X.shape[1] > DEFAULT_CHUNK_BYTES  # several chunks
    memory = block_moments(X, w)
    np.testing.assert_array_equal(memory.mean, streamed.mean)
    np.testing.assert_array_equal(memory.var, streamed.var)
    np.testing.assert_array_equal(weighted_moments(Xm, w)[1], weighted_moments(X, w)[1])


def test_huge_values_fall_back_to_units_block_by_block():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 3))
    X[:, 1] = X[:, 1] * 1e200 + 3e200
    w = rng.uniform(0.5, 2, len(X))
    m = block_moments(X, w, block_bytes=24 * 500)
    per_block = RunningMoments()
    for s in range(0, len(X), 500):
        per_block.update(X[s:s + 500], w[s:s + 500])
    np.testing.assert_array_equal(m.mean, per_block.mean)
    np.testing.assert_array_equal(m.var, per_block.var)
    mean, std = m.mean_std(np.float64)
    ref = X / np.array([1, 1e200, 1])
    rmean = np.average(ref, axis=0, weights=w) * np.array([1, 1e200, 1])
    rstd = np.sqrt(np.average((ref - np.average(ref, axis=0, weights=w)) ** 2, axis=0, weights=w))
    np.testing.assert_allclose(mean, rmean, rtol=1e-12)
    np.testing.assert_allclose(std, rstd * np.array([1, 1e200, 1]), rtol=1e-10)


def test_column_moments_refuses_what_it_cannot_read_in_place():
    X = np.ones((10, 3))
    with pytest.raises((TypeError, ValueError)):
        _core.column_moments(X[:, ::2])
    with pytest.raises((TypeError, ValueError)):
        _core.column_moments(X.astype(np.int64))
    with pytest.raises(TypeError, match="float64"):
        _core.column_moments(X, np.ones(10, np.float32))
    with pytest.raises(ValueError, match="sample_weight"):
        _core.column_moments(X, np.ones(9))
    with pytest.raises(ValueError, match="block_rows"):
        _core.column_moments(X, None, 0)


@pytest.mark.parametrize("y", [
    np.array([3, 1, 3, 7, 1]), np.array([True, False, True]), np.array([True, True]), np.array([False]),
    np.array([-5, 2**40, 0]), np.array([2, 0, 1], np.uint8), np.array(["b", "a", "b"]), np.array([2.0, 1.0, 2.0]),
])
def test_labels_are_encoded_as_np_unique_does(y):
    classes, idx = check_labels(y)
    ref_classes, ref_idx = np.unique(y, return_inverse=True)
    np.testing.assert_array_equal(classes, ref_classes)
    assert classes.dtype == ref_classes.dtype
    np.testing.assert_array_equal(idx, ref_idx.reshape(-1))
