"""Feature names, as scikit-learn's ``validate_data`` handles them: an estimator fitted on a
DataFrame learns ``feature_names_in_``; predicting, scoring or continuing with other or
reordered columns is an error (never silently wrong predictions), and mixing named and
unnamed inputs gives scikit-learn's warnings. Checked by scikit-learn's own estimator checks
and from the user's side, for every estimator and both fit paths (arrays, chunks)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import fastgd
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor

pd = pytest.importorskip("pandas")
estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")

_COLUMNS = ["a", "b", "c"]


def _make(name, **kw):
    common = {"max_epochs": 3, "tol": None, "random_state": 0, "batch_size": 8}
    common.update(kw)
    cls = {"LinearRegression": LinearRegression, "LogisticRegression": LogisticRegression,
           "MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}[name]
    return cls((4,), **common) if name.startswith("MLP") else cls(**common)


ESTIMATORS = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]


def _frame(name, n=40):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=_COLUMNS)
    y = (X["a"] > 0).astype(int).to_numpy() if "Regression" not in name or name == "LogisticRegression" \
        else X.to_numpy() @ [1.0, -2.0, 0.5]
    return X, y


@pytest.mark.parametrize("name", ESTIMATORS)
def test_scikit_learn_column_name_checks(name):
    est = _make(name)
    estimator_checks.check_dataframe_column_names_consistency(name, est)
    estimator_checks.check_n_features_in_after_fitting(name, _make(name))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_on_a_dataframe_learns_the_names(name):
    X, y = _frame(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DataFrame's conversion is quiet, as in scikit-learn
        est = _make(name).fit(X, y)
    assert est.feature_names_in_.tolist() == _COLUMNS and est.feature_names_in_.dtype == object
    assert est.n_features_in_ == 3
    # Refitted on an array: the names are forgotten (scikit-learn's reset).
    est.fit(np.ascontiguousarray(X), y)
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("method", ["predict", "score", "partial_fit"])
def test_reordered_columns_are_an_error(name, method):
    X, y = _frame(name)
    est = _make(name).fit(X, y)
    before = est.predict(X)
    swapped = X[["b", "a", "c"]]
    args = (swapped,) if method == "predict" else (swapped, y)
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        getattr(est, method)(*args)
    renamed = X.rename(columns={"c": "z"})
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        getattr(est, method)(*((renamed,) if method == "predict" else (renamed, y)))
    np.testing.assert_array_equal(est.predict(X), before)  # a refused partial_fit changed nothing


@pytest.mark.parametrize("name", ESTIMATORS)
def test_named_and_unnamed_inputs_warn(name):
    X, y = _frame(name)
    est = _make(name).fit(X, y)
    with pytest.warns(UserWarning, match=f"X does not have valid feature names, but {name} was fitted with feature"):
        est.predict(X.to_numpy())
    plain = _make(name).fit(np.ascontiguousarray(X), y)
    with pytest.warns(UserWarning, match=f"X has feature names, but {name} was fitted without feature names"):
        plain.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(X)


@pytest.mark.parametrize("name", ["LogisticRegression", "MLPRegressor"])
def test_names_survive_save_and_load(name, tmp_path):
    X, y = _frame(name)
    est = _make(name).fit(X, y)
    est.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    assert loaded.feature_names_in_.tolist() == _COLUMNS
    with pytest.raises(ValueError, match="The feature names should match"):
        loaded.predict(X[["c", "b", "a"]])


@pytest.mark.parametrize("name", ["LinearRegression", "MLPClassifier"])
def test_chunks_of_dataframes(name):
    X, y = _frame(name, n=60)
    chunks = [(X.iloc[i:i + 20], y[i:i + 20]) for i in range(0, 60, 20)]
    est = _make(name).fit(chunks, None)
    assert est.feature_names_in_.tolist() == _COLUMNS
    with pytest.raises(ValueError, match="The feature names should match"):
        est.predict(X[["c", "b", "a"]])
    bad = chunks[:2] + [(X.iloc[40:][["b", "a", "c"]], y[40:])]
    with pytest.raises(ValueError, match="chunk 2: .*feature names"):
        _make(name).fit(bad, None)


def test_names_are_checked_without_scikit_learn(monkeypatch):
    # scikit-learn is optional: without it the names are still learned and checked (an error
    # on a mismatch), with the same message.
    for module in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, module, None)
    X, y = _frame("LogisticRegression")
    est = _make("LogisticRegression").fit(X, y)
    assert est.feature_names_in_.tolist() == _COLUMNS
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        est.predict(X[["b", "a", "c"]])


@pytest.mark.parametrize("name", ["LogisticRegression", "MLPRegressor"])
def test_partial_fit_of_a_one_shot_iterator_checks_the_names(name):
    # A fitted model takes a generator of chunks, read once while it trains: its first
    # chunk's names are checked then, before any step, and the model is left as it was.
    X, y = _frame(name, n=60)
    est = _make(name).fit(X, y)
    before = est.predict(X)
    swapped = X[["b", "a", "c"]]
    with pytest.raises(ValueError, match="The feature names should match"):
        est.partial_fit(iter([(swapped.iloc[:30], y[:30]), (swapped.iloc[30:], y[30:])]), None)
    np.testing.assert_array_equal(est.predict(X), before)
    est.partial_fit(iter([(X.iloc[:30], y[:30]), (X.iloc[30:], y[30:])]), None)
    assert est.feature_names_in_.tolist() == _COLUMNS
