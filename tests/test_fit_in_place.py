"""fit reads X where it is: a C-contiguous float array or memmap goes to the linear models'
kernel as it is (no standardized copy, no stream through the shuffle buffer); any other
layout is copied once, with a warning that says so and how large the copy is."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from linear_losses import linear_losses

import fastgd
from fastgd.models import DataConversionWarning, LinearRegression, LogisticRegression, MLPClassifier


def _data(n=300, d=5, dtype=np.float64):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((n, d)) * 2 + 7).astype(dtype)
    y = (X[:, 0] + X[:, 1] > 14).astype(int)
    return X, y


def _memmap(tmp_path, X):
    np.save(tmp_path / "X.npy", X)
    return np.load(tmp_path / "X.npy", mmap_mode="r")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_contiguous_memmap_is_trained_on_in_place(tmp_path, dtype):
    X, y = _data(dtype=dtype)
    Xm = _memmap(tmp_path, X)
    est = LogisticRegression(max_epochs=3, tol=None, random_state=0, batch_size=16)
    assert not est._streamed(Xm, False)  # the kernel reads its rows from the page cache
    assert est._streamed(Xm[:, ::2], False)  # a strided view: streamed in blocks, never copied whole
    assert MLPClassifier()._streamed(Xm, False)  # an MLP's batches go through the buffer
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        a = est.fit(Xm, y).coef_.copy()
    b = LogisticRegression(max_epochs=3, tol=None, random_state=0, batch_size=16).fit(X, y).coef_
    np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning: 3 epochs
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_another_layout_is_copied_once_with_a_warning(layout):
    X, y = _data(d=6)
    Xo = np.asfortranarray(X) if layout == "fortran" else np.repeat(X, 2, axis=1)[:, ::2]
    assert not Xo.flags.c_contiguous
    kw = dict(max_epochs=3, tol=None, random_state=0, batch_size=16)
    with pytest.warns(DataConversionWarning, match=r"copies it once into a C-contiguous array of 0\.0 MiB"):
        a = LinearRegression(**kw).fit(Xo, y.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)
        b = LinearRegression(**kw).fit(X, y.astype(float))
        a.predict(Xo)  # predictions take any layout without a word
    np.testing.assert_array_equal(a.coef_, b.coef_)


@pytest.mark.parametrize("shuffle", [True, "batches", False])
@pytest.mark.parametrize("gather", [False, True])
def test_train_on_rows_equals_train_on_their_copy(shuffle, gather):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 7))
    y = (rng.random(500) > 0.5).astype(np.float64)
    sw = rng.uniform(0.5, 2, 500)
    rows = np.sort(rng.choice(500, 350, replace=False))
    K, d = 1, 7
    grad_a, grad_b = np.empty(K * (d + 1)), np.empty(K * (d + 1))
    in_place_a, gathered = linear_losses(K, d, grad_a)
    in_place_b, _ = linear_losses(K, d, grad_b)
    a, b = np.zeros(K * (d + 1)), np.zeros(K * (d + 1))
    kw = dict(batch_size=32, max_epochs=3, shuffle=shuffle, random_state=0, gather=gather)
    ha = fastgd.train(gathered if gather else in_place_a, [a], X, y, sample_weight=sw, rows=rows, **kw)
    hb = fastgd.train(gathered if gather else in_place_b, [b], X[rows], y[rows], sample_weight=sw[rows], **kw)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ha["train_loss"], hb["train_loss"])
    with pytest.raises(ValueError, match="rows"):
        fastgd.train(in_place_a, [a], X, y, rows=np.array([0, 500]), batch_size=8, gather=False)
