"""The fused linear-model objective (``_core.linear_objective``) against a plain NumPy
reference: every loss, with and without sample weights, both dtypes, feature counts around
the SIMD widths, batches by index and by range, every SIMD level, multi-output regression
(K outputs, each one's gradient that of a single-output batch, bit for bit); threads give
the same bits; bad input is refused before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from linear_losses import linear_losses

import fastgd
from fastgd import _core

SCALAR = ["squared_error", "huber", "log_loss", "hinge"]
MULTICLASS = ["softmax_cross_entropy", "hinge_ovr"]
DIMS = [1, 7, 8, 9, 17, 33, 100]
BATCHES = [0, 1, 5, 1024]
N_TOTAL = 1500


def reference(loss, X, y, W, b, rows, sw, l2=0.0, l1=0.0, delta=1.0):
    """(value, grad_W, grad_b) in float64, straight from the formulas. A 2-D ``y`` (n, K):
    K regression outputs, a row's loss the sum of theirs; ``l1`` and ``delta`` may then be
    one per output."""
    Xb = X[rows].astype(np.float64)
    W64, b64 = W.astype(np.float64), b.astype(np.float64)
    n, K = len(rows), W.shape[0]
    z = Xb @ W64.T + b64
    s = np.ones(n) if sw is None else sw[rows].astype(np.float64)
    if loss in MULTICLASS:
        lab = y[rows]
        onehot = np.arange(K) == lab[:, None]
        if loss == "softmax_cross_entropy":
            m = z.max(axis=1, keepdims=True)
            e = np.exp(z - m)
            lse = m[:, 0] + np.log(e.sum(axis=1))
            per_row, g = lse - z[onehot], e / e.sum(axis=1, keepdims=True) - onehot
        else:
            sign = np.where(onehot, 1.0, -1.0)
            margin = 1 - sign * z
            per_row, g = np.maximum(margin, 0).sum(axis=1), np.where(margin > 0, -sign, 0.0)
    elif y.ndim == 2:  # multi-output regression: the outputs' losses summed per row
        t = y[rows].astype(np.float64)
        r = z - t
        delta = np.asarray(delta, np.float64)
        if loss == "squared_error":
            per_row, g = (0.5 * r * r).sum(axis=1), r
        else:
            per_row = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum(axis=1)
            g = np.clip(r, -delta, delta)
    else:
        t = y[rows].astype(np.float64)
        zz = z[:, 0]
        if loss == "squared_error":
            per_row, g = 0.5 * (zz - t) ** 2, zz - t
        elif loss == "huber":
            r = zz - t
            per_row = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
            g = np.clip(r, -delta, delta)
        elif loss == "log_loss":
            per_row, g = np.logaddexp(0, zz) - t * zz, 1 / (1 + np.exp(-zz)) - t
        else:
            sign = np.where(t > 0, 1.0, -1.0)
            margin = 1 - sign * zz
            per_row, g = np.maximum(margin, 0), np.where(margin > 0, -sign, 0.0)
        g = g[:, None]
    total = s.sum()
    value = float(s @ per_row / total) if n and total > 0 else 0.0
    sg = s[:, None] * g / max(n, 1)
    gW = sg.T @ Xb + l2 * W64
    gb = sg.sum(axis=0)
    value += 0.5 * l2 * float((W64 ** 2).sum()) + float(np.sum(np.asarray(l1) * np.abs(W64).sum(axis=1)))
    return value, gW, gb


def problem(loss, d, dtype, seed=0, weighted=False, n_total=N_TOTAL, outputs=None):
    """X, y, W, b, sw; ``outputs``: a regression loss's K, with y of (n_total, K)."""
    rng = np.random.default_rng(seed)
    K = 3 if loss in MULTICLASS else outputs or 1
    X = rng.standard_normal((n_total, d)).astype(dtype)
    W = (rng.standard_normal((K, d)) / np.sqrt(d)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    if loss in MULTICLASS:
        y = rng.integers(0, K, n_total).astype(np.int64)
    elif loss in ("log_loss", "hinge"):
        y = rng.integers(0, 2, n_total).astype(dtype)
    else:
        y = (3 * rng.standard_normal((n_total, K) if outputs else n_total)).astype(dtype)
    sw = rng.uniform(0, 2, n_total).astype(dtype) if weighted else None
    if weighted:
        sw[::7] = 0.0
    return X, y, W, b, sw


def call(loss, X, y, W, b, sw=None, **kw):
    gW, gb = np.full_like(W, np.nan), np.full_like(b, np.nan)
    value = _core.linear_objective(loss, X, y, W, b, gW, gb, sample_weight=sw, **kw)
    return value, gW, gb


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def check(got, want, dtype):
    value, gW, gb = got
    np.testing.assert_allclose(value, want[0], **tol(dtype))
    np.testing.assert_allclose(gW, want[1], **tol(dtype))
    np.testing.assert_allclose(gb, want[2], **tol(dtype))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", SCALAR + MULTICLASS)
def test_matches_reference(simd_level, loss, dtype, weighted, d, batch):
    X, y, W, b, sw = problem(loss, d, dtype, seed=d + batch, weighted=weighted)
    rows = np.random.default_rng(batch).integers(0, N_TOTAL, batch)  # repeats allowed
    check(call(loss, X, y, W, b, sw, rows=rows, delta=0.7), reference(loss, X, y, W, b, rows, sw, delta=0.7), dtype)
    # The same batch as a range of rows, and as a range of the index array.
    check(call(loss, X, y, W, b, sw, start=3, stop=3 + batch),
          reference(loss, X, y, W, b, np.arange(3, 3 + batch), sw), dtype)
    perm = np.random.default_rng(1).permutation(N_TOTAL)
    check(call(loss, X, y, W, b, sw, rows=perm, start=10, stop=10 + batch),
          reference(loss, X, y, W, b, perm[10:10 + batch], sw), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", SCALAR + MULTICLASS)
def test_penalties(loss, dtype):
    X, y, W, b, sw = problem(loss, 17, dtype, weighted=True)
    rows = np.arange(0, N_TOTAL, 3)
    check(call(loss, X, y, W, b, sw, rows=rows, l2=0.3, l1=0.05),
          reference(loss, X, y, W, b, rows, sw, l2=0.3, l1=0.05), dtype)


def test_whole_set_by_default():
    X, y, W, b, _ = problem("log_loss", 9, np.float64)
    check(call("log_loss", X, y, W, b), reference("log_loss", X, y, W, b, np.arange(N_TOTAL), None), np.float64)


def test_zero_weights_and_extreme_logits():
    X, y, W, b, _ = problem("log_loss", 8, np.float64)
    value, gW, gb = call("log_loss", X, y, W, b, np.zeros(N_TOTAL), l2=0.5)
    assert value == pytest.approx(0.25 * float((W ** 2).sum()))  # the penalty only
    np.testing.assert_allclose(gW, 0.5 * W)
    np.testing.assert_array_equal(gb, 0.0)
    for loss in ("log_loss", "softmax_cross_entropy"):
        X, y, W, b, _ = problem(loss, 8, np.float32)
        value, gW, gb = call(loss, X * np.float32(1e4), y, W, b)  # logits of 1e4: no overflow
        assert np.isfinite(value) and np.all(np.isfinite(gW)) and np.all(np.isfinite(gb))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["log_loss", "softmax_cross_entropy"])
def test_threads_same_bits(threaded, loss, dtype):
    X, y, W, b, sw = problem(loss, 100, dtype, weighted=True, n_total=5000)
    rows = np.random.default_rng(0).permutation(5000)
    with fastgd.num_threads(1):
        one = call(loss, X, y, W, b, sw, rows=rows, start=7, stop=3000, l2=0.1)
    many = call(loss, X, y, W, b, sw, rows=rows, start=7, stop=3000, l2=0.1)
    assert one[0] == many[0]
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one[2], many[2])
    check(many, reference(loss, X, y, W, b, rows[7:3000], sw, l2=0.1), dtype)


# -- multi-output regression ---------------------------------------------------------------

REGRESSION = ["squared_error", "huber"]
OUTPUT_BATCHES = [0, 1, 9, 33, 300]  # around the kernel's passes of 32 rows and blocks of 256


def _scaling(X):
    """A row_scaling for X (centre, centre_lo, inv_scale), the mean far from zero, so that
    the kernel centres each element."""
    mean, sd = X.astype(np.float64).mean(axis=0), X.astype(np.float64).std(axis=0) + 0.5
    rs = np.empty((3, X.shape[1]), X.dtype)
    rs[0] = mean
    rs[1] = mean - rs[0].astype(np.float64)
    rs[2] = 1.0 / sd
    return rs


@pytest.mark.parametrize("batch", OUTPUT_BATCHES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("K", [1, 2, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", REGRESSION)
def test_multi_output_matches_reference(simd_level, loss, dtype, K, d, batch):
    X, y, W, b, sw = problem(loss, d, dtype, seed=d + batch + K, weighted=True, outputs=K)
    rows = np.random.default_rng(batch).integers(0, N_TOTAL, batch)
    delta = np.linspace(0.5, 2.0, K)  # one threshold per output
    l1 = np.linspace(0.01, 0.05, K)
    check(call(loss, X, y, W, b, sw, rows=rows, delta=delta, l1=l1, l2=0.2),
          reference(loss, X, y, W, b, rows, sw, delta=delta, l1=l1, l2=0.2), dtype)
    check(call(loss, X, y, W, b, None, start=3, stop=3 + batch, delta=0.7),
          reference(loss, X, y, W, b, np.arange(3, 3 + batch), None, delta=0.7), dtype)


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("d", [1, 8, 17, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", REGRESSION)
def test_multi_output_is_single_outputs_bit_for_bit(simd_level, loss, dtype, d, scaled):
    """The outputs share each read of a row and nothing else: output k's gradient is the
    single-output kernel's on column k of y (the path the scalar losses always took), to the
    bit; the value is the sum of the single-output values (the losses summed per row)."""
    K = 4
    X, y, W, b, sw = problem(loss, d, dtype, seed=d, weighted=True, outputs=K)
    X += 40  # with row_scaling: elements centred in the products
    rs = _scaling(X) if scaled else None
    rows = np.random.default_rng(d).permutation(N_TOTAL)[:1000]
    delta = np.array([0.3, 0.7, 1.0, 4.0])
    l1 = np.array([0.0, 0.01, 0.02, 0.03])
    multi = call(loss, X, y, W, b, sw, rows=rows, delta=delta, l1=l1, l2=0.1, row_scaling=rs)
    total = 0.0
    for k in range(K):
        one = call(loss, X, np.ascontiguousarray(y[:, k]), W[k:k + 1], b[k:k + 1], sw, rows=rows, delta=delta[k],
                   l1=l1[k], l2=0.1, row_scaling=rs)
        np.testing.assert_array_equal(multi[1][k], one[1][0])
        np.testing.assert_array_equal(multi[2][k], one[2][0])
        total += one[0]
    np.testing.assert_allclose(multi[0], total, **tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_output_as_a_column(dtype):
    """K = 1 with y of shape (n, 1) is the 1-D target's call, the same bits."""
    X, y, W, b, sw = problem("huber", 9, dtype, weighted=True)
    flat = call("huber", X, y, W, b, sw, rows=np.arange(5, 700), delta=0.6, l1=0.01)
    col = call("huber", X, y[:, None].copy(), W, b, sw, rows=np.arange(5, 700), delta=np.array([0.6]),
               l1=np.array([0.01]))
    assert flat[0] == col[0]
    np.testing.assert_array_equal(flat[1], col[1])
    np.testing.assert_array_equal(flat[2], col[2])


def test_multi_output_threads_same_bits(threaded):
    X, y, W, b, sw = problem("squared_error", 100, np.float32, weighted=True, n_total=5000, outputs=3)
    rows = np.random.default_rng(0).permutation(5000)
    with fastgd.num_threads(1):
        one = call("squared_error", X, y, W, b, sw, rows=rows, start=7, stop=3000, l2=0.1)
    many = call("squared_error", X, y, W, b, sw, rows=rows, start=7, stop=3000, l2=0.1)
    assert one[0] == many[0]
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one[2], many[2])


def test_multi_output_bad_input():
    X, y, W, b, _ = problem("squared_error", 9, np.float64, outputs=3)

    def bad(error, match, **change):
        args = dict(loss="squared_error", X=X, y=y, W=W, b=b, grad_W=np.full_like(W, 5.0),
                    grad_b=np.full_like(b, 5.0))
        args.update(change)
        with pytest.raises(error, match=match):
            _core.linear_objective(**args)
        assert np.all(args["grad_W"] == 5) and np.all(args["grad_b"] == 5)

    bad(ValueError, r"y: shape \(1500,\), expected \(1500, 3\)", y=np.ascontiguousarray(y[:, 0]))
    bad(ValueError, r"y: shape \(1500, 2\), expected \(1500, 3\)", y=np.ascontiguousarray(y[:, :2]))
    bad(ValueError, "y: array is not C-contiguous", y=np.asfortranarray(y))
    bad(ValueError, r"delta: expected a number or a C-contiguous float64 array of shape \(3,\)", delta=np.ones(2))
    bad(ValueError, r"l1: expected a number or a C-contiguous float64 array of shape \(3,\)",
        l1=np.ones(3, np.float32))
    bad(ValueError, "loss 'log_loss' needs K = 1 row, got 3", loss="log_loss")


# -- bad input ---------------------------------------------------------------------------


def _args():
    X, y, W, b, sw = problem("log_loss", 9, np.float32)
    return dict(loss="log_loss", X=X, y=y, W=W, b=b, grad_W=np.zeros_like(W), grad_b=np.zeros_like(b))


def _bad(change, error, match):
    args = _args()
    args["grad_W"][...] = 5
    args["grad_b"][...] = 5
    extra = change(args) or {}
    gW, gb = args["grad_W"], args["grad_b"]
    with pytest.raises(error, match=match):
        _core.linear_objective(**args, **extra)
    assert np.all(gW == 5) and np.all(gb == 5)  # nothing written


def test_bad_dtypes():
    _bad(lambda a: a.update(X=a["X"].astype(np.int32)), TypeError, "X: dtype int32")
    _bad(lambda a: a.update(X=a["X"].astype(np.float64)), TypeError, "W: dtype float32 does not match X dtype")
    _bad(lambda a: a.update(y=a["y"].astype(np.float64)), TypeError, "y: dtype float64 does not match X")
    _bad(lambda a: a.update(b=a["b"].astype(np.float64)), TypeError, "b: dtype")
    _bad(lambda a: {"rows": np.arange(5, dtype=np.int32)}, TypeError, "rows: dtype int32")
    _bad(lambda a: {"sample_weight": np.ones(N_TOTAL)}, TypeError, "sample_weight: dtype float64")
    X, y, W, b, _ = problem("softmax_cross_entropy", 9, np.float32)
    with pytest.raises(TypeError, match="y: dtype float32 is not supported; pass int64"):
        _core.linear_objective("softmax_cross_entropy", X, y.astype(np.float32), W, b, np.zeros_like(W),
                               np.zeros_like(b))


def test_bad_layout_and_shapes():
    _bad(lambda a: a.update(X=np.asfortranarray(a["X"])), ValueError, "X: array is not C-contiguous")
    _bad(lambda a: {"rows": np.arange(10)[::2]}, ValueError, "rows: array is not C-contiguous")
    _bad(lambda a: a.update(W=np.zeros((1, 8), np.float32)), ValueError, r"W: shape \(1, 8\), expected \(1, 9\)")
    _bad(lambda a: a.update(b=np.zeros(2, np.float32)), ValueError, r"b: shape \(2,\)")
    _bad(lambda a: a.update(grad_W=np.full((1, 10), 5, np.float32)), ValueError, "grad_W: shape")
    _bad(lambda a: a.update(y=a["y"][:-1]), ValueError, r"y: shape \(1499,\), expected \(1500,\)")
    _bad(lambda a: {"sample_weight": np.ones(3, np.float32)}, ValueError, "sample_weight: shape")
    _bad(lambda a: a.update(W=np.zeros((2, 9), np.float32), b=np.zeros(2, np.float32),
                            grad_W=np.full((2, 9), 5, np.float32), grad_b=np.full(2, 5, np.float32)),
         ValueError, "needs K = 1 row")
    _bad(lambda a: a.update(loss="cubic"), ValueError, "loss must be")

    def readonly(a):
        a["grad_b"].flags.writeable = False
    _bad(readonly, ValueError, "grad_b: array is read-only")


def test_bad_rows_and_labels():
    _bad(lambda a: {"rows": np.array([0, 5, N_TOTAL])}, ValueError, "rows: index 1500 at position 2 is out of range")
    _bad(lambda a: {"rows": np.array([-1])}, ValueError, "rows: index -1")
    _bad(lambda a: {"start": 5, "stop": 2}, ValueError, "start, stop")
    _bad(lambda a: {"stop": N_TOTAL + 1}, ValueError, "start, stop")
    _bad(lambda a: {"rows": np.arange(4), "stop": 5}, ValueError, "the length of rows")
    X, y, W, b, _ = problem("hinge_ovr", 9, np.float64)
    y[7] = 3
    gW = np.full_like(W, 5.0)
    with pytest.raises(ValueError, match="y: label 3 is out of range for K = 3"):
        _core.linear_objective("hinge_ovr", X, y, W, b, gW, np.zeros_like(b))
    assert np.all(gW == 5)
    # Outside the batch, a bad label is never read.
    _core.linear_objective("hinge_ovr", X, y, W, b, gW, np.zeros_like(b), start=8)


# -- train(gather=False) -----------------------------------------------------------------


def test_train_rows_mode_matches_gathering():
    """The loss that reads rows in place and the one that gets copied batches train alike."""
    X, y, W, b, sw = problem("log_loss", 9, np.float64, weighted=True)
    K, d = W.shape
    grad = np.empty(K * (d + 1))

    in_place, gathered = linear_losses(K, d, grad)

    for shuffle in (True, False):
        a, c = np.zeros(K * (d + 1)), np.zeros(K * (d + 1))
        ha = fastgd.train(in_place, [a], X, y, sample_weight=sw, batch_size=64, max_epochs=3, random_state=1,
                          shuffle=shuffle, gather=False, validation_data=(X[:50], y[:50]))
        hc = fastgd.train(gathered, [c], X, y, sample_weight=sw, batch_size=64, max_epochs=3, random_state=1,
                          shuffle=shuffle, validation_data=(X[:50], y[:50]))
        np.testing.assert_array_equal(a, c)
        np.testing.assert_allclose([r["train_loss"] for r in ha.records], [r["train_loss"] for r in hc.records],
                                   rtol=1e-12)
        assert [r["val_loss"] for r in ha.records] == [r["val_loss"] for r in hc.records]


# -- the estimators on the kernel ----------------------------------------------------------


def _old_objective(loss_fn, X, y, w, W, b, l2):
    """The linear models' objective as the NumPy path computed it (fastgd.losses): the
    weighted mean loss plus the penalty, the gradient scaled by the batch's share of the
    (mean-1) weights, plus l2 W."""
    z = X @ W.T + b
    z = z[:, 0] if W.shape[0] == 1 else z
    value, dz = loss_fn(z, y, w)
    dz = dz.reshape(len(X), -1) * (w.sum() / len(w))
    return value + 0.5 * l2 * float((W ** 2).sum()), dz.T @ X + l2 * W, dz.sum(axis=0)


def _hinge_ovr(z, y, w):
    signs = np.where(y[:, None] == np.arange(z.shape[1]), 1.0, -1.0)
    value, dz = fastgd.losses.hinge(z.ravel(), signs.ravel(), np.repeat(w, z.shape[1]))
    return value * z.shape[1], dz.reshape(z.shape) * z.shape[1]


@pytest.mark.parametrize("case", ["logistic", "multinomial", "hinge", "hinge_ovr", "squared_error", "huber"])
def test_estimators_follow_the_numpy_objective(case):
    """Mini-batch SGD (a short last batch, sample weights) from a given start: every epoch's
    loss and the final coefficients are those of the NumPy objective the models used before
    the fused kernel (the batch's share of the weights included)."""
    rng = np.random.default_rng(3)
    n, d = 300, 6
    X = rng.standard_normal((n, d))
    sw = rng.uniform(0.5, 2, n)
    K = 3 if case in ("multinomial", "hinge_ovr") else 1
    if case in ("squared_error", "huber"):
        y = X @ rng.standard_normal(d) + rng.standard_normal(n)
        est = fastgd.LinearRegression(loss=case, delta=0.8)
        loss_fn = fastgd.losses.squared_error if case == "squared_error" else \
            (lambda z, t, w: fastgd.losses.huber(z, t, w, delta=0.8))
    else:
        y = rng.integers(0, K if K > 1 else 2, n)
        est = fastgd.LogisticRegression(loss="hinge" if "hinge" in case else "log_loss")
        loss_fn = {"logistic": fastgd.losses.log_loss, "multinomial": fastgd.losses.softmax_cross_entropy,
                   "hinge": fastgd.losses.hinge, "hinge_ovr": _hinge_ovr}[case]
    est.set_params(optimizer="sgd", lr=0.1, batch_size=128, shuffle=False, tol=None, standardize=False, alpha=0.01,
                   max_epochs=1, random_state=0)
    est.fit(X, y, sample_weight=sw)
    W0 = 0.3 * rng.standard_normal((K, d))
    b0 = 0.2 * rng.standard_normal(K)
    est.coef_ = W0.reshape(est.coef_.shape)
    est.intercept_ = b0.copy()
    est.set_params(warm_start=True, max_epochs=4)
    est.fit(X, y, sample_weight=sw)

    w = sw / sw.mean()
    W, b, losses = W0.copy(), b0.copy(), []
    for _ in range(4):
        total = weight = 0.0
        for s in (slice(0, 128), slice(128, 256), slice(256, n)):  # the last batch is short
            value, gW, gb = _old_objective(loss_fn, X[s], y[s], w[s], W, b, 0.01)
            total += value * w[s].sum()
            weight += w[s].sum()
            W -= 0.1 * gW
            b -= 0.1 * gb
        losses.append(total / weight)
    np.testing.assert_allclose([r["train_loss"] for r in est.history_.records], losses, rtol=1e-12)
    np.testing.assert_allclose(est.coef_.reshape(K, d), W, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(est.intercept_, b, rtol=1e-11, atol=1e-13)
