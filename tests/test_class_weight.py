"""``class_weight`` on every classifier, with scikit-learn's semantics: the weight of a class
multiplies the sample weights of its samples ("balanced": ``sum(w) / (n_classes *
weighted count of the class)``, scikit-learn's ``compute_class_weight`` with the sample
weights, as its LogisticRegression), so that a fit with ``class_weight`` is, bit for bit,
the fit with the equivalent ``sample_weight``. ``partial_fit`` refuses "balanced" on its
first call, as scikit-learn's SGDClassifier."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastgd
from fastgd.models import LogisticRegression, MLPClassifier

class_weight_module = pytest.importorskip("sklearn.utils.class_weight")
sklearn_base = pytest.importorskip("sklearn.base")


def _make(name, **kw):
    common = {"max_epochs": 4, "tol": None, "random_state": 0, "batch_size": 16}
    common.update(kw)
    if name == "newton":
        return LogisticRegression(solver="newton", max_epochs=20, class_weight=kw.get("class_weight"))
    if name == "LogisticRegression":
        return LogisticRegression(**common)
    return MLPClassifier((5,), **common)


CLASSIFIERS = ["LogisticRegression", "newton", "MLPClassifier"]


def _data(n_classes, n=90, labels=None):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 4))
    # Unbalanced classes: about 60%, 30%, 10%.
    y = np.digitize(rng.random(n), [0.6, 0.9][:n_classes - 1])
    if labels is not None:
        y = np.asarray(labels)[y]
    return X, y


def _equivalent_weights(class_weight, y, sample_weight):
    """scikit-learn's: the class weights (with the sample weights for "balanced") times the
    sample weights."""
    classes = np.unique(y)
    if sample_weight is not None and "sample_weight" not in inspect.signature(
            class_weight_module.compute_class_weight).parameters:
        pytest.skip("this scikit-learn's compute_class_weight takes no sample_weight")
    # (sample_weight only when there are weights: scikit-learn before 1.7 does not take it)
    weighted = {} if sample_weight is None else {"sample_weight": sample_weight}
    cw = class_weight_module.compute_class_weight(class_weight, classes=classes, y=y, **weighted)
    sw = np.ones(len(y)) if sample_weight is None else sample_weight
    return sw * cw[np.searchsorted(classes, y)]


def _params(est):
    return np.concatenate([np.ravel(c) for c in est.coefs_]) if hasattr(est, "coefs_") else est.coef_.ravel()


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("class_weight", ["balanced", "dict"])
def test_class_weight_is_the_equivalent_sample_weight_bit_for_bit(name, n_classes, weighted, class_weight):
    X, y = _data(n_classes)
    if class_weight == "dict":
        class_weight = {0: 1.0, 1: 3.0, 2: 0.5} if n_classes == 3 else {0: 0.25, 1: 2.0}
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(y)) if weighted else None
    a = _make(name, class_weight=class_weight).fit(X, y, sample_weight=sw)
    b = _make(name).fit(X, y, sample_weight=_equivalent_weights(class_weight, y, sw))
    np.testing.assert_array_equal(_params(a), _params(b))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # And the weights do something.
    c = _make(name).fit(X, y, sample_weight=sw)
    assert not np.array_equal(_params(a), _params(c))


@pytest.mark.parametrize("name", ["LogisticRegression", "MLPClassifier"])
def test_string_labels_and_their_keys(name):
    X, y = _data(3, labels=["cat", "dog", "eel"])
    cw = {"cat": 0.5, "dog": 1.0, "eel": 4.0}
    a = _make(name, class_weight=cw).fit(X, y)
    b = _make(name).fit(X, y, sample_weight=_equivalent_weights(cw, y, None))
    np.testing.assert_array_equal(_params(a), _params(b))


@pytest.mark.parametrize("name", ["LogisticRegression", "MLPClassifier"])
def test_partial_fit(name):
    X, y = _data(3)
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for partial_fit"):
        _make(name, class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    cw = {0: 1.0, 1: 2.0, 2: 5.0}
    a = _make(name, class_weight=cw)
    b = _make(name)
    for part in (slice(0, 45), slice(45, 90)):
        a.partial_fit(X[part], y[part], classes=[0, 1, 2])
        b.partial_fit(X[part], y[part], classes=[0, 1, 2], sample_weight=_equivalent_weights(cw, y[part], None))
    np.testing.assert_array_equal(_params(a), _params(b))


@pytest.mark.parametrize("name", ["LogisticRegression", "MLPClassifier"])
def test_bad_class_weight(name):
    X, y = _data(3)
    for bad in ("balance", [1.0, 2.0, 3.0], {0: -1.0, 1: 1.0, 2: 1.0}):
        with pytest.raises(ValueError, match="class_weight"):
            _make(name, class_weight=bad).fit(X, y)
    with pytest.raises(ValueError, match=r"The classes, \[2\], are not in class_weight"):
        _make(name, class_weight={0: 1.0, 1: 2.0, 7: 1.0}).fit(X, y)


@pytest.mark.parametrize("name", ["LogisticRegression", "MLPClassifier"])
def test_documented_cloned_saved(name, tmp_path):
    est = _make(name, class_weight={0: 2.0, 1: 1.0})
    assert "class_weight : dict, \"balanced\" or None" in type(est).__doc__
    assert sklearn_base.clone(est).class_weight == {0: 2.0, 1: 1.0}
    X, y = _data(2)
    est.fit(X, y)
    est.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    assert loaded.class_weight == {0: 2.0, 1: 1.0}
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_streamed_chunks_with_class_weight():
    X, y = _data(2)
    chunks = [(X[:45], y[:45]), (X[45:], y[45:])]
    a = _make("LogisticRegression", class_weight={0: 1.0, 1: 3.0}).fit(chunks, None)
    w = _equivalent_weights({0: 1.0, 1: 3.0}, y, None)
    b = _make("LogisticRegression").fit([(X[:45], y[:45], w[:45]), (X[45:], y[45:], w[45:])], None)
    np.testing.assert_array_equal(_params(a), _params(b))
    with pytest.raises(ValueError, match="class_weight='balanced'"):
        _make("LogisticRegression", class_weight="balanced").fit(chunks, None)
