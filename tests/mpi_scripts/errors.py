"""Run under mpiexec by tests/test_distributed.py: what the ranks disagree on is a clear
error on every rank, and no rank hangs waiting for another. Writes OUT/errors_rank<r>.npz
with the messages seen."""

from __future__ import annotations

import sys

import numpy as np
from mpi4py import MPI

import fastgd as fg
from fastgd.distributed import DistributedOptimizer

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
out = sys.argv[1]
messages = {}


def expect(label, fn, *needles):
    try:
        fn()
    except (ValueError, TypeError) as e:
        text = str(e)
        for needle in needles:
            assert needle in text, (label, text)
        messages[label] = np.array(text)
    else:
        raise AssertionError(f"{label}: no error on rank {rank}")
    comm.Barrier()  # every rank got here: nobody hangs


# Parameters of different shapes on different ranks.
params = [np.zeros(4 + rank)]
expect("shapes", lambda: DistributedOptimizer(fg.SGD(params, lr=0.1), comm), "differ between ranks", "rank 0 has")
# ... or dtypes.
params = [np.zeros(4, dtype=np.float32 if rank else np.float64)]
expect("dtypes", lambda: DistributedOptimizer(fg.SGD(params, lr=0.1), comm), "differ between ranks")

# train: a different number of features, a different batch_size.
rng = np.random.default_rng(rank)
X = rng.standard_normal((50, 3 + rank))
y = rng.standard_normal(50)


def lsq(params, Xb, yb, wb):
    (w,) = params
    r = Xb @ w - yb
    return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]


expect("features", lambda: fg.train(lsq, [np.zeros(3)], X, y, batch_size=8, max_epochs=1, comm=comm),
       "disagree on X's shape")
X = rng.standard_normal((50, 3))
expect("batch_size", lambda: fg.train(lsq, [np.zeros(3)], X, y, batch_size=8 + rank, max_epochs=1, comm=comm),
       "disagree on batch_size")

# A bad input on one rank only, found by train's own checks before any collective call:
# the other ranks raise too.
sw = np.ones(50)
if rank == size - 1:
    sw[3] = -1.0
expect("bad_weight", lambda: fg.train(lsq, [np.zeros(3)], X, y, sample_weight=sw, batch_size=8, max_epochs=1,
                                      comm=comm), "")
if rank != size - 1:
    assert "rank 1 of 2 failed in train" in str(messages["bad_weight"]), messages["bad_weight"]
# The same bad argument everywhere: every rank raises its own error.
expect("bad_batch_size", lambda: fg.train(lsq, [np.zeros(3)], X, y, batch_size=0, comm=comm), "batch_size")

# An estimator: bad labels on one rank only, and a different number of features.
y_bad = np.where(np.arange(50) % 2, 1.0, 0.0)
if rank == size - 1:
    y_bad[0] = np.nan
expect("bad_y", lambda: fg.LogisticRegression(max_epochs=2).fit(X, y_bad, comm=comm), "")
if rank != size - 1:
    assert "failed" in str(messages["bad_y"]), messages["bad_y"]
# A NaN in X on one rank only, found by the read that takes the moments (standardize) or by
# check_X (not): check_X's error on that rank, a "failed" one on the others.
for standardize in (True, False):
    X_nan = X.copy()
    if rank == size - 1:
        X_nan[5, 1] = np.nan
    label = f"bad_X_{standardize}"
    expect(label, lambda s=standardize, Xn=X_nan: fg.LogisticRegression(max_epochs=2, standardize=s).fit(
        Xn, y_bad > 0.5, comm=comm), "")
    text = str(messages[label])
    assert ("Input X contains NaN (row 5, column 1)." if rank == size - 1 else "rank 1 of 2 failed") in text, text
X_d = rng.standard_normal((50, 3 + rank))
expect("estimator_features", lambda: fg.LinearRegression(max_epochs=2).fit(X_d, y, comm=comm), "features")
expect("newton", lambda: fg.LinearRegression(solver="newton").fit(X, y, comm=comm), "solver='gd'")
expect("batch_norm", lambda: fg.MLPRegressor(batch_norm=True).fit(X, y, comm=comm), "batch_norm")

# Streamed shards: a memmap (or chunks) with a different number of features on each rank,
# a bad chunk on one rank only, a one-shot iterator (which cannot be counted).
path = f"{out}/errors_X_rank{rank}.npy"
np.save(path, X_d)
X_mm = np.load(path, mmap_mode="r")
expect("stream_features", lambda: fg.LogisticRegression(max_epochs=2, batch_size=8).fit(X_mm, y_bad > 0.5,
                                                                                         comm=comm), "features")
expect("train_stream_features", lambda: fg.train(lsq, [np.zeros(3)], [(X_d, y)], None, batch_size=8, max_epochs=1,
                                                 comm=comm), "disagree on X's shape")
y_chunk = np.where(np.arange(50) % 2, 1.0, 0.0)
if rank == size - 1:
    y_chunk[7] = np.inf
expect("stream_bad_chunk", lambda: fg.LogisticRegression(max_epochs=2, batch_size=8).fit(
    [(X[:25], y_chunk[:25]), (X[25:], y_chunk[25:])], None, comm=comm), "")
if rank != size - 1:
    assert "failed" in str(messages["stream_bad_chunk"]), messages["stream_bad_chunk"]
expect("one_shot", lambda: fg.train(lsq, [np.zeros(3)], iter([(X, y)]), None, batch_size=8, max_epochs=1,
                                    comm=comm), "one-shot")

np.savez(f"{out}/errors_rank{rank}.npz", **messages)
