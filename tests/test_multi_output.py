"""Multi-output regression: LinearRegression and MLPRegressor on a 2-D y (n_samples,
n_targets), checked against scikit-learn's own multi-output estimators and metrics, and a
multi-output linear fit against K single-output fits (its objective separates by target)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning
from sklearn.linear_model import LinearRegression as SkLinearRegression
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import cross_val_score

import fastgd

# ConvergenceWarning (an error in this suite) silenced:
# short fits compare shapes and equivalences, not convergence.
pytestmark = pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning")

N, D, K = 300, 6, 3


def _data(seed=0, n=N, d=D, k=K):
    """Targets of very different means and scales, so that per-column standardization matters."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((k, d))
    Y = X @ W.T + 0.1 * rng.standard_normal((n, k))
    Y = Y * np.array([1.0, 50.0, 0.01])[:k] + np.array([0.0, -300.0, 7.0])[:k]
    return X, Y, rng.uniform(0.2, 3.0, n)


def _linear(**kw):
    kw.setdefault("random_state", 0)
    return fastgd.LinearRegression(**kw)


# -- LinearRegression ------------------------------------------------------------------------


def test_shapes_follow_scikit_learn():
    X, Y, _ = _data()
    for y in (Y, Y[:, :1], Y[:, 0]):
        ours, theirs = _linear(max_epochs=3).fit(X, y), SkLinearRegression().fit(X, y)
        assert ours.coef_.shape == theirs.coef_.shape
        assert ours.intercept_.shape == np.atleast_1d(theirs.intercept_).shape
        assert ours.predict(X).shape == theirs.predict(X).shape
        assert ours.coef_.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["squared_error", "huber", "elasticnet", "unscaled", "weighted"])
def test_fit_is_k_single_output_fits(case, dtype):
    """The objective separates by target: with an elementwise optimizer and no stopping on the
    summed loss (tol=None), the multi-output fit trains each output as a fit on its column
    alone: the same coefficients, to rounding (each target's own standardization, its own
    Huber threshold and L1 strength)."""
    X, Y, sw = _data(1)
    X = X.astype(dtype)
    kw = dict(max_epochs=6, tol=None, batch_size=50)
    if case == "huber":
        kw.update(loss="huber", delta=0.5)
    elif case == "elasticnet":
        kw.update(penalty="elasticnet", alpha=0.01, l1_ratio=0.5)
    elif case == "unscaled":
        kw.update(standardize=False, optimizer="sgd", lr=1e-5)
    weights = sw if case == "weighted" else None
    multi = _linear(**kw).fit(X, Y, sample_weight=weights)
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    for k in range(K):
        one = _linear(**kw).fit(X, Y[:, k], sample_weight=weights)
        scale = np.abs(one.coef_).max() + abs(one.intercept_[0])
        np.testing.assert_allclose(multi.coef_[k], one.coef_, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(multi.intercept_[k], one.intercept_[0], rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(multi.predict(X)[:, k], one.predict(X), rtol=rtol, atol=rtol * scale)


def test_matches_ridge_multi_output():
    """Full-batch gradient descent to the optimum of the L2 objective is scikit-learn's
    multi-output Ridge with alpha_ridge = n * alpha (fastgd: the mean of half squared errors
    plus alpha/2 |w|^2 per target, summed over the targets; Ridge: the sum of squared errors
    plus alpha_ridge |w|^2, also separable)."""
    X, Y, _ = _data(2)
    Y = Y[:, [0, 2]]
    alpha = 0.05
    ours = _linear(standardize=False, alpha=alpha, optimizer="sgd", lr=0.5, batch_size=None, max_epochs=400,
                   tol=None).fit(X, Y)
    ridge = Ridge(alpha=N * alpha).fit(X, Y)
    np.testing.assert_allclose(ours.coef_, ridge.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.intercept_, ridge.intercept_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.predict(X), ridge.predict(X), rtol=1e-7, atol=1e-9)


def test_score_is_uniform_average_r2():
    X, Y, sw = _data(3)
    model = _linear(max_epochs=20).fit(X, Y)
    pred = model.predict(X)
    assert model.score(X, Y) == pytest.approx(r2_score(Y, pred), rel=1e-12)
    assert model.score(X, Y, sample_weight=sw) == pytest.approx(r2_score(Y, pred, sample_weight=sw), rel=1e-12)
    assert model.score(X, Y) > 0.95
    scores = cross_val_score(_linear(max_epochs=20), X, Y, cv=3)  # scikit-learn's tooling, R^2 by default
    assert scores.shape == (3,) and np.all(scores > 0.9)
    with pytest.raises(ValueError, match="shape"):
        model.score(X, Y[:, :2])


def test_partial_fit_and_early_stopping():
    X, Y, sw = _data(4)
    model = _linear()
    for start in range(0, N, 100):
        model.partial_fit(X[start:start + 100], Y[start:start + 100], sample_weight=sw[start:start + 100])
    assert model.coef_.shape == (K, D) and model.n_iter_ == 3
    with pytest.raises(ValueError, match="partial_fit: y has 2 target column"):
        model.partial_fit(X, Y[:, :2])
    with pytest.raises(ValueError, match="partial_fit: y has a 1-D target"):
        model.partial_fit(X, Y[:, 0])
    es = _linear(early_stopping=True, max_epochs=200, n_iter_no_change=3).fit(X, Y)
    assert es.history_.stop_reason is not None and len(es.history_) < 200
    assert all(np.isfinite(r["val_metric"]) for r in es.history_)  # R^2 over the targets
    assert es.score(X, Y) > 0.95


def test_streams_memmaps_and_files(tmp_path):
    X, Y, _ = _data(5)
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    kw = dict(max_epochs=4, tol=None)
    in_memory = _linear(**kw).fit(X, Y)
    mapped = _linear(**kw).fit(Xm, Y)
    np.testing.assert_array_equal(mapped.coef_, in_memory.coef_)
    chunks = [(X[i:i + 64], Y[i:i + 64]) for i in range(0, N, 64)]
    streamed = _linear(max_epochs=30).fit(chunks, None)
    assert streamed.coef_.shape == (K, D) and streamed.score(X, Y) > 0.95
    # Each column standardized by its own moments, learned in the stream's first pass.
    np.testing.assert_allclose(streamed._scaling.y_mean, Y.mean(axis=0))
    np.testing.assert_allclose(streamed._scaling.y_scale, Y.std(axis=0))
    with pytest.raises(ValueError, match="chunk 1: y has shape"):
        _linear().fit([(X[:64], Y[:64]), (X[64:128], Y[64:128, :2])], None)
    for model in (streamed, fastgd.MLPRegressor(hidden_layer_sizes=(8,), random_state=0).fit(chunks, None)):
        model.partial_fit(iter(chunks), None)  # a one-shot iterator, checked as it is read
        assert model.predict(X).shape == (N, K)
        with pytest.raises(ValueError, match="chunk 0: y has shape \\(64, 2\\), but the model's target has 3 columns"):
            model.partial_fit(iter([(X[:64], Y[:64, :2])]), None)
    in_memory.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), in_memory.predict(X))
    loaded.partial_fit(X, Y)  # continues with its targets
    assert loaded.coef_.shape == (K, D)
    clone(in_memory).fit(X, Y)


def test_newton_matches_ridge():
    """solver="newton" solves each target's problem (the objective separates): scikit-learn's
    multi-output Ridge with alpha_ridge = n * alpha, to rounding; one column as the 1-D fit."""
    X, Y, sw = _data(6)
    alpha = 0.02
    ours = _linear(solver="newton", standardize=False, alpha=alpha).fit(X, Y, sample_weight=sw)
    # fastgd's sum_i s_i l_i / sum_i s_i + alpha/2 |w|^2, times 2 sum_i s_i: Ridge's objective.
    ridge = Ridge(alpha=alpha * sw.sum()).fit(X, Y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, ridge.coef_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.intercept_, ridge.intercept_, rtol=1e-9, atol=1e-9)
    assert len(ours.history_) == ours.n_iter_ and ours.history_.stop_reason
    col = _linear(solver="newton").fit(X, Y[:, :1])
    flat = _linear(solver="newton").fit(X, Y[:, 0])
    np.testing.assert_allclose(col.coef_[0], flat.coef_, rtol=1e-12)


# -- MLPRegressor ----------------------------------------------------------------------------


def test_mlp_multi_output():
    X, Y, sw = _data(7)
    model = fastgd.MLPRegressor(hidden_layer_sizes=(32,), random_state=0, max_epochs=60, lr=3e-3)
    model.fit(X, Y, sample_weight=sw)
    pred = model.predict(X)
    assert pred.shape == (N, K) and model.n_outputs_ == K
    assert model.coefs_[-1].shape == (32, K) and model.intercepts_[-1].shape == (K,)
    assert model.target_mean_.shape == (K,) and model.target_scale_.shape == (K,)
    assert model.score(X, Y) == pytest.approx(r2_score(Y, pred), rel=1e-12)
    assert model.score(X, Y) > 0.9
    es = fastgd.MLPRegressor(hidden_layer_sizes=(8,), random_state=0, early_stopping=True, max_epochs=5).fit(X, Y)
    assert es.predict(X).shape == (N, K)
    model.partial_fit(X, Y)
    assert model.predict(X[:5]).shape == (5, K)


def test_mlp_one_column_is_raveled_as_scikit_learn_does():
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor

    X, Y, _ = _data(8)
    with pytest.warns(DataConversionWarning):
        ours = fastgd.MLPRegressor(hidden_layer_sizes=(4,), random_state=0, max_epochs=2).fit(X, Y[:, :1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkMLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(X, Y[:, :1])
    assert ours.predict(X).shape == theirs.predict(X).shape == (N,)


def test_squared_error_sums_outputs():
    """fastgd.losses.squared_error on (n, K): a sample's loss sums its outputs' (the
    gradient that scikit-learn's MLPRegressor takes), each output's derivative its own."""
    rng = np.random.default_rng(9)
    z, y, w = rng.standard_normal((50, 3)), rng.standard_normal((50, 3)), rng.uniform(0, 2, 50)
    value, dz = fastgd.losses.squared_error(z, y, w)
    assert value == pytest.approx(float(w @ (0.5 * (z - y) ** 2).sum(axis=1) / w.sum()))
    for k in range(3):
        np.testing.assert_allclose(dz[:, k], fastgd.losses.squared_error(z[:, k], y[:, k], w)[1])
