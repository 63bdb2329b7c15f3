"""Do NumPy's BLAS threads and fastgd's OpenMP threads get in each other's way?

Two thread pools that take turns on the same cores can oversubscribe them: after a product,
OpenBLAS's workers keep polling for more work for a while, and GNU OpenMP's workers do the
same after a parallel region. Whatever starts next then shares its cores with spinning
threads. This script measures the two places where that can happen in a training loop:

1. ``alternate``: a NumPy gradient (two matrix products, as a user's ``loss_and_grad`` for
   ``fastgd.train`` computes it) and a fastgd Adam step over 1M float32 parameters (a
   2-thread kernel call), in turns. Each step is timed with BLAS and fastgd both on 2
   threads (the defaults), with BLAS limited to 1 thread, and with fastgd limited to 1.
2. ``spin``: the CPU time fastgd's OpenMP worker burns per step when each step stands
   alone (a sleep after it): its share of the work plus its spin before it sleeps.
3. ``after-blas``: a fastgd logistic-regression fit (the fused one-call loop, no BLAS
   inside) started right after a large NumPy product, and the same fit started after a
   pause, so that OpenBLAS's workers have gone to sleep.

The variants alternate round by round, so that a noisy neighbour slows all alike; every
figure is a median. The CPU time that OpenBLAS's worker threads burn while fastgd runs is
read from /proc (Linux only) and printed beside the times.

    python bench/bench_blas_threads.py             # about 2 minutes
    python bench/bench_blas_threads.py --rounds 3  # quicker

Each part runs twice, in child processes: with fastgd's short spin (fastgd._openmp_wait) and
with GNU OpenMP's default (GOMP_SPINCOUNT=300000, as before fastgd set it), side by side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import fastgd


def thread_ids() -> list[int]:
    return sorted(int(t) for t in os.listdir("/proc/self/task"))


# The main thread and OpenBLAS's workers (started when NumPy loads), not fastgd's workers.
STARTUP_THREADS = set(thread_ids())


def cpu_seconds(tids: list[int]) -> float:
    """User + system CPU time of these threads of this process."""
    total = 0
    for t in tids:
        try:
            fields = Path(f"/proc/self/task/{t}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def alternate(rounds: int, steps: int) -> None:
    rng = np.random.default_rng(0)
    n, d, k = 512, 1000, 1000
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = rng.standard_normal((n, k)).astype(np.float32)
    W = np.zeros((d, k), np.float32)
    G = np.empty_like(W)
    opt = fastgd.Adam([W], lr=1e-3)

    def grad() -> None:
        R = X @ W
        R -= Y
        np.matmul(X.T, R, out=G)

    def timed(step_fn) -> tuple[float, float, float]:
        for _ in range(3):
            step_fn()
        t_grad, t_step = [], []
        for _ in range(steps):
            t0 = time.perf_counter()
            grad()
            t1 = time.perf_counter()
            opt.step([G])
            t2 = time.perf_counter()
            t_grad.append(t1 - t0)
            t_step.append(t2 - t1)
        return float(np.median(t_grad)), float(np.median(t_step)), float(np.median(np.add(t_grad, t_step)))

    def both() -> None:
        grad()
        opt.step([G])

    variants = {
        "BLAS 2 + fastgd 2 (defaults)": lambda: timed(both),
        "BLAS 1 + fastgd 2": lambda: _with(threadpool_limits(1, user_api="blas"), lambda: timed(both)),
        "BLAS 2 + fastgd 1": lambda: _with(fastgd.num_threads(1), lambda: timed(both)),
    }
    results: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            results[name].append(run())
    print(f"alternate: NumPy gradient (2 products, {n}x{d} @ {d}x{k}) + Adam step on {d * k:,} float32, "
          f"median over {rounds} rounds x {steps} steps")
    base = np.median([r[2] for r in results["BLAS 2 + fastgd 2 (defaults)"]])
    for name, rs in results.items():
        g, s, tot = (float(np.median([r[i] for r in rs])) for i in range(3))
        print(f"  {name:30s} gradient {g * 1e3:7.2f} ms  step {s * 1e3:6.3f} ms  total {tot * 1e3:7.2f} ms"
              f"  ({tot / base:.2f}x the defaults)")


def _with(ctx, fn):
    with ctx:
        return fn()


def spin(rounds: int) -> None:
    p = np.zeros(1 << 20, np.float32)
    g = np.full_like(p, 1e-3)
    opt = fastgd.Adam([p], lr=1e-3)
    opt.step([g])
    # OpenMP starts its workers at the first parallel region, after this module was imported.
    workers = sorted(set(thread_ids()) - STARTUP_THREADS)
    per_step = []
    for _ in range(rounds):
        c0 = cpu_seconds(workers)
        for _ in range(20):
            opt.step([g])
            time.sleep(0.02)
        per_step.append((cpu_seconds(workers) - c0) / 20)
    print(f"spin: CPU of fastgd's {len(workers)} OpenMP worker(s) per Adam step on 1M float32 standing alone: "
          f"median {np.median(per_step) * 1e3:.2f} ms")


def after_blas(rounds: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1_000_000, 100), dtype=np.float32)
    y = (X @ rng.standard_normal(100).astype(np.float32) > 0).astype(np.int64)
    A = rng.standard_normal((1500, 1500))
    main = os.getpid()
    blas_tids = [t for t in thread_ids() if t != main]  # OpenBLAS starts its pool on import

    def fit() -> float:
        m = fastgd.LogisticRegression(optimizer="adam", lr=0.01, batch_size=256, max_epochs=5, tol=None,
                                      penalty=None, standardize=False, shuffle="batches", random_state=0)
        t0 = time.perf_counter()
        m.fit(X, y)
        return time.perf_counter() - t0

    fit()
    times = {"after a pause": [], "right after a NumPy product": []}
    burnt = []
    for _ in range(rounds):
        time.sleep(0.5)
        times["after a pause"].append(fit())
        A @ A
        c0 = cpu_seconds(blas_tids)
        times["right after a NumPy product"].append(fit())
        burnt.append(cpu_seconds(blas_tids) - c0)
    print(f"after-blas: LogisticRegression fit, 1M x 100 float32, 5 epochs, median over {rounds} rounds")
    base = np.median(times["after a pause"])
    for name, ts in times.items():
        print(f"  {name:30s} {np.median(ts):.3f} s  ({np.median(ts) / base:.2f}x)")
    print(f"  CPU burnt by OpenBLAS's {len(blas_tids)} worker(s) during the fit after a product: "
          f"median {np.median(burnt) * 1e3:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--part", choices=["alternate", "spin", "after-blas", "all"], default="all")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.child:
        for label, extra in (("fastgd's short spin", {}), ("GNU OpenMP's default spin", {"GOMP_SPINCOUNT": "300000"})):
            print(f"=== {label}", flush=True)
            env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
            subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env={**env, **extra}, check=True)
        return
    print(f"fastgd threads {fastgd.get_num_threads()}; BLAS: "
          + ", ".join(f"{i['internal_api']} {i['version']} x{i['num_threads']}"
                      for i in __import__("threadpoolctl").threadpool_info() if i["user_api"] == "blas"))
    if args.part in ("alternate", "all"):
        alternate(args.rounds, args.steps)
    if args.part in ("spin", "all"):
        spin(args.rounds)
    if args.part in ("after-blas", "all"):
        after_blas(args.rounds)


if __name__ == "__main__":
    main()
