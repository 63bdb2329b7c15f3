"""``shuffle="batches"``: contiguous mini-batches visited in a new random order each epoch,
in :func:`fastgd.train` and the linear models."""

from __future__ import annotations

import numpy as np
import pytest

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


def _linear_losses(K, d, grad):
    def in_place(params, Xa, ya, wa, rows):
        th = params[0]
        kw = dict(start=rows.start, stop=rows.stop) if isinstance(rows, slice) else dict(rows=rows)
        value = _core.linear_objective("log_loss", Xa, ya, th[:K * d].reshape(K, d), th[K * d:],
                                       grad[:K * d].reshape(K, d), grad[K * d:], sample_weight=wa, **kw)
        return value, [grad]

    def gathered(params, Xb, yb, wb):
        th = params[0]
        g = np.empty_like(th)
        value = _core.linear_objective("log_loss", Xb, yb, th[:K * d].reshape(K, d), th[K * d:],
                                       g[:K * d].reshape(K, d), g[K * d:], sample_weight=wb)
        return value, [g]

    return in_place, gathered


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
    in_place, gathered = _linear_losses(1, d, grad)
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
