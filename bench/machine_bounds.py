"""The machine's bounds, measured in the same run as the figures that compare.py sets
against them:

* read-only memory bandwidth: a float32 sum over an array far larger than the caches, by
  ``machine_peak.cpp`` (vector loads, 8 independent sums per thread, OpenMP), or NumPy's
  ``a.sum()`` when no C++ compiler is found (say which: ``source``);
* the float32 FMA peak: 12 independent FMA chains per thread on full vectors, by
  ``machine_peak.cpp`` (none without a compiler);
* rows read in a random order: rows of a given width (a logistic regression's) summed in the
  order of a random permutation, with software prefetch a few rows ahead, by
  ``machine_peak.cpp`` (none without a compiler): the bound of an epoch that shuffles its
  samples, whose rows come from all over memory;
* SGEMM: NumPy's float32 ``matmul`` (its BLAS) on a large square product, and on the
  products of one MLP training step (forward, and backward for the weights and the inputs),
  also on every thread at once with BLAS on one thread each, as fastgd's MLP computes them.
  The SGEMM peak on N threads is the best of all of them on at most N threads.

Peaks are the best repetition (a peak is what the machine can do); medians are kept beside
them. ``machine_peak.cpp`` is compiled into a temporary directory on every run, so that the
figures always come from the source next to this file.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PEAK_SOURCE = HERE / "machine_peak.cpp"
CXX_FLAGS = ("-O3", "-march=native", "-fopenmp", "-ffp-contract=fast", "-std=c++17")


def note(msg: str) -> None:
    print(f"note: {msg}", flush=True)


def build_peak_program(directory: str) -> Path | None:
    """``machine_peak.cpp`` compiled into ``directory`` ($CXX, else c++ / g++ / clang++), or
    None (with a note) when there is no compiler or the build fails."""
    cxx = os.environ.get("CXX") or next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    if cxx is None:
        note("no C++ compiler found: no FMA peak; read bandwidth from NumPy")
        return None
    exe = Path(directory) / "machine_peak"
    done = subprocess.run([cxx, *CXX_FLAGS, "-o", str(exe), str(PEAK_SOURCE)], capture_output=True, text=True)
    if done.returncode != 0:
        note(f"building machine_peak.cpp with {cxx} failed: no FMA peak; read bandwidth from NumPy\n"
             f"{done.stderr.strip()[-400:]}")
        return None
    return exe


def run_peak(exe: Path, *args: object) -> dict:
    done = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def best_and_median(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """(best, median) seconds of ``reps`` calls, after one untimed call."""
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts), statistics.median(ts)


def numpy_read_bandwidth(mib: int, threads: int, reps: int) -> dict:
    """``a.sum()`` over float32 slices, one per Python thread (NumPy releases the GIL)."""
    a = np.ones(mib * 2**20 // 4, np.float32)
    parts = np.array_split(a, threads)
    pool = ThreadPoolExecutor(threads)
    try:
        best, med = best_and_median(lambda: list(pool.map(np.sum, parts)), reps)
    finally:
        pool.shutdown()
    return {"best": a.nbytes / best / 1e9, "median": a.nbytes / med / 1e9}


def read_bandwidth(exe: Path | None, mib: int, threads: int, reps: int) -> dict:
    if exe is not None:
        r = run_peak(exe, "read", mib, threads, reps)
        return {"source": "C++ float32 sum (machine_peak.cpp)", "threads": threads, "mib": mib,
                "best_gbs": r["best"], "median_gbs": r["median"]}
    r = numpy_read_bandwidth(mib, threads, reps)
    return {"source": "NumPy float32 a.sum()", "threads": threads, "mib": mib, "best_gbs": r["best"],
            "median_gbs": r["median"]}


def fma_peak(exe: Path | None, threads: int, reps: int) -> dict | None:
    if exe is None:
        return None
    r = run_peak(exe, "fma", threads, reps)
    return {"source": f"C++ FMA chains, {r['lanes']} float32 lanes (machine_peak.cpp)", "threads": threads,
            "best_gflops": r["best"], "median_gflops": r["median"], "lanes": r["lanes"]}


def random_rows(exe: Path | None, mib: int, floats: int, threads: int, reps: int) -> dict | None:
    if exe is None:
        return None
    r = run_peak(exe, "rows", mib, floats, threads, reps)
    row_bytes = 4 * floats
    return {"source": f"C++ rows of {floats} float32 in a random order (machine_peak.cpp)", "threads": threads,
            "mib": mib, "floats": floats, "best_gbs": r["best"], "median_gbs": r["median"],
            "best_ns_per_row": row_bytes / r["best"]}


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """NumPy's BLAS on ``n`` threads (threadpoolctl), or as it is when that is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def mlp_products(layers: list[int], batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of each product of one training step of a dense network ``layers`` on a
    batch: forward ``(b, in) @ (in, out)``, the weights' gradients ``(in, b) @ (b, out)``,
    and the inputs' gradients ``(b, out) @ (out, in)`` for every layer but the first."""
    out = []
    for i, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:])):
        out += [(batch, fan_in, fan_out), (fan_in, batch, fan_out)]
        if i > 0:
            out.append((batch, fan_out, fan_in))
    return out


def mlp_flops_per_sample(layers: list[int]) -> int:
    """Multiply-adds x 2 of one sample's forward and backward pass (the products only)."""
    return sum(2 * m * k * n for m, k, n in mlp_products(layers, 1))


def sgemm_rate(shapes: list[tuple[int, int, int]], threads: int, reps: int, split: bool = False) -> dict:
    """GFLOP/s of float32 ``matmul`` over ``shapes`` (all of them per call), BLAS on
    ``threads``; or with ``split``, ``threads`` Python threads each doing all of them on
    their own operands with BLAS on one thread (NumPy releases the GIL), as fastgd's MLP
    trains the halves of a batch."""
    rng = np.random.default_rng(0)
    copies = threads if split else 1
    ops = [[(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32),
             np.empty((m, n), np.float32)) for m, k, n in shapes] for _ in range(copies)]
    flops = copies * sum(2 * m * k * n for m, k, n in shapes)
    calls = max(1, int(2e8 // flops))  # at least ~0.2 GFLOP per timed sample

    def many(mine: list) -> None:
        for _ in range(calls):
            for a, b, c in mine:
                np.matmul(a, b, out=c)

    pool = ThreadPoolExecutor(copies) if split else None
    try:
        with blas_threads(1 if split else threads):
            if pool is not None:
                best, med = best_and_median(lambda: list(pool.map(many, ops)), reps)
            else:
                best, med = best_and_median(lambda: many(ops[0]), reps)
    finally:
        if pool is not None:
            pool.shutdown()
    return {"threads": threads, "split": split, "best_gflops": flops * calls / best / 1e9,
            "median_gflops": flops * calls / med / 1e9}


def measure(threads: int, quick: bool, mlp_layers: list[int], mlp_batch: int, row_floats: int | None = None) -> dict:
    """Every bound, on 1 thread and on ``threads`` (random rows: of ``row_floats`` float32, when given)."""
    reps = 5 if quick else 9
    mib = 512 if quick else 1024
    square = 1024 if quick else 2048
    counts = sorted({1, threads})
    out: dict = {"read": [], "fma": [], "sgemm_square": [], "mlp_products": [], "random_rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_peak_program(tmp)
        for t in counts:
            out["read"].append(read_bandwidth(exe, mib, t, reps))
        if row_floats is not None:
            for t in counts:
                rows = random_rows(exe, mib, row_floats, t, reps)
                if rows is not None:
                    out["random_rows"].append(rows)
        for t in counts:
            out["sgemm_square"].append(sgemm_rate([(square, square, square)], t, reps) | {"n": square})
        # fastgd's MLP trains each part of a batch (batch / threads rows) on a thread of its
        # own, BLAS on one thread: those products, on every thread at once, are its bound.
        part = max(1, mlp_batch // threads)
        out["mlp_products"].append(sgemm_rate(mlp_products(mlp_layers, mlp_batch), 1, reps) | {"batch": mlp_batch})
        for t in counts:
            rate = sgemm_rate(mlp_products(mlp_layers, part), t, reps, split=True)
            out["mlp_products"].append(rate | {"batch": part})
        # The FMA peak last, twice as many repetitions: a peak is the best moment.
        for t in counts:
            f = fma_peak(exe, t, 2 * reps)
            if f is not None:
                out["fma"].append(f)
    out["mlp_flops_per_sample"] = mlp_flops_per_sample(mlp_layers)
    out["mlp_layers"] = mlp_layers
    return out


def sgemm_peak(b: dict, threads: int) -> dict | None:
    """The best SGEMM rate measured on at most ``threads`` threads, any shape."""
    return bound(b["sgemm_square"] + b["mlp_products"], threads, "best_gflops")


def bound(rows: list[dict], threads: int, key: str) -> dict | None:
    """The bound on ``threads`` threads: the best ``key`` measured on at most that many (on a
    busy machine a second thread can lose to a neighbour, but N threads can always do what
    fewer do)."""
    return max((r for r in rows if r["threads"] <= threads), key=lambda r: r[key], default=None)


def print_bounds(b: dict, simd: str) -> None:
    print(f"\n### The machine's bounds (SIMD {simd})\n")
    print("| bound | threads | best | median | how |")
    print("| --- | ---: | ---: | ---: | --- |")
    for r in b["read"]:
        print(f"| read bandwidth, {r['mib']} MiB | {r['threads']} | {r['best_gbs']:.1f} GB/s | "
              f"{r['median_gbs']:.1f} GB/s | {r['source']} |")
    for r in b.get("random_rows", []):
        print(f"| rows of {r['floats']} float32 in a random order, {r['mib']} MiB | {r['threads']} | "
              f"{r['best_gbs']:.1f} GB/s ({r['best_ns_per_row']:.1f} ns per row) | {r['median_gbs']:.1f} GB/s | "
              f"{r['source']} |")
    for r in b["fma"]:
        print(f"| float32 FMA peak | {r['threads']} | {r['best_gflops']:.1f} GFLOP/s | "
              f"{r['median_gflops']:.1f} GFLOP/s | {r['source']} |")
    for r in b["sgemm_square"]:
        print(f"| SGEMM {r['n']}^3 | {r['threads']} | {r['best_gflops']:.1f} GFLOP/s | "
              f"{r['median_gflops']:.1f} GFLOP/s | NumPy float32 matmul |")
    layers = " -> ".join(map(str, b["mlp_layers"]))
    for r in b["mlp_products"]:
        how = f"batch {r['batch']} on each thread" if r["split"] else f"batch {r['batch']}"
        print(f"| SGEMM, one MLP {layers} step's products, {how} | {r['threads']} | "
              f"{r['best_gflops']:.1f} GFLOP/s | {r['median_gflops']:.1f} GFLOP/s | NumPy float32 matmul |")
    if not b["fma"]:
        print("\n(no FMA peak: machine_peak.cpp could not be built)")
