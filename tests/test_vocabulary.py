"""The regularization and iteration vocabulary: ``alpha`` and scikit-learn's ``C`` map exactly
(``alpha = 1 / (C * n_samples)``, ``n_samples`` the total sample weight, for the mean-loss
objective), ``LogisticRegression(C=...)`` is scikit-learn's spelling of the same strength, and
a wrong keyword is a TypeError that names the function and lists its keywords."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier

sklearn_linear = pytest.importorskip("sklearn.linear_model")
sklearn_base = pytest.importorskip("sklearn.base")
estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")


def _data(n_classes=2, n=120):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 0.5]
    z = X @ [1.0, -0.5, 2.0, 0.3] + rng.normal(size=n)
    y = np.digitize(z, np.quantile(z, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_C_is_scikit_learns_C(n_classes, weighted):
    X, y = _data(n_classes)
    sw = np.random.default_rng(3).uniform(0.5, 2.0, len(y)) if weighted else None
    ours = LogisticRegression(C=0.3, solver="newton", standardize=False, max_epochs=100).fit(X, y, sample_weight=sw)
    theirs = sklearn_linear.LogisticRegression(C=0.3, tol=1e-12, max_iter=10_000).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_.reshape(theirs.coef_.shape), theirs.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("solver", ["gd", "newton"])
def test_C_is_alpha_over_the_total_weight_bit_for_bit(solver):
    X, y = _data(3)
    sw = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    common = {"solver": solver, "random_state": 0, "max_epochs": 5 if solver == "gd" else 50, "tol": None}
    a = LogisticRegression(C=0.3, **common).fit(X, y, sample_weight=sw)
    b = LogisticRegression(alpha=1 / (0.3 * sw.sum()), **common).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_C_and_alpha_are_exclusive_and_C_is_a_parameter():
    X, y = _data()
    with pytest.raises(ValueError, match="C and alpha"):
        LogisticRegression(C=1.0, alpha=0.01).fit(X, y)
    for bad in (0, -1.0, "1"):
        with pytest.raises(ValueError, match="C must be"):
            LogisticRegression(C=bad).fit(X, y)
    est = LogisticRegression(C=2.0)
    assert est.get_params()["C"] == 2.0 and sklearn_base.clone(est).C == 2.0
    assert est.set_params(C=None, alpha=0.5).get_params()["alpha"] == 0.5
    with pytest.raises(ValueError, match="partial_fit"):
        LogisticRegression(C=1.0).partial_fit(X, y, classes=[0, 1])
    assert "alpha = 1 / (C * n_samples)" in LogisticRegression.__doc__


def test_scikit_learn_checks_with_C():
    est = LogisticRegression(C=10.0, solver="newton")
    estimator_checks.check_parameters_default_constructible("LogisticRegression", est)
    estimator_checks.check_get_params_invariance("LogisticRegression", est)
    estimator_checks.check_set_params("LogisticRegression", est)
    estimator_checks.check_fit2d_1sample("LogisticRegression", est)


def test_minimize_names_itself_and_its_keywords():
    def fun(x):
        return float(x @ x), 2 * x

    with pytest.raises(TypeError) as info:
        fg.minimize(fun, np.ones(3), max_steps=10)
    message = str(info.value)
    assert message.startswith("minimize() got an unexpected keyword argument 'max_steps'")
    assert "did you mean 'max_iter'" in message
    for keyword in ("max_iter", "tol", "callback", "betas", "clip_norm"):
        assert keyword in message
    assert "Adam.__init__" not in message
    with pytest.raises(TypeError, match=r"minimize\(\) got an unexpected keyword argument 'betas'.*\(SGD\)"):
        fg.minimize(fun, np.ones(3), optimizer="sgd", betas=(0.9, 0.99))
    assert fg.minimize(fun, np.ones(3), optimizer="sgd", lr=0.1, momentum=0.5, max_iter=5).nit == 5


@pytest.mark.parametrize("cls", [LinearRegression, LogisticRegression, MLPClassifier])
def test_estimators_name_themselves_and_their_parameters(cls):
    with pytest.raises(TypeError) as info:
        cls(max_iter=50)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}() got an unexpected keyword argument 'max_iter'")
    assert "did you mean 'max_epochs'" in message and "batch_size" in message


def test_optimizer_options_of_an_estimator():
    X, y = _data()
    with pytest.raises(TypeError, match=r"optimizer_options.*'beta1'.*Adam.*betas"):
        LogisticRegression(optimizer_options={"beta1": 0.8}).fit(X, y)


def test_optimizer_options_of_train():
    X, y = _data()

    def loss_and_grad(params, Xb, yb, wb):
        return 0.0, [np.zeros_like(params[0])]

    with pytest.raises(TypeError, match=r"train\(optimizer_options=...\) got an unexpected optimizer option "
                                        r"'mometum' \(did you mean 'momentum'\?\); SGD's options"):
        fg.train(loss_and_grad, [np.zeros(4)], X, y, optimizer="sgd", optimizer_options={"mometum": 0.9})
