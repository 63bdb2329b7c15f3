"""fit reads X once before training: its finite check is made by the read that takes its
moments when the fit learns a standardization, by check_X otherwise; never both, never
neither, on every path (standardize or not, partial_fit, warm starts, resume, early stopping,
memmaps), with check_X's error, and X's error before y's and the weights' as scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from fastgd import _core
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor

# ConvergenceWarning (an error in this suite) silenced:
# these fits count reads of X and check errors in 1-2 epochs, not training to convergence.
pytestmark = pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning")

BASE = {"lr": 0.05, "batch_size": 16, "max_epochs": 2, "random_state": 0}
MLP = {"hidden_layer_sizes": (4,)}
ESTIMATORS = {
    "logistic": lambda **kw: LogisticRegression(**{**BASE, **kw}),
    "linear": lambda **kw: LinearRegression(**{**BASE, **kw}),
    "mlp-classifier": lambda **kw: MLPClassifier(**{**BASE, **MLP, **kw}),
    "mlp-regressor": lambda **kw: MLPRegressor(**{**BASE, **MLP, **kw}),
}


def _data(name, n=90, d=5, dtype=np.float32):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (X[:, 0] > 0).astype(np.int64) if "logistic" in name or "classifier" in name else X[:, 1].astype(np.float64)
    return X, y


class ReadsOfX:
    """The bytes of X that the finite check and the moments kernel read (calls on X or on
    blocks of it)."""

    def __init__(self, monkeypatch, X):
        self.X, self.bytes = X, 0
        for name in ("find_nonfinite", "column_moments"):
            monkeypatch.setattr(_core, name, self._counting(getattr(_core, name)))

    def _counting(self, kernel):
        def counted(a, *args, **kw):
            if isinstance(a, np.ndarray) and np.shares_memory(a, self.X):
                self.bytes += a.nbytes
            return kernel(a, *args, **kw)

        return counted

    def reset(self):
        self.bytes = 0


def _paths(name):
    """(label, setup, call): setup(X, y) -> the estimator, fitted as the path needs, and
    call(est, X, y) the call whose reads are counted."""
    make = ESTIMATORS[name]
    return [
        ("fit", lambda X, y: make(), lambda e, X, y: e.fit(X, y)),
        ("fit-unstandardized", lambda X, y: make(standardize=False), lambda e, X, y: e.fit(X, y)),
        ("fit-weighted", lambda X, y: make(), lambda e, X, y: e.fit(X, y, sample_weight=np.arange(len(X)) % 3 + 1.0)),
        ("fit-early-stopping", lambda X, y: make(early_stopping=True, validation_fraction=0.2),
         lambda e, X, y: e.fit(X, y)),
        ("partial_fit-first", lambda X, y: make(), lambda e, X, y: e.partial_fit(X, y, **_classes(e, y))),
        ("partial_fit-continuing", lambda X, y: make().partial_fit(X, y, **_classes(make(), y)),
         lambda e, X, y: e.partial_fit(X, y)),
        ("warm_start", lambda X, y: make(warm_start=True).fit(X, y), lambda e, X, y: e.fit(X, y)),
        ("resume", lambda X, y: _interrupted(make(max_epochs=1), X, y), lambda e, X, y: e.fit(X, y, resume=True)),
    ]


def _classes(est, y):
    return {"classes": np.unique(y)} if hasattr(est, "predict_proba") else {}


def _interrupted(est, X, y):
    est.fit(X, y)
    est.max_epochs = 3
    return est


PATHS = [(name, i) for name in ESTIMATORS for i in range(len(_paths(name)))]


@pytest.mark.parametrize("name,path", PATHS, ids=[f"{n}-{_paths(n)[i][0]}" for n, i in PATHS])
def test_each_path_reads_X_once_and_reports_its_nonfinite_values(monkeypatch, name, path):
    label, setup, call = _paths(name)[path]
    X, y = _data(name)
    est = setup(X, y)
    reads = ReadsOfX(monkeypatch, X)
    call(est, X, y)
    assert reads.bytes == X.nbytes, label
    for bad, what in ((np.nan, "NaN"), (np.inf, "infinity")):
        Xb = X.copy()
        Xb[7, 3] = bad
        est = setup(X, y)
        with pytest.raises(ValueError, match=rf"^Input X contains {what}.*\(row 7, column 3\)\.$"):
            call(est, Xb, y)


@pytest.mark.parametrize("name", ["logistic", "mlp-regressor"])
def test_a_memmap_is_read_once(tmp_path, monkeypatch, name):
    X, y = _data(name, n=300)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    reads = ReadsOfX(monkeypatch, Xm)
    ESTIMATORS[name]().fit(Xm, y)
    assert reads.bytes == X.nbytes


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_X_is_reported_before_y_and_the_weights(name, standardize):
    X, y = _data(name)
    X[4, 2] = np.nan
    message = r"^Input X contains NaN \(row 4, column 2\)\.$"
    est = ESTIMATORS[name](standardize=standardize)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y[:-1])  # a y of another length
    if "regress" in name or name == "linear":
        y_bad = y.copy()
        y_bad[0] = np.inf
        with pytest.raises(ValueError, match=message):
            est.fit(X, y_bad)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y, sample_weight=-np.ones(len(y)))
    # With a finite X, y's and the weights' own errors.
    X[4, 2] = 0.0
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Negative values in sample_weight"):
        est.fit(X, y, sample_weight=-np.ones(len(y)))
