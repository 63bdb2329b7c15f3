"""Finite inputs of any magnitude (issue 13, item 7): the standardization's moments do not
overflow, so a feature or a target of about 1e200 (or +-1e308) gets the model of the same
data at unit scale, scaled back; and no fit returns a non-finite model: it raises, or keeps
the finite parameters its warning says it restored."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgd as fg
from fastgd import cli, persistence
from fastgd.models._data import r2_score, weighted_mean, weighted_moments
from fastgd.models._inputs import merge_moments
from fastgd.streaming import ChunkStream, RunningMoments, pow2_scale

BIG = float(np.finfo(np.float64).max)


@pytest.fixture(autouse=True)
def _no_overflow_warnings():
    # An overflow in NumPy (a square, a sum) is what these tests look for: an error here.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", fg.models.ConvergenceWarning)
        yield


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)) + np.array([0.5, -1.0, 2.0])
    y = X @ np.array([2.0, -1.0, 0.5]) + 1.0 + 0.3 * rng.standard_normal(n)
    return X, y, rng


# -- the moments ---------------------------------------------------------------------------

def test_pow2_scale_brings_any_magnitude_to_one_or_two():
    m = np.array([0.0, 1e-300, 0.75, 1.0, 3.0, 1e200, BIG])
    s = pow2_scale(m)
    q = m[1:] / s[1:]
    assert np.all((q >= 1) & (q < 2)) and s[0] == 1.0
    assert np.all(np.frexp(s)[0] == 0.5)  # powers of two: dividing by them is exact


@pytest.mark.parametrize("magnitude", [1e160, 1e200, 1e300, 1e307])
def test_moments_of_huge_columns_are_those_of_the_unit_column_scaled(magnitude):
    rng = np.random.default_rng(1)
    unit = rng.standard_normal((500, 1)) + 0.3
    w = rng.uniform(0.5, 2.0, 500)
    ordinary = rng.standard_normal((500, 2)) * 7
    X = np.hstack([unit * magnitude, ordinary])
    mean, std = weighted_moments(X, w)
    mean1, std1 = weighted_moments(unit, w)
    np.testing.assert_allclose(mean[0], mean1[0] * magnitude, rtol=1e-13)
    np.testing.assert_allclose(std[0], std1[0] * magnitude, rtol=1e-13)
    # The other columns keep their bits (the plain formulas), also in blocks of rows.
    plain_mean, plain_std = weighted_moments(ordinary, w)
    np.testing.assert_array_equal(mean[1:], plain_mean)
    np.testing.assert_array_equal(std[1:], plain_std)
    blocks_mean, blocks_std = weighted_moments(X, w, block_bytes=24 * 37)
    np.testing.assert_allclose(blocks_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(blocks_std, std, rtol=1e-13)
    np.testing.assert_array_equal(blocks_mean[1:], weighted_moments(ordinary, w, block_bytes=16 * 37)[0])


def test_moments_of_values_near_the_float64_limit():
    rng = np.random.default_rng(2)
    signs = np.where(rng.standard_normal(301) > 0, 1.0, -1.0)
    for top in (1e308, BIG):
        mean, std = weighted_moments((signs * top)[:, None], np.ones(301))
        np.testing.assert_allclose(mean[0], signs.mean() * top, rtol=1e-12)
        np.testing.assert_allclose(std[0], signs.std() * top, rtol=1e-12)


def test_a_merge_that_overflows_is_taken_in_units_and_summaries_merge_alike():
    # Each block's own moments are finite; only their merge overflows (delta^2 of 1e300).
    rng = np.random.default_rng(3)
    small, large = rng.standard_normal((200, 2)), rng.standard_normal((100, 2)) * 1e300 + 5e300
    both = np.vstack([small, large])
    whole = RunningMoments()
    whole.update(small, np.ones(200))
    whole.update(large, np.ones(100))
    mean, std = whole.mean_std(np.float64)
    ref = np.vstack([small / 1e300, large / 1e300])
    np.testing.assert_allclose(mean, ref.mean(axis=0) * 1e300, rtol=1e-12)
    np.testing.assert_allclose(std, ref.std(axis=0) * 1e300, rtol=1e-12)
    np.testing.assert_allclose(weighted_moments(both, np.ones(300))[1], std, rtol=1e-12)
    # Ranks' summaries (an allgather in rank order): the same bits as the updates.
    parts = []
    for rows in (small, large):
        m = RunningMoments()
        m.update(rows, np.ones(len(rows)))
        parts.append(m.summary())

    class Comm:  # the allgather of two ranks, seen by one of them
        def allgather(self, mine):
            return parts

    merged = merge_moments(Comm(), RunningMoments.from_summary(parts[0]))
    np.testing.assert_array_equal(merged.mean, whole.mean)
    np.testing.assert_array_equal(merged.var, whole.var)
    np.testing.assert_array_equal(merged.scale, whole.scale)
    assert merged.count == 300


def test_non_finite_values_are_still_seen():
    for bad in (np.nan, np.inf):
        a = np.ones((10, 2))
        a[3, 1] = bad
        m = RunningMoments()
        assert not m.update(a, np.ones(10))
        assert np.isfinite(m.mean[0]) and not np.isfinite(m.mean[1])
    assert RunningMoments().update(np.full((4, 1), 1e300), np.ones(4))


def test_weighted_mean_and_r2_of_huge_values():
    rng = np.random.default_rng(4)
    y = np.where(rng.standard_normal(200) > 0, 1.0, -1.0)
    w = rng.uniform(0.5, 2, 200)
    assert weighted_mean(y * 1e308, w) == pytest.approx(np.average(y, weights=w) * 1e308, rel=1e-12)
    pred = y * 0.5
    assert r2_score(y * 1e308, pred * 1e308, w) == pytest.approx(r2_score(y, pred, w), rel=1e-12)


# -- the estimators -------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e200, 1e306])
def test_linear_regression_on_a_huge_target_is_the_unit_fit_scaled(scale):
    # Was: coef_ = [nan], intercept_ = [nan], stop reason "reached max_epochs".
    X, y, _ = _data()
    at_unit = fg.LinearRegression(random_state=0).fit(X, y)
    huge = fg.LinearRegression(random_state=0).fit(X, y * scale)
    np.testing.assert_allclose(huge.coef_ / scale, at_unit.coef_, rtol=1e-6)
    np.testing.assert_allclose(huge.intercept_ / scale, at_unit.intercept_, rtol=1e-6)
    assert huge.score(X, y * scale) == pytest.approx(at_unit.score(X, y), rel=1e-9)
    assert not huge.history_.stop_reason.startswith("diverged")


@pytest.mark.parametrize("loss", ["squared_error", "huber"])
def test_linear_regression_on_plus_minus_1e308(loss):
    # Was: "the parameters were restored" (a DivergenceWarning), yet coef_ = [nan].
    X, _, rng = _data()
    signs = np.where(X[:, 0] + 0.3 * rng.standard_normal(len(X)) > 0.5, 1.0, -1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fg.DivergenceWarning)
        # (Huber's delta is in y's units: scaled with it.)
        at_unit = fg.LinearRegression(loss=loss, delta=1.0, random_state=0).fit(X, signs)
        huge = fg.LinearRegression(loss=loss, delta=1e308, random_state=0).fit(X, signs * 1e308)
    np.testing.assert_allclose(huge.coef_ / 1e308, at_unit.coef_, rtol=1e-6)
    np.testing.assert_allclose(huge.intercept_ / 1e308, at_unit.intercept_, rtol=1e-6)
    # Predictions within the float64 range are those of the unit model (although X @ coef_
    # may overflow on its way there); the others are infinite, and said to be.
    fits, beyond = np.abs(at_unit.predict(X)) < 1.79, np.abs(at_unit.predict(X)) > 1.8  # BIG is 1.797e308
    assert fits.sum() > len(X) // 2 and beyond.any()
    np.testing.assert_allclose(huge.predict(X[fits]) / 1e308, at_unit.predict(X[fits]), rtol=1e-6)
    assert huge.score(X[fits], signs[fits] * 1e308) == pytest.approx(at_unit.score(X[fits], signs[fits]), rel=1e-6)
    with pytest.warns(RuntimeWarning, match="overflow"):
        assert np.isinf(huge.predict(X[beyond])).all()


def test_a_huge_feature_gets_its_coefficient():
    # Was: a feature of about 1e200 got the coefficient 0 (its moments overflowed).
    X, y, _ = _data()
    unit = np.array([1e200, 1.0, 1e-150])
    at_unit = fg.LinearRegression(random_state=0).fit(X, y)
    huge = fg.LinearRegression(random_state=0).fit(X * unit, y)
    np.testing.assert_allclose(huge.coef_ * unit, at_unit.coef_, rtol=1e-6)
    np.testing.assert_allclose(huge.predict(X * unit), at_unit.predict(X), rtol=1e-6)
    # Streamed, the moments are merged chunk by chunk: the same model up to rounding.
    streamed = fg.LinearRegression(random_state=0, batch_size=32).fit(ChunkStream(X * unit, y, chunk_rows=64), None)
    in_memory = fg.LinearRegression(random_state=0, batch_size=32).fit(X * unit, y)
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-5)


def test_logistic_regression_with_a_huge_feature():
    X, y, _ = _data()
    labels = (y > np.median(y)).astype(int)
    unit = np.array([1.0, 1e250, 1.0])
    at_unit = fg.LogisticRegression(random_state=0).fit(X, labels)
    huge = fg.LogisticRegression(random_state=0).fit(X * unit, labels)
    np.testing.assert_allclose(huge.coef_ * unit, at_unit.coef_, rtol=1e-6)
    np.testing.assert_array_equal(huge.predict(X * unit), at_unit.predict(X))


def test_mlps_with_a_huge_feature_and_target():
    X, y, _ = _data(300)
    unit = np.array([1e200, 1.0, 1.0])
    params = dict(hidden_layer_sizes=(8,), max_epochs=20, random_state=0)
    at_unit = fg.MLPRegressor(**params).fit(X, y)
    huge = fg.MLPRegressor(**params).fit(X * unit, y * 1e300)
    assert all(np.all(np.isfinite(c)) for c in huge.coefs_)
    np.testing.assert_allclose(huge.predict(X * unit) / 1e300, at_unit.predict(X), rtol=1e-4, atol=1e-4)
    labels = (y > np.median(y)).astype(int)
    clf_unit = fg.MLPClassifier(**params).fit(X, labels)
    clf = fg.MLPClassifier(**params).fit(X * unit, labels)
    np.testing.assert_allclose(clf.predict_proba(X * unit), clf_unit.predict_proba(X), atol=1e-4)


def test_values_at_the_float64_limit():
    # Features and targets of +-1.797e308, where x - mean itself overflows: centred in units
    # of a power of two (in memory, streamed, and in an MLP's predictions).
    X, y, rng = _data()
    X[:, 1] = np.where(rng.standard_normal(len(X)) > 0.4, 1.0, -1.0)
    unit, c = np.array([1.0, BIG, 1.0]), BIG / 16
    assert np.abs(y).max() < 16
    params = dict(random_state=0, batch_size=32)
    at_unit = fg.LinearRegression(**params).fit(X, y)
    for data in ((X * unit, y * c), (ChunkStream(X * unit, y * c, chunk_rows=50), None)):
        huge = fg.LinearRegression(**params).fit(*data)
        np.testing.assert_allclose(huge.coef_ * unit / c, at_unit.coef_, rtol=1e-6)
        np.testing.assert_allclose(huge.intercept_ / c, at_unit.intercept_, rtol=1e-6)
    mlp_unit = fg.MLPRegressor((4,), max_epochs=5, random_state=0).fit(X, y)
    mlp = fg.MLPRegressor((4,), max_epochs=5, random_state=0).fit(X * unit, y * c)
    np.testing.assert_allclose(mlp.predict(X * unit) / c, mlp_unit.predict(X), rtol=1e-5, atol=1e-6)


def test_a_target_beyond_float32_with_float32_features_is_refused():
    X, y, _ = _data()
    for cls in (fg.LinearRegression, fg.MLPRegressor):
        with pytest.raises(ValueError, match="beyond the range of float32"):
            cls().fit(X.astype(np.float32), y * 1e200)


def test_a_model_that_overflows_is_refused_and_the_estimator_kept():
    # A target of 1e300 explained by a feature of 1e-20: the coefficient, 1e320, is not a
    # float64. The fit raises; a fitted estimator keeps its model.
    X, y, _ = _data()
    est = fg.LinearRegression(random_state=0).fit(X, y)
    before = est.coef_.copy()
    with pytest.raises(FloatingPointError, match=r"LinearRegression.fit: coef_.* would not be finite.*left as it was"):
        est.fit(X * 1e-20, y * 1e300)
    np.testing.assert_array_equal(est.coef_, before)
    with pytest.raises(FloatingPointError):
        fg.LinearRegression().fit(X * 1e-20, y * 1e300)


def test_unstandardized_training_on_a_huge_target_keeps_finite_parameters():
    # Without standardization the loss overflows at once: the divergence guard restores the
    # initial parameters, which are finite, as its warning says.
    X, y, _ = _data()
    with pytest.warns(fg.DivergenceWarning, match="restored to their initial values. Try"):
        m = fg.LinearRegression(standardize=False, random_state=0).fit(X, y * 1e200)
    assert np.all(np.isfinite(m.coef_)) and np.isfinite(m.intercept_).all()
    assert m.history_.stop_reason.startswith("diverged")


def test_train_from_non_finite_parameters_does_not_promise_a_usable_restore():
    X, y, _ = _data()
    w = np.array([np.nan, 0.0, 0.0])

    def lsq(params, Xb, yb, wb):
        r = Xb @ params[0] - yb
        return float(0.5 * np.mean(r * r)), [Xb.T @ r / len(yb)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fg.train(lsq, [w], X, y, optimizer="sgd", lr=0.1, max_epochs=2)
    [warning] = [c for c in caught if issubclass(c.category, fg.DivergenceWarning)]
    assert "restored to their initial values, which are not finite. Start from finite parameters." in str(
        warning.message)


# -- the command line ---------------------------------------------------------------------

def _csv(path, X, y):
    rows = ["a,b,c,target"] + [",".join(repr(float(v)) for v in (*x, t)) for x, t in zip(X, y)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_trains_and_saves_a_finite_model_on_a_huge_target(tmp_path, capsys):
    # Was: exit status 0 and --save wrote a model of NaN.
    X, y, _ = _data()
    data = _csv(tmp_path / "huge.csv", X, y * 1e200)
    model = tmp_path / "m.npz"
    code = cli.main(["train", str(data), "--target", "target", "--model", "linear", "--save", str(model)])
    out, err = capsys.readouterr()
    assert code == 0, err
    loaded = persistence.load(model)
    assert np.all(np.isfinite(loaded.coef_)) and np.all(np.isfinite(loaded.intercept_))
    assert "test R^2: 0.9" in out


def test_cli_refuses_a_model_that_would_not_be_finite_and_writes_nothing(tmp_path, capsys):
    X, y, _ = _data()
    data = _csv(tmp_path / "overflow.csv", X * 1e-20, y * 1e300)
    model = tmp_path / "m.npz"
    code = cli.main(["train", str(data), "--target", "target", "--model", "linear", "--save", str(model)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("fastgd: error: LinearRegression.fit: coef_") and "would not be finite" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not model.exists() and "model saved" not in out
