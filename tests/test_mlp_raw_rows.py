"""The MLPs read raw rows of X: each batch (and each block of rows at inference) is gathered
and standardized as the network reads it, never as a standardized copy of the whole of X."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastgd.models import MLPClassifier, MLPRegressor, mlp_layers
from fastgd.models._data import standardized
from fastgd.models.mlp import _BaseMLP
from fastgd.models.mlp_layers import Network, RowScaling


def _data(n=700, d=6, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # Features far from standardized: offsets and scales of several orders of magnitude.
    X = (rng.standard_normal((n, d)) * np.logspace(-2, 3, d) + np.linspace(-50, 400, d)).astype(dtype)
    z = (X - X.mean(0)) / X.std(0)
    return X, z[:, 0] - z[:, 1] * z[:, 2], z


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning: a few epochs only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("extra", [{}, {"batch_norm": True, "early_stopping": True},
                                   {"batch_size": None, "max_epochs": 5}])
def test_rows_standardized_as_read_give_the_fit_of_a_standardized_copy(dtype, kind, extra, monkeypatch):
    X, t, _ = _data(dtype=dtype)
    Est = MLPClassifier if kind == "classifier" else MLPRegressor
    y = (t > 0).astype(int) + (t > 1) if kind == "classifier" else t
    kw = dict(hidden_layer_sizes=(16, 8), batch_size=128, max_epochs=4, tol=None, random_state=0) | extra
    raw = Est(**kw).fit(X, y)
    monkeypatch.setattr(_BaseMLP, "_standardizes_rows", False)  # the fit template's standardized copy
    copied = Est(**kw).fit(X, y)
    # The same standardized values (the same bits) in the same batches: the same training.
    np.testing.assert_array_equal(raw._theta, copied._theta)
    for a, b in zip(raw.batch_norm_means_ if extra.get("batch_norm") else [],
                    copied.batch_norm_means_ if extra.get("batch_norm") else []):
        np.testing.assert_array_equal(a, b)
    # and the predictions, as the old prediction made them: the network on a standardized copy
    s = raw._scaling
    z = raw._net.forward(raw._theta, standardized(X, s.mean, s.scale, dtype))
    outputs = raw._outputs(X)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(outputs, z, rtol=tol, atol=tol)
    np.testing.assert_allclose(raw._outputs(X), copied._outputs(X), rtol=0, atol=0)


def test_inference_in_blocks_matches_one_pass_over_a_standardized_copy(monkeypatch):
    X, _, _ = _data(n=1001, d=5)
    net = Network([5, 7, 6, 3], "tanh", 0.0, True, np.float64)
    theta = np.empty(net.size)
    net.init(theta, "he", np.random.default_rng(1))
    mean, scale = X.mean(0), X.std(0)
    Xs = standardized(X, mean, scale, np.float64)
    whole = net.forward(theta, Xs).copy()
    # the exact batch-norm statistics, as one pass over the standardized copy computes them
    u = Xs @ net.views(theta)[0][0]
    monkeypatch.setattr(mlp_layers, "BLOCK_BYTES", 64 * 8 * 40)  # blocks of a few dozen rows, and a tail
    net.set_exact_stats(theta, X, RowScaling(mean, scale))
    np.testing.assert_allclose(net.running_mean[0], u.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.running_var[0], u.var(0, ddof=1), rtol=1e-12)
    blocks = net.outputs(theta, X, RowScaling(mean, scale))
    assert blocks.shape == (1001, 3)
    # (the statistics changed: compare with the new ones)
    np.testing.assert_allclose(blocks, net.forward(theta, Xs), rtol=1e-12, atol=1e-12)
    assert not np.allclose(blocks, whole)
    np.testing.assert_allclose(net.outputs(theta, Xs), net.forward(theta, Xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_batch_given_as_rows_of_raw_x_is_the_batch_of_its_standardized_rows(dtype):
    X, t, _ = _data(n=400, d=5, dtype=dtype)
    y = (t > 0).astype(np.intp)
    est = MLPClassifier()
    net = Network([5, 9, 7, 2], "relu", 0.0, False, dtype)
    theta = np.empty(net.size, dtype)
    net.init(theta, "he", np.random.default_rng(2))
    mean, scale = X.mean(0, dtype=np.float64), X.std(0, dtype=np.float64)
    Xs = standardized(X, mean, scale, dtype)
    rows = np.random.default_rng(3).permutation(400)[:300]
    w = np.linspace(0.5, 1.5, 400).astype(dtype)
    for r in (rows, slice(50, 350)):
        for threads in (1, 2):
            v_ref, g = net.train_batch(theta, Xs[r], y[r], w[r], est._loss_grad, rng=None, threads=threads)
            g_ref = g.copy()
            v, g = net.train_batch(theta, X, y[r], w[r], est._loss_grad, rng=None, threads=threads, rows=r,
                                   scaling=RowScaling(mean, scale))
            assert v == v_ref
            np.testing.assert_array_equal(g, g_ref)
            # without standardization, rows of X as they are
            v, g = net.train_batch(theta, Xs, y[r], w[r], est._loss_grad, rng=None, threads=threads, rows=r)
            assert v == v_ref
            np.testing.assert_array_equal(g, g_ref)
    net.drop_workspaces()


# -- memory: no copy of X ---------------------------------------------------------------------

_MEASURE = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from anon_memory import PeakAnon
from fastgd.models import MLPClassifier

n, d = 327_680, 128                           # 160 MiB of float32
rng = np.random.default_rng(0)
X = np.empty((n, d), np.float32)
for s in range(0, n, 32_768):
    X[s:s + 32_768] = rng.standard_normal((32_768, d), dtype=np.float32) * 3 + 1
y = (X[:, 0] + X[:, 1] > 2).astype(np.int64)
m = MLPClassifier((32,), batch_size=256, max_epochs=1, tol=None, random_state=0, batch_norm=sys.argv[2] == "bn")
with PeakAnon() as fit:
    m.fit(X, y)
with PeakAnon() as predict:
    p = m.predict(X)
print(json.dumps({"x_mb": X.nbytes / 2**20, "fit_mb": fit.growth_mb, "predict_mb": predict.growth_mb,
                  "p_mb": p.nbytes / 2**20, "score": float(np.mean(p == y))}))
"""


@pytest.mark.parametrize("variant", ["plain", "bn"])
def test_fit_and_predict_make_no_copy_of_x(variant):
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status (Linux) for RssAnon")
    out = subprocess.run([sys.executable, "-c", _MEASURE, os.path.dirname(os.path.abspath(__file__)), variant],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # X is 160 MiB: a standardized copy would add as much (it added 184 MiB, with batch norm
    # 423). What grows: the moments' float64 blocks (8 MiB), the per-sample vectors (labels,
    # weights, the shuffle's permutation: a few of n x 8 bytes, 2.5 MiB each), the per-batch
    # arrays and the model (small).
    assert r["fit_mb"] < 0.15 * r["x_mb"], r
    # prediction (it added 478 MiB): the logits and labels (n x 1 or 2 each) and a block of rows
    assert r["predict_mb"] < 8 + 4 * r["p_mb"], r
    assert r["score"] > 0.9
