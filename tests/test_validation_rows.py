"""early_stopping's validation rows read in place by the linear models (no copy of them): the
same validation losses, metrics and fitted model, bit for bit, as the copy of those rows the
other objectives score, and a fit whose memory does not grow by the held-out rows."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest

from fastgd.models import LinearRegression, LogisticRegression

# ConvergenceWarning (an error in this suite) silenced:
# short fits compare the bits of two validation paths, not convergence.
pytestmark = pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning")


def _copying(cls):
    """The estimator scoring a copy of the validation rows (its objective without the hooks
    that read them in place)."""

    class Copying(cls):
        def _objective(self, run, dist):
            return dataclasses.replace(super()._objective(run, dist), value_at_rows=None, outputs_at_rows=None)

    Copying.__name__ = cls.__name__
    return Copying


CASES = [
    (LogisticRegression, 2, {}),
    (LogisticRegression, 3, {}),
    (LogisticRegression, 2, {"alpha": 1e-3, "penalty": "l1"}),
    (LinearRegression, 0, {}),
    (LinearRegression, 0, {"loss": "huber", "standardize": False}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cls,K,kw", CASES)
def test_in_place_validation_has_the_copys_bits(cls, K, kw, weighted, dtype):
    rng = np.random.default_rng(K)
    X = (rng.standard_normal((700, 9)) * 3 + 1).astype(dtype)
    y = rng.integers(0, K, 700) if K else X @ rng.standard_normal(9) + rng.standard_normal(700)
    sw = rng.random(700) + 0.5 if weighted else None
    params = dict(early_stopping=True, validation_fraction=0.3, max_epochs=8, n_iter_no_change=3, lr=0.05,
                  batch_size=32, random_state=0, **kw)
    a = cls(**params).fit(X, y, sample_weight=sw)
    b = _copying(cls)(**params).fit(X, y, sample_weight=sw)
    for key in ("val_loss", "val_metric", "train_loss"):
        np.testing.assert_array_equal(a.history_[key], b.history_[key])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)


def _peak(est, X, y):
    tracemalloc.start()
    try:
        est.fit(X, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("cls", [LogisticRegression, _copying(LogisticRegression)], ids=["in-place", "copying"])
def test_the_validation_rows_are_not_copied(cls):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100_000, 50))  # 40 MB
    y = (X[:, 0] > 0).astype(np.int64)

    def peak(fraction):
        return _peak(cls(early_stopping=True, validation_fraction=fraction, max_epochs=1, batch_size=256,
                         random_state=0), X, y)

    # Holding out 40% more of the rows costs their per-sample arrays (indices, labels), not
    # 40% of X (16 MB) as a copy of them would.
    grows = peak(0.6) - peak(0.2)
    if cls is LogisticRegression:
        assert grows < X.nbytes // 16, grows
    else:  # the check sees a copy
        assert grows > 0.4 * X.nbytes * 0.9, grows
