"""Stopping criteria: each one's semantics and reason, AnyOf, and EarlyStopping's weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastgd as fg
from fastgd import stopping as st
from fastgd.history import History


def _hist(**columns):
    """A History whose records hold the given columns (epochs numbered from 1)."""
    n = len(next(iter(columns.values())))
    h = History()
    for i in range(n):
        h.append({"epoch": i + 1, **{k: v[i] for k, v in columns.items()}})
    return h


def _first_stop(criterion, **columns):
    """Feed the records one epoch at a time; (epoch that stopped, reason) or (None, None)."""
    criterion.reset()
    full = _hist(**columns)
    h = History()
    for r in full.records:
        h.append(r)
        reason = criterion.check(h)
        if reason:
            return r["epoch"], reason
    return None, None


def _lsq(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)

    def lg(params, Xb, yb, wb):
        r = Xb @ params[0] - yb
        return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]

    return X, y, lg


def test_max_epochs():
    assert _first_stop(st.MaxEpochs(3), train_loss=[1.0] * 5) == (3, "reached max_epochs=3")
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        st.MaxEpochs(0)


def test_max_steps_per_step_and_per_epoch():
    c = st.MaxSteps(10)
    assert c.check_step(9) is None
    assert c.check_step(10) == "reached max_steps=10"
    assert _first_stop(c, step=[4, 8, 12]) == (3, "reached max_steps=10")


def test_max_steps_stops_mid_epoch_and_records_the_partial_epoch():
    X, y, lg = _lsq()
    sizes = []

    def counting(params, Xb, yb, wb):
        sizes.append(len(yb))
        return lg(params, Xb, yb, wb)

    h = fg.train(counting, [np.zeros(3)], X, y, optimizer="sgd", lr=0.1, batch_size=10, stopping=st.MaxSteps(9),
                 random_state=0)
    # 4 steps per epoch: epochs 1, 2 full, epoch 3 stopped after its first step.
    assert h.stop_reason == "reached max_steps=9"
    assert h["step"] == [4, 8, 9]
    assert len(sizes) == 9


def test_loss_tolerance_has_scikit_learns_semantics():
    # sklearn: epoch e is "no change" when loss_e > best_{e-1} - tol, and best is the plain
    # minimum so far. Steady decreases of 0.6 * tol never count as improvements, although
    # the loss falls by more than tol over two epochs.
    losses = [1.0 - 0.0006 * i for i in range(10)]
    assert _first_stop(st.LossTolerance(tol=1e-3, n_iter_no_change=3), train_loss=losses) == (
        4, "train_loss did not improve by more than 0.001 for 3 epochs")
    # A real improvement resets the count: epochs 3, 4 do not change, 5 improves, 6, 7, 8 do not.
    losses = [1.0, 0.9, 0.8995, 0.8991, 0.85, 0.8499, 0.8498, 0.8497, 0.5]
    assert _first_stop(st.LossTolerance(tol=1e-3, n_iter_no_change=3), train_loss=losses)[0] == 8
    # An increase counts as no change; a NaN too.
    assert _first_stop(st.LossTolerance(tol=0.0, n_iter_no_change=2), train_loss=[1.0, 2.0, math.nan])[0] == 3
    assert _first_stop(st.LossTolerance(tol=0.0, n_iter_no_change=2), train_loss=[3.0, 2.0, 1.0])[0] is None


def test_loss_tolerance_counts_each_record_once_and_resets():
    c = st.LossTolerance(tol=1e-3, n_iter_no_change=2)
    h = _hist(train_loss=[1.0, 1.0])
    for _ in range(5):  # the same history, checked again and again
        assert c.check(h) is None
    assert c.no_change == 1
    h.append({"epoch": 3, "train_loss": 1.0})
    assert c.check(h) is not None
    c.reset()
    assert c.no_change == 0 and c.best == math.inf


def test_loss_tolerance_on_val_loss_needs_validation_data():
    c = st.LossTolerance(monitor="val_loss")
    with pytest.raises(ValueError, match="validation_data"):
        c.check(_hist(train_loss=[1.0]))
    assert _first_stop(st.LossTolerance(1e-3, 1, monitor="val_loss"), val_loss=[2.0, 2.0])[0] == 2


def test_grad_norm_below():
    epoch, reason = _first_stop(st.GradNormBelow(1e-3), grad_norm=[1.0, 1e-2, 1e-3, 5e-4])
    assert epoch == 4  # strictly below
    assert reason == "gradient norm 0.0005 fell below 0.001"


def test_target_loss():
    assert _first_stop(st.TargetLoss(0.5), train_loss=[2.0, 0.7, 0.5, 0.1]) == (
        3, "train_loss 0.5 reached the target 0.5")
    assert _first_stop(st.TargetLoss(0.5, monitor="val_loss"), train_loss=[0.1, 0.1], val_loss=[1.0, 0.4])[0] == 2


def test_time_limit():
    assert _first_stop(st.TimeLimit(1.0), time=[0.4, 0.9, 1.2]) == (3, "reached the time limit of 1 s")
    c = st.TimeLimit(1e9)
    c.reset()
    assert c.check_step(1) is None
    c0 = st.TimeLimit(0.0)
    c0.reset()
    assert c0.check_step(1) == "reached the time limit of 0 s"


def test_time_limit_in_train_stops_after_the_first_step():
    X, y, lg = _lsq()
    h = fg.train(lg, [np.zeros(3)], X, y, optimizer="sgd", batch_size=10, max_epochs=None,
                 stopping=[st.TimeLimit(0.0)])
    assert h.stop_reason == "reached the time limit of 0 s"
    assert h["step"] == [1]


def test_early_stopping_patience_and_min_delta():
    epoch, reason = _first_stop(st.EarlyStopping(patience=3), val_loss=[5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0])
    assert epoch == 6
    assert reason == "val_loss did not improve for 3 epochs (best 3 at epoch 3)"
    # 2.95 is below 3 but not by min_delta=0.1: no improvement.
    assert _first_stop(st.EarlyStopping(patience=2, min_delta=0.1), val_loss=[3.0, 2.95, 2.92, 1.0])[0] == 3
    # mode="max" for a score.
    c = st.EarlyStopping(patience=1, monitor="val_metric", mode="max")
    assert _first_stop(c, val_metric=[0.5, 0.7, 0.6]) == (3, "val_metric did not improve for 1 epochs "
                                                              "(best 0.7 at epoch 2)")
    # patience=0: stop at the first epoch without improvement, never at the first epoch.
    assert _first_stop(st.EarlyStopping(patience=0), val_loss=[1.0, 0.5, 0.6])[0] == 3
    with pytest.raises(ValueError, match="mode"):
        st.EarlyStopping(mode="auto")


def test_early_stopping_snapshot_and_restore_are_bit_exact():
    c = st.EarlyStopping(patience=2)
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(5), rng.standard_normal((2, 3)).astype(np.float32)]
    h = History()
    snapshots = []
    for epoch, v in enumerate([3.0, 1.0, 2.0, 2.5], start=1):
        for p in params:
            p += rng.standard_normal(p.shape).astype(p.dtype)
        snapshots.append([p.copy() for p in params])
        h.append({"epoch": epoch, "val_loss": v})
        c.on_epoch_end(h, params)
    assert c.best_epoch == 2
    ids = [id(p) for p in params]
    assert c.restore(params)
    assert [id(p) for p in params] == ids  # in place
    for p, s in zip(params, snapshots[1]):
        np.testing.assert_array_equal(p, s)
        assert p.dtype == s.dtype
    assert not st.EarlyStopping().restore(params)  # nothing saved yet


def _scripted_val(values):
    calls = iter(values)
    return lambda p, X, y: next(calls)


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_in_train_restores_the_best_epoch(restore):
    X, y, lg = _lsq()
    seen = []
    w = np.zeros(3)
    h = fg.train(lg, [w], X, y, optimizer="sgd", lr=0.05, max_epochs=50, validation_data=(X, y),
                 loss_fn=_scripted_val([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8]),
                 stopping=[st.EarlyStopping(patience=2, restore_best_weights=restore)],
                 callbacks=[lambda hist, params: seen.append(params[0].copy())])
    assert h.stop_reason == "val_loss did not improve for 2 epochs (best 3 at epoch 3)"
    assert len(h) == 5 and h.best_epoch == 3
    assert not np.array_equal(seen[2], seen[4])
    np.testing.assert_array_equal(w, seen[2] if restore else seen[4])


def test_early_stopping_restores_also_when_max_epochs_ends_the_run():
    X, y, lg = _lsq()
    seen = []
    w = np.zeros(3)
    h = fg.train(lg, [w], X, y, optimizer="sgd", lr=0.05, max_epochs=4, validation_data=(X, y),
                 loss_fn=_scripted_val([5.0, 1.0, 3.0, 4.0]), stopping=st.EarlyStopping(patience=10),
                 callbacks=[lambda hist, params: seen.append(params[0].copy())])
    assert h.stop_reason == "reached max_epochs=4"
    np.testing.assert_array_equal(w, seen[1])


def test_any_of_gives_the_first_reason_and_feeds_every_criterion():
    tol = st.LossTolerance(tol=0.0, n_iter_no_change=1)
    anyof = st.AnyOf(st.MaxEpochs(2), st.AnyOf(tol, st.TargetLoss(0.0)))
    assert len(anyof.criteria) == 3  # nested AnyOf flattened
    h = _hist(train_loss=[1.0])
    assert anyof.check(h) is None
    h.append({"epoch": 2, "train_loss": 1.5})
    assert anyof.check(h) == "reached max_epochs=2"
    assert tol.no_change == 1  # checked although MaxEpochs came first
    assert anyof.check_step(10**9) is None
    assert st.AnyOf(st.MaxSteps(3)).check_step(3) == "reached max_steps=3"
    with pytest.raises(TypeError, match="not a stopping criterion"):
        st.AnyOf(42)


def test_duck_typed_criterion_in_train():
    class AfterTwo:
        def check(self, history):
            return "two is enough" if len(history) >= 2 else None

    X, y, lg = _lsq()
    h = fg.train(lg, [np.zeros(3)], X, y, optimizer="sgd", stopping=[AfterTwo(), st.MaxEpochs(5)])
    assert h.stop_reason == "two is enough" and len(h) == 2


def test_loss_tolerance_in_train_on_a_converged_problem():
    X, y, lg = _lsq()
    h = fg.train(lg, [np.zeros(3)], X, y, optimizer="sgd", lr=0.5, max_epochs=1000,
                 stopping=[st.LossTolerance(tol=1e-4, n_iter_no_change=5)])
    assert h.stop_reason == "train_loss did not improve by more than 0.0001 for 5 epochs"
    assert 5 < len(h) < 100
