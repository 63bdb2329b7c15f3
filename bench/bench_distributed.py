"""Data-parallel training over MPI: throughput with 1 and N processes, and what the gradient
reduction costs per step.

Run it once per process count, on the same machine, and compare:

    mpiexec -n 1 python bench/bench_distributed.py
    mpiexec -n 2 python bench/bench_distributed.py

Every rank makes the same synthetic data and takes its contiguous shard. Timed, as medians
over ``--rounds`` fits after one untimed warm-up fit (a barrier before and after each):

* ``LogisticRegression.fit(X, y, comm=comm)`` (the one-call C++ epoch loop, with one
  Allreduce per step called from inside it);
* with one process also ``fit`` without ``comm`` (the one-call C++ epoch loop), the
  single-process baseline;
* an MLP (one hidden layer, NumPy forward and backward) through ``fastgd.train(comm=comm)``;
* the Allreduce alone, on buffers of each model's gradient size (median of 2,000 calls).

Reported: training samples per second over all ranks (epochs x total samples / the slowest
rank's training time, from the history's ``time``: the fit's set-up, input checks and
standardization, is left out, it is the same work in every variant), the whole fit's wall
time, the training time per step, and the time per step spent in the reduction
(``DistributedOptimizer.synchronize_step``: the exchange of the loss and batch weight, which
carries every rank's status, then the Allreduce of the gradients and their norm, waiting for
the slowest rank included: on a busy machine mostly that) with its share of the step.
Threads: ``--threads`` per process (default: the machine's cores divided among the ranks, so
that 2 processes of 1 thread compare with 1 process of 2 threads on 2 cores). Results go to
``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings

import numpy as np
from mpi4py import MPI
from threadpoolctl import threadpool_limits

import fastgd
from fastgd import datasets, distributed
from fastgd.models import LogisticRegression

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


class _ReductionClock:
    """Time and calls of DistributedOptimizer.synchronize_step (a step's exchanges: the loss and
    batch weight, then the gradients' Allreduce)."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0
        real = distributed.DistributedOptimizer.synchronize_step
        clock = self

        def timed(dopt, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(dopt, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0
                clock.calls += 1

        distributed.DistributedOptimizer.synchronize_step = timed

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def _timed(fn, rounds: int, clock: _ReductionClock) -> dict[str, float]:
    fn()  # warm-up: first touches of the data, the optimizer's plan
    walls, trains, comm_per_step, steps = [], [], [], 0
    for _ in range(rounds):
        clock.reset()
        comm.Barrier()
        t0 = time.perf_counter()
        steps, train_s = fn()
        comm.Barrier()
        walls.append(time.perf_counter() - t0)
        trains.append(comm.allreduce(train_s, op=MPI.MAX))
        # The slowest rank's reduction time: the others wait for it in the step's first exchange.
        comm_per_step.append(comm.allreduce(clock.seconds, op=MPI.MAX) / max(steps, 1))
    train = statistics.median(trains)
    return {"fit_s": statistics.median(walls), "train_s": train, "steps": steps,
            "step_us": 1e6 * train / max(steps, 1), "reduce_us_per_step": 1e6 * statistics.median(comm_per_step)}


def _mlp_loss(hidden: int, d: int):
    def loss_and_grad(params, X, y, w):
        W1, b1, W2, b2 = params
        h = np.maximum(X @ W1 + b1, 0.0)
        z = h @ W2 + b2
        p = 1.0 / (1.0 + np.exp(-z))
        loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
        dz = ((p - y) / len(y)).astype(X.dtype)
        dh = np.outer(dz, W2) * (h > 0)
        return loss, [X.T @ dh, dh.sum(axis=0), h.T @ dz, np.array([dz.sum()], dtype=X.dtype)]

    return loss_and_grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="samples in all (split among the ranks)")
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=256, help="per rank")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // size))
    ap.add_argument("--out", default=os.path.join("bench", "results", f"distributed_n{size}.json"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    fastgd.set_num_threads(args.threads)
    clock = _ReductionClock()

    X, y = datasets.make_classification(n_samples=args.n, n_features=args.features, n_classes=2, random_state=0)
    X = X.astype(np.float32)
    bounds = np.linspace(0, args.n, size + 1).astype(int)
    Xs, ys = X[bounds[rank]:bounds[rank + 1]], y[bounds[rank]:bounds[rank + 1]]
    per_rank_steps = args.epochs * -(-len(Xs) // args.batch_size)
    params = dict(batch_size=args.batch_size, max_epochs=args.epochs, tol=None, random_state=0, lr=1e-3)

    results: dict[str, dict[str, float]] = {}
    with threadpool_limits(args.threads):
        def logistic_comm():
            est = LogisticRegression(**params).fit(Xs, ys, comm=comm)
            return per_rank_steps, est.history_["time"][-1]

        results["logistic fit(comm=)"] = _timed(logistic_comm, args.rounds, clock)
        if size == 1:
            def logistic_local():
                est = LogisticRegression(**params).fit(Xs, ys)
                return per_rank_steps, est.history_["time"][-1]

            results["logistic fit (no MPI)"] = _timed(logistic_local, args.rounds, clock)

        d, hdn = args.features, args.hidden
        loss = _mlp_loss(hdn, d)

        def mlp():
            rng = np.random.default_rng(0)
            ps = [(rng.standard_normal((d, hdn)) / np.sqrt(d)).astype(np.float32), np.zeros(hdn, np.float32),
                  (rng.standard_normal(hdn) / np.sqrt(hdn)).astype(np.float32), np.zeros(1, np.float32)]
            hist = fastgd.train(loss, ps, Xs, ys.astype(np.float32), optimizer="adam", lr=1e-3,
                                batch_size=args.batch_size, max_epochs=args.epochs, random_state=0, comm=comm)
            return per_rank_steps, hist["time"][-1]

        results[f"MLP {d}-{hdn}-1 train(comm=)"] = _timed(mlp, args.rounds, clock)

    allreduce_us = {}
    for name, count in (("logistic", args.features + 1), ("MLP", (args.features + 2) * args.hidden + 1)):
        buf = np.zeros(count, np.float32)
        times = []
        for _ in range(2000):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        allreduce_us[f"{name} ({count} float32)"] = 1e6 * statistics.median(times)

    if rank == 0:
        print(f"fastgd {fastgd.__version__}, {size} process(es) x {args.threads} thread(s), "
              f"{args.n} samples x {args.features} features (float32), batch {args.batch_size} per rank, "
              f"{args.epochs} epochs; medians of {args.rounds}\n")
        print(f"{'workload':<28} {'samples/s':>11} {'fit s':>7} {'step us':>9} {'reduce us/step':>15} "
              f"{'reduce share':>13}")
        for name, r in results.items():
            r["samples_per_s"] = args.epochs * args.n / r["train_s"]
            share = r["reduce_us_per_step"] / r["step_us"]
            print(f"{name:<28} {r['samples_per_s']:>11.3g} {r['fit_s']:>7.2f} {r['step_us']:>9.1f} "
                  f"{r['reduce_us_per_step']:>15.1f} {share:>12.0%}")
        print()
        for name, us in allreduce_us.items():
            print(f"Allreduce alone, {name}: {us:.1f} us")
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"processes": size, "threads": args.threads, "n": args.n, "features": args.features,
                       "batch_size": args.batch_size, "epochs": args.epochs, "results": results,
                       "allreduce_us": allreduce_us}, f, indent=1)


if __name__ == "__main__":
    main()
