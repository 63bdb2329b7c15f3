"""bench/sparse_floor.cpp's bare loops compute what their comments say: per-row SGD and
lazy mini-batch Adam against NumPy references written from those formulas, on a small CSR
with an empty row, a row order that is not 0..n-1 and a last batch shorter than the others."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="needs a C++ compiler")


@pytest.fixture(scope="module")
def floor(tmp_path_factory):
    pytest.importorskip("scipy")
    sys.path.insert(0, str(BENCH))
    try:
        import sparse_floor
    finally:
        sys.path.remove(str(BENCH))
    return sparse_floor, sparse_floor.build(tmp_path_factory.mktemp("floor"))


def small_problem(n: int = 23, d: int = 150, seed: int = 0):
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.08, format="csr", dtype=np.float32, random_state=seed)
    X.data[:] = rng.normal(size=X.nnz).astype(np.float32)
    X = X.tolil()
    X[3, :] = 0  # an empty row
    X = X.tocsr()
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    y01 = (rng.random(n) < 0.5).astype(np.float32)
    return X, y01


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + np.exp(-z))


def test_sgd_rows_matches_its_formula(floor):
    mod, lib = floor
    X, y01 = small_problem()
    n, d = X.shape
    Xd = X.toarray().astype(np.float64)
    order = np.random.default_rng(1).permutation(n)
    w, b = np.zeros(d, np.float32), np.zeros(1)
    w_ref, b_ref = np.zeros(d), 0.0
    for _ in range(3):
        lib.bare_sgd_rows(*mod._csr(X), mod._ptr(y01), mod._ptr(order), mod.ctypes.c_int64(n),
                          mod.ctypes.c_int64(d), mod._ptr(w), mod._ptr(b), mod.ctypes.c_double(mod.SGD_LR))
        for r in order:
            g = sigmoid(Xd[r] @ w_ref + b_ref) - y01[r]
            w_ref -= mod.SGD_LR * g * Xd[r]
            b_ref -= mod.SGD_LR * g
    assert np.abs(w_ref).max() > 0.1
    np.testing.assert_allclose(w, w_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b[0], b_ref, rtol=1e-6)


def test_adam_batches_matches_its_formula(floor):
    mod, lib = floor
    X, y01 = small_problem()
    n, d = X.shape
    Xd = X.toarray().astype(np.float64)
    batch, lr, beta1, beta2, eps = 5, 0.05, 0.9, 0.999, 1e-8
    w, acc, m, v = (np.zeros(d, np.float32) for _ in range(4))
    seen = np.zeros((d + 63) // 64, np.uint64)
    b = np.zeros(3)
    w_ref, m_ref, v_ref, b_ref = np.zeros(d), np.zeros(d), np.zeros(d), np.zeros(3)
    t = 0
    rng = np.random.default_rng(2)
    for _ in range(3):
        order = rng.permutation(n)
        lib.bare_adam_batches(*mod._csr(X), mod._ptr(y01), mod._ptr(order), mod.ctypes.c_int64(n),
                              mod.ctypes.c_int64(d), mod.ctypes.c_int64(batch), mod._ptr(w), mod._ptr(acc),
                              mod._ptr(m), mod._ptr(v), mod._ptr(seen), mod._ptr(b), mod.ctypes.c_int64(t),
                              mod.ctypes.c_double(lr))
        for s in range(0, n, batch):
            rows = order[s:s + batch]
            c = (sigmoid(Xd[rows] @ w_ref + b_ref[0]) - y01[rows]) / len(rows)
            g = c @ Xd[rows]
            active = np.flatnonzero(np.abs(Xd[rows]).sum(axis=0))  # the batch's features only
            t += 1
            m_ref[active] = beta1 * m_ref[active] + (1 - beta1) * g[active]
            v_ref[active] = beta2 * v_ref[active] + (1 - beta2) * g[active] ** 2
            c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
            w_ref[active] -= lr / c1 * m_ref[active] / (np.sqrt(v_ref[active] / c2) + eps)
            gb = c.sum()
            b_ref[1] = beta1 * b_ref[1] + (1 - beta1) * gb
            b_ref[2] = beta2 * b_ref[2] + (1 - beta2) * gb * gb
            b_ref[0] -= lr / c1 * b_ref[1] / (np.sqrt(b_ref[2] / c2) + eps)
    untouched = np.flatnonzero(np.abs(Xd).sum(axis=0) == 0)
    assert len(untouched) and not w[untouched].any() and np.abs(w_ref).max() > 0.05
    np.testing.assert_allclose(w, w_ref, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(m, m_ref, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(v, v_ref, rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(b, b_ref, rtol=1e-4, atol=1e-8)
    assert not acc.any() and not seen.any()  # left zero for the next call


def test_peers_fit_and_report(floor):
    import time

    mod, lib = floor
    X, y01 = small_problem(n=400, d=60)
    y = np.where(y01 > 0, 7, 3)  # any two labels

    def timed(fn):
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    peers = mod.peers(lib, X[:300], y[:300], X[300:], y[300:], 5, timed)
    assert set(peers) == set(mod.FITS)
    for run in peers.values():
        epochs, accuracy, parts = run()
        assert epochs == 5 and 0.0 <= accuracy <= 1.0 and parts["fit_s"] > 0
    with pytest.raises(ValueError, match="binary"):
        mod.peers(lib, X, np.arange(400) % 3, X, y, 5, timed)
    with pytest.raises(TypeError, match="float32"):
        mod.fit_sgd_rows(lib, X.astype(np.float64), y01, 1, 0)
