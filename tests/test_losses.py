"""fastgd.losses: values against closed forms, gradients and Hessians against finite
differences, the weighting convention, and numerical stability at extreme logits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastgd import losses as L

rng = np.random.default_rng(0)
N, K = 7, 4


def _targets(name: str, n: int = N) -> np.ndarray:
    if L.get_loss(name).multiclass:
        return rng.integers(0, K, n)
    if name == "log_loss":
        return rng.integers(0, 2, n).astype(float)
    if name == "hinge":
        return rng.choice([-1.0, 1.0], n)
    return rng.normal(size=n)


def _logits(name: str, n: int = N) -> np.ndarray:
    return rng.normal(scale=2.0, size=(n, K) if L.get_loss(name).multiclass else n)


def _fd_grad(fn, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        g[i] = (fn(zp) - fn(zm)) / (2 * h)
    return g


@pytest.mark.parametrize("name", sorted(L.LOSSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_finite_differences(name, weighted):
    loss = L.get_loss(name).fn
    z, y = _logits(name), _targets(name)
    w = rng.uniform(0.1, 3.0, N) if weighted else None
    if name == "hinge":  # keep away from the kink, where the loss has no derivative
        z = np.where(np.abs(1 - y * z) < 0.05, z + 0.2, z)
    if name == "hinge_ovr":
        s = np.where(y[:, None] == np.arange(K), 1.0, -1.0)
        z = np.where(np.abs(1 - s * z) < 0.05, z + 0.2, z)
    if name == "huber":
        r = z - y
        z = np.where(np.abs(np.abs(r) - 1.0) < 0.05, z + 0.2, z)
    value, dz = loss(z, y, w)
    assert isinstance(value, float) and dz.shape == z.shape
    np.testing.assert_allclose(dz, _fd_grad(lambda zz: loss(zz, y, w)[0], z), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", ["squared_error", "log_loss", "softmax_cross_entropy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_hessian_matches_finite_differences_of_the_gradient(name, weighted):
    entry = L.get_loss(name)
    z, y = _logits(name), _targets(name)
    w = rng.uniform(0.1, 3.0, N) if weighted else None
    h = entry.hessian(z, y, w)
    eps = 1e-6
    if name == "softmax_cross_entropy":
        assert h.shape == (N, K, K)
        for k in range(K):
            zp, zm = z.copy(), z.copy()
            zp[:, k] += eps
            zm[:, k] -= eps
            col = (entry.fn(zp, y, w)[1] - entry.fn(zm, y, w)[1]) / (2 * eps)  # d(dz[i, :]) / dz[i, k]
            np.testing.assert_allclose(h[:, :, k], col, rtol=1e-5, atol=1e-9)
    else:
        assert h.shape == (N,)
        fd = (entry.fn(z + eps, y, w)[1] - entry.fn(z - eps, y, w)[1]) / (2 * eps)
        np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-10)


def test_closed_forms():
    z, y = rng.normal(size=N), rng.normal(size=N)
    assert L.squared_error(z, y)[0] == pytest.approx(np.mean(0.5 * (z - y) ** 2))

    r = np.array([-3.0, -0.5, 0.0, 0.7, 2.0])
    v, g = L.huber(r, np.zeros(5), delta=1.0)
    expected = np.array([2.5, 0.125, 0.0, 0.245, 1.5])
    assert v == pytest.approx(expected.mean())
    np.testing.assert_allclose(g, np.clip(r, -1, 1) / 5)

    z, y = rng.normal(size=N), rng.integers(0, 2, N).astype(float)
    p = 1 / (1 + np.exp(-z))
    assert L.log_loss(z, y)[0] == pytest.approx(np.mean(-y * np.log(p) - (1 - y) * np.log(1 - p)))

    Z, Y = rng.normal(size=(N, K)), rng.integers(0, K, N)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    assert L.softmax_cross_entropy(Z, Y)[0] == pytest.approx(np.mean(-np.log(P[np.arange(N), Y])))

    v, g = L.hinge(np.array([2.0, 0.5, -1.0]), np.array([1, 1, -1]))
    assert v == pytest.approx((0 + 0.5 + 0) / 3)
    np.testing.assert_allclose(g, [0, -1 / 3, 0])
    # labels 0/1 read as -1/+1
    assert L.hinge(np.array([0.5, 0.2]), np.array([0, 1]))[0] == L.hinge(np.array([0.5, 0.2]), np.array([-1, 1]))[0]


def test_log_losses_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    z, y, w = rng.normal(size=50), rng.integers(0, 2, 50), rng.uniform(0.5, 2, 50)
    p = L.sigmoid(z)
    assert L.log_loss(z, y, w)[0] == pytest.approx(metrics.log_loss(y, p, sample_weight=w), rel=1e-12)
    Z, Y = rng.normal(size=(50, K)), rng.integers(0, K, 50)
    expected = metrics.log_loss(Y, L.softmax(Z), sample_weight=w, labels=np.arange(K))
    assert L.softmax_cross_entropy(Z, Y, w)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", sorted(L.LOSSES))
def test_integer_weights_equal_repeated_rows(name):
    loss = L.get_loss(name).fn
    z, y = _logits(name), _targets(name)
    counts = rng.integers(0, 4, N)
    counts[0] = 1
    v1, g1 = loss(z, y, counts.astype(float))
    v2, g2 = loss(np.repeat(z, counts, axis=0), np.repeat(y, counts), None)
    assert v1 == pytest.approx(v2, rel=1e-12)
    # the gradient of repeated rows, summed back per original row
    idx = np.repeat(np.arange(N), counts)
    summed = np.zeros_like(g1)
    np.add.at(summed, idx, g2)
    np.testing.assert_allclose(g1, summed, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(L.LOSSES))
def test_all_zero_weights_count_for_nothing(name):
    z, y = _logits(name), _targets(name)
    v, g = L.get_loss(name).fn(z, y, np.zeros(N))
    assert v == 0.0 and not g.any()


def test_extreme_logits_are_finite_without_warnings():
    big = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        v1, g1 = L.log_loss(big, np.ones(7))
        v0, g0 = L.log_loss(big, np.zeros(7))
        h = L.log_loss_hessian(big, np.ones(7))
        Z = np.stack([big, -big, np.zeros(7)], axis=1)
        v2, g2 = L.softmax_cross_entropy(Z, np.array([0, 1, 2, 0, 1, 2, 0]))
        H = L.softmax_cross_entropy_hessian(Z, np.zeros(7, dtype=int))
        p = L.sigmoid(big)
    for a in (v1, g1, v0, g0, h, v2, g2, H, p):
        assert np.all(np.isfinite(a))
    # log(1 + e^z) - y z: a confident wrong answer costs |z|
    assert L.log_loss(np.array([1e4]), np.array([0.0]))[0] == pytest.approx(1e4)
    assert L.log_loss(np.array([-1e4]), np.array([1.0]))[0] == pytest.approx(1e4)
    assert L.log_loss(np.array([1e4]), np.array([1.0]))[0] == 0.0
    np.testing.assert_array_equal(p[[0, -1]], [0.0, 1.0])
    np.testing.assert_allclose(L.softmax(Z).sum(axis=1), 1.0)


def test_float32_stays_float32():
    z = rng.normal(size=N).astype(np.float32)
    for name in ("squared_error", "huber", "log_loss", "hinge"):
        y = _targets(name).astype(np.float32)
        _, g = L.get_loss(name).fn(z, y, np.ones(N, np.float32))
        assert g.dtype == np.float32


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("nope")
    with pytest.raises(ValueError, match="samples"):
        L.squared_error(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="sample_weight"):
        L.log_loss(np.zeros(3), np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match="labels"):
        L.softmax_cross_entropy(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="integer"):
        L.softmax_cross_entropy(np.zeros((2, 2)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="delta"):
        L.huber(np.zeros(2), np.zeros(2), delta=0.0)


def test_hinge_ovr_is_the_sum_of_binary_hinges():
    z, y = _logits("hinge_ovr"), _targets("hinge_ovr")
    w = rng.uniform(0.1, 3.0, N)
    v, g = L.hinge_ovr(z, y, w)
    for k in range(K):
        vk, gk = L.hinge(z[:, k], np.where(y == k, 1, -1), w)
        v -= vk
        np.testing.assert_allclose(g[:, k], gk, rtol=1e-15)
    assert v == pytest.approx(0.0, abs=1e-14)
    with pytest.raises(ValueError, match="hinge_ovr needs integer class labels"):
        L.hinge_ovr(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(n, K\)"):
        L.hinge_ovr(np.zeros(3), np.zeros(3))


# ---- the table ---------------------------------------------------------------------------

def test_table_entries():
    for name, loss in L.LOSSES.items():
        assert loss.name == name and getattr(L, name) is loss.fn and name in L.__all__
        if loss.hessian is not None:
            assert getattr(L, f"{name}_hessian") is loss.hessian
        assert loss.estimator in ("regressor", "classifier", None)
        if loss.multiclass_form is not None:
            assert loss.estimator == "classifier" and L.LOSSES[loss.multiclass_form].multiclass
        # A multiclass-only loss is reached through a classifier's loss.
        assert loss.estimator is not None or any(o.multiclass_form == name for o in L.LOSSES.values())
    assert L.estimator_losses("regressor") == ("squared_error", "huber")
    assert L.estimator_losses("classifier") == ("log_loss", "hinge")
    assert L.estimator_losses("regressor", newton=True) == ("squared_error",)
    assert L.estimator_losses("classifier", newton=True) == ("log_loss",)
    assert [L.training_loss(n, k).name for n, k in [("log_loss", 1), ("log_loss", 3), ("hinge", 1), ("hinge", 2),
                                                     ("squared_error", 2), ("huber", 1)]] == \
        ["log_loss", "softmax_cross_entropy", "hinge", "hinge_ovr", "squared_error", "huber"]
    with pytest.raises(ValueError, match="estimator must be one of"):
        L.estimator_losses("ranker")
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        L.training_loss("nope", 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(L.LOSSES))
def test_fused_objective_takes_every_loss_of_the_table(name, dtype):
    # The C++ linear objective knows each loss by the table's name and computes what the
    # NumPy function does (unweighted: its weighting of the gradient differs, see models/).
    from fastgd import _core

    n, d = 40, 5
    multi = L.get_loss(name).multiclass
    k = K if multi else 1
    X = rng.normal(size=(n, d)).astype(dtype)
    W = rng.normal(size=(k, d)).astype(dtype)
    b = rng.normal(size=k).astype(dtype)
    y = _targets(name, n)
    y = y.astype(np.int64) if multi else (y > 0).astype(dtype) if name in ("log_loss", "hinge") else y.astype(dtype)
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    value = _core.linear_objective(name, X, y, W, b, gW, gb)
    z = (X.astype(np.float64) @ W.T.astype(np.float64) + b)
    expected, dz = L.get_loss(name).fn(z if multi else z[:, 0], y)
    dz = dz.reshape(n, k)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    assert value == pytest.approx(expected, rel=tol, abs=tol)
    np.testing.assert_allclose(gb, dz.sum(axis=0), rtol=tol, atol=tol)
    np.testing.assert_allclose(gW, dz.T @ X, rtol=tol, atol=tol)


def test_fused_objective_refuses_names_outside_the_table():
    from fastgd import _core

    X, W, b = np.zeros((2, 1)), np.zeros((1, 1)), np.zeros(1)
    with pytest.raises(ValueError, match="loss must be"):
        _core.linear_objective("squared", X, np.zeros(2), W, b, np.zeros_like(W), np.zeros_like(b))
