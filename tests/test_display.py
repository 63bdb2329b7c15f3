"""How fastgd's objects show in a notebook: the estimators as scikit-learn's HTML diagram (its
own ``estimator_html_repr``, with the changed parameters and the fitted state), a plain HTML
fallback without scikit-learn, and one-line reprs for ``History`` and ``LRFinderResult``
(never whole arrays)."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import fastgd as fg
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor

sklearn_utils = pytest.importorskip("sklearn.utils")
sklearn_pipeline = pytest.importorskip("sklearn.pipeline")
sklearn_preprocessing = pytest.importorskip("sklearn.preprocessing")

def _unnumbered(html):
    return re.sub(r"(sk-container|sk-estimator)-id-\d+", r"\1-id", html)


ESTIMATORS = [LinearRegression(lr=0.05), LogisticRegression(alpha=0.01), MLPClassifier((7,)),
              MLPRegressor((3, 2), activation="tanh")]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_html_repr_is_scikit_learns(est):
    html = est._repr_html_()
    # (Each diagram numbers its container anew.)
    assert _unnumbered(html) == _unnumbered(sklearn_utils.estimator_html_repr(est))
    assert type(est).__name__ in html and "sk-estimator" in html
    changed = repr(est)[len(type(est).__name__) + 1:-1].split("=")[0]
    assert changed in html  # the parameters table
    assert "Not fitted" in html


def test_html_repr_shows_fitted_and_nests_in_a_pipeline():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    est = LogisticRegression(max_epochs=2, tol=None).fit(X, y)
    assert "Fitted" in est._repr_html_() and "Not fitted" not in est._repr_html_()
    pipe = sklearn_pipeline.make_pipeline(sklearn_preprocessing.StandardScaler(), LogisticRegression())
    assert "LogisticRegression" in pipe._repr_html_()


def test_html_repr_without_scikit_learn(monkeypatch):
    for module in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, module, None)
    html = LogisticRegression(alpha=0.01, optimizer="sgd")._repr_html_()
    assert html.startswith("<pre") and "LogisticRegression(alpha=0.01, optimizer=&#x27;sgd&#x27;)" in html


def test_history_repr_is_one_short_line():
    h = fg.History()
    for epoch in range(1, 501):
        h.append({"epoch": epoch, "train_loss": 1.0 / epoch + 1e-9 * np.pi, "val_loss": 2.0 / epoch})
    h.stop_reason = "reached max_epochs=500"
    text = repr(h)
    assert "\n" not in text and len(text) < 200
    assert text.startswith("History(500 epochs") and "train_loss=0.002" in text
    assert "best val_loss=0.004 at epoch 500" in text
    assert repr(fg.History()) == "History(0 epochs)"


def test_lr_finder_result_repr_is_one_short_line():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4))
    y = X @ [1.0, 2.0, -1.0, 0.5]
    w = np.zeros(4)

    def loss_and_grad(params, Xb, yb, wb):
        r = Xb @ params[0] - yb
        return float(r @ r / len(r)), [2 * Xb.T @ r / len(r)]

    result = fg.lr_find(loss_and_grad, [w], X, y, num_steps=300, random_state=0)
    text = repr(result)
    assert "\n" not in text and len(text) < 200 and "array" not in text
    assert text.startswith(f"LRFinderResult({len(result.lrs)} steps, lr ")
    assert "suggestion=" in text
