"""``shuffle="batches"``: contiguous mini-batches visited in a new random order each epoch,
in :func:`fastgd.train` and the linear models."""

from __future__ import annotations

import numpy as np
import pytest
from linear_losses import linear_losses

import fastgd as fg
from fastgd import _core


def _recorder(batches):
    def record(params, Xb, yb, w):
        batches.append(Xb[:, 0].astype(int).tolist())
        return float(len(batches)), [np.zeros(1)]
    return record


def _epochs(batches, per_epoch):
    return [batches[e:e + per_epoch] for e in range(0, len(batches), per_epoch)]


def test_contiguous_batches_in_a_new_order_each_epoch():
    n, bs = 22, 4  # 6 batches, the last one of 2
    X = np.arange(n, dtype=np.float64).reshape(n, 1)
    batches: list = []
    h = fg.train(_recorder(batches), [np.zeros(1)], X, None, optimizer="sgd", batch_size=bs, max_epochs=4,
                 shuffle="batches", random_state=0)
    contiguous = [list(range(s, min(s + bs, n))) for s in range(0, n, bs)]
    epochs = _epochs(batches, len(contiguous))
    assert len(epochs) == 4
    for e in epochs:
        assert sorted(e) == contiguous  # every batch, each a contiguous range, once per epoch
        assert sorted(sum(e, [])) == list(range(n))  # so every row exactly once
    assert len({tuple(map(tuple, e)) for e in epochs}) == 4  # a new order every epoch
    assert epochs[0] != contiguous
    # train_loss weights each batch by its size wherever the short one falls.
    sizes = [[len(b) for b in e] for e in epochs]
    losses = np.arange(1, len(batches) + 1, dtype=float).reshape(4, -1)
    np.testing.assert_allclose(h["train_loss"], [(np.array(s) * ls).sum() / n for s, ls in zip(sizes, losses)])


def test_reproducible_with_random_state():
    X = np.arange(50, dtype=np.float64).reshape(50, 1)
    runs = []
    for seed in (3, 3, 4):
        batches: list = []
        fg.train(_recorder(batches), [np.zeros(1)], X, None, optimizer="sgd", batch_size=8, max_epochs=3,
                 shuffle="batches", random_state=seed)
        runs.append(batches)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_one_batch_and_bad_values():
    X = np.arange(5, dtype=np.float64).reshape(5, 1)
    batches: list = []
    fg.train(_recorder(batches), [np.zeros(1)], X, None, optimizer="sgd", batch_size=8, max_epochs=2,
             shuffle="batches", random_state=0)
    assert batches == [[0, 1, 2, 3, 4]] * 2
    for bad in ("rows", "Batches", 1, None):
        with pytest.raises(ValueError, match="shuffle"):
            fg.train(_recorder([]), [np.zeros(1)], X, None, batch_size=2, shuffle=bad)


@pytest.mark.parametrize("weighted", [False, True])
def test_rows_in_place_match_gathered_batches_and_a_plain_loop(weighted):
    """The same order of batches whichever way they reach the loss: read in place by range
    (gather=False), copied (gather=True), or a hand-written loop over the same permutations.
    Sample weights and a short last batch included."""
    rng = np.random.default_rng(0)
    n, d, bs = 301, 9, 32
    X = rng.standard_normal((n, d))
    y = (rng.random(n) < 0.5).astype(np.float64)
    sw = rng.uniform(0.5, 2.0, n) if weighted else None
    grad = np.empty(d + 1)
    in_place, gathered = linear_losses(1, d, grad)
    a, c, r = np.zeros(d + 1), np.zeros(d + 1), np.zeros(d + 1)
    kw = dict(sample_weight=sw, batch_size=bs, max_epochs=3, random_state=7, shuffle="batches",
              optimizer="adam", lr=1e-2)
    ha = fg.train(in_place, [a], X, y, gather=False, **kw)
    hc = fg.train(gathered, [c], X, y, **kw)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_allclose(ha["train_loss"], hc["train_loss"], rtol=1e-12)

    order_rng = np.random.default_rng(7)
    opt = fg.optim.Adam([r], lr=1e-2)
    n_batches = -(-n // bs)
    for _ in range(3):
        for k in order_rng.permutation(n_batches):
            _, g = gathered([r], X[k * bs:(k + 1) * bs], y[k * bs:(k + 1) * bs],
                            None if sw is None else sw[k * bs:(k + 1) * bs])
            opt.step(g)
    np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("Model", [fg.LogisticRegression, fg.LinearRegression])
def test_estimators(Model):
    rng = np.random.default_rng(1)
    n, d = 700, 5
    X = rng.standard_normal((n, d))
    t = X @ rng.standard_normal(d)
    y = (t > 0).astype(int) if Model is fg.LogisticRegression else t + 0.1 * rng.standard_normal(n)
    sw = rng.uniform(0.5, 2.0, n)
    kw = dict(batch_size=64, max_epochs=5, tol=None, lr=1e-2, random_state=0)
    a = Model(shuffle="batches", **kw).fit(X, y, sample_weight=sw)
    b = Model(shuffle="batches", **kw).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(a.coef_, b.coef_)  # reproducible
    c = Model(shuffle=False, **kw).fit(X, y, sample_weight=sw)
    assert not np.array_equal(a.coef_, c.coef_)  # the batch order does change the run
    s = Model(shuffle=True, **kw).fit(X, y, sample_weight=sw)
    # As good a fit as per-sample shuffling on rows in no particular order.
    assert a.score(X, y, sample_weight=sw) >= s.score(X, y, sample_weight=sw) - 0.02
    a.partial_fit(X, y, sample_weight=sw)
    assert a.n_iter_ == 6


@pytest.mark.parametrize("bad", ["rows", "True", 2, None])
def test_estimator_param_validation(bad):
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = np.arange(20) % 2
    with pytest.raises(ValueError, match="shuffle"):
        fg.LogisticRegression(shuffle=bad).fit(X, y)


# -- whole stretches of batches in one call (_core.linear_batches) -------------------------


def _objective(loss, K, d, l2=0.0):
    from fastgd.models.linear import _Objective

    return _Objective(loss, K, d, l2, 0.0, 1.0)


def _plain(obj):
    """The same objective without run_batches: train's Python loop, batch by batch."""
    def loss_and_grad(*args):
        return obj(*args)
    return loss_and_grad


def _records(h):
    return [{k: v for k, v in r.items() if k != "time"} for r in h.records]


@pytest.mark.parametrize("shuffle", [True, "batches", False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["log_loss", "softmax_cross_entropy", "huber"])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_call_loop_is_the_python_loop(shuffle, dtype, case, weighted):
    """train with the objective's run_batches (one C++ call per stretch of batches) gives the
    bits of train's Python loop: parameters, optimizer state and every history record."""
    rng = np.random.default_rng(5)
    n, d, bs = 413, 11, 40  # a short last batch
    K = 3 if case == "softmax_cross_entropy" else 1
    X = rng.standard_normal((n, d)).astype(dtype)
    if case == "softmax_cross_entropy":
        y = rng.integers(0, K, n)
    elif case == "log_loss":
        y = (rng.random(n) < 0.4).astype(dtype)
    else:
        y = (X @ rng.standard_normal(d)).astype(dtype)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype) if weighted else None
    out = []
    for fast in (True, False):
        obj = _objective(case, K, d, l2=1e-3)
        theta = np.zeros(K * (d + 1), dtype)
        opt = fg.optim.Adam([theta], lr=fg.schedules.cosine(0.05, T_max=30), clip_norm=0.5)
        h = fg.train(obj if fast else _plain(obj), [theta], X, y, optimizer=opt, batch_size=bs, max_epochs=3,
                     shuffle=shuffle, random_state=2, sample_weight=sw, gather=False,
                     validation_data=(X[:60], y[:60]))
        out.append((theta, opt.state_dict(), _records(h), h.stop_reason))
    (ta, sa, ra, wa), (tb, sb, rb, wb) = out
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_array_equal(sa["state"][0]["exp_avg_sq"], sb["state"][0]["exp_avg_sq"])
    assert ra == rb and wa == wb


def test_one_call_loop_is_used_and_stops_like_the_python_loop(monkeypatch):
    rng = np.random.default_rng(0)
    n, d = 500, 4
    X = rng.standard_normal((n, d))
    y = (X[:, 0] > 0).astype(np.float64)
    calls = []
    real = _core.linear_batches

    def counting(*args, **kw):
        calls.append(args[9])  # first
        return real(*args, **kw)

    monkeypatch.setattr(_core, "linear_batches", counting)
    obj = _objective("log_loss", 1, d)
    fg.train(obj, [np.zeros(d + 1)], X, y, batch_size=50, max_epochs=2, shuffle="batches", random_state=0,
             gather=False)
    # Epoch 1: batch 0 in the Python loop (the optimizer has no plan before its first step),
    # then batches 1..9 in one call; epoch 2: all 10 in one call.
    assert calls == [1, 0]
    # A criterion that checks every step keeps the Python loop, and stops mid-epoch.
    calls.clear()
    h = fg.train(obj, [np.zeros(d + 1)], X, y, batch_size=50, max_epochs=2, gather=False,
                 stopping=fg.stopping.MaxSteps(13))
    assert calls == [] and h["step"] == [10, 13]
    # So does a post_step.
    fg.train(obj, [np.zeros(d + 1)], X, y, batch_size=50, max_epochs=1, gather=False,
             post_step=lambda p, lr: None)
    assert calls == []


@pytest.mark.parametrize("lr", [1e30, 1e6])
def test_one_call_loop_diverges_like_the_python_loop(lr):
    rng = np.random.default_rng(1)
    n, d = 400, 5
    X = rng.standard_normal((n, d)) * 1e3
    y = X @ rng.standard_normal(d)
    out = []
    for fast in (True, False):
        obj = _objective("squared_error", 1, d)
        theta = np.zeros(d + 1)
        with pytest.warns(fg.DivergenceWarning) as w:
            h = fg.train(obj if fast else _plain(obj), [theta], X, y, optimizer="sgd", lr=lr, batch_size=32,
                         max_epochs=5, shuffle="batches", random_state=0, gather=False, explode_factor=10.0)
        out.append((theta, _records(h), h.stop_reason, str(w[0].message)))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert out[0][1:] == out[1][1:]


def test_linear_batches_bad_input():
    X = np.zeros((10, 3))
    y = np.zeros(10)
    theta, grad = np.zeros(4), np.zeros(4)
    opt = fg.optim.SGD([theta], lr=0.1)
    opt.step([grad])
    plan = opt.step_plan
    args = dict(sample_weight=None, order=None, first=0, batch_size=4, batch_weight=None, l2=0.0, l1=0.0,
                delta=1.0, plan=plan, grads=[grad], sums=(0.0, 0.0, 0.0), first_gnorm=None, explode_factor=None)
    ok = np.arange(3)
    with pytest.raises(ValueError, match="batches"):
        _core.linear_batches("log_loss", X, y, theta, grad, 1, batches=np.array([0, 3]), **args)
    with pytest.raises(TypeError, match="batches"):
        _core.linear_batches("log_loss", X, y, theta, grad, 1, batches=ok.astype(np.int32), **args)
    with pytest.raises(ValueError, match="theta"):
        _core.linear_batches("log_loss", X, y, np.zeros(5), grad, 1, batches=ok, **args)
    with pytest.raises(ValueError, match="order"):
        _core.linear_batches("log_loss", X, y, theta, grad, 1, batches=ok, **{**args, "order": np.arange(10) + 1})
    with pytest.raises(ValueError, match="batch_weight"):
        _core.linear_batches("log_loss", X, y, theta, grad, 1, batches=ok, **{**args, "batch_weight": np.ones(2)})
    with pytest.raises(TypeError, match="grad"):
        _core.linear_batches("log_loss", X, y, theta, grad.astype(np.float32), 1, batches=ok, **args)
    assert not theta.any() and not grad.any()  # nothing written


# -- the fixed costs of fit on large data --------------------------------------------------


@pytest.mark.parametrize("y", [
    np.array([3, -5, 3, 7], np.int8), np.array([-128, 127, 0, 127], np.int8), np.array([5, 5, 9], np.uint16),
    np.array([2**62, 0, 2**62]), np.array([1, 2], np.uint64), np.array([True, False, True]),
    np.random.default_rng(0).integers(-3, 40, 5000), np.array([7]), np.array([0, 10**6, 5]),
])
def test_labels_by_counting_equal_unique(y):
    from fastgd.models._base import check_labels

    classes, idx = check_labels(y)
    ref_classes, ref_idx = np.unique(y, return_inverse=True)
    assert classes.dtype == ref_classes.dtype and idx.dtype == ref_idx.dtype
    np.testing.assert_array_equal(classes, ref_classes)
    np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finite_check_by_kernel(dtype, bad):
    X = np.ones((50, 3), dtype)
    y = np.arange(50) % 2
    fg.LogisticRegression(max_epochs=1, tol=None).fit(X, y)
    X[17, 2] = bad
    with pytest.raises(ValueError, match="NaN" if np.isnan(bad) else "infinity"):
        fg.LogisticRegression().fit(X, y)
    # Large but finite values whose sum overflows are fine.
    from fastgd.models._base import check_X

    big = np.full((50, 3), np.finfo(dtype).max / 2, dtype)
    assert check_X(big) is big


def test_duck_typed_criteria_keep_the_one_call_loop():
    from fastgd.training import _checks_steps

    class OnlyCheck:
        def check(self, history):
            return None

    class EveryStep(OnlyCheck):
        def check_step(self, step):
            return None

    assert not _checks_steps(fg.stopping.AnyOf(OnlyCheck(), fg.stopping.LossTolerance(1e-3, 2)))
    assert _checks_steps(fg.stopping.AnyOf(OnlyCheck(), EveryStep()))
    assert _checks_steps(fg.stopping.AnyOf(fg.stopping.TimeLimit(10.0)))
