"""Run under mpiexec by tests/test_distributed.py: data-parallel fits in which every rank
streams its own shard (a memmap read in blocks, or chunks) through its own shuffle buffer.
With a buffer that holds each shard whole the result is the in-memory data-parallel fit's,
bit for bit; with a small buffer the ranks still take the same steps and end identical.
Every rank writes OUT/stream_rank<r>.npz for the test to compare bit for bit."""

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

# Each rank's shard of the shared data in a file of its own, read as a memmap.
rng, n, d, X, w_true, logits, y_bin, y_reg = toy_data()
sw = 0.5 + rng.random(n)
bounds, mine = shard(n, rank, size)
np.save(os.path.join(out, f"X_rank{rank}.npy"), X[mine])
np.save(os.path.join(out, f"y_rank{rank}.npy"), y_bin[mine])
X_mm = np.load(os.path.join(out, f"X_rank{rank}.npy"), mmap_mode="r")
y_mm = np.load(os.path.join(out, f"y_rank{rank}.npy"), mmap_mode="r")
X_mem, y_mem = np.array(X_mm), np.array(y_mm)


def same(a, b, what):
    np.testing.assert_array_equal(a, b, err_msg=what)


# -- A buffer that holds each shard whole: the in-memory data-parallel fit, bit for bit
# (the merged standardization, the global class weights, the padding of the short shard).
for shuffle in (True, "batches", False):
    params = dict(max_epochs=4, batch_size=32, lr=0.01, random_state=0, tol=None, shuffle=shuffle)
    ref = fg.LogisticRegression(**params).fit(X_mem, y_mem, comm=comm)
    streamed = fg.LogisticRegression(**params).fit(X_mm, y_mm, comm=comm)
    chunks = [(X_mm[i:i + 100], y_mm[i:i + 100]) for i in range(0, len(X_mm), 100)]
    listed = fg.LogisticRegression(**params).fit(fg.ChunkStream(chunks), None, comm=comm)
    same(streamed._scaling.mean, ref._scaling.mean, f"memmap {shuffle}: mean")
    same(streamed._scaling.scale, ref._scaling.scale, f"memmap {shuffle}: scale")
    same(streamed.coef_, ref.coef_, f"memmap {shuffle}: coef")
    same(streamed.intercept_, ref.intercept_, f"memmap {shuffle}: intercept")
    same(np.array(streamed.history_["train_loss"]), np.array(ref.history_["train_loss"]), f"memmap {shuffle}: loss")
    # Chunks of 100 rows: the moments merged chunk by chunk differ from the array's by a
    # rounding; the rest is the same.
    np.testing.assert_allclose(listed._scaling.mean, ref._scaling.mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(listed.coef_, ref.coef_, rtol=1e-6, atol=1e-9)
    results[f"whole_{shuffle}"] = streamed.coef_
    results[f"whole_{shuffle}_chunks"] = listed.coef_

# Sample weights (rescaled by their global mean) and float32.
X32 = X_mem.astype(np.float32)
params = dict(max_epochs=3, batch_size=16, lr=0.01, random_state=1, tol=None)
ref = fg.LogisticRegression(**params).fit(X32, y_mem, sample_weight=sw[mine], comm=comm)
streamed = fg.LogisticRegression(**params).fit(fg.ChunkStream(X32, y_mem, sw[mine]), None, comm=comm)
same(streamed.coef_, ref.coef_, "weighted float32: coef")
results["weighted"] = streamed.coef_

# train(comm=) with a plain loss: chunks through a whole-shard buffer == the arrays.


def lsq(params, Xb, yb, wb):
    (w,) = params
    r = Xb @ w - yb
    return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]


for shuffle in (True, "batches", False):
    c_ref, c_str = np.zeros(d), np.zeros(d)
    h_ref = fg.train(lsq, [c_ref], X[mine], y_reg[mine], optimizer="sgd", lr=0.02, batch_size=40, max_epochs=3,
                     shuffle=shuffle, random_state=rank, comm=comm)
    chunks = [(X[mine][i:i + 70], y_reg[mine][i:i + 70]) for i in range(0, bounds[rank + 1] - bounds[rank], 70)]
    h_str = fg.train(lsq, [c_str], chunks, None, optimizer="sgd", lr=0.02, batch_size=40, max_epochs=3,
                     shuffle=shuffle, random_state=rank, comm=comm)
    same(c_str, c_ref, f"train {shuffle}")
    same(np.array(h_str["step"]), np.array(h_ref["step"]), f"train {shuffle}: steps")
    results[f"train_{shuffle}"] = c_str

# -- A small buffer (a fraction of the shard): every rank takes the steps of the largest
# shard's epoch (ceil(501 / 32) = 16), the ranks end identical, the fit as good.
single = fg.LogisticRegression(max_epochs=10, batch_size=32, lr=0.01, random_state=0, tol=None).fit(X, y_bin)
for shuffle in (True, "batches", False):
    params = dict(max_epochs=10, batch_size=32, lr=0.01, random_state=0, tol=None, shuffle=shuffle)
    path = os.path.join(out, f"small_{shuffle}_rank{rank}.fgd")
    small = fg.LogisticRegression(**params).fit(fg.ChunkStream(X_mm, y_mm, chunk_rows=50, buffer_size=96), None,
                                                comm=comm, checkpoint=path)
    assert os.path.exists(path) == (rank == 0), "only rank 0 writes checkpoints"
    steps = np.array(small.history_["step"])
    same(steps, 16 * np.arange(1, 11), f"small buffer {shuffle}: steps")
    acc_single, acc = single.score(X, y_bin), small.score(X, y_bin)
    assert acc > 0.8 and abs(acc - acc_single) < 0.03, (shuffle, acc_single, acc)
    results[f"small_{shuffle}"] = small.coef_
    results[f"small_{shuffle}_loss"] = np.array(small.history_["train_loss"])

# A callable source, a regressor with weights, an MLP: the ranks end identical.
shard_X, shard_y, shard_w = X[mine], y_reg[mine], sw[mine]


def source():
    for i in range(0, len(shard_X), 37):
        yield shard_X[i:i + 37], shard_y[i:i + 37], shard_w[i:i + 37]


reg = fg.LinearRegression(max_epochs=5, batch_size=16, lr=0.02, random_state=0, tol=None)
reg.fit(fg.ChunkStream(source, buffer_size=80), None, comm=comm)
reg_ref = fg.LinearRegression(max_epochs=5, batch_size=16, lr=0.02, random_state=0, tol=None)
reg_ref.fit(shard_X, shard_y, sample_weight=shard_w, comm=comm)
np.testing.assert_allclose(reg._scaling.y_mean, reg_ref._scaling.y_mean, rtol=1e-12)
np.testing.assert_allclose(reg._scaling.y_scale, reg_ref._scaling.y_scale, rtol=1e-12)
assert reg.score(X, y_reg, sw) > reg_ref.score(X, y_reg, sw) - 0.01
results["reg"] = reg.coef_
mlp = fg.MLPClassifier(hidden_layer_sizes=(8,), max_epochs=4, batch_size=32, random_state=0, tol=None)
mlp.fit(fg.ChunkStream(X_mm, y_mm, buffer_size=128), None, comm=comm)
results["mlp"] = mlp._theta
# A whole-shard buffer: the in-memory data-parallel MLP's bits (its output bias starts from
# the global class weights on both paths).
mlp_ref = fg.MLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, batch_size=32, random_state=0, tol=None)
mlp_ref.fit(X_mem, y_mem, comm=comm)
mlp_str = fg.MLPClassifier(hidden_layer_sizes=(8,), max_epochs=3, batch_size=32, random_state=0, tol=None)
mlp_str.fit(X_mm, y_mm, comm=comm)
same(mlp_str._theta, mlp_ref._theta, "mlp: theta")
results["mlp_whole"] = mlp_str._theta

# early_stopping: each rank holds out a bounded sample of its own stream; the validation
# loss is global, the ranks stop together.
es = fg.LogisticRegression(max_epochs=20, batch_size=32, early_stopping=True, random_state=0, n_iter_no_change=2)
es.fit(fg.ChunkStream(X_mm, y_mm, buffer_size=64), None, comm=comm)
assert es.history_["step"][0] == -(-451 // 32), es.history_["step"]  # 501 - 50 held out on rank 0
assert es.score(X, y_bin) > 0.8
results["early"] = es.coef_
results["early_val"] = np.array(es.history_["val_loss"])

# -- Memory stays bounded by each rank's buffer: a 64 MiB float32 shard, an 8 MiB buffer.
if os.path.exists("/proc/self/status"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from anon_memory import PeakAnon

    big_n, big_d = 163_840, 100
    xpath, ypath = os.path.join(out, f"big_X_rank{rank}.npy"), os.path.join(out, f"big_y_rank{rank}.npy")
    Xb = np.lib.format.open_memmap(xpath, mode="w+", dtype=np.float32, shape=(big_n + 1000 * rank, big_d))
    yb = np.lib.format.open_memmap(ypath, mode="w+", dtype=np.int8, shape=(big_n + 1000 * rank,))
    g = np.random.default_rng(rank)
    wt = np.random.default_rng(0).normal(size=big_d).astype(np.float32)
    for start in range(0, len(Xb), 16_384):
        block = g.standard_normal((len(Xb[start:start + 16_384]), big_d), dtype=np.float32)
        Xb[start:start + 16_384] = block
        yb[start:start + 16_384] = block @ wt > 0
    Xb.flush()
    yb.flush()
    del Xb, yb, block
    Xb, yb = np.load(xpath, mmap_mode="r"), np.load(ypath, mmap_mode="r")
    big = fg.LogisticRegression(batch_size=512, max_epochs=1, tol=None, random_state=0)
    with PeakAnon() as mem:
        big.fit(fg.ChunkStream(Xb, yb, buffer_size=8 * 2**20 // (4 * big_d)), None, comm=comm)
    growth_mb = mem.growth_mb
    # The shard is 64 MiB (a standardized copy as much again); the buffer 8 MiB, plus a
    # chunk being read and its transformed copy (4 MiB each) and one chunk's float64
    # temporaries in the moments pass.
    assert growth_mb < 48, growth_mb
    assert big.score(Xb[:20_000], yb[:20_000]) > 0.9
    results["big"] = big.coef_
    results["big_growth_mb"] = np.array(growth_mb)

comm.Barrier()
np.savez(f"{out}/stream_rank{rank}.npz", **{k: v for k, v in results.items() if k != "big_growth_mb"})
