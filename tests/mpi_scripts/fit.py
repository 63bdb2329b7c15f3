"""Run under mpiexec by tests/test_distributed.py: data-parallel fits (fastgd.train and the
linear estimators) against single-process fits on the whole data; every rank writes its
results to OUT/fit_rank<r>.npz for the test to compare bit for bit, and only rank 0 writes
its checkpoint."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
from _toy_data import shard, toy_data  # the scripts' directory is on sys.path
from mpi4py import MPI

import fastgd as fg

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
out = sys.argv[1]
results: dict[str, np.ndarray] = {}
warnings.simplefilter("ignore")  # ConvergenceWarning of short fits

rng, n, d, X, w_true, logits, y_bin, y_reg = toy_data()
bounds, mine = shard(n, rank, size)

# -- train(comm=) with a plain loss: the history is global, the ranks identical.


def lsq(params, Xb, yb, wb):
    (w,) = params
    r = Xb @ w - yb
    return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]


coef = np.random.default_rng(rank).standard_normal(d)  # different on every rank: rank 0's wins
hist = fg.train(lsq, [coef], X[mine], y_reg[mine], optimizer="adam", lr=0.05, batch_size=32, max_epochs=15,
                random_state=rank, comm=comm, validation_data=(X[mine], y_reg[mine]),
                stopping=[fg.stopping.EarlyStopping(patience=3, monitor="val_loss")])
results["train_coef"] = coef
results["train_loss"] = np.array(hist["train_loss"])
results["train_val_loss"] = np.array(hist["val_loss"])
# The global val_loss is the whole data's mean loss at the end of each epoch.
whole = lsq([coef], X, y_reg, None)[0]
assert np.isclose(hist["val_loss"][-1], whole, rtol=1e-10), (hist["val_loss"][-1], whole)
assert np.linalg.norm(coef - w_true) < 0.15, np.linalg.norm(coef - w_true)  # 15 short epochs

# Sample weights (gathered batches), shuffle="batches" and False, full batches: still identical.
sw_all = 0.5 + np.random.default_rng(5).random(n)
for i, (shuffle, bs) in enumerate([(True, 32), ("batches", 32), (False, 50), (True, None)]):
    c = np.zeros(d)
    h = fg.train(lsq, [c], X[mine], y_reg[mine], optimizer="sgd", lr=0.05, batch_size=bs, max_epochs=3,
                 shuffle=shuffle, sample_weight=sw_all[mine], random_state=rank, comm=comm)
    results[f"train_variant{i}"] = c
    results[f"train_variant{i}_loss"] = np.array(h["train_loss"])

# -- LogisticRegression: accuracy as a single-process fit on the whole data.
params = dict(max_epochs=20, batch_size=32, lr=0.01, random_state=0, tol=None)
single = fg.LogisticRegression(**params).fit(X, y_bin)
ckpt = os.path.join(out, f"logreg_rank{rank}.fgd")
dist = fg.LogisticRegression(**params).fit(X[mine], y_bin[mine], comm=comm, checkpoint=ckpt)
acc_single, acc_dist = single.score(X, y_bin), dist.score(X, y_bin)
assert abs(acc_single - acc_dist) < 0.02, (acc_single, acc_dist)
assert os.path.exists(ckpt) == (rank == 0), "only rank 0 writes checkpoints"
# The standardization is the whole data's (global weighted moments), not the shard's.
np.testing.assert_allclose(dist._scaling.mean, single._scaling.mean, rtol=1e-12)
np.testing.assert_allclose(dist._scaling.scale, single._scaling.scale, rtol=1e-12)
# The starting point is the whole data's too (the log-odds of the global class weights).
start_single = fg.LogisticRegression(**{**params, "max_epochs": 1, "lr": 1e-12}).fit(X, y_bin)
start_dist = fg.LogisticRegression(**{**params, "max_epochs": 1, "lr": 1e-12}).fit(X[mine], y_bin[mine], comm=comm)
np.testing.assert_allclose(start_dist.intercept_, start_single.intercept_, rtol=0, atol=1e-9)
# The optimizer kept by the estimator reads its gradients unscaled again.
assert dist._optimizer.grad_prescale == 1.0
assert len(dist.history_) == 20
results["logreg_coef"] = dist.coef_
results["logreg_intercept"] = dist.intercept_
results["logreg_train_loss"] = np.array(dist.history_["train_loss"])
results["logreg_acc"] = np.array([acc_single, acc_dist])
if rank == 0:
    loaded = fg.load(ckpt)
    np.testing.assert_array_equal(loaded.coef_, dist.coef_)

# -- Classes are the union over the ranks: the last rank's shard lacks class 2.
y3 = np.digitize(logits, np.quantile(logits, [1 / 3, 2 / 3]))
y3_mine = y3[mine].copy()
if rank == size - 1:
    y3_mine[y3_mine == 2] = 1
multi = fg.LogisticRegression(max_epochs=5, random_state=0).fit(X[mine], y3_mine, comm=comm)
assert multi.classes_.tolist() == [0, 1, 2], multi.classes_
results["multi_coef"] = multi.coef_

# -- LinearRegression, float32, with sample weights and early stopping (validation is global).
X32 = X.astype(np.float32)
sw = 0.5 + rng.random(n)
reg_params = dict(max_epochs=30, batch_size=64, lr=0.02, random_state=1, early_stopping=True, n_iter_no_change=3)
reg_single = fg.LinearRegression(**reg_params).fit(X32, y_reg, sample_weight=sw)
reg = fg.LinearRegression(**reg_params).fit(X32[mine], y_reg[mine], sample_weight=sw[mine], comm=comm)
assert reg.coef_.dtype == np.float32
np.testing.assert_allclose(reg._scaling.y_mean, reg_single._scaling.y_mean, rtol=1e-10)
np.testing.assert_allclose(reg._scaling.y_scale, reg_single._scaling.y_scale, rtol=1e-10)
r2_single, r2_dist = reg_single.score(X32, y_reg), reg.score(X32, y_reg)
assert r2_dist > r2_single - 0.01, (r2_single, r2_dist)
results["reg_coef"] = reg.coef_
results["reg_val_loss"] = np.array(reg.history_["val_loss"])

# Huber's target scale (a weighted median) is the whole data's too.
hub_single = fg.LinearRegression(loss="huber", max_epochs=3, random_state=0).fit(X, y_reg)
hub = fg.LinearRegression(loss="huber", max_epochs=3, random_state=0).fit(X[mine], y_reg[mine], comm=comm)
assert hub._scaling.y_mean == hub_single._scaling.y_mean and hub._scaling.y_scale == hub_single._scaling.y_scale
results["huber_coef"] = hub.coef_

# -- MLPClassifier: as a single-process fit on the whole data; the same network on every rank.
mlp_params = dict(hidden_layer_sizes=(16,), max_epochs=10, batch_size=32, lr=0.005, random_state=0, tol=None)
mlp_single = fg.MLPClassifier(**mlp_params).fit(X, y_bin)
mlp = fg.MLPClassifier(**mlp_params).fit(X[mine], y_bin[mine], comm=comm)
mlp_acc_single, mlp_acc = mlp_single.score(X, y_bin), mlp.score(X, y_bin)
assert abs(mlp_acc - mlp_acc_single) < 0.03, (mlp_acc_single, mlp_acc)
assert mlp._optimizer.grad_prescale == 1.0
results["mlp_theta"] = mlp._theta
results["mlp_acc"] = np.array([mlp_acc_single, mlp_acc])
mlpr = fg.MLPRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0).fit(X[mine], y_reg[mine], comm=comm)
results["mlpr_theta"] = mlpr._theta

# -- Finite values of any magnitude: a feature of about 1e200 and a target of about 1e307,
# whose squares (and, over a shard, sums) overflow. The ranks' merged moments and the global
# mean target are computed in units of a power of two: the model of the same data at unit
# scale, scaled back, up to rounding; the same bits on every rank.
unit = np.where(np.arange(d) == 0, 1e200, 1.0)
huge_params = dict(max_epochs=5, batch_size=32, lr=0.01, random_state=0, tol=None)
at_unit = fg.LinearRegression(**huge_params).fit(X[mine], y_reg[mine], comm=comm)
huge = fg.LinearRegression(**huge_params).fit(X[mine] * unit, y_reg[mine] * 1e306, comm=comm)
np.testing.assert_allclose(huge.coef_ * unit / 1e306, at_unit.coef_, rtol=1e-5, atol=1e-9)
np.testing.assert_allclose(huge.intercept_ / 1e306, at_unit.intercept_, rtol=1e-5, atol=1e-9)
results["huge_coef"] = huge.coef_

# -- Resuming: a 3-epoch run checkpointed by rank 0, loaded by every rank and resumed to 6
# epochs, has the bits of an uninterrupted 6-epoch run (linear model and MLP).
for name, make in [("logreg", lambda e: fg.LogisticRegression(max_epochs=e, batch_size=32, lr=0.01, random_state=0,
                                                              tol=None)),
                   ("mlp", lambda e: fg.MLPClassifier(hidden_layer_sizes=(8,), max_epochs=e, batch_size=32,
                                                      random_state=0, tol=None))]:
    whole_run = make(6).fit(X[mine], y_bin[mine], comm=comm)
    path = os.path.join(out, f"resume_{name}.fgd")  # one path: only rank 0 writes
    make(3).fit(X[mine], y_bin[mine], comm=comm, checkpoint=path)
    comm.Barrier()
    resumed = fg.load(path).set_params(max_epochs=6).fit(X[mine], y_bin[mine], comm=comm, resume=True)
    assert len(resumed.history_) == 6
    np.testing.assert_array_equal(resumed._theta, whole_run._theta)
    results[f"resumed_{name}"] = resumed._theta

# -- Sparse shards (CSR): exact steps (the ranks' gradients are summed whole), the scale of
# the whole data's columns, the same bits on every rank, the accuracy of a single-process fit.
import scipy.sparse as sp  # noqa: E402  (the sparse path only)

Xs = sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0))
sparse_params = dict(max_epochs=10, batch_size=32, lr=0.01, random_state=0, tol=None)
sparse_single = fg.LogisticRegression(**sparse_params).fit(Xs, y_bin)
sparse_dist = fg.LogisticRegression(**sparse_params).fit(Xs[mine], y_bin[mine], comm=comm)
np.testing.assert_allclose(sparse_dist._scaling.scale, sparse_single._scaling.scale, rtol=1e-12)
results["sparse_coef"] = sparse_dist.coef_
results["sparse_acc"] = np.array([sparse_single.score(Xs, y_bin), sparse_dist.score(Xs, y_bin)])
assert abs(results["sparse_acc"][0] - results["sparse_acc"][1]) < 0.03, results["sparse_acc"]

np.savez(f"{out}/fit_rank{rank}.npz", **results)
