"""Checkpoints: a saved model holds its whole training state (parameters, optimizer state,
step count and schedule position, random streams, history), ``fit(..., checkpoint=path)``
writes one after every epoch, atomically, and ``fit(X, y, resume=True)`` continues a run with
the same bits as one that was never interrupted. Damaged, foreign and newer files are refused
with a clear error."""

from __future__ import annotations

import json
import os
import warnings
import zipfile

import numpy as np
import pytest

import fastgd
from fastgd import datasets, persistence, schedules
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.models.ConvergenceWarning)
        yield


def _clf(n_classes=2):
    return datasets.make_classification(n_samples=90, n_features=4, n_classes=n_classes, random_state=1)


def _reg():
    return datasets.make_regression(n_samples=90, n_features=4, random_state=1)


def _sparse_clf():
    pytest.importorskip("scipy")
    return datasets.make_sparse_classification(n_samples=90, n_features=60, nnz_per_row=6, random_state=1)


def _losses(model):
    return [r["train_loss"] for r in model.history_.records]


def _params(model):
    if hasattr(model, "coefs_"):
        return list(model.coefs_) + list(model.intercepts_)
    return [model.coef_, model.intercept_]


def _assert_same_run(a, b):
    for pa, pb in zip(_params(a), _params(b)):
        assert pa.dtype == pb.dtype and np.array_equal(pa, pb)  # bit for bit
    assert _losses(a) == _losses(b)
    assert [r["step"] for r in a.history_.records] == [r["step"] for r in b.history_.records]
    assert [r["epoch"] for r in a.history_.records] == [r["epoch"] for r in b.history_.records]
    assert a.n_iter_ == b.n_iter_


CASES = {
    "logistic": (LogisticRegression, _clf, {}),
    "logistic-multiclass-l1": (LogisticRegression, lambda: _clf(3), {"penalty": "l1", "alpha": 1e-3}),
    "logistic-batches": (LogisticRegression, _clf, {"shuffle": "batches", "optimizer": "sgd",
                                                   "optimizer_options": {"momentum": 0.9}}),
    "logistic-noshuffle": (LogisticRegression, _clf, {"shuffle": False}),
    "logistic-sparse-lazy-l1": (LogisticRegression, _sparse_clf, {"penalty": "l1", "alpha": 1e-3}),
    "linear": (LinearRegression, _reg, {}),
    "linear-batches-schedule": (LinearRegression, _reg, {"shuffle": "batches",
                                                         "lr": schedules.cosine(1e-2, 40)}),
    "linear-float32-huber": (LinearRegression, lambda: tuple(a.astype(np.float32) for a in _reg()),
                             {"loss": "huber", "optimizer": "rmsprop"}),
    "mlp": (MLPClassifier, _clf, {"hidden_layer_sizes": (5,)}),
    "mlp-regressor-noshuffle": (MLPRegressor, _reg, {"hidden_layer_sizes": (4,), "shuffle": False,
                                                     "batch_norm": True}),
    "mlp-batches-dropout": (MLPClassifier, lambda: _clf(3), {"hidden_layer_sizes": (6,), "shuffle": "batches",
                                                             "dropout": 0.2}),
}


def _make(case, **kw):
    cls, data, params = CASES[case]
    X, y = data()
    return cls(**{"max_epochs": 4, "batch_size": 16, "random_state": 0, "tol": None, **params, **kw}), X, y


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_after_save_is_exact(tmp_path, case):
    full, X, y = _make(case)
    full.fit(X, y)
    part, _, _ = _make(case, max_epochs=2)
    part.fit(X, y)
    path = tmp_path / "m.npz"
    part.save(path)
    loaded = fastgd.load(path)
    loaded.set_params(max_epochs=4)
    assert loaded.fit(X, y, resume=True) is loaded
    _assert_same_run(full, loaded)
    # Resuming in memory, without the file, is the same.
    part.set_params(max_epochs=4)
    _assert_same_run(full, part.fit(X, y, resume=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_from_epoch_checkpoint_is_exact(tmp_path, case):
    full, X, y = _make(case)
    path = tmp_path / "ck.npz"
    seen = []

    def crash_in_epoch_three(history, params):
        seen.append(len(history))
        if len(history) == 3:
            raise KeyboardInterrupt  # killed before the checkpoint of epoch 3

    # The interrupted run: it crashes after epoch 2's checkpoint, which is left behind.
    interrupted, _, _ = _make(case, callbacks=[crash_in_epoch_three])
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y, checkpoint=path)
    assert seen == [1, 2, 3] and not interrupted.__sklearn_is_fitted__()
    full.fit(X, y, checkpoint=tmp_path / "full.npz")
    resumed = fastgd.load(path)
    assert len(resumed.history_) == 2 and resumed.history_.stop_reason is None
    resumed.fit(X, y, resume=True)
    _assert_same_run(full, resumed)
    # The last checkpoint of the full run is the full run.
    last = fastgd.load(tmp_path / "full.npz")
    for pa, pb in zip(_params(full)[:1], _params(last)[:1]):
        assert np.array_equal(pa, pb)
    assert _losses(last) == _losses(full)


def test_checkpoint_holds_the_training_state(tmp_path):
    model, X, y = _make("logistic", max_epochs=3, lr=schedules.exponential(1e-2, 0.9))
    path = tmp_path / "ck.npz"
    model.fit(X, y, checkpoint=path)
    loaded = fastgd.load(path)
    a, b = model._optimizer.state_dict(), loaded._optimizer.state_dict()
    assert type(model._optimizer) is type(loaded._optimizer)
    assert [int(g["step"]) for g in a["group_state"]] == [int(g["step"]) for g in b["group_state"]]
    assert int(b["group_state"][0]["step"]) == 3 * 6  # 90 rows in batches of 16: 6 steps an epoch
    for i, st in a["state"].items():
        for k, v in st.items():
            assert np.array_equal(v, b["state"][i][k])
    assert model._rng.bit_generator.state == loaded._rng.bit_generator.state
    assert model._train_state["rng"].bit_generator.state == loaded._train_state["rng"].bit_generator.state
    assert model._train_state["first_gnorm"] == loaded._train_state["first_gnorm"]
    assert loaded.history_.records == model.history_.records
    assert persistence.load_info(path)["version"] == persistence.FORMAT_VERSION
    # The optimizer works over the loaded parameter buffer.
    assert loaded._optimizer._params[0] is loaded._theta


def test_resume_not_fitted_is_an_error():
    model, X, y = _make("logistic")
    with pytest.raises(ValueError, match="not fitted"):
        model.fit(X, y, resume=True)


def test_resume_without_training_state_is_an_error():
    X, y = _clf()
    newton = LogisticRegression(solver="newton", max_epochs=3).fit(X, y)
    with pytest.raises(ValueError, match="solver='gd'"):
        newton.fit(X, y, resume=True)
    partial = LogisticRegression(random_state=0).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="no training state"):
        partial.fit(X, y, resume=True)
    early = LogisticRegression(random_state=0, max_epochs=2, early_stopping=True).fit(X, y)
    with pytest.raises(ValueError, match="trained with early_stopping"):
        early.set_params(early_stopping=False, max_epochs=4).fit(X, y, resume=True)
    plain = LogisticRegression(random_state=0, max_epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="trained without early_stopping"):
        plain.set_params(early_stopping=True, max_epochs=4).fit(X, y, resume=True)


@pytest.mark.parametrize("case", ["logistic", "mlp"])
def test_resume_when_the_run_is_over_is_a_no_op(case):
    model, X, y = _make(case, max_epochs=2)
    model.fit(X, y)
    before = [p.copy() for p in _params(model)]
    history = model.history_
    model.fit(X, y, resume=True)  # max_epochs reached
    assert model.history_ is history
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(model)))
    model.set_params(max_epochs=1)
    model.fit(X, y, resume=True)
    assert model.history_ is history


def test_resume_after_convergence_is_a_no_op():
    X, y = _clf()
    model = LogisticRegression(max_epochs=200, tol=10.0, n_iter_no_change=1, random_state=0).fit(X, y)
    assert not model.history_.stop_reason.startswith("reached")
    n = len(model.history_)
    model.set_params(max_epochs=400)
    model.fit(X, y, resume=True)
    assert len(model.history_) == n


@pytest.mark.parametrize("case", ["logistic", "mlp"])
def test_resume_checks_the_data(case):
    model, X, y = _make(case, max_epochs=2)
    model.fit(X, y)
    model.set_params(max_epochs=4)
    before = [p.copy() for p in _params(model)]
    with pytest.raises(ValueError, match="features"):
        model.fit(np.ascontiguousarray(X[:, :3]), y, resume=True)
    with pytest.raises(ValueError, match="X has 80 rows.*trained on 90"):
        model.fit(X[:80], y[:80], resume=True)
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(model)))  # left as it was
    assert len(model.history_) == 2


def test_resume_with_sample_weight_is_exact():
    X, y = _clf()
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    kw = dict(batch_size=16, random_state=0, tol=None)
    full = LogisticRegression(max_epochs=4, **kw).fit(X, y, sw)
    part = LogisticRegression(max_epochs=2, **kw).fit(X, y, sw)
    part.set_params(max_epochs=4)
    _assert_same_run(full, part.fit(X, y, sw, resume=True))


def test_resume_with_tol_is_exact():
    # LossTolerance sees the resumed history, so it stops at the same epoch.
    X, y = _reg()
    kw = dict(max_epochs=60, tol=1e-2, n_iter_no_change=2, random_state=0, batch_size=16, lr=0.05)
    full = LinearRegression(**kw).fit(X, y)
    assert not full.history_.stop_reason.startswith("reached")
    n = len(full.history_)
    part = LinearRegression(**{**kw, "max_epochs": n - 1}).fit(X, y)
    part.set_params(max_epochs=60)
    part.fit(X, y, resume=True)
    _assert_same_run(full, part)
    assert part.history_.stop_reason == full.history_.stop_reason


# -- atomic writes ------------------------------------------------------------------------

def test_a_failed_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    model, X, y = _make("logistic", max_epochs=3)
    path = tmp_path / "ck.npz"
    real_savez = np.savez
    calls = []

    def savez_then_crash(f, **entries):
        calls.append(1)
        if len(calls) == 2:  # the checkpoint of epoch 2: half written, then the process "dies"
            real_savez(f, **entries)
            f.flush()
            f.truncate(f.tell() // 2)
            raise OSError("disk full")
        real_savez(f, **entries)

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="disk full"):
        model.fit(X, y, checkpoint=path)
    monkeypatch.undo()
    survivor = fastgd.load(path)  # epoch 1's checkpoint, intact
    assert len(survivor.history_) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left behind
    # and it resumes to the uninterrupted run
    full, _, _ = _make("logistic", max_epochs=3)
    full.fit(X, y)
    survivor.fit(X, y, resume=True)
    _assert_same_run(full, survivor)


def test_checkpoint_write_is_synced_and_renamed(tmp_path, monkeypatch):
    model, X, y = _make("linear", max_epochs=2)
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", os.path.dirname(a) ==
                                                                    os.path.dirname(os.fspath(b)))),
                                                     real_replace(a, b))[1])
    model.fit(X, y, checkpoint=tmp_path / "ck.npz")
    assert events == ["fsync", ("replace", True), "fsync"] * 2  # the file, the rename, the directory


# -- damaged, foreign and newer files -----------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    model, X, y = _make("logistic", max_epochs=2)
    path = tmp_path / "m.npz"
    model.fit(X, y).save(path)
    return path


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match=str(saved.name)):
        fastgd.load(saved)


def test_corrupted_bytes(saved):
    data = bytearray(saved.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(64, len(data) - 64, 20):
        data[i] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=str(saved.name)):
        fastgd.load(saved)


def test_foreign_files(tmp_path):
    npz = tmp_path / "other.npz"
    np.savez(npz, a=np.arange(3))
    with pytest.raises(ValueError, match="other.npz.*not a fastgd model"):
        fastgd.load(npz)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt.*not an .npz"):
        fastgd.load(text)
    pickled = tmp_path / "pickled.npz"
    meta = {"format": persistence.FORMAT_NAME, "version": 1}
    np.savez(pickled, __fastgd__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             a0=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        fastgd.load(pickled)


def _rewrite_meta(path, change):
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    meta = json.loads(entries["__fastgd__"].tobytes())
    change(meta)
    entries["__fastgd__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **entries)


def test_newer_version_is_refused(saved):
    _rewrite_meta(saved, lambda m: m.update(version=persistence.FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=rf"m.npz.*version {persistence.FORMAT_VERSION + 1}.*newer"):
        fastgd.load(saved)


def test_version_1_file_loads_without_training_state(saved):
    def as_v1(meta):
        meta["version"] = 1
        for k in ("_optimizer", "_train_state"):
            meta["attributes"].pop(k, None)
            meta["dropped_state"].append(k)
    _rewrite_meta(saved, as_v1)
    model = fastgd.load(saved)
    assert model._optimizer is None
    X, y = _clf()
    model.predict(X)
    with pytest.raises(ValueError, match="no training state"):
        model.set_params(max_epochs=4).fit(X, y, resume=True)


def test_bad_optimizer_state_is_a_clear_error(saved):
    def break_moments(meta):
        meta["attributes"]["_optimizer"]["cls"] = "NoSuchOptimizer"
    _rewrite_meta(saved, break_moments)
    with pytest.raises(ValueError, match="m.npz.*corrupted.*NoSuchOptimizer"):
        fastgd.load(saved)


def test_no_pickle_is_loaded(saved, monkeypatch):
    seen = []
    real_load = np.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    fastgd.load(saved)
    assert seen and all(v is False for v in seen)
    with zipfile.ZipFile(saved) as z:
        assert all(name.endswith(".npy") for name in z.namelist())


def test_custom_lr_callable_drops_the_training_state(tmp_path):
    X, y = _clf()
    model = LogisticRegression(lr=lambda k: 0.01, max_epochs=2, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="lr="):
        model.save(tmp_path / "m.npz")
    assert "_optimizer" in persistence.load_info(tmp_path / "m.npz")["dropped_state"]
    loaded = fastgd.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="no training state"):
        loaded.set_params(max_epochs=4).fit(X, y, resume=True)


# -- checkpoint_every ---------------------------------------------------------------------

@pytest.fixture
def writes(monkeypatch):
    """The epochs (history lengths) of the models written, in order, and whether each was
    the fitted model at the end (a stop reason recorded)."""
    written = []
    real_save = persistence.save

    def save(model, path, **kw):
        written.append((len(model.history_), model.history_.stop_reason is not None))
        real_save(model, path, **kw)

    monkeypatch.setattr(persistence, "save", save)
    return written


@pytest.mark.parametrize(("every", "max_epochs", "expected"), [
    (1, 4, [1, 2, 3, 4]),
    (3, 7, [3, 6, 7]),
    (3, 6, [3, 6]),
    (2, 1, [1]),
    (10, 4, [4]),
])
def test_checkpoint_every_writes_on_those_epochs_and_the_last(tmp_path, writes, every, max_epochs, expected):
    model, X, y = _make("logistic", max_epochs=max_epochs)
    path = tmp_path / "ck.npz"
    model.fit(X, y, checkpoint=path, checkpoint_every=every)
    assert [epoch for epoch, _ in writes] == expected
    assert writes[-1] == (max_epochs, True)
    # The file holds the fitted model.
    last = fastgd.load(path)
    _assert_same_run(model, last)
    assert last.history_.stop_reason == model.history_.stop_reason


def test_checkpoint_every_counts_epochs_over_a_resumed_run(tmp_path, writes):
    model, X, y = _make("logistic", max_epochs=3)
    model.fit(X, y)
    model.set_params(max_epochs=8).fit(X, y, resume=True, checkpoint=tmp_path / "ck.npz", checkpoint_every=3)
    assert [epoch for epoch, _ in writes] == [6, 8]


@pytest.mark.parametrize("case", ["mlp-regressor-noshuffle", "logistic"])
def test_a_stop_by_a_criterion_is_written(tmp_path, writes, case):
    # tol stops the run between two checkpoints or on one (then written again, with the
    # reason it stopped and, with batch norm, the fitted model's exact statistics).
    model, X, y = _make(case, max_epochs=200, tol=1e-1, n_iter_no_change=2)
    path = tmp_path / "ck.npz"
    model.fit(X, y, checkpoint=path, checkpoint_every=4)
    n = len(model.history_)
    assert n < 200 and "did not improve" in model.history_.stop_reason
    assert writes == [(e, False) for e in range(4, n + 1, 4)] + [(n, True)]
    last = fastgd.load(path)
    _assert_same_run(model, last)
    assert last.history_.stop_reason == model.history_.stop_reason
    assert np.array_equal(last.predict(X), model.predict(X))


def test_stop_by_callback_is_written(tmp_path, writes):
    model, X, y = _make("logistic", max_epochs=10, callbacks=[lambda history, params: len(history) == 5])
    model.fit(X, y, checkpoint=tmp_path / "ck.npz", checkpoint_every=2)
    assert [e for e, _ in writes] == [2, 4, 5]
    assert fastgd.load(tmp_path / "ck.npz").history_.stop_reason == "stopped by callback"


@pytest.mark.parametrize("every", [0, -1, 1.5, 2.0, True, "2", None])
def test_bad_checkpoint_every_is_an_error(tmp_path, every):
    model, X, y = _make("logistic")
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        model.fit(X, y, checkpoint=tmp_path / "ck.npz", checkpoint_every=every)
    assert not os.listdir(tmp_path) and not model.__sklearn_is_fitted__()


@pytest.mark.parametrize("cls", [LogisticRegression, MLPRegressor])
def test_checkpoint_every_needs_a_checkpoint(cls):
    X, y = _clf() if cls is LogisticRegression else _reg()
    with pytest.raises(ValueError, match=r"checkpoint_every=2 needs checkpoint="):
        cls(max_epochs=2).fit(X, y, checkpoint_every=2)
    cls(max_epochs=2).fit(X, y, checkpoint_every=1)  # the default is fine


@pytest.mark.parametrize("case", ["logistic", "mlp-batches-dropout"])
def test_crash_between_checkpoints_resumes_from_the_last_one(tmp_path, case):
    full, X, y = _make(case, max_epochs=7)
    full.fit(X, y)

    def crash(history, params):
        if len(history) == 5:
            raise RuntimeError("killed")

    path = tmp_path / "ck.npz"
    interrupted, _, _ = _make(case, max_epochs=7, callbacks=[crash])
    with pytest.raises(RuntimeError, match="killed"):
        interrupted.fit(X, y, checkpoint=path, checkpoint_every=2)
    resumed = fastgd.load(path)
    assert len(resumed.history_) == 4 and resumed.history_.stop_reason is None
    _assert_same_run(full, resumed.fit(X, y, resume=True))


# -- early stopping -----------------------------------------------------------------------

def _noisy_reg():
    return datasets.make_regression(n_samples=90, n_features=4, noise=20.0, random_state=1)


# Runs that stop by early stopping after a few epochs, the best one in the middle (so that
# a resumed run goes on from after an improvement and from epochs without one).
EARLY = {
    "logistic": (LogisticRegression, _clf, {"lr": 0.1}),
    "linear": (LinearRegression, _noisy_reg, {"lr": 0.3}),
    "mlp-classifier-bn-dropout": (MLPClassifier, lambda: _clf(3), {"hidden_layer_sizes": (5,), "batch_norm": True,
                                                                  "dropout": 0.1, "lr": 0.03}),
    "mlp-regressor": (MLPRegressor, _noisy_reg, {"hidden_layer_sizes": (5,), "lr": 0.03}),
}


def _make_early(case, **kw):
    cls, data, params = EARLY[case]
    X, y = data()
    return cls(**{"max_epochs": 30, "batch_size": 16, "random_state": 0, "tol": 0.0, "n_iter_no_change": 3,
                  "early_stopping": True, **params, **kw}), X, y


def _assert_same_early_run(a, b):
    _assert_same_run(a, b)
    assert a._theta.tobytes() == b._theta.tobytes()
    assert [r["val_loss"] for r in a.history_.records] == [r["val_loss"] for r in b.history_.records]
    assert a.history_.stop_reason == b.history_.stop_reason
    assert np.array_equal(a.predict(a._X_check), b.predict(a._X_check))


@pytest.mark.parametrize("case", sorted(EARLY))
def test_resume_with_early_stopping_is_exact(tmp_path, case):
    full, X, y = _make_early(case)
    full.fit(X, y)
    full._X_check = X
    n = len(full.history_)
    best = int(np.argmin([r["val_loss"] for r in full.history_.records])) + 1
    assert "did not improve" in full.history_.stop_reason and 1 < best < n
    # The best weights were put back: they are not the last epoch's.
    assert not np.array_equal(full._train_state["live_theta"], full._theta)
    for k in range(1, n):
        part, _, _ = _make_early(case, max_epochs=k)
        part.fit(X, y)
        path = tmp_path / f"m{k}.npz"
        part.save(path)
        loaded = fastgd.load(path).set_params(max_epochs=30)
        _assert_same_early_run(full, loaded.fit(X, y, resume=True))
        _assert_same_early_run(full, part.set_params(max_epochs=30).fit(X, y, resume=True))  # in memory


@pytest.mark.parametrize("case", sorted(EARLY))
def test_resume_with_early_stopping_from_a_crashed_run_is_exact(tmp_path, case):
    full, X, y = _make_early(case)
    full.fit(X, y, checkpoint=tmp_path / "full.npz")
    full._X_check = X
    _assert_same_early_run(full, fastgd.load(tmp_path / "full.npz"))
    for k in range(1, len(full.history_)):
        def crash(history, params, k=k):
            if len(history) == k + 1:
                raise RuntimeError("killed")

        path = tmp_path / f"ck{k}.npz"
        interrupted, _, _ = _make_early(case, callbacks=[crash])
        with pytest.raises(RuntimeError, match="killed"):
            interrupted.fit(X, y, checkpoint=path)
        resumed = fastgd.load(path)
        assert len(resumed.history_) == k
        _assert_same_early_run(full, resumed.fit(X, y, resume=True))


def test_resume_after_early_stopping_stopped_is_a_no_op():
    model, X, y = _make_early("logistic")
    model.fit(X, y)
    theta = model._theta.copy()
    model.fit(X, y, resume=True)
    assert np.array_equal(model._theta, theta) and "did not improve" in model.history_.stop_reason


def test_early_stopping_state_dict_round_trip():
    es = fastgd.stopping.EarlyStopping(patience=2)
    history = fastgd.History([{"epoch": 1, "val_loss": 1.0}, {"epoch": 2, "val_loss": 2.0}])
    params = [np.arange(3.0)]
    es.on_epoch_end(fastgd.History(history.records[:1]), params)
    es.on_epoch_end(history, [params[0] + 1])
    state = es.state_dict()
    other = fastgd.stopping.EarlyStopping(patience=2)
    other.load_state_dict(state)
    state["best_weights"][0][...] = -1  # copies: the criteria keep their own
    assert other.best == 1.0 and other.wait == 1 and other.best_epoch == 1
    assert np.array_equal(other.best_weights[0], np.arange(3.0)) and np.array_equal(es.best_weights[0], np.arange(3.0))
    history.append({"epoch": 3, "val_loss": 3.0})
    assert other.check(history) == es.check(history) is not None


# -- format versions ----------------------------------------------------------------------

def test_mlp_file_holds_its_weights_once(tmp_path):
    model, X, y = _make("mlp-regressor-noshuffle", max_epochs=2)
    path = tmp_path / "m.npz"
    model.fit(X, y).save(path)
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(data["__fastgd__"].tobytes())
    assert not {"coefs_", "intercepts_", "batch_norm_scales_"} & set(meta["attributes"])
    loaded = fastgd.load(path)
    for a, b in zip(_params(model), _params(loaded)):
        assert np.array_equal(a, b) and np.shares_memory(b, loaded._theta)
    assert all(np.array_equal(a, b) for a, b in zip(model.batch_norm_means_, loaded.batch_norm_means_))
    assert np.array_equal(model.predict(X), loaded.predict(X))


@pytest.mark.parametrize("case", ["mlp", "logistic"])
def test_version_2_file_loads_and_resumes(tmp_path, monkeypatch, case):
    full, X, y = _make(case)
    full.fit(X, y)
    part, _, _ = _make(case, max_epochs=2)
    part.fit(X, y)
    path = tmp_path / "m.npz"
    with monkeypatch.context() as m:  # as version 2 wrote it: the MLP's views stored too
        m.setattr(type(part), "_derived_attributes", (), raising=False)
        part.save(path)
    _rewrite_meta(path, lambda meta: meta.update(version=2))
    assert persistence.load_info(path)["version"] == 2
    loaded = fastgd.load(path).set_params(max_epochs=4)
    _assert_same_run(full, loaded.fit(X, y, resume=True))


@pytest.mark.parametrize("case", ["linear", "mlp-classifier-bn-dropout"])
def test_early_stopping_crash_between_sparse_checkpoints(tmp_path, case):
    full, X, y = _make_early(case)
    full.fit(X, y)
    full._X_check = X

    def crash(history, params):
        if len(history) == 4:
            raise RuntimeError("killed")

    interrupted, _, _ = _make_early(case, callbacks=[crash])
    with pytest.raises(RuntimeError, match="killed"):
        interrupted.fit(X, y, checkpoint=tmp_path / "ck.npz", checkpoint_every=3)
    resumed = fastgd.load(tmp_path / "ck.npz")
    assert len(resumed.history_) == 3
    _assert_same_early_run(full, resumed.fit(X, y, resume=True, checkpoint=tmp_path / "ck.npz", checkpoint_every=3))
    _assert_same_early_run(full, fastgd.load(tmp_path / "ck.npz"))  # the final write
