"""fastgd.datasets.make_sparse_classification: the TF-IDF-shaped CSR corpus its docstring
describes (canonical CSR, row lengths, unit rows, skewed feature frequencies, labels of a
sparse linear model), deterministic, with its argument errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fastgd.datasets import make_sparse_classification

sp = pytest.importorskip("scipy.sparse")

N, D = 20_000, 5_000


@pytest.fixture(scope="module")
def data():
    return make_sparse_classification(N, D)


def test_shape_dtypes_and_canonical_csr(data):
    X, y = data
    assert isinstance(X, sp.csr_matrix)
    assert X.shape == (N, D) and y.shape == (N,)
    assert X.dtype == np.float32 and X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    assert y.dtype.kind == "i"
    assert X.has_canonical_format
    # Strictly increasing columns within each row (sorted, no duplicates), checked directly.
    starts = np.zeros(X.nnz, bool)
    starts[X.indptr[:-1][np.diff(X.indptr) > 0]] = True
    assert np.all(np.diff(X.indices.astype(np.int64))[~starts[1:]] > 0)
    assert X.indices.min() >= 0 and X.indices.max() < D


def test_row_lengths(data):
    X, _ = data
    lengths = np.diff(X.indptr)
    assert lengths.min() >= 1
    assert abs(lengths.mean() - 53) < 0.05 * 53
    # Lognormal lengths: a long right tail, unlike a Poisson's.
    assert lengths.max() > 3 * 53
    assert 0.3 < lengths.std() / lengths.mean() < 0.8


def test_values_positive_and_rows_unit_norm(data):
    X, _ = data
    assert np.all(X.data > 0) and np.all(np.isfinite(X.data))
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_values_are_tf_idf_within_a_row():
    # One feature: every row holds it, idf 1; a row's value is then 1 after normalization.
    X, _ = make_sparse_classification(50, 1, nnz_per_row=1)
    assert X.nnz == 50 and np.all(X.data == 1)


def _top_share(X, fraction: float) -> float:
    df = np.sort(np.bincount(X.indices, minlength=X.shape[1]))[::-1]
    return df[:max(1, int(fraction * X.shape[1]))].sum() / df.sum()


def test_feature_frequencies_are_skewed(data):
    X, _ = data
    assert _top_share(X, 0.01) > 0.3  # the top 1% of features hold a large share of nonzeros
    df = np.bincount(X.indices, minlength=D)
    assert df.max() > 0.5 * N  # a few features in most rows
    assert np.median(df) < 0.01 * N  # a long tail
    # zipf=0: every feature as frequent, no skew.
    Xu, _ = make_sparse_classification(N, D, zipf=0.0)
    assert _top_share(Xu, 0.01) < 0.03


@pytest.mark.parametrize("zipf", [0.0, 0.5, 1.0, 1.5])
def test_other_exponents(zipf):
    X, y = make_sparse_classification(2000, 3000, nnz_per_row=20, zipf=zipf)
    assert X.has_canonical_format
    assert abs(np.diff(X.indptr).mean() - 20) < 0.1 * 20
    assert 0 < y.mean() < 1


def test_deterministic(data):
    X, y = data
    X2, y2 = make_sparse_classification(N, D)
    for a in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(X, a), getattr(X2, a))
    np.testing.assert_array_equal(y, y2)
    X3, y3 = make_sparse_classification(N, D, random_state=1)
    assert X3.nnz != X.nnz or not np.array_equal(X3.indices, X.indices)
    assert not np.array_equal(y3, y)


def test_float64():
    X32, y32 = make_sparse_classification(1000, 800, nnz_per_row=10)
    X64, y64 = make_sparse_classification(1000, 800, nnz_per_row=10, dtype=np.float64)
    assert X64.dtype == np.float64
    np.testing.assert_array_equal(X32.indices, X64.indices)
    np.testing.assert_allclose(X32.data, X64.data, rtol=1e-5)


def test_both_classes_and_a_linear_model_learns_them(data):
    X, y = data
    assert 0.4 < y.mean() < 0.6
    linear_model = pytest.importorskip("sklearn.linear_model")
    n = int(0.8 * N)
    acc = linear_model.LogisticRegression(C=10).fit(X[:n], y[:n]).score(X[n:], y[n:])
    assert 0.75 < acc < 1.0


def test_noise_blurs_the_labels():
    # The same scores with more noise: labels further from the noiseless ones.
    _, y0 = make_sparse_classification(5000, 2000, nnz_per_row=20, noise=0.0)
    _, y1 = make_sparse_classification(5000, 2000, nnz_per_row=20, noise=0.1)
    _, y2 = make_sparse_classification(5000, 2000, nnz_per_row=20, noise=1.0)
    assert 0 < np.mean(y0 != y1) < np.mean(y0 != y2) < 0.5


@pytest.mark.parametrize("kwargs", [
    {"n_samples": 0}, {"n_features": 0}, {"n_samples": 1.5}, {"n_features": True},
    {"nnz_per_row": 0}, {"nnz_per_row": 101}, {"nnz_per_row": float("nan")}, {"nnz_per_row": "5"},
    {"zipf": -0.1}, {"zipf": float("inf")}, {"noise": -1.0}, {"noise": float("nan")}, {"noise": True},
    {"dtype": np.int32}, {"dtype": np.float16},
])
def test_argument_errors(kwargs):
    args = {"n_samples": 10, "n_features": 100, "nnz_per_row": 5} | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_sparse_classification(**args)


def test_scipy_is_imported_only_when_called():
    code = ("import sys, fastgd, fastgd.datasets; assert 'scipy' not in sys.modules; "
            "fastgd.datasets.make_sparse_classification(10, 20, nnz_per_row=3); assert 'scipy' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
