"""Every estimator rejects bad input with a ValueError that says what is wrong and in which
argument, and a failed fit/partial_fit leaves no half-fitted model: an unfitted estimator
stays unfitted, a fitted one keeps its state bit for bit. A diverging fit ends with finite
weights (the last good ones) and a DivergenceWarning."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from fastgd import DivergenceWarning
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor

_N, _D = 24, 3


def _make(name, **kw):
    common = {"max_epochs": 3, "tol": None, "random_state": 0, "batch_size": 8}
    common.update(kw)
    if name == "LinearRegression":
        return LinearRegression(**common)
    if name == "LogisticRegression":
        return LogisticRegression(**common)
    if name == "MLPClassifier":
        return MLPClassifier((4,), **common)
    return MLPRegressor((4,), **common)


ESTIMATORS = ["LinearRegression", "LogisticRegression", "MLPClassifier", "MLPRegressor"]
CLASSIFIERS = ["LogisticRegression", "MLPClassifier"]
REGRESSORS = ["LinearRegression", "MLPRegressor"]


def _data(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(_N, _D))
    if name in CLASSIFIERS:
        y = np.arange(_N) % 3
    else:
        y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=_N)
    return X, y


def _learned(est):
    """The names of the learned attributes (scikit-learn's convention: a trailing _)."""
    return sorted(k for k in vars(est) if k.endswith("_") and not k.startswith("__"))


def _snapshot(est):
    """The estimator's whole state as bytes (learned attributes, parameters, optimizer state,
    random stream, history) and the names of its attributes."""
    return sorted(vars(est)), pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL)


def _partial(est, X, y, name, **kw):
    if name in CLASSIFIERS:
        kw.setdefault("classes", np.arange(3))
    return est.partial_fit(X, y, **kw)


def _cases(name):
    """(id, method, kwargs builder, message): method is "fit" or "partial_fit"."""
    X, y = _data(name)
    nan_X = X.copy()
    nan_X[5, 1] = np.nan
    inf_X = X.copy()
    inf_X[7, 2] = -np.inf
    sw = np.ones(_N)
    cases = [
        ("X-nan", {"X": nan_X, "y": y}, r"Input X contains NaN"),
        ("X-inf", {"X": inf_X, "y": y}, r"Input X contains infinity"),
        ("X-empty", {"X": X[:0], "y": y[:0]}, r"0 sample\(s\).*X has no rows"),
        ("X-0-features", {"X": X[:, :0], "y": y}, r"0 feature\(s\).*X has no columns"),
        ("X-1d", {"X": X[:, 0], "y": y}, r"Expected 2D array, got 1D array.*X"),
        ("X-3d", {"X": X[None], "y": y}, r"Expected 2D array, got 3D array.*X"),
        ("X-None", {"X": None, "y": y}, r"2D array for X"),
        ("y-None", {"X": X, "y": None}, r"requires y"),
        ("y-short", {"X": X, "y": y[:-1]},
         r"inconsistent numbers of samples: \[24, 23\] \(X has 24 rows, y has 23 values\)"),
        ("y-long", {"X": X, "y": np.concatenate([y, y[:1]])}, r"inconsistent numbers of samples"),
        ("sw-nan", {"X": X, "y": y, "sample_weight": np.where(np.arange(_N) == 3, np.nan, sw)},
         r"Input sample_weight contains NaN"),
        ("sw-inf", {"X": X, "y": y, "sample_weight": np.where(np.arange(_N) == 3, np.inf, sw)},
         r"Input sample_weight contains infinity"),
        ("sw-negative", {"X": X, "y": y, "sample_weight": np.where(np.arange(_N) == 3, -1.0, sw)},
         r"Negative values in sample_weight"),
        ("sw-zero", {"X": X, "y": y, "sample_weight": np.zeros(_N)}, r"sample_weight sums to zero"),
        ("sw-short", {"X": X, "y": y, "sample_weight": sw[:-1]}, r"sample_weight\.shape == \(23,\), expected \(24,\)"),
        ("sw-2d", {"X": X, "y": y, "sample_weight": sw[:, None]}, r"sample_weight\.shape"),
    ]
    if name in REGRESSORS:
        cases += [
            ("y-nan", {"X": X, "y": np.where(np.arange(_N) == 2, np.nan, y)}, r"Input y contains NaN"),
            ("y-inf", {"X": X, "y": np.where(np.arange(_N) == 2, np.inf, y)}, r"Input y contains infinity"),
            ("y-3d", {"X": X, "y": np.column_stack([y, y])[:, :, None]}, r"y should be a 1d or 2d array"),
            ("y-2d-nan", {"X": X, "y": np.column_stack([y, np.where(np.arange(_N) == 2, np.nan, y)])},
             r"Input y contains NaN"),
        ]
    else:
        cases += [
            ("y-one-class", {"X": X, "y": np.full(_N, 2)}, r"at least 2 classes.*only one class"),
            ("y-nan-label", {"X": X, "y": np.where(np.arange(_N) == 2, np.nan, y.astype(float))},
             r"Input y contains NaN"),
            ("y-continuous", {"X": X, "y": np.linspace(0, 1, _N)}, r"Unknown label type: continuous"),
            ("y-2d", {"X": X, "y": np.column_stack([y, y])}, r"y should be a 1d array"),
        ]
    return cases


def _all_cases():
    return [(name, c) for name in ESTIMATORS for c in _cases(name)]


def _call(est, name, method, case):
    kw = dict(case[1])
    X, y = kw.pop("X"), kw.pop("y")
    if method == "fit":
        return est.fit(X, y, **kw)
    return _partial(est, X, y, name, **kw)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("name,case", _all_cases(), ids=[f"{n}-{c[0]}" for n, c in _all_cases()])
def test_bad_input_leaves_unfitted_estimator_unfitted(name, case, method):
    if method == "partial_fit" and case[0] == "y-one-class":
        pytest.skip("a partial_fit batch may hold one class of the declared classes")
    est = _make(name)
    before = _snapshot(est)
    with pytest.raises(ValueError, match=case[2]):
        _call(est, name, method, case)
    assert _learned(est) == []
    assert not est.__sklearn_is_fitted__()
    assert _snapshot(est) == before


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("name,case", _all_cases(), ids=[f"{n}-{c[0]}" for n, c in _all_cases()])
def test_bad_input_leaves_fitted_estimator_as_it_was(name, case, method):
    if method == "partial_fit" and case[0] == "y-one-class":
        pytest.skip("a partial_fit batch may hold one class of the declared classes")
    X, y = _data(name)
    est = _make(name)
    if method == "fit":
        est.fit(X, y)
    else:
        _partial(est, X, y, name)
    before = _snapshot(est)
    with pytest.raises(ValueError, match=case[2]):
        _call(est, name, method, case)
    assert _snapshot(est) == before
    # and it still works from there
    _call(est, name, method, ("good", {"X": X, "y": y}, ""))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_partial_fit_single_class_batch_is_fine(name):
    # A batch may show only one of the declared classes; fit may not.
    X, y = _data(name)
    est = _partial(_make(name), X, np.full(_N, 1), name)
    assert list(est.classes_) == [0, 1, 2]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_partial_fit_with_other_number_of_features(name):
    X, y = _data(name)
    est = _partial(_make(name), X, y, name)
    before = _snapshot(est)
    with pytest.raises(ValueError, match=r"X has 2 features, but .* (is expecting|was fitted with) 3"):
        _partial(est, np.ascontiguousarray(X[:, :2]), y, name)
    assert _snapshot(est) == before


@pytest.mark.parametrize("name", ESTIMATORS)
def test_predict_with_wrong_number_of_features(name):
    X, y = _data(name)
    est = _make(name).fit(X, y)
    before = _snapshot(est)
    methods = ["predict", "score"] + (["predict_proba"] if name in CLASSIFIERS else [])
    for m in methods:
        args = (np.hstack([X, X]),) + ((y,) if m == "score" else ())
        with pytest.raises(ValueError, match=rf"X has 6 features, but {name} is expecting 3 features"):
            getattr(est, m)(*args)
        bad = X.copy()
        bad[0, 0] = np.nan
        with pytest.raises(ValueError, match="Input X contains NaN"):
            getattr(est, m)(bad, *args[1:])
        with pytest.raises(ValueError, match="Expected 2D array"):
            getattr(est, m)(X[0], *args[1:])
    assert _snapshot(est) == before


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_partial_fit_classes(name):
    X, y = _data(name)
    est = _make(name)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"y contains labels \[2\] that are not in classes"):
        est.partial_fit(X, y, classes=[0, 1])
    assert _learned(est) == []
    est.partial_fit(X, y, classes=[0, 1, 2, 3])
    before = _snapshot(est)
    with pytest.raises(ValueError, match=r"y contains labels \[7\] that are not in classes"):
        est.partial_fit(X, np.where(y == 0, 7, y))
    with pytest.raises(ValueError, match="differs from the classes of the first call"):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert _snapshot(est) == before
    # fit with one class: rejected whatever partial_fit learned before
    with pytest.raises(ValueError, match="only one class"):
        est.fit(X, np.zeros(_N, int))
    assert _snapshot(est) == before


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_failure_inside_training_leaves_estimator_as_it_was(name, method):
    # An error raised while training (here by a callback) after the inputs were accepted:
    # the parameters, optimizer state and random stream are the fitted ones still.
    X, y = _data(name)
    est = _make(name, warm_start=True)
    _partial(est, X, y, name)
    est.fit(X, y) if method == "fit" else _partial(est, X, y, name)
    before = _snapshot(est)

    def boom(history, params):
        raise RuntimeError("stop here")

    est.set_params(callbacks=[boom])
    with pytest.raises(RuntimeError, match="stop here"):
        est.fit(X, y) if method == "fit" else _partial(est, X, y, name)
    est.set_params(callbacks=())
    assert _snapshot(est) == before


@pytest.mark.parametrize("name", ESTIMATORS)
def test_divergence_keeps_finite_weights(name):
    # float32 and a step of 1e36: the outputs overflow within a few steps, for every loss
    # (the log and hinge losses have bounded gradients, so float64 would take ~300 steps).
    X, y = _data(name)
    X = (X * 1e3).astype(np.float32)
    est = _make(name, optimizer="sgd", lr=1e36, standardize=False, max_epochs=20, alpha=0.0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est.fit(X, y)
    assert any(issubclass(w.category, DivergenceWarning) for w in rec), [str(w.message) for w in rec]
    assert est.history_.stop_reason.startswith("diverged")
    params = [est.coef_, est.intercept_] if hasattr(est, "coef_") else list(est.coefs_) + list(est.intercepts_)
    for p in params:
        assert np.all(np.isfinite(p))
    assert np.all(np.isfinite(est.predict(X[:5] / 1e3))) if name in REGRESSORS else True
    assert est.coef_.dtype == np.float32 if hasattr(est, "coef_") else est.coefs_[0].dtype == np.float32
    # partial_fit diverging from a fitted model: finite too, and usable afterwards
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        for _ in range(3):
            _partial(est, X, y, name)
    params = [est.coef_, est.intercept_] if hasattr(est, "coef_") else list(est.coefs_) + list(est.intercepts_)
    for p in params:
        assert np.all(np.isfinite(p))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_partial_fit_bad_classes_argument(name):
    X, y = _data(name)
    est = _make(name)
    for classes, match in [([1], r"classes must hold at least 2 distinct labels, got \[1\]"),
                           ([1, 1, 1], r"at least 2 distinct labels"),
                           ([0.0, np.nan], r"Input classes contains NaN"),
                           ([0.5, 1.0], r"Unknown label type: continuous \(classes\)")]:
        with pytest.raises(ValueError, match=match):
            est.partial_fit(X, y, classes=classes)
        assert _learned(est) == []


@pytest.mark.parametrize("name", ESTIMATORS)
def test_warm_start_with_other_features_or_classes(name):
    X, y = _data(name)
    est = _make(name, warm_start=True).fit(X, y)
    before = _snapshot(est)
    with pytest.raises(ValueError, match=r"warm_start: X has 2 features, but .* was fitted with 3"):
        est.fit(np.ascontiguousarray(X[:, :2]), y)
    if name in CLASSIFIERS:
        with pytest.raises(ValueError, match=r"warm_start: the classes .* differ from the fitted"):
            est.fit(X, y % 2)
    assert _snapshot(est) == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 33, 100_003])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finiteness_check_finds_one_bad_value_anywhere(dtype, n, bad):
    from fastgd.models._base import check_X

    X = np.ones((n, 3), dtype)
    for i in sorted({0, n // 2, n - 1}):
        for j in (0, 2):
            Xb = X.copy()
            Xb[i, j] = bad
            with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
                check_X(Xb)
            with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
                check_X(np.asfortranarray(Xb))
    assert check_X(X).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_finite_values_are_accepted(dtype):
    # Their sum overflows; the element-wise check that follows finds nothing wrong.
    from fastgd.models._base import check_X

    big = np.finfo(dtype).max
    X = np.full((10, 2), big, dtype)
    X[3, 1] = -big
    assert check_X(X) is not None


@pytest.mark.parametrize("name", ["LinearRegression", "LogisticRegression"])
def test_newton_solver_bad_input_leaves_estimator_as_it_was(name):
    X, y = _data(name)
    est = _make(name, solver="newton", max_epochs=50)
    for case in _cases(name):
        with pytest.raises(ValueError, match=case[2]):
            _call(est, name, "fit", case)
        assert _learned(est) == []
    est.fit(X, y)
    before = _snapshot(est)
    for case in _cases(name):
        with pytest.raises(ValueError, match=case[2]):
            _call(est, name, "fit", case)
    assert _snapshot(est) == before


# -- parameters, warnings, one-shot streams ------------------------------------------------

@pytest.mark.parametrize("name", ESTIMATORS)
def test_parameters_are_documented_with_the_signature_defaults(name):
    """The docstring's Parameters section comes from the hyperparameter table, every
    parameter of __init__ in order, with the default that the signature gives."""
    import inspect

    cls = type(_make(name))
    doc = cls.__doc__
    assert "{parameters}" not in doc and "Parameters\n    ----------" in doc
    position = 0
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        default = f'"{p.default}"' if isinstance(p.default, str) else repr(p.default)
        line = f"\n    {p.name} : "
        assert line in doc[position:], p.name
        position = doc.index(line, position)
        assert doc[position:].split("\n")[1].endswith(f", default={default}"), p.name


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("bad", ["rows", 1, None])
def test_shuffle_is_checked_by_every_estimator(name, bad):
    X, y = _data(name)
    with pytest.raises(ValueError, match="shuffle must be True"):
        _make(name, shuffle=bad).fit(X, y)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_warnings_name_the_callers_line(name):
    """A warning raised deep in fit points at the user's call (not at fastgd's code)."""
    X, y = _data(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _make(name, tol=1e-12, max_epochs=2).fit(X, y[:, None])
    found = {w.category.__name__: w.filename for w in caught}
    # (LinearRegression keeps a one-column y as a 2-D target, as scikit-learn's: no warning.)
    column_warning = set() if name == "LinearRegression" else {"DataConversionWarning"}
    assert set(found) >= {"ConvergenceWarning"} | column_warning
    assert set(found.values()) == {__file__}


@pytest.mark.parametrize("name", ESTIMATORS)
def test_partial_fit_of_a_one_shot_iterator_after_fit(name):
    """A fitted estimator takes a generator of chunks in partial_fit (checked as it is read):
    regressors too."""
    X, y = _data(name)
    chunks = [(X[i:i + 8], y[i:i + 8]) for i in range(0, _N, 8)]
    est = _make(name).fit(chunks, None)
    before = est.n_iter_
    est.partial_fit(iter(chunks), None)
    assert est.n_iter_ == before + 1 and np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("name", ESTIMATORS)
def test_a_subclass_with_its_own_parameter(name):
    """scikit-learn's way to extend an estimator: a subclass's __init__ takes a parameter of
    its own and passes the others on; its parameters are its signature's, and it fits."""
    base = type(_make(name))

    class Extended(base):
        def __init__(self, *, extra=1, max_epochs=2, tol=None):
            super().__init__(max_epochs=max_epochs, tol=tol)
            self.extra = extra

    est = Extended(extra=2)
    assert est.get_params() == {"extra": 2, "max_epochs": 2, "tol": None}
    again = type(est)(**est.get_params())  # what scikit-learn's clone does
    X, y = _data(name)
    assert again.fit(X, y).extra == 2 and again.n_iter_ == 2


def test_an_undocumented_parameter_fails_when_the_class_is_defined():
    with pytest.raises(TypeError, match=r"not in the table \['extra'\]"):
        class Extended(LogisticRegression):
            """An estimator with a parameter that the hyperparameter table lacks.

            {parameters}
            """

            def __init__(self, *, extra=1, max_epochs=2):
                super().__init__(max_epochs=max_epochs)
                self.extra = extra
