"""How close is a linear model's fit to the machine's bounds?

LogisticRegression(optimizer="adam", lr=1e-2, batch_size=1024, max_epochs=5) on
make_classification(n, d) in float32, with shuffle=True (a new permutation of the samples
each epoch: every row a random read, fetched ahead by the kernel) and shuffle="batches"
(contiguous batches in a random order), standardize True and False, in memory and on a
memory-mapped file (page cache warm). For each: whole-fit samples/s (median over rounds, the
variants alternating round by round), the epochs' samples/s (from the history's times, the
set-up left out), and beside them

* the kernel's arithmetic in GFLOP/s (4 d K flops a sample: one FMA per element forward and
  one backward; the centring of standardized rows, 4 d more, is listed apart) against the
  machine's FMA peak, measured by a loop of independent FMAs;
* its row reads in GB/s (d * itemsize bytes a sample, plus the target) against the read
  bandwidth of a plain loop over a large array: in order for "batches", rows in a random
  permutation for True.

The two machine loops are C, compiled at start with the system's C compiler (``cc``) for the
level fastgd runs at (``fastgd.simd_level()``), with OpenMP for the 2-thread figures.

    python bench/bench_epoch.py                    # 1M x 100, 3 rounds: about 2 minutes
    python bench/bench_epoch.py --n 200000 --rounds 5
    python bench/bench_epoch.py --no-memmap --no-unstandardized
    python bench/bench_epoch.py --threads 1        # fastgd on one thread (a busy machine)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import fastgd

_LOOPS = r"""
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
typedef float vf __attribute__((vector_size(VBYTES), aligned(4)));
#define L (VBYTES / 4)

/* GFLOP/s of a loop of independent FMAs (16 chains a thread: twice the latency x ports of
   current cores), over `threads` threads. */
double fma_peak(long iters, int threads) {
    double t0 = omp_get_wtime();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
        vf a[16], m, c;
        for (int k = 0; k < 16; ++k) for (int j = 0; j < L; ++j) a[k][j] = (float)(k + j) * 1e-3f;
        for (int j = 0; j < L; ++j) { m[j] = 0.999f; c[j] = 1e-4f; }
        for (long i = 0; i < iters; ++i)
            for (int k = 0; k < 16; ++k) a[k] = a[k] * m + c;
        for (int k = 0; k < 16; ++k) for (int j = 0; j < L; ++j) sink += a[k][j];
    }
    double t = omp_get_wtime() - t0;
    if (sink == 12345.678f) return 0;
    return 2.0 * 16 * L * (double)iters * threads / t / 1e9;
}

static float row_sum(const float* p, size_t d, vf* acc) {
    size_t j = 0;
    for (; j + 4 * L <= d; j += 4 * L) {
        vf x0, x1, x2, x3;
        memcpy(&x0, p + j, sizeof x0); memcpy(&x1, p + j + L, sizeof x1);
        memcpy(&x2, p + j + 2 * L, sizeof x2); memcpy(&x3, p + j + 3 * L, sizeof x3);
        acc[0] += x0; acc[1] += x1; acc[2] += x2; acc[3] += x3;
    }
    for (; j + L <= d; j += L) { vf x; memcpy(&x, p + j, sizeof x); acc[0] += x; }
    float t = 0;
    for (; j < d; ++j) t += p[j];
    return t;
}

/* GB/s reading the n x d float32 rows of X, in order (rows == NULL) or by index, with a
   prefetch of the row `ahead` positions on (0: none). */
double read_rows(const float* X, size_t n, size_t d, const int64_t* rows, int ahead, int threads) {
    double t0 = omp_get_wtime();
    float sink = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : sink)
    for (long b = 0; b < (long)((n + 1023) / 1024); ++b) {
        vf acc[4] = {{0}, {0}, {0}, {0}};
        float t = 0;
        size_t lo = (size_t)b * 1024, hi = lo + 1024 < n ? lo + 1024 : n;
        for (size_t i = lo; i < hi; ++i) {
            size_t r = rows ? (size_t)rows[i] : i;
            if (rows && ahead && i + ahead < n) {
                const char* q = (const char*)(X + (size_t)rows[i + ahead] * d);
                for (size_t o = 0; o < d * 4; o += 64) __builtin_prefetch(q + o);
            }
            t += row_sum(X + r * d, d, acc);
        }
        for (int k = 0; k < 4; ++k) for (int j = 0; j < L; ++j) t += acc[k][j];
        sink += t;
    }
    double s = omp_get_wtime() - t0;
    if (sink == 12345.678f) return 0;
    return (double)n * d * 4 / s / 1e9;
}
"""


def build_loops(level: str) -> ctypes.CDLL:
    flags = {"avx512": ["-mavx512f", "-mfma", "-DVBYTES=64"], "avx2": ["-mavx2", "-mfma", "-DVBYTES=32"]}.get(
        level, ["-DVBYTES=16"])
    tmp = Path(tempfile.mkdtemp(prefix="bench_epoch_"))
    (tmp / "loops.c").write_text(_LOOPS)
    so = tmp / "loops.so"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-ffp-contract=fast", "-fopenmp", "-fPIC", "-shared", *flags,
                    str(tmp / "loops.c"), "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.fma_peak.restype = ctypes.c_double
    lib.fma_peak.argtypes = [ctypes.c_long, ctypes.c_int]
    lib.read_rows.restype = ctypes.c_double
    lib.read_rows.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int,
                              ctypes.c_int]
    return lib


def machine(lib: ctypes.CDLL, X: np.ndarray, rounds: int) -> dict[str, float]:
    """Medians over ``rounds`` of the FMA peak and of read bandwidths, 1 and 2 threads."""
    perm = np.random.default_rng(1).permutation(len(X)).astype(np.int64)
    out: dict[str, list[float]] = {}
    for _ in range(rounds):
        for threads in (1, 2):
            out.setdefault(f"fma_gflops_{threads}t", []).append(lib.fma_peak(20_000_000 // threads, threads))
            n, d = X.shape
            ptr = X.ctypes.data
            out.setdefault(f"read_seq_gbs_{threads}t", []).append(lib.read_rows(ptr, n, d, None, 0, threads))
            out.setdefault(f"read_perm_gbs_{threads}t", []).append(
                lib.read_rows(ptr, n, d, perm.ctypes.data, 0, threads))
            out.setdefault(f"read_perm_prefetch_gbs_{threads}t", []).append(
                lib.read_rows(ptr, n, d, perm.ctypes.data, 16, threads))
    return {k: statistics.median(v) for k, v in out.items()}


def fit_once(X: np.ndarray, y: np.ndarray, shuffle: object, standardize: bool) -> tuple[float, float, float]:
    """(whole-fit seconds, epochs' seconds, accuracy on the first 100k rows)."""
    m = fastgd.LogisticRegression(optimizer="adam", lr=1e-2, batch_size=1024, max_epochs=5, random_state=0,
                                  shuffle=shuffle, standardize=standardize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        m.fit(X, y)
        total = time.perf_counter() - t0
    epochs = float(m.history_["time"][-1])
    return total, epochs, float(m.score(X[:100_000], y[:100_000]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-memmap", action="store_true")
    ap.add_argument("--no-unstandardized", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="fastgd's threads for the fits (default: fastgd's own; the machine loops run both 1 and 2)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "epoch.json"))
    args = ap.parse_args()

    from sklearn.datasets import make_classification

    X, y = make_classification(args.n, args.d, n_informative=min(20, args.d), random_state=0)
    X = np.ascontiguousarray(X, dtype=np.float32)
    level = fastgd.simd_level()
    print(f"simd_level={level}, threads={fastgd.get_num_threads()}, X {X.shape} float32 "
          f"({X.nbytes / 2**20:.0f} MiB), {platform.processor() or platform.machine()}", flush=True)
    mach = machine(build_loops(level), X, args.rounds)
    for k, v in mach.items():
        print(f"  {k:28s} {v:8.1f}")

    variants: list[tuple[str, object, bool, bool]] = []
    for shuffle in (True, "batches"):
        variants.append((f"shuffle={shuffle!s:7s} standardize", shuffle, True, False))
        if not args.no_unstandardized:
            variants.append((f"shuffle={shuffle!s:7s} raw", shuffle, False, False))
        if not args.no_memmap:
            variants.append((f"shuffle={shuffle!s:7s} standardize memmap", shuffle, True, True))
    Xm = None
    if not args.no_memmap:
        path = Path(tempfile.mkdtemp(prefix="bench_epoch_")) / "X.npy"
        np.save(path, X)
        Xm = np.load(path, mmap_mode="r")
        np.asarray(Xm).sum()  # the page cache warm
    times: dict[str, list[tuple[float, float, float]]] = {v[0]: [] for v in variants}
    with fastgd.num_threads(args.threads or fastgd.get_num_threads()):
        threads = fastgd.get_num_threads()
        for r in range(args.rounds):
            for name, shuffle, standardize, mm in variants:
                times[name].append(fit_once(Xm if mm else X, y, shuffle, standardize))
            print(f"  round {r + 1}/{args.rounds} done", flush=True)

    samples = 5 * args.n
    flops_per_sample = 4 * args.d        # K = 1: one FMA forward, one backward per element
    centring_per_sample = 4 * args.d     # two subtractions forward, two backward (standardize)
    bytes_per_sample = 4 * (args.d + 1)  # the row and its target
    threads = max(1, min(2, threads))
    peak, results = mach[f"fma_gflops_{threads}t"], {}
    print(f"\nfits on {threads} thread(s), against the machine loops on as many")
    print(f"\n{'variant':38s} {'fit M/s':>8s} {'epochs M/s':>10s} {'GFLOP/s':>8s} {'% FMA':>6s} {'GB/s':>6s} "
          f"{'% read':>6s} {'acc':>6s}")
    for name, shuffle, standardize, _ in variants:
        total = statistics.median(t[0] for t in times[name])
        epochs = statistics.median(t[1] for t in times[name])
        acc = statistics.median(t[2] for t in times[name])
        fit_rate, epoch_rate = samples / total, samples / epochs
        gflops = epoch_rate * flops_per_sample / 1e9
        gbs = epoch_rate * bytes_per_sample / 1e9
        read = mach[f"read_perm_prefetch_gbs_{threads}t"] if shuffle is True else mach[f"read_seq_gbs_{threads}t"]
        results[name.strip()] = dict(fit_samples_per_s=fit_rate, epoch_samples_per_s=epoch_rate, gflops=gflops,
                                     centring_gflops=epoch_rate * centring_per_sample / 1e9 if standardize else 0.0,
                                     fma_fraction=gflops / peak, read_gbs=gbs, read_fraction=gbs / read,
                                     accuracy=acc)
        print(f"{name:38s} {fit_rate / 1e6:8.2f} {epoch_rate / 1e6:10.2f} {gflops:8.2f} {100 * gflops / peak:5.1f}% "
              f"{gbs:6.2f} {100 * gbs / read:5.1f}% {acc:6.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"simd_level": level, "threads": threads, "n": args.n, "d": args.d,
                               "rounds": args.rounds, "machine": mach, "results": results,
                               "python": sys.version.split()[0]}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
