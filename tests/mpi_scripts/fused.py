"""Run under mpiexec by tests/test_distributed.py: the data-parallel linear fits take their
epochs in one C++ call per stretch of batches (``_core.linear_batches`` with ``sync``, the
Allreduce called from inside the loop); each must give the bits of the per-step Python loop
(the objective's ``run_batches`` declined), history and stop reason included. Every rank
writes its results to OUT/fused_rank<r>.npz for the test to compare across ranks."""

from __future__ import annotations

import sys
import warnings

import numpy as np
from mpi4py import MPI

import fastgd as fg
from fastgd import _core
from fastgd.models import linear

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
out = sys.argv[1]
results: dict[str, np.ndarray] = {}
warnings.simplefilter("ignore")  # ConvergenceWarning, DivergenceWarning

rng = np.random.default_rng(3)
n, d = 1001, 8  # unequal shards: the short ones are padded
X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + np.linspace(-2.0, 2.0, d)
w_true = rng.standard_normal(d)
logits = X @ w_true
y_bin = (logits + 0.5 * rng.standard_normal(n) > np.median(logits)).astype(np.int64)
y3 = np.digitize(logits, np.quantile(logits, [1 / 3, 2 / 3]))
y_reg = logits + 0.1 * rng.standard_normal(n)
sw = 0.5 + rng.random(n)
bounds = np.linspace(0, n, size + 1).astype(int)
mine = slice(bounds[rank], bounds[rank + 1])

# Counts the batches that the one-call loop took with a reduction inside.
fused_batches = [0]
real_batches = _core.linear_batches


def counting(*args, **kwargs):
    ran = real_batches(*args, **kwargs)
    if kwargs.get("sync") is not None or (len(args) > 20 and args[20] is not None):
        fused_batches[0] += ran[0]
    return ran


_core.linear_batches = counting
real_run_batches = linear._Objective.run_batches


def fit(make, Xs, ys, sws, fused: bool):
    linear._Objective.run_batches = real_run_batches if fused else (lambda self, *a, **k: None)
    try:
        return make().fit(Xs, ys, sample_weight=sws, comm=comm)
    finally:
        linear._Objective.run_batches = real_run_batches


CASES = {
    "logreg": (lambda: fg.LogisticRegression(max_epochs=4, batch_size=32, lr=0.02, random_state=0, tol=None),
               X, y_bin, None),
    "logreg_f32_weights_batches": (
        lambda: fg.LogisticRegression(max_epochs=3, batch_size=50, lr=0.02, random_state=1, tol=None,
                                      shuffle="batches"), X.astype(np.float32), y_bin, sw),
    "logreg_noshuffle_sgd_clip": (
        lambda: fg.LogisticRegression(max_epochs=3, batch_size=40, optimizer="momentum", lr=0.05, shuffle=False,
                                      clip_norm=0.5, tol=None), X, y_bin, sw),
    "softmax": (lambda: fg.LogisticRegression(max_epochs=3, batch_size=32, lr=0.02, random_state=2, tol=None),
                X, y3, None),
    "hinge_ovr_f32": (lambda: fg.LogisticRegression(loss="hinge", max_epochs=3, batch_size=64, random_state=0,
                                                   tol=None), X.astype(np.float32), y3, sw),
    "regression_tol": (lambda: fg.LinearRegression(max_epochs=30, batch_size=64, lr=0.02, random_state=1),
                       X, y_reg, sw),
    "huber_early_stopping": (lambda: fg.LinearRegression(loss="huber", max_epochs=20, batch_size=32, random_state=4,
                                                         early_stopping=True, n_iter_no_change=2), X, y_reg, None),
    # Diverges within the first epochs (a loss or norm that is not finite, or one that explodes):
    # every rank leaves the one-call loop at the same batch and restores the same parameters.
    "diverging_sgd": (lambda: fg.LinearRegression(optimizer="sgd", lr=3.0, max_epochs=5, batch_size=16,
                                                  standardize=False, random_state=0, tol=None), X * 10, y_reg, None),
    "diverging_f32": (lambda: fg.LinearRegression(optimizer="sgd", lr=0.5, max_epochs=5, batch_size=16,
                                                  standardize=False, random_state=0, tol=None),
                      (X * 30).astype(np.float32), y_reg, None),
}

for name, (make, Xa, ya, swa) in CASES.items():
    Xs, ys, sws = Xa[mine], ya[mine], None if swa is None else swa[mine]
    before = fused_batches[0]
    fused = fit(make, Xs, ys, sws, fused=True)
    taken = fused_batches[0] - before
    before = fused_batches[0]
    step = fit(make, Xs, ys, sws, fused=False)
    assert fused_batches[0] == before, "the per-step reference took the one-call loop"
    h_f, h_s = fused.history_, step.history_
    assert h_f.stop_reason == h_s.stop_reason, (name, h_f.stop_reason, h_s.stop_reason)
    if not name.startswith("diverging"):
        assert taken > 0, f"{name}: the one-call loop was not used"
        assert not h_f.stop_reason.startswith("diverged"), (name, h_f.stop_reason)
    else:
        assert h_f.stop_reason.startswith("diverged"), (name, h_f.stop_reason)
    np.testing.assert_array_equal(fused.coef_, step.coef_, err_msg=name)
    np.testing.assert_array_equal(fused.intercept_, step.intercept_, err_msg=name)
    assert fused.n_iter_ == step.n_iter_, name
    for key in ("train_loss", "grad_norm", "lr", "step", "val_loss"):
        a = np.array(h_f[key], dtype=float)
        b = np.array(h_s[key], dtype=float)
        assert np.array_equal(a, b, equal_nan=True), (name, key, a, b)
    assert fused._optimizer.state_dict().keys() == step._optimizer.state_dict().keys()
    results[f"{name}_coef"] = fused.coef_
    results[f"{name}_train_loss"] = np.array(h_f["train_loss"])
    results[f"{name}_fused_batches"] = np.array(taken)

# train(comm=) called directly with the objective (gather=False): the history's step count and
# the optimizer's state after a fused epoch, and a DistributedOptimizer that is not left
# holding a reduced gradient.
theta = np.zeros(d + 1)
objective = linear._Objective("log_loss", 1, d, 1e-3, 0.0, 1.0)
dist = fg.distributed.DistributedOptimizer(fg.Adam([theta], lr=0.05), comm)
objective.bind(theta, dist.grads[0])
Xc, yc = np.ascontiguousarray(X[mine]), y_bin[mine].astype(np.float64)
before = fused_batches[0]
h = fg.train(objective, [theta], Xc, yc, optimizer=dist, batch_size=32, max_epochs=2, gather=False, random_state=0)
assert fused_batches[0] > before
assert not dist._synced
assert int(dist._group_state[0]["step"]) == h.records[-1]["step"] == 2 * -(-(bounds[1] - bounds[0]) // 32)
assert dist.in_sync()
results["train_theta"] = theta

np.savez(f"{out}/fused_rank{rank}.npz", **results)
