"""Rows standardized as the fused linear kernel reads them (``row_scaling``), with no copy of
X: the kernel against a NumPy reference on the standardized rows (every loss, both dtypes,
feature counts around the SIMD widths, weighted or not, every SIMD level, any thread count),
its accuracy where a column's mean dwarfs its spread, and the estimators trained that way
against the same estimators on a standardized copy."""

from __future__ import annotations

import numpy as np
import pytest
from test_linear_objective import MULTICLASS, N_TOTAL, SCALAR, call, check, problem, reference

import fastgd
from fastgd.models import LinearRegression, LogisticRegression
from fastgd.models._data import Scaling
from fastgd.models._inputs import kernel_row_scaling

DIMS = [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100]


def shifted(X, seed):
    """X moved to per-column means and spreads far from 0 and 1."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    mean, spread = rng.uniform(-50, 50, d), rng.uniform(0.5, 4, d)
    return (X.astype(np.float64) * spread + mean).astype(X.dtype)


def scaled_reference(loss, X, y, W, b, rows, sw, rs, **kw):
    """The reference on the rows standardized in float64 by rs's (centre + centre_lo, 1 / inv_scale)."""
    mean = rs[0].astype(np.float64) + rs[1].astype(np.float64)
    Xs = (X.astype(np.float64) - mean) * rs[2].astype(np.float64)
    return reference(loss, Xs, y, W, b, rows, sw, **kw)


def row_scaling(X, dtype):
    Xd = X.astype(np.float64)
    scale = Xd.std(axis=0) if X.shape[1] else np.ones(0)
    rs = kernel_row_scaling(Scaling(Xd.mean(axis=0) if X.shape[1] else np.zeros(0), np.where(scale > 0, scale, 1.0)),
                            dtype)
    assert rs is not None and rs.dtype == dtype and rs.shape == (3, X.shape[1])
    return rs


def mean_in_sds(rs):
    """The largest |mean| / standard deviation of the columns of a row scaling."""
    mean = np.abs(rs[0].astype(np.float64) + rs[1].astype(np.float64))
    return float(np.max(mean * rs[2], initial=0.0))


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", SCALAR + MULTICLASS)
@pytest.mark.parametrize("far", [True, False], ids=["means-far", "means-near-zero"])
def test_matches_reference_on_standardized_rows(simd_level, loss, dtype, weighted, d, far):
    # Means far from zero: the kernel centres every element (where one mean is beyond a
    # standard deviation); every mean within one of zero: it folds the means into the bias
    # instead. Both match the reference.
    X, y, W, b, sw = problem(loss, d, dtype, seed=d, weighted=weighted)
    X = shifted(X, d) if far else X
    rs = row_scaling(X, dtype)
    assert far or mean_in_sds(rs) <= 1
    for batch in (0, 1, 33, 1024):
        rows = np.random.default_rng(batch).integers(0, N_TOTAL, batch)
        check(call(loss, X, y, W, b, sw, rows=rows, delta=0.7, l2=0.1, row_scaling=rs),
              scaled_reference(loss, X, y, W, b, rows, sw, rs, delta=0.7, l2=0.1), dtype)
        check(call(loss, X, y, W, b, sw, start=5, stop=5 + batch, row_scaling=rs),
              scaled_reference(loss, X, y, W, b, np.arange(5, 5 + batch), sw, rs), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sds", [0.5, 0.999, 1.001, 3.0])
def test_means_either_side_of_one_standard_deviation(dtype, sds):
    # The kernel folds the means into the bias only when every column's mean is within one
    # standard deviation of zero: one column at `sds` deviations decides; both sides of the
    # threshold agree with the standardized copy to rounding.
    X, y, W, b, _ = problem("log_loss", 17, dtype, seed=5)
    Xd = X.astype(np.float64)
    Xd = (Xd - Xd.mean(axis=0)) / Xd.std(axis=0)
    Xd[:, 3] += sds
    X = Xd.astype(dtype)
    rs = row_scaling(X, dtype)
    assert (mean_in_sds(rs) > 1) == (sds > 1)
    mean = rs[0].astype(np.float64) + rs[1].astype(np.float64)
    copy = ((X.astype(np.float64) - mean) * rs[2]).astype(dtype)
    rows = np.arange(0, N_TOTAL, 3)
    check(call("log_loss", X, y, W, b, rows=rows, row_scaling=rs, l2=0.1), call("log_loss", copy, y, W, b, rows=rows,
                                                                               l2=0.1), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_mean_far_beyond_the_spread_keeps_its_digits(dtype):
    # Columns at 1e4 (float32) or 1e12 (float64) with unit spread: centred before any
    # product, the rows lose nothing that the standardized copy (float64 arithmetic) keeps.
    X, y, W, b, _ = problem("log_loss", 33, dtype, seed=3)
    big = 1e4 if dtype == np.float32 else 1e12
    X = (X.astype(np.float64) + big).astype(dtype)
    rs = row_scaling(X, dtype)
    assert np.any(rs[1] != 0) or dtype == np.float64  # float32 needs the mean's low part
    mean = rs[0].astype(np.float64) + rs[1].astype(np.float64)
    copy = ((X.astype(np.float64) - mean) * rs[2]).astype(dtype)
    rows = np.arange(0, N_TOTAL, 2)
    got = call("log_loss", X, y, W, b, rows=rows, row_scaling=rs)
    want = call("log_loss", copy, y, W, b, rows=rows)
    check(got, want, dtype)


def test_threads_same_bits_with_row_scaling(threaded):
    X, y, W, b, sw = problem("softmax_cross_entropy", 100, np.float32, weighted=True, n_total=5000)
    X = shifted(X, 1)
    rs = row_scaling(X, np.float32)
    rows = np.random.default_rng(0).permutation(5000)
    with fastgd.num_threads(1):
        one = call("softmax_cross_entropy", X, y, W, b, sw, rows=rows, start=7, stop=3000, row_scaling=rs)
    many = call("softmax_cross_entropy", X, y, W, b, sw, rows=rows, start=7, stop=3000, row_scaling=rs)
    assert one[0] == many[0]
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one[2], many[2])


def test_bad_row_scaling_is_refused():
    X, y, W, b, _ = problem("log_loss", 9, np.float32)
    for bad, error in ((np.zeros((3, 9)), TypeError), (np.zeros((2, 9), np.float32), ValueError),
                       (np.zeros((3, 8), np.float32), ValueError)):
        with pytest.raises(error, match="row_scaling"):
            call("log_loss", X, y, W, b, row_scaling=bad)


def test_columns_the_kernel_cannot_standardize_get_none():
    d = 3
    ok = Scaling(np.array([1.0, -2.0, 3e20]), np.array([1.0, 0.5, 1e19]))
    assert kernel_row_scaling(ok, np.float32) is not None
    assert kernel_row_scaling(Scaling(np.array([0.0, 1e35, 0.0]), np.ones(d)), np.float32) is None
    assert kernel_row_scaling(Scaling(np.zeros(d), np.array([1.0, 1e-39, 1.0])), np.float32) is None  # 1/scale
    assert kernel_row_scaling(Scaling(np.array([0.0, 1e300, 0.0]), np.ones(d)), np.float64) is None
    assert kernel_row_scaling(Scaling(np.array([0.0, 1e200, 0.0]), np.ones(d)), np.float64) is not None


# -- the estimators ----------------------------------------------------------------------


class _Copying:
    """The old path: the estimator trained on a standardized copy of X."""

    _standardizes_rows = False


class _CopyingLogistic(_Copying, LogisticRegression):
    pass


class _CopyingLinear(_Copying, LinearRegression):
    pass


def _shifted_data(n, d, dtype, classes, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-20, 20, d)
    w = rng.standard_normal(d)
    t = (X - X.mean(axis=0)) @ w / 3
    if classes == 0:
        y = t + 0.1 * rng.standard_normal(n)
    elif classes == 2:
        y = (t + 0.5 * rng.standard_normal(n) > 0).astype(int)
    else:
        y = np.digitize(t + 0.5 * rng.standard_normal(n), np.quantile(t, [1 / 3, 2 / 3]))
    return X.astype(dtype), y


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning: a few epochs
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [("log_loss", 2), ("log_loss", 3), ("hinge", 2), ("squared_error", 0),
                                  ("huber", 0)])
def test_standardized_in_kernel_equals_the_standardized_copy(case, dtype):
    loss, classes = case
    X, y = _shifted_data(600, 13, dtype, classes)
    sw = np.random.default_rng(1).uniform(0.5, 2, len(X))
    kw = dict(loss=loss, batch_size=32, max_epochs=4, tol=None, lr=0.01, random_state=0)
    new, old = (LogisticRegression, _CopyingLogistic) if classes else (LinearRegression, _CopyingLinear)
    for weights in (None, sw):
        a = new(**kw).fit(X, y, sample_weight=weights)
        b = old(**kw).fit(X, y, sample_weight=weights)
        assert a.coef_.dtype == dtype
        rtol = 2e-3 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=rtol, atol=rtol * np.abs(b.coef_).max())
        za, zb = (a.predict(X), b.predict(X)) if not classes else (a.decision_function(X), b.decision_function(X))
        np.testing.assert_allclose(za, zb, rtol=rtol, atol=rtol * np.abs(zb).max())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_early_stopping_scores_raw_validation_rows_as_standardized():
    X, y = _shifted_data(800, 9, np.float64, 3)
    kw = dict(batch_size=32, max_epochs=6, early_stopping=True, n_iter_no_change=20, lr=0.01, random_state=0)
    a = LogisticRegression(**kw).fit(X, y)
    b = _CopyingLogistic(**kw).fit(X, y)
    np.testing.assert_allclose(a.history_["val_loss"], b.history_["val_loss"], rtol=1e-9)
    np.testing.assert_allclose(a.history_["val_metric"], b.history_["val_metric"], rtol=1e-12)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-10)
