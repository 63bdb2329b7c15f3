"""train, minimize, lr_find and the optimizer registry, on small least-squares problems."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

import fastgd as fg
from fastgd import schedules
from fastgd.optim import OPTIMIZERS, get_optimizer


def _problem(n=120, d=4, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    return X, y


def lsq(params, X, y, w):
    """Half mean squared error of a linear model, sample-weighted mean when w is given."""
    (coef,) = params
    r = X @ coef - y
    if w is None:
        return 0.5 * np.mean(r**2), [X.T @ r / len(y)]
    s = np.sum(w)
    return 0.5 * np.sum(w * r**2) / s, [X.T @ (w * r) / s]


def _exact(X, y):
    return np.linalg.lstsq(X, y, rcond=None)[0]


# -- registry ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_name_builds_its_optimizer(name):
    p = np.zeros(3)
    opt = get_optimizer(name, [p], 0.01)
    cls, presets = OPTIMIZERS[name]
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.01
    for k, v in presets.items():
        assert opt.param_groups[0][k] == v
    assert opt.param_groups[0]["params"][0] is p


def test_registry_presets_options_and_case():
    p = np.zeros(3)
    assert get_optimizer("momentum", [p], 0.1).param_groups[0]["momentum"] == 0.9
    nesterov = get_optimizer("Nesterov", [p], 0.1).param_groups[0]
    assert nesterov["nesterov"] is True and nesterov["momentum"] == 0.9
    assert get_optimizer("momentum", [p], 0.1, momentum=0.5).param_groups[0]["momentum"] == 0.5
    assert get_optimizer("adam", p, None).param_groups[0]["lr"] == 1e-3  # the rule's default
    opt = get_optimizer(fg.RMSprop, [p], 0.2, centered=True)
    assert type(opt) is fg.RMSprop and opt.param_groups[0]["centered"] is True


def test_registry_instance_is_returned_as_is_only_for_its_params():
    p, q = np.zeros(3), np.zeros(3)
    opt = fg.Adam([p, q])
    assert get_optimizer(opt, [p, q], 0.5) is opt
    assert opt.param_groups[0]["lr"] == 1e-3  # an instance keeps its own lr
    with pytest.raises(ValueError, match="other arrays"):
        get_optimizer(opt, [p, q.copy()], 0.5)
    with pytest.raises(ValueError, match="other arrays"):
        get_optimizer(opt, [q, p], 0.5)
    with pytest.raises(ValueError, match="cannot be applied"):
        get_optimizer(opt, [p, q], 0.5, clip_norm=1.0)


def test_registry_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*sgd, momentum, nesterov.*lion"):
        get_optimizer("adamm", [np.zeros(2)], 0.1)


# -- train: convergence, batches, reproducibility ---------------------------------------

@pytest.mark.parametrize("optimizer, lr, epochs", [("adam", 0.05, 1500), ("sgd", 0.5, 300)])
def test_full_batch_reaches_the_least_squares_solution(optimizer, lr, epochs):
    X, y = _problem()
    coef = np.zeros(X.shape[1])
    h = fg.train(lsq, [coef], X, y, optimizer=optimizer, lr=lr, max_epochs=epochs)
    np.testing.assert_allclose(coef, _exact(X, y), atol=1e-6)
    assert h.stop_reason == f"reached max_epochs={epochs}"
    assert len(h) == epochs and h["step"][-1] == epochs
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_mini_batch_sgd_with_a_decaying_schedule_gets_close():
    X, y = _problem()
    coef = np.zeros(X.shape[1])
    fg.train(lsq, [coef], X, y, optimizer="sgd", lr=schedules.exponential(0.1, 0.995), batch_size=16,
             max_epochs=100, random_state=0)
    np.testing.assert_allclose(coef, _exact(X, y), atol=2e-3)


def test_same_random_state_gives_bit_identical_runs():
    X, y = _problem()

    def run(seed):
        coef = np.zeros(X.shape[1])
        h = fg.train(lsq, [coef], X, y, optimizer="adam", lr=0.01, batch_size=7, max_epochs=5, random_state=seed)
        return coef, [{k: v for k, v in r.items() if k != "time"} for r in h.records]

    a, ha = run(3)
    b, hb = run(3)
    c, _ = run(4)
    np.testing.assert_array_equal(a, b)
    assert ha == hb
    assert not np.array_equal(a, c)  # the shuffling does matter


def test_partial_last_batch_and_permutation_per_epoch():
    n, bs = 10, 4
    X = np.arange(n, dtype=np.float64).reshape(n, 1)
    y = np.zeros(n)
    batches = []

    def record(params, Xb, yb, w):
        batches.append(Xb[:, 0].astype(int).tolist())
        loss = float(len(batches))  # a distinct loss per batch
        return loss, [np.zeros(1)]

    h = fg.train(record, [np.zeros(1)], X, y, optimizer="sgd", batch_size=bs, max_epochs=3, random_state=0)
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    epochs = [sum(batches[3 * e:3 * e + 3], []) for e in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(n))  # every sample once per epoch
    assert epochs[0] != epochs[1] and epochs[0] != list(range(n))  # shuffled, anew each epoch
    assert h["step"] == [3, 6, 9]
    # Epoch loss: batch losses weighted by batch size (the short batch counts half).
    assert h["train_loss"] == [(1 * 4 + 2 * 4 + 3 * 2) / 10, (4 * 4 + 5 * 4 + 6 * 2) / 10, (7 * 4 + 8 * 4 + 9 * 2) / 10]
    batches.clear()
    fg.train(record, [np.zeros(1)], X, y, optimizer="sgd", batch_size=bs, max_epochs=1, shuffle=False)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_sample_weight_equals_duplicating_rows():
    X, y = _problem(n=30)
    counts = np.random.default_rng(1).integers(0, 4, size=30)
    weighted, duplicated = np.zeros(4), np.zeros(4)
    hw = fg.train(lsq, [weighted], X, y, optimizer="sgd", lr=0.1, max_epochs=20, sample_weight=counts)
    hd = fg.train(lsq, [duplicated], np.repeat(X, counts, axis=0), np.repeat(y, counts), optimizer="sgd",
                  lr=0.1, max_epochs=20)
    plain = np.zeros(4)
    fg.train(lsq, [plain], X, y, optimizer="sgd", lr=0.1, max_epochs=20)
    np.testing.assert_allclose(weighted, duplicated, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hw["train_loss"], hd["train_loss"], rtol=1e-12)
    assert not np.allclose(weighted, plain, atol=1e-3)


def test_sample_weight_batches_follow_their_rows():
    n = 23
    X = np.arange(n, dtype=np.float64).reshape(n, 1)
    sw = 1.0 + np.arange(n) % 5
    seen = 0

    def check(params, Xb, yb, wb):
        nonlocal seen
        np.testing.assert_array_equal(wb, sw[Xb[:, 0].astype(int)])
        seen += len(wb)
        return float(np.sum(wb * Xb[:, 0]) / np.sum(wb)), [np.zeros(1)]

    h = fg.train(check, [np.zeros(1)], X, None, optimizer="sgd", batch_size=5, max_epochs=2, random_state=0,
                 sample_weight=sw)
    assert seen == 2 * n
    # The epoch loss is the sample-weighted mean over all rows, whatever the batches.
    np.testing.assert_allclose(h["train_loss"], [np.sum(sw * np.arange(n)) / np.sum(sw)] * 2, rtol=1e-12)


def test_record_contents_validation_grad_norm_lr_and_time():
    X, y = _problem()
    Xv, yv = _problem(n=50, seed=1)
    coef = np.zeros(X.shape[1])
    last = {}

    def lg(params, Xb, yb, w):
        loss, grads = lsq(params, Xb, yb, w)
        if Xb is X:  # not the validation loss
            last["grads"] = grads
        return loss, grads

    def r2(params, Xv, yv):
        return 1 - np.sum((Xv @ params[0] - yv) ** 2) / np.sum((yv - yv.mean()) ** 2)

    h = fg.train(lg, [coef], X, y, optimizer="sgd", lr=0.2, max_epochs=3, validation_data=(Xv, yv), metric=r2)
    assert h[-1]["val_loss"] == lsq([coef], Xv, yv, None)[0]
    assert h[-1]["val_metric"] == pytest.approx(r2([coef], Xv, yv), rel=1e-12)
    assert h[-1]["grad_norm"] == pytest.approx(np.linalg.norm(last["grads"][0]), rel=1e-12)
    assert h["lr"] == [0.2] * 3
    assert h["epoch"] == [1, 2, 3]
    times = h["time"]
    assert all(0 <= a <= b for a, b in zip(times, times[1:]))
    custom = fg.train(lsq, [np.zeros(4)], X, y, optimizer="sgd", max_epochs=2, validation_data=(Xv, yv),
                      loss_fn=lambda p, Xv, yv: 42.0)
    assert custom["val_loss"] == [42.0, 42.0] and custom["val_metric"] == [None, None]
    assert fg.train(lsq, [np.zeros(4)], X, y, max_epochs=1)["val_loss"] == [None]


def test_schedule_as_lr_matches_a_manual_loop():
    X, y = _problem()
    sched = schedules.step_decay(0.3, step_size=2, gamma=0.5)
    coef = np.zeros(X.shape[1])
    h = fg.train(lsq, [coef], X, y, optimizer="sgd", lr=sched, max_epochs=6)
    manual = np.zeros(X.shape[1])
    opt = fg.SGD([manual], lr=sched)
    for _ in range(6):
        opt.step(lsq([manual], X, y, None)[1])
    np.testing.assert_array_equal(coef, manual)
    assert h["lr"] == [sched(k) for k in range(6)] == [0.3, 0.3, 0.15, 0.15, 0.075, 0.075]


def test_post_step_gets_the_params_and_the_step_lr():
    X, y = _problem(n=20)
    calls = []
    coef = np.zeros(4)
    fg.train(lsq, [coef], X, y, optimizer="sgd", lr=lambda k: 0.1 / (1 + k), batch_size=8, max_epochs=2,
             post_step=lambda params, lr: calls.append((params[0] is coef, lr)))
    assert calls == [(True, 0.1 / (1 + k)) for k in range(6)]


def test_post_step_can_project_in_place():
    X, y = _problem()
    coef = np.zeros(4)
    fg.train(lsq, [coef], X, y, optimizer="sgd", lr=0.1, max_epochs=50,
             post_step=lambda params, lr: np.clip(params[0], -0.1, 0.1, out=params[0]))
    assert np.max(np.abs(coef)) == pytest.approx(0.1)


def test_callback_returning_true_stops():
    X, y = _problem()
    seen = []

    def cb(history, params):
        seen.append((len(history), params[0].copy()))
        return len(history) == 3

    coef = np.zeros(4)
    h = fg.train(lsq, [coef], X, y, optimizer="sgd", lr=0.1, max_epochs=10, callbacks=[cb])
    assert h.stop_reason == "stopped by callback"
    assert len(h) == 3 and [s[0] for s in seen] == [1, 2, 3]
    np.testing.assert_array_equal(seen[-1][1], coef)
    # A single callable works as well as a list.
    assert len(fg.train(lsq, [np.zeros(4)], X, y, callbacks=lambda h, p: True)) == 1


def test_optimizer_instance_keeps_its_state_across_calls():
    X, y = _problem()
    once, twice = np.zeros(4), np.zeros(4)
    fg.train(lsq, [once], X, y, optimizer=fg.Adam([once], lr=0.05), max_epochs=4)
    opt = fg.Adam([twice], lr=0.05)
    for _ in range(4):
        fg.train(lsq, [twice], X, y, optimizer=opt, max_epochs=1)
    np.testing.assert_array_equal(once, twice)
    fresh = np.zeros(4)
    for _ in range(4):
        fg.train(lsq, [fresh], X, y, optimizer="adam", lr=0.05, max_epochs=1)
    assert not np.array_equal(fresh, once)  # a new Adam each call restarts its moments


def test_optimizer_options_reach_the_optimizer():
    X, y = _problem()
    coef = np.zeros(4)
    fg.train(lsq, [coef], X, y, optimizer="sgd", lr=1.0, max_epochs=1, optimizer_options={"clip_value": 1e-3})
    np.testing.assert_allclose(np.abs(coef), 1e-3)


def test_float32_params():
    X, y = _problem()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    coef = np.zeros(4, np.float32)
    fg.train(lsq, [coef], X32, y32, optimizer="adam", lr=0.05, max_epochs=600)
    assert coef.dtype == np.float32
    np.testing.assert_allclose(coef, _exact(X, y), atol=1e-4)
    # float64 data gives float64 gradients: converted to the parameters' dtype for the step.
    coef64_data = np.zeros(4, np.float32)
    fg.train(lsq, [coef64_data], X, y, optimizer="adam", lr=0.05, max_epochs=600)
    np.testing.assert_allclose(coef64_data, coef, atol=1e-5)


def test_bad_arguments():
    X, y = _problem(n=10)
    p = [np.zeros(4)]
    with pytest.raises(ValueError, match="y has 9"):
        fg.train(lsq, p, X, y[:9])
    with pytest.raises(ValueError, match="sample_weight"):
        fg.train(lsq, p, X, y, sample_weight=-np.ones(10))
    with pytest.raises(ValueError, match="batch_size"):
        fg.train(lsq, p, X, y, batch_size=0)
    with pytest.raises(ValueError, match="stopping criterion"):
        fg.train(lsq, p, X, y, max_epochs=None)
    with pytest.raises(ValueError, match="1 parameters"):
        fg.train(lambda p, X, y, w: (0.0, [np.zeros(4)] * 2), p, X, y)


# -- divergence ----------------------------------------------------------------------------

def test_divergence_warns_restores_the_last_good_epoch_and_records_why():
    X, y = _problem()
    seen = []
    coef = np.zeros(4)
    opt = fg.SGD([coef], lr=1.0, momentum=0.9)
    states = []

    def cb(history, params):
        seen.append(params[0].copy())
        states.append(opt.state_dict())
        # Blow up from epoch 3 on.
        if len(history) == 2:
            opt.param_groups[0]["lr"] = 1e30

    with pytest.warns(fg.DivergenceWarning) as record, np.errstate(all="ignore"):
        # explode_factor=None: this test is about the NaN/Inf path (the growth check would stop earlier)
        h = fg.train(lsq, [coef], X, y, optimizer=opt, batch_size=30, max_epochs=20, callbacks=[cb],
                     explode_factor=None)
    (msg,) = [str(w.message) for w in record if w.category is fg.DivergenceWarning]
    assert "lr=1e+30" in msg and "clip_norm" in msg and "standardizing the inputs" in msg
    assert h.stop_reason.startswith("diverged at epoch ")
    epoch = int(h.stop_reason.split()[3])
    assert len(h) == epoch - 1 >= 3
    assert np.all(np.isfinite(coef))
    np.testing.assert_array_equal(coef, seen[-1])
    # The optimizer's state goes back too: its momentum buffer and step count.
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], states[-1]["state"][0]["momentum_buffer"])
    assert opt.step_count == 4 * len(h) == h["step"][-1]
    assert not np.array_equal(seen[-1], seen[-2])


def test_divergence_in_the_first_epoch_restores_the_initial_values():
    X, y = _problem()
    coef = np.full(4, 0.5)
    with pytest.warns(fg.DivergenceWarning, match="their initial values"), np.errstate(all="ignore"):
        h = fg.train(lsq, [coef], X, y, optimizer="sgd", lr=1e200, batch_size=10, max_epochs=5)
    assert len(h) == 0
    assert h.stop_reason.startswith("diverged at epoch 1")
    np.testing.assert_array_equal(coef, 0.5)


def test_parameters_overflowing_in_the_last_step_are_divergence():
    X, y = _problem()
    coef = np.full(4, 0.5)
    with pytest.warns(fg.DivergenceWarning), np.errstate(all="ignore"):
        h = fg.train(lambda p, X, y, w: (1.0, [np.full(4, 10.0)]), [coef], X, y, optimizer="sgd", lr=1e308,
                     max_epochs=1)
    assert h.stop_reason == "diverged at epoch 1 (step 1): the parameters are not finite"
    np.testing.assert_array_equal(coef, 0.5)


def test_nan_loss_is_divergence():
    X, y = _problem()

    def nan_later(params, Xb, yb, w):
        loss, grads = lsq(params, Xb, yb, w)
        return (math.nan if nan_later.calls >= 2 else loss), grads

    nan_later.calls = 0

    def counting(params, Xb, yb, w):
        out = nan_later(params, Xb, yb, w)
        nan_later.calls += 1
        return out

    with pytest.warns(fg.DivergenceWarning):
        h = fg.train(counting, [np.zeros(4)], X, y, optimizer="sgd", max_epochs=10)
    assert h.stop_reason == "diverged at epoch 3 (step 3): the loss is nan"


def test_no_warning_without_divergence():
    X, y = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = fg.train(lsq, [np.zeros(4)], X, y, optimizer="sgd", lr=0.5, max_epochs=5)
    assert not h.stop_reason.startswith("diverged")



@pytest.mark.parametrize(("loss", "gnorm", "first", "factor", "verdict"), [
    (1.0, 2.0, None, None, None),
    (math.nan, 2.0, None, None, "loss"),
    (math.inf, math.nan, 1.0, 10.0, "loss"),  # the loss is judged first
    (1.0, math.nan, None, None, "grad_norm"),
    (1.0, -math.inf, 1.0, 10.0, "grad_norm"),
    (1.0, 11.0, 1.0, 10.0, "exploded"),
    (1.0, 10.0, 1.0, 10.0, None),  # at the limit is not over it
    (1.0, 1e300, 1.0, None, None),  # no limit
    (1.0, 1e300, None, 10.0, None),  # no step kept yet: nothing to measure growth by
    (1.0, 1e300, 0.0, 10.0, None),  # a first norm of 0 measures no growth
    (1.0, 1e300, 1e300, 10.0, None),  # the limit overflows to inf: nothing is over it
])
def test_the_divergence_rule(loss, gnorm, first, factor, verdict):
    """The one definition (fastgd/divergence.hpp) that the Python step and the fused epoch apply."""
    from fastgd import _core

    assert _core.divergence(loss, gnorm, first, factor) == verdict


def _norm_once_runs(monkeypatch, make_loss, nonfinite="ignore", **kw):
    """The same run twice: the Python step reading the gradient norm from the optimizer's step
    (clip_norm), and computing it itself before the step, as it does without clip_norm."""
    from fastgd.training import _steps

    X, y = _problem(n=90)
    out = []
    for from_step in (True, False):
        if not from_step:
            monkeypatch.setattr(_steps, "norm_from_step", lambda opt: False)
        coef = np.zeros(4)
        opt = fg.SGD([coef], lr=0.3, momentum=0.9, clip_norm=0.5, nonfinite=nonfinite)
        with warnings.catch_warnings(record=True) as w, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            h = fg.train(make_loss(), [coef], X, y, optimizer=opt, batch_size=16, max_epochs=6, random_state=0,
                         **kw)
        out.append((coef, opt.state_dict(), [{k: v for k, v in r.items() if k != "time"} for r in h.records],
                    h.stop_reason, opt.last_grad_norm, [str(x.message) for x in w]))
    (ca, sa, ra, wa, la, ma), (cb, sb, rb, wb, lb, mb) = out
    np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(sa["state"][0]["momentum_buffer"], sb["state"][0]["momentum_buffer"])
    assert sa["group_state"] == sb["group_state"] and sa["skipped_steps"] == sb["skipped_steps"]
    assert (ra, wa, ma) == (rb, wb, mb)
    assert la == lb
    return ra, wa


def _spoiled_from_call(k, spoil):
    """lsq, its (loss, gradients) put through ``spoil`` from the k-th call on."""
    def make():
        calls = [0]

        def loss_and_grad(params, Xb, yb, w):
            loss, grads = lsq(params, Xb, yb, w)
            calls[0] += 1
            return spoil(loss, grads) if calls[0] >= k else (loss, grads)

        return loss_and_grad

    return make


def test_with_clip_norm_the_norm_is_computed_once(monkeypatch):
    from fastgd.training import _steps

    X, y = _problem()
    calls = []
    real = _steps.total_norm
    monkeypatch.setattr(_steps, "total_norm", lambda g: calls.append(1) or real(g))
    opt = fg.Adam([np.zeros(4)], lr=0.05, clip_norm=0.5)
    h = fg.train(lsq, opt.param_groups[0]["params"], X, y, optimizer=opt, batch_size=30, max_epochs=2)
    assert calls == [] and h["grad_norm"][-1] == opt.last_grad_norm
    fg.train(lsq, [np.zeros(4)], X, y, optimizer="adam", batch_size=30, max_epochs=2)
    assert len(calls) == 8  # without clipping by it, the step has no norm: train computes it, once a step


@pytest.mark.parametrize("case", ["fine", "nan_loss", "nan_grad", "nan_grad_skip", "explodes"])
def test_reading_the_norm_from_the_step_changes_no_bit(monkeypatch, case):
    """With clip_norm the step is taken before it is judged (its norm is the judge's); a step
    that is not kept is undone with the rest of its epoch: params, state, history, stop reason,
    warning and last_grad_norm are those of judging first."""
    nan_grads = _spoiled_from_call(14, lambda loss, g: (loss, [np.full_like(g[0], np.nan)]))
    kw = {
        "fine": {"make_loss": lambda: lsq},
        "nan_loss": {"make_loss": _spoiled_from_call(14, lambda loss, g: (math.nan, g))},
        "nan_grad": {"make_loss": nan_grads},
        "nan_grad_skip": {"make_loss": nan_grads, "nonfinite": "skip"},
        "explodes": {"make_loss": _spoiled_from_call(20, lambda loss, g: (loss, [g[0] * 1e4])),
                     "explode_factor": 100.0},
    }[case]
    records, reason = _norm_once_runs(monkeypatch, **kw)
    assert reason.startswith("diverged") == (case != "fine")
    assert len(records) >= 1


def test_the_divergence_warning_names_the_caller_of_train():
    X, y = _problem()
    with pytest.warns(fg.DivergenceWarning) as record, np.errstate(all="ignore"):
        fg.train(lsq, [np.zeros(4)], X, y, optimizer="sgd", lr=1e200, batch_size=10, max_epochs=5)
    assert record[0].filename == __file__


# -- verbose ---------------------------------------------------------------------------------

def test_verbose_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    X, y = _problem()
    fg.train(lsq, [np.zeros(4)], X, y, max_epochs=3, verbose=True, validation_data=(X, y))
    out, err = capsys.readouterr()
    assert "3/3" in err and "val_loss=" in err
    assert "stopped: reached max_epochs=3" in out


def test_verbose_without_tqdm_prints(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = _problem()
    fg.train(lsq, [np.zeros(4)], X, y, max_epochs=2, verbose=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("epoch 1/2: train_loss=") and out[1].startswith("epoch 2/2: ")
    assert out[2] == "stopped: reached max_epochs=2"


# -- minimize --------------------------------------------------------------------------------

def rosenbrock(x):
    f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])
    return f, g


def test_minimize_rosenbrock():
    x0 = [-1.2, 1.0]
    res = fg.minimize(rosenbrock, x0, optimizer="momentum", lr=1e-3, max_iter=10000, tol=1e-6)
    assert res.success and res.status == 0 and res.message.startswith("converged")
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-5)
    assert np.max(np.abs(res.jac)) <= 1e-6
    assert res.fun == rosenbrock(res.x)[0] < 1e-10
    assert 100 < res.nit < 10000 and res.nfev == res.nit + 1 == len(res.history)
    assert res.history[0] == rosenbrock(np.array(x0))[0]
    assert x0 == [-1.2, 1.0]


def test_minimize_quadratic_with_adam_and_a_jac_callable():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((5, 5))
    A = M @ M.T + 5 * np.eye(5)
    b = rng.standard_normal(5)
    res = fg.minimize(lambda x: 0.5 * x @ A @ x - b @ x, np.zeros(5), jac=lambda x: A @ x - b, optimizer="adam",
                      lr=0.05, max_iter=5000, tol=1e-8)
    assert res.success
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), atol=1e-8)


def test_minimize_max_iter_and_dtype():
    x0 = np.array([-1.2, 1.0], np.float32)
    res = fg.minimize(rosenbrock, x0, optimizer="sgd", lr=1e-4, max_iter=50)
    assert not res.success and res.status == 1 and res.nit == 50
    assert res.message.startswith("reached max_iter=50")
    assert res.x.dtype == np.float32 and res.jac.dtype == np.float32
    assert res.x is not x0 and x0[0] == np.float32(-1.2)
    assert fg.minimize(lambda x: (float(x @ x), 2 * x), [1, 2], optimizer="sgd", lr=0.25).x.dtype == np.float64


def test_minimize_divergence_keeps_the_last_finite_iterate():
    with pytest.warns(fg.DivergenceWarning, match="lr=1e\\+200"), np.errstate(all="ignore"):
        res = fg.minimize(lambda x: (float(x @ x), 2 * x), [1.0, 1.0], optimizer="sgd", lr=1e200)
    assert not res.success and res.status == 2 and res.message.startswith("diverged at iteration")
    assert np.all(np.isfinite(res.x)) and math.isfinite(res.fun)
    assert res.fun == float(res.x @ res.x)


def test_minimize_callback_and_result_object():
    seen = []
    res = fg.minimize(lambda x: (float(x @ x), 2 * x), [1.0, -1.0], optimizer="sgd", lr=0.1,
                      callback=lambda xk: seen.append(xk) or len(seen) == 3)
    assert res.status == 3 and res.nit == 3 and not res.success
    assert seen[0] is not seen[1] and seen[-1].tolist() == res.x.tolist()
    np.testing.assert_allclose(seen[0], [0.8, -0.8])
    assert res["x"] is res.x and isinstance(res, dict)
    with pytest.raises(AttributeError):
        _ = res.nope
    assert "success: False" in repr(res)


def test_minimize_fun_sees_a_read_only_iterate():
    def fun(x):
        with pytest.raises(ValueError):
            x[0] = 0.0
        return float(x @ x), 2 * x

    assert fg.minimize(fun, [1.0], optimizer="sgd", lr=0.5).success


# -- lr_find -------------------------------------------------------------------------------

def test_lr_find_suggests_a_working_lr_and_restores_params():
    X, y = _problem(n=200, d=5)
    coef = np.full(5, 0.25)
    with np.errstate(all="ignore"):
        res = fg.lr_find(lsq, [coef], X, y, optimizer="sgd", max_lr=100.0, batch_size=None, random_state=0)
    np.testing.assert_array_equal(coef, 0.25)
    # The range test's geometric grid, stopped when the loss blew up at large lr.
    assert res.lrs[0] == 1e-7
    np.testing.assert_allclose(res.lrs[1:] / res.lrs[:-1], 1e9 ** (1 / 99))
    assert 10 < len(res.lrs) < 100 and res.losses[-1] > 4 * np.min(res.losses[:-1])
    # SGD on this problem is stable below 2 / L, L the largest Hessian eigenvalue.
    L = np.linalg.eigvalsh(X.T @ X / len(y))[-1]
    assert 1e-3 < res.suggestion < 2 / L
    w = np.zeros(5)
    h = fg.train(lsq, [w], X, y, optimizer="sgd", lr=res.suggestion, max_epochs=50)
    assert h["train_loss"][-1] < 0.05 * h["train_loss"][0]


def test_lr_find_minibatches_and_an_optimizer_instance():
    X, y = _problem(n=200, d=5)
    coef = np.zeros(5)
    opt = fg.Adam([coef], lr=0.01)
    opt.step([np.ones(5)])
    before = opt.state_dict()
    saved = coef.copy()
    res = fg.lr_find(lsq, [coef], X, y, optimizer=opt, batch_size=64, num_steps=50, random_state=1)
    np.testing.assert_array_equal(coef, saved)
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], before["state"][0]["exp_avg"])
    assert opt.param_groups[0]["lr"] == 0.01 and opt.step_count == 1
    assert len(res.lrs) == len(res.losses) == len(res.raw_losses) <= 50
    assert 1e-4 < res.suggestion < 10


def test_lr_find_plot(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = _problem()
    res = fg.lr_find(lsq, [np.zeros(4)], X, y, optimizer="sgd", batch_size=None)
    fig = res.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_lines()[1].get_xdata()[0] == pytest.approx(res.suggestion)


def test_exploding_gradient_norm_stops_before_overflow():
    # f(x) = 1.5 x^2 with SGD lr 1: x <- -2x, so the gradient doubles every step.
    x = np.array([1.0])

    def loss_and_grad(params, X, y, w):
        return 1.5 * float(params[0][0] ** 2), [3.0 * params[0]]

    X = np.zeros((1, 1))
    with pytest.warns(fg.DivergenceWarning, match="exploded"):
        h = fg.train(loss_and_grad, [x], X, None, optimizer="sgd", lr=1.0, max_epochs=100, explode_factor=1e3)
    assert h.stop_reason.startswith("diverged")
    assert "exploded" in h.stop_reason
    # stopped after ~10 doublings, at the last good epoch's weights, far from overflow
    assert np.isfinite(x).all() and abs(x[0]) < 1e4
    assert len(h) <= 11
    with pytest.raises(ValueError, match="explode_factor must be > 1"):
        fg.train(loss_and_grad, [x], X, None, explode_factor=1.0)
