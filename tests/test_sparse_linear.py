"""Sparse (CSR) linear training: the fused sparse objective against the dense kernel and a
NumPy formula, threads, the lazy step against its written-out math, and the estimators on
sparse X against the same estimators on ``X.toarray()``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import reference as R

import fastgd
from fastgd import _core
from fastgd.optim.registry import OPTIMIZERS

sp = pytest.importorskip("scipy.sparse")

# ConvergenceWarning (an error in this suite) silenced: the fits here are a few epochs long on
# purpose, and compare parameters or predictions, not convergence.
pytestmark = pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning")

SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33, 1023]
DTYPES = [np.float32, np.float64]
INDEX_DTYPES = [np.int32, np.int64]
# (loss, K): every loss of the kernel, the regression ones with several outputs too.
LOSSES = [("squared_error", 1), ("squared_error", 3), ("huber", 1), ("huber", 2), ("log_loss", 1), ("hinge", 1),
          ("softmax_cross_entropy", 4), ("hinge_ovr", 3)]


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)


def random_csr(n, d, density, dtype, index_dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    X.data = rng.standard_normal(X.nnz)
    X = X.astype(dtype)
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    return X


def targets(loss, K, n, dtype, rng):
    if loss in ("softmax_cross_entropy", "hinge_ovr"):
        return rng.integers(0, K, n).astype(np.int64)
    if loss in ("log_loss", "hinge"):
        return (rng.random(n) > 0.5).astype(dtype)
    return (rng.standard_normal((n, K)) if K > 1 else rng.standard_normal(n)).astype(dtype)


# -- the kernel ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss,K", LOSSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("d", SIZES)
def test_objective_matches_dense_kernel(loss, K, dtype, index_dtype, d, simd_level):
    """Every loss, with weights, L2, L1, a per-feature scale and rows by index, as the dense
    kernel gives on X.toarray() (the dense kernel is itself checked against NumPy), on every
    SIMD level (a single output's loss goes through the level's vector kernel)."""
    rng = np.random.default_rng(d)
    n = 40
    X = random_csr(n, d, min(1.0, 3.0 / d + 0.1), dtype, index_dtype, seed=d)
    X.indices[: X.indptr[1]] = X.indices[: X.indptr[1]][::-1].copy()  # a row with unsorted indices
    Xd = np.ascontiguousarray(X.toarray())
    y = targets(loss, K, n, dtype, rng)
    W = (0.3 * rng.standard_normal((K, d))).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    sw = rng.random(n).astype(dtype)
    sw[2] = 0.0
    inv_scale = (0.5 + rng.random(d)).astype(dtype)
    scaling = np.zeros((3, d), dtype)
    scaling[2] = inv_scale
    rows = rng.permutation(n).astype(np.int64)
    for kw in (dict(rows=rows, start=3, stop=31), dict(start=5, stop=40), dict()):
        g1, gb1 = np.zeros((K, d), dtype), np.zeros(K, dtype)
        g2, gb2 = np.full((K, d), np.nan, dtype), np.full(K, np.nan, dtype)
        v1 = _core.linear_objective(loss, Xd, y, W, b, g1, gb1, sample_weight=sw, l2=0.01, l1=0.002, delta=0.7,
                                    row_scaling=scaling, **kw)
        v2 = _core.sparse_linear_objective(loss, X, y, W, b, g2, gb2, sample_weight=sw, l2=0.01, l1=0.002,
                                           delta=0.7, inv_scale=inv_scale, **kw)
        np.testing.assert_allclose(v2, v1, **tol(dtype))
        np.testing.assert_allclose(g2, g1, **tol(dtype))
        np.testing.assert_allclose(gb2, gb1, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_objective_matches_numpy_formula(dtype):
    """Log loss and softmax cross-entropy written out in NumPy (float64)."""
    rng = np.random.default_rng(1)
    n, d = 50, 33
    X = random_csr(n, d, 0.2, dtype, np.int32)
    Xd = X.toarray().astype(np.float64)
    sw = rng.random(n)
    l2 = 0.05
    # binary
    y = (rng.random(n) > 0.5).astype(dtype)
    w, b = rng.standard_normal((1, d)).astype(dtype), rng.standard_normal(1).astype(dtype)
    g, gb = np.zeros_like(w), np.zeros_like(b)
    value = _core.sparse_linear_objective("log_loss", X, y, w, b, g, gb, sample_weight=sw.astype(dtype), l2=l2)
    z = Xd @ w[0].astype(np.float64) + float(b[0])
    swd = sw.astype(dtype).astype(np.float64)
    loss = np.logaddexp(0, z) - y * z
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(value, swd @ loss / swd.sum() + 0.5 * l2 * np.sum(w.astype(np.float64) ** 2),
                               **tol(dtype))
    np.testing.assert_allclose(g[0], Xd.T @ (swd * (p - y)) / n + l2 * w[0], **tol(dtype))
    np.testing.assert_allclose(gb[0], np.sum(swd * (p - y)) / n, **tol(dtype))
    # multinomial
    K = 4
    lab = rng.integers(0, K, n).astype(np.int64)
    W, bb = rng.standard_normal((K, d)).astype(dtype), rng.standard_normal(K).astype(dtype)
    gW, gbb = np.zeros_like(W), np.zeros_like(bb)
    value = _core.sparse_linear_objective("softmax_cross_entropy", X, lab, W, bb, gW, gbb)
    Z = Xd @ W.T.astype(np.float64) + bb
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    np.testing.assert_allclose(value, np.mean(-np.log(P[np.arange(n), lab])), **tol(dtype))
    P[np.arange(n), lab] -= 1
    np.testing.assert_allclose(gW, P.T @ Xd / n, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_active_mode_writes_only_the_batch_features(dtype):
    rng = np.random.default_rng(2)
    n, d = 30, 500
    X = random_csr(n, d, 0.01, dtype, np.int64)
    y = (rng.random(n) > 0.5).astype(dtype)
    W, b = rng.standard_normal((1, d)).astype(dtype), np.zeros(1, dtype)
    g1, gb1 = np.zeros((1, d), dtype), np.zeros(1, dtype)
    g2, gb2 = np.full((1, d), 7.0, dtype), np.zeros(1, dtype)  # active_only zeroes the rest
    v1 = _core.sparse_linear_objective("log_loss", X, y, W, b, g1, gb1, start=4, stop=20, l2=0.1)
    v2 = _core.sparse_linear_objective("log_loss", X, y, W, b, g2, gb2, start=4, stop=20, l2=0.1, active_only=True)
    active = np.unique(X[4:20].indices)
    np.testing.assert_array_equal(g2[0, active], g1[0, active])
    assert not np.any(np.delete(g2[0], active))
    np.testing.assert_allclose(v1 - v2, 0.05 * np.sum(W.astype(np.float64) ** 2), **tol(dtype))


def test_same_bits_for_any_thread_count(threaded):
    rng = np.random.default_rng(3)
    n, d, K = 3000, 4000, 3
    X = random_csr(n, d, 0.01, np.float32, np.int32)
    y = rng.integers(0, K, n).astype(np.int64)
    W, b = rng.standard_normal((K, d)).astype(np.float32), np.zeros(K, np.float32)
    results = []
    for threads in (1, 2, 3):
        with fastgd.num_threads(threads):
            g, gb = np.zeros_like(W), np.zeros_like(b)
            v = _core.sparse_linear_objective("softmax_cross_entropy", X, y, W, b, g, gb, l2=1e-3)
            results.append((v, g, gb))
    for v, g, gb in results[1:]:
        assert v == results[0][0]
        np.testing.assert_array_equal(g, results[0][1])
        np.testing.assert_array_equal(gb, results[0][2])


def test_malformed_matrix_is_an_error_not_a_stray_read():
    X = random_csr(10, 20, 0.3, np.float64, np.int32)
    y = np.zeros(10)
    W, b, g, gb = np.zeros((1, 20)), np.zeros(1), np.zeros((1, 20)), np.zeros(1)
    bad = X.copy()
    bad.indices[3] = 20
    with pytest.raises(ValueError, match="column index 20 .* out of range for 20 features"):
        _core.sparse_linear_objective("log_loss", bad, y, W, b, g, gb)
    bad = X.copy()
    bad.indptr[4] = bad.indptr[5] + 1
    with pytest.raises(ValueError, match="indptr is malformed"):
        _core.sparse_linear_objective("log_loss", bad, y, W, b, g, gb)
    with pytest.raises(TypeError, match="CSR"):
        _core.sparse_linear_objective("log_loss", X.tocsc(), y, W, b, g, gb)
    mixed = X.copy()
    mixed.indices = mixed.indices.astype(np.int64)
    with pytest.raises(TypeError, match="both int32 or both int64"):
        _core.sparse_linear_objective("log_loss", mixed, y, W, b, g, gb)
    with pytest.raises(TypeError, match="dtype"):
        _core.sparse_linear_objective("log_loss", X, y, W.astype(np.float32), b, g, gb)


# -- the lazy step ---------------------------------------------------------------------------


def _grad_log_loss(Xd, y, theta, rows, d, l2, active):
    """A batch's log-loss gradient, written out: the data term on the features ``active``
    (all of them: None) plus l2 w there, and the intercept's."""
    w, b = theta[:d].astype(np.float64), float(theta[d])
    z = Xd[rows] @ w + b
    c = (1 / (1 + np.exp(-z)) - y[rows]) / len(rows)
    g = np.zeros(d + 1)
    cols = np.arange(d) if active is None else active
    g[cols] = Xd[rows][:, cols].T @ c + l2 * w[cols]
    g[d] = c.sum()
    return g


def _lazy_reference_step(ref, coords, g):
    """A lazy step written out: the reference rule of ``ref`` (one parameter) on the
    coordinates ``coords`` alone, from their gradient ``g``: the parameter's and states'
    entries there gathered, stepped as one vector, and written back."""
    param, states = ref.params[0], ref.state[0]
    p = param[coords]
    sub = {name: a[coords] for name, a in states.items()}
    ref.step_count += 1
    fn = R.RULES[ref.rule]
    if ref.scalars:
        (name, value), = ref.scalars.items()
        ref.scalars[name] = fn(p, g, sub, ref.step_count, **{name: value}, **ref.options)
    else:
        fn(p, g, sub, ref.step_count, **ref.options)
    param[coords] = p
    for name, a in sub.items():
        states[name][coords] = a


@pytest.mark.parametrize("rule,options", R.rule_cases())
def test_lazy_steps_follow_their_math(rule, options):
    """sparse_linear_batches(lazy=True) against its math written out: at each step every
    weight decays, w <- (1 - lr l2) w, then the reference rule steps the batch's features and
    the intercept alone (gathered parameter, data gradient and states), every rule with every
    state it can keep. The first step is a whole one with the L2 term in the gradient (it
    creates the states), as in fit."""
    rng = np.random.default_rng(4)
    n, d, bs = 64, 40, 8
    X = random_csr(n, d, 0.08, np.float64, np.int32)
    Xd = X.toarray()
    y = (rng.random(n) > 0.5).astype(np.float64)
    l2, lr = 0.3, 0.05
    opts = {**options, "lr": lr}
    theta = 0.1 * rng.standard_normal(d + 1)
    grad = np.zeros(d + 1)
    opt = getattr(fastgd.optim, rule)([theta], **opts)
    ref_theta = theta.copy()
    ref = R.ReferenceOptimizer(rule, [ref_theta], **opts)
    # step 1: whole
    _core.sparse_linear_objective("log_loss", X, y, theta[:d].reshape(1, d), theta[d:], grad[:d].reshape(1, d),
                                  grad[d:], start=0, stop=bs, l2=l2)
    g0 = _grad_log_loss(Xd, y, ref_theta, np.arange(bs), d, l2, None)
    np.testing.assert_allclose(grad, g0, rtol=1e-12, atol=1e-15)
    opt.step([grad])
    ref.step([g0])
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-12, atol=1e-15)
    # then lazy steps, batch by batch
    batches = np.arange(1, n // bs, dtype=np.int64)
    sums = _core.sparse_linear_batches("log_loss", X, y, theta, grad, 1, None, None, batches, 0, bs, None, l2, 0.0,
                                       1.0, opt.step_plan, [grad], (0.0, 0.0, 0.0), None, None, lazy=True)
    assert sums[0] == len(batches)
    values = []
    for kb in batches:
        rows = np.arange(kb * bs, (kb + 1) * bs)
        active = np.unique(X[rows].indices)
        coords = np.concatenate([active, [d]])
        g = _grad_log_loss(Xd, y, ref_theta, rows, d, 0.0, active)
        w = ref_theta[:d]
        values.append(np.mean(np.logaddexp(0, Xd[rows] @ w + ref_theta[d]) - y[rows] * (Xd[rows] @ w + ref_theta[d]))
                      + 0.5 * l2 * w @ w)
        ref_theta[:d] *= 1 - lr * l2
        _lazy_reference_step(ref, coords, g[coords])
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-10, atol=1e-13)
    # the epoch's loss: each batch's loss and penalty before its step
    np.testing.assert_allclose(sums[1][0], bs * np.sum(values), rtol=1e-10)


@pytest.mark.parametrize("rule", ["SGD", "Adam"])
def test_lazy_l1_is_the_cumulative_penalty(rule):
    """With an L1 term, each lazy step then pulls the batch's weights towards zero by the
    penalty all weights have been due less what each has had (Tsuruoka et al. 2009), stopping
    at zero; the state it keeps is l1_state (per weight, then the sum due)."""
    rng = np.random.default_rng(6)
    n, d, bs = 80, 30, 8
    X = random_csr(n, d, 0.1, np.float64, np.int32)
    Xd = X.toarray()
    y = (rng.random(n) > 0.5).astype(np.float64)
    l1, lr = 0.02, 0.1
    theta = 0.2 * rng.standard_normal(d + 1)
    grad = np.zeros(d + 1)
    opt = getattr(fastgd.optim, rule)([theta], lr=lr)
    opt.step([np.full(d + 1, 1e-3)])  # (the plan and states)
    ref_theta = theta.copy()
    ref = R.ReferenceOptimizer(rule, [ref_theta], lr=lr)
    ref.state[0] = {k: np.asarray(v).copy() for k, v in opt.state[0].items() if isinstance(v, np.ndarray)}
    ref.step_count = 1
    state = np.zeros(d + 1)
    batches = np.arange(n // bs, dtype=np.int64)
    _core.sparse_linear_batches("log_loss", X, y, theta, grad, 1, None, None, batches, 0, bs, None, 0.0, l1, 1.0,
                                opt.step_plan, [grad], (0.0, 0.0, 0.0), None, None, lazy=True, l1_state=state)
    q, u = np.zeros(d), 0.0
    for kb in batches:
        rows = np.arange(kb * bs, (kb + 1) * bs)
        active = np.unique(X[rows].indices)
        coords = np.concatenate([active, [d]])
        g = _grad_log_loss(Xd, y, ref_theta, rows, d, 0.0, active)
        _lazy_reference_step(ref, coords, g[coords])
        u += lr * l1
        for j in active:
            wj = ref_theta[j]
            new = max(0.0, wj - (u + q[j])) if wj > 0 else min(0.0, wj + (u - q[j])) if wj < 0 else wj
            q[j] += new - wj
            ref_theta[j] = new
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(state, np.concatenate([q, [u]]), rtol=1e-10, atol=1e-13)
    assert np.sum(theta[:d] == 0) > 0  # exact zeros


def test_lazy_l1_fit_has_exact_zeros():
    X, y = classification(n=1000, d=200)
    m = fastgd.LogisticRegression(penalty="l1", alpha=3e-3, max_epochs=5, tol=None, random_state=0).fit(X, y)
    assert 0 < np.mean(m.coef_ == 0) < 1 and m.score(X, y) > 0.7


def test_lazy_plain_sgd_is_exact():
    """Plain SGD with L2: the lazy steps (decay of every weight, the data gradient on the
    batch's features) are the whole steps, to rounding."""
    X, y = classification()
    kw = dict(max_epochs=3, tol=None, random_state=0, optimizer="sgd", lr=0.05, alpha=0.01, standardize=False)
    a = fastgd.LogisticRegression(sparse_update="lazy", **kw).fit(X, y)
    b = fastgd.LogisticRegression(sparse_update="exact", **kw).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-9, atol=1e-12)


# -- the estimators ----------------------------------------------------------------------------


def classification(n=400, d=120, dtype=np.float64, index_dtype=np.int32, seed=0, K=2):
    rng = np.random.default_rng(seed)
    X = random_csr(n, d, 0.05, dtype, index_dtype, seed=seed)
    W = rng.standard_normal((d, K))
    y = np.argmax(X @ W + 0.3 * rng.standard_normal((n, K)), axis=1)
    return X, y


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_mode_trains_as_on_dense_X(optimizer, dtype):
    """sparse_update="exact": the parameters of a fit on X.toarray(), to rounding (the
    summation orders differ), for every rule; unstandardized, as the dense fit centres."""
    X, y = classification(dtype=dtype)
    kw = dict(max_epochs=3, tol=None, random_state=0, standardize=False, optimizer=optimizer, lr=0.01)
    a = fastgd.LogisticRegression(sparse_update="exact", **kw).fit(X, y)
    b = fastgd.LogisticRegression(**kw).fit(X.toarray(), y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-3 if dtype == np.float32 else 1e-9, atol=1e-6)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-3 if dtype == np.float32 else 1e-9, atol=1e-6)


@pytest.mark.parametrize("est,kw", [
    (fastgd.LinearRegression, dict(loss="squared_error")),
    (fastgd.LinearRegression, dict(loss="huber")),
    (fastgd.LogisticRegression, dict(loss="hinge")),
    (fastgd.LogisticRegression, dict()),
])
@pytest.mark.parametrize("shuffle", [True, "batches", False])
def test_exact_mode_losses_weights_and_shuffles(est, kw, shuffle):
    rng = np.random.default_rng(5)
    X, y = classification(K=3 if est is fastgd.LogisticRegression and not kw else 2)
    if est is fastgd.LinearRegression:
        y = X @ rng.standard_normal(X.shape[1]) + 0.1 * rng.standard_normal(X.shape[0])
    sw = rng.random(X.shape[0])
    common = dict(max_epochs=2, tol=None, random_state=1, standardize=False, shuffle=shuffle, alpha=1e-3, **kw)
    a = est(sparse_update="exact", **common).fit(X, y, sample_weight=sw)
    b = est(**common).fit(X.toarray(), y, sample_weight=sw)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.predict(X), b.predict(X.toarray()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_standardization_scales_without_centring(dtype):
    """standardize=True on sparse X is a scale only: the fit equals an unstandardized fit on
    the columns divided by their standard deviations (as StandardScaler(with_mean=False))."""
    X, y = classification(dtype=dtype)
    Xd = X.toarray().astype(np.float64)
    scale = Xd.std(axis=0)
    scale[scale == 0] = 1
    kw = dict(max_epochs=3, tol=None, random_state=0, sparse_update="exact")
    a = fastgd.LogisticRegression(standardize=True, **kw).fit(X, y)
    b = fastgd.LogisticRegression(standardize=False, **kw).fit(sp.csr_matrix((Xd / scale).astype(dtype)), y)
    np.testing.assert_allclose(a.coef_ * scale, b.coef_, rtol=1e-3 if dtype == np.float32 else 1e-8, atol=1e-6)


@pytest.mark.parametrize("sparse", [True, False])
def test_standardize_auto_scales_dense_X_only(sparse):
    """standardize="auto" (the default) is False for sparse X and True for dense X: the
    same coefficients as the explicit value, bit for bit."""
    X, y = classification()
    X = X if sparse else X.toarray()
    kw = dict(max_epochs=2, tol=None, random_state=0)
    auto = fastgd.LogisticRegression(**kw).fit(X, y)
    explicit = fastgd.LogisticRegression(standardize=not sparse, **kw).fit(X, y)
    other = fastgd.LogisticRegression(standardize=sparse, **kw).fit(X, y)
    assert auto.get_params()["standardize"] == "auto"
    np.testing.assert_array_equal(auto.coef_, explicit.coef_)
    assert not np.array_equal(auto.coef_, other.coef_)


def test_standardize_rejects_other_values():
    X, y = classification()
    with pytest.raises(ValueError, match="standardize"):
        fastgd.LogisticRegression(standardize="yes").fit(X, y)


def test_lazy_default_learns_and_predicts_like_dense():
    X, y = classification(n=2000, d=300)
    Xtr, Xte, ytr, yte = X[:1500], X[1500:], y[:1500], y[1500:]
    lazy = fastgd.LogisticRegression(max_epochs=10, tol=None, random_state=0).fit(Xtr, ytr)
    dense = fastgd.LogisticRegression(max_epochs=10, tol=None, random_state=0).fit(Xtr.toarray(), ytr)
    assert lazy.score(Xte, yte) >= dense.score(Xte.toarray(), yte) - 0.03
    # predictions on sparse X equal those on its dense form, for the same model
    for method in ("predict", "predict_proba", "decision_function"):
        np.testing.assert_allclose(getattr(lazy, method)(Xte), getattr(lazy, method)(Xte.toarray()), rtol=1e-10,
                                   atol=1e-12)
    assert lazy.score(Xte, yte) == lazy.score(Xte.toarray(), yte)


def test_fit_options_on_sparse_X(tmp_path):
    """early stopping (validation rows read in place), partial_fit, warm start, class
    weights, csr_array, int64 indices, float32, save and load."""
    X, y = classification(n=600, d=80, dtype=np.float32, index_dtype=np.int64)
    m = fastgd.LogisticRegression(early_stopping=True, max_epochs=20, random_state=0).fit(X, y)
    assert m.coef_.dtype == np.float32 and m.score(X, y) > 0.7
    p = fastgd.LogisticRegression(random_state=0)
    for start in range(0, 600, 200):
        p.partial_fit(X[start:start + 200], y[start:start + 200], classes=[0, 1])
    assert p.score(X, y) > 0.7
    w = fastgd.LogisticRegression(max_epochs=2, tol=None, warm_start=True, class_weight="balanced",
                                  random_state=0).fit(sp.csr_array(X), y)
    w.fit(X, y)
    path = tmp_path / "m.npz"
    m.save(path)
    np.testing.assert_array_equal(fastgd.load(path).predict(X), m.predict(X))


def test_conversions_and_errors():
    X, y = classification(n=100, d=30)
    with pytest.warns(Warning):
        fastgd.LogisticRegression(max_epochs=1, tol=None).fit(X.tocsc(), y)
    m = fastgd.LogisticRegression(max_epochs=1, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        m.predict(sp.random(5, 31, density=0.3, format="csr"))
    with pytest.raises(ValueError):
        fastgd.LogisticRegression().fit(sp.csr_matrix((0, 30)), np.zeros(0))
    with pytest.raises(TypeError, match="sparse"):
        fastgd.MLPClassifier().fit(X, y)
    with pytest.raises(TypeError, match="sparse"):
        fastgd.LogisticRegression(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="sparse_update"):
        fastgd.LogisticRegression(sparse_update="sometimes").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastgd.LogisticRegression(max_epochs=1, tol=None).fit(X, y)  # a valid CSR: no copy, no warning


# -- streams of sparse chunks ------------------------------------------------------------------


def _chunks(X, y, size):
    return [(X[i:i + size], y[i:i + size]) for i in range(0, X.shape[0], size)]


def test_stream_of_sparse_chunks_trains_as_the_matrix():
    """A list of CSR chunks that the buffer holds whole: the matrix's fit, to the rounding of
    the moments merged chunk by chunk."""
    X, y = classification(n=1200, d=150)
    a = fastgd.LogisticRegression(max_epochs=4, tol=None, random_state=0).fit(_chunks(X, y, 300), None)
    b = fastgd.LogisticRegression(max_epochs=4, tol=None, random_state=0).fit(X, y)
    np.testing.assert_allclose(a._scaling.scale, b._scaling.scale, rtol=1e-12)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shuffle", [True, "batches", False])
def test_stream_of_sparse_chunks_through_a_small_buffer(shuffle):
    X, y = classification(n=2000, d=100)
    stream = fastgd.ChunkStream(lambda: iter(_chunks(sp.coo_matrix(X).tocsr(), y, 128)), buffer_size=400)
    m = fastgd.LogisticRegression(max_epochs=5, tol=None, random_state=0, shuffle=shuffle).fit(stream, None)
    assert m.score(X, y) > 0.8
    # early stopping holds out rows of the stream, read as CSR
    e = fastgd.LogisticRegression(max_epochs=20, early_stopping=True, random_state=0).fit(_chunks(X, y, 128), None)
    assert e.score(X, y) > 0.8


def test_partial_fit_on_a_one_shot_iterator_of_sparse_chunks():
    X, y = classification(n=900, d=60)
    m = fastgd.LogisticRegression(random_state=0, lr=0.05)  # two epochs of 900 rows: a larger step
    m.partial_fit(X[:100], y[:100], classes=[0, 1])
    m.partial_fit(iter(_chunks(X[100:], y[100:], 200)), None)
    assert m.n_iter_ == 2 and m.score(X, y) > 0.7


def test_stream_mixing_sparse_and_dense_chunks_is_an_error():
    X, y = classification(n=200, d=20)
    chunks = [(X[:100], y[:100]), (X[100:].toarray(), y[100:])]
    with pytest.raises(ValueError, match="chunk 1: X is dense, but the first chunk's is sparse"):
        fastgd.LogisticRegression(max_epochs=1).fit(chunks, None)
