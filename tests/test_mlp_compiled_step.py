"""The compiled training step of a ReLU network (``_core.mlp_train_step_``) against the
network's NumPy passes: the same loss and gradient bits, for any batch shape, row selection,
standardization, sample weights and thread count; and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from fastgd import _core
from fastgd.models import MLPClassifier, mlp_layers
from fastgd.models._gemm import numpy_sgemm
from fastgd.models.mlp_layers import Network, RowScaling

pytestmark = pytest.mark.skipif(numpy_sgemm() is None, reason="no OpenBLAS SGEMM found next to NumPy")

SIZES = [13, 17, 9, 4]


def softmax_grad(z, y, w, d, gb, n):
    return _core.softmax_cross_entropy_grad_(z, y, d, w=w, gb=gb, scale=1.0 / n), True


def network(seed=0, sizes=SIZES):
    net = Network(sizes, "relu", 0.0, False, np.float32)
    theta = np.zeros(net.size, np.float32)
    net.init(theta, "he", np.random.default_rng(seed))
    theta[net.n_weights:] = np.random.default_rng(seed + 1).standard_normal(net.size - net.n_weights) * 0.1
    return net, theta


def step(net, theta, X, y, w, rows, scaling, threads, compiled, monkeypatch):
    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(mlp_layers, "numpy_sgemm", lambda: None)
        value, grad = net.train_batch(theta, X, y, w, softmax_grad, rng=None, threads=threads, rows=rows,
                                      scaling=scaling, softmax_output=True)
    return value, grad.copy()


@pytest.mark.parametrize("n", [1, 7, 127, 128, 129, 256, 301])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("select", ["index", "slice", "none"])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_bits_as_numpy_passes(n, threads, select, standardize, weighted, monkeypatch):
    rng = np.random.default_rng(n)
    X = (rng.standard_normal((400, SIZES[0])) * 3 + 1).astype(np.float32)
    rows = {"index": rng.permutation(400)[:n], "slice": slice(50, 50 + n), "none": None}[select]
    Xin = X[:n] if rows is None else X
    y = rng.integers(0, SIZES[-1], n)
    w = rng.random(n).astype(np.float32) if weighted else None
    scaling = RowScaling(X.mean(axis=0), X.std(axis=0)) if standardize else None
    net, theta = network()
    expected = step(net, theta, Xin, y, w, rows, scaling, threads, False, monkeypatch)
    got = step(net, theta, Xin, y, w, rows, scaling, threads, True, monkeypatch)
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    # And 1 thread == 2 threads.
    other = step(net, theta, Xin, y, w, rows, scaling, 3 - threads, True, monkeypatch)
    assert other[0] == got[0]
    np.testing.assert_array_equal(other[1], got[1])


def test_fit_same_bits_as_numpy_passes(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((700, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    params = dict(hidden_layer_sizes=(20, 16), batch_size=256, max_epochs=3, tol=None, random_state=0)
    compiled = MLPClassifier(**params).fit(X, y)
    with monkeypatch.context() as m:
        m.setattr(mlp_layers, "numpy_sgemm", lambda: None)
        passes = MLPClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(compiled._theta, passes._theta)
    assert compiled.loss_curve_ == passes.loss_curve_


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 9, 33), (128, 100, 256), (3, 256, 10)])
def test_sgemm_matches_matmul(shape):
    m, k, n = shape
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    g = numpy_sgemm()
    _core.sgemm_(g.address, g.ilp64, a, b, c)
    np.testing.assert_array_equal(c, a @ b)


def call(**changes):
    g = numpy_sgemm()
    net, theta = network()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, SIZES[0])).astype(np.float32)
    args = dict(gemm_address=g.address, gemm_ilp64=g.ilp64, sizes=SIZES, theta=theta, grad=net.grad,
                grad2=np.zeros_like(net.grad), X=X, rows=np.arange(10, dtype=np.int64), first=0, mean=None,
                scale=None, labels=np.zeros(10, np.int64), w=None,
                scratch=np.empty(10 * _core.mlp_scratch_per_row(SIZES), np.float32), split=5, threads=1)
    args.update(changes)
    return _core.mlp_train_step_(**args)


@pytest.mark.parametrize("changes, error", [
    (dict(labels=np.full(10, 4, np.int64)), ValueError),
    (dict(labels=np.zeros(10, np.int32)), TypeError),
    (dict(rows=np.arange(45, 55, dtype=np.int64)), IndexError),
    (dict(rows=None, first=45), IndexError),
    (dict(split=0), ValueError),
    (dict(split=11), ValueError),
    (dict(scratch=np.empty(10, np.float32)), ValueError),
    (dict(theta=np.zeros(5, np.float32)), ValueError),
    (dict(X=np.zeros((50, 12), np.float32)), ValueError),
    (dict(X=np.zeros((50, 13), np.float64)), TypeError),
    (dict(w=np.ones(9, np.float32)), ValueError),
    (dict(mean=np.zeros(SIZES[0])), ValueError),
    (dict(gemm_address=0), ValueError),
])
def test_checks(changes, error):
    with pytest.raises(error):
        call(**changes)


def test_checked_call_runs():
    assert np.isfinite(call())


def test_written_arrays_apart():
    net, _ = network()
    with pytest.raises(ValueError, match="overlap"):
        call(grad2=net.grad, grad=net.grad)
