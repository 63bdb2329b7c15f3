"""The standardization's statistics pass against a plain read of the same bytes.

For a float32 X (default 1M x 100, 400 MB) and sample weights of 1, timed in turns (one call
each per round, so that a noisy neighbour slows all alike), medians over the rounds:

* ``read``: fastgd's 1-norm of X (``total_norm``): one read of every byte, summed in double
  on every thread, the bandwidth-bound pass the statistics are measured against;
* ``finite``: ``_core.find_nonfinite``, the finite check alone (one read, nothing allocated);
* ``stats``: ``_core.column_moments`` in the blocks ``weighted_moments`` uses: the means,
  variances and finite check in one read;
* ``weighted_moments``: the same through the Python function the estimators call;
* ``old``: the previous implementation (NumPy in float64, block by block: each block
  converted, centred and squared in temporaries), kept here for the comparison.

Prints GB/s (bytes of X per second) and each pass's fraction of the read's bandwidth, and
checks that old and new agree (rtol 1e-9).

    python bench/bench_column_stats.py                 # 1M x 100 float32, 2 threads
    python bench/bench_column_stats.py --rows 200000 --threads 1 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastgd
from fastgd import _core
from fastgd.models._data import weighted_moments
from fastgd.streaming import DEFAULT_CHUNK_BYTES


def old_block_moments(a: np.ndarray, w: np.ndarray, block_bytes: int = DEFAULT_CHUNK_BYTES
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The previous weighted_moments (for finite, ordinary data): each block's mean and
    variance in float64 by NumPy, merged by Chan et al.'s formulas."""
    step = max(1, block_bytes // (a.shape[1] * a.dtype.itemsize))
    W, mean, var = 0.0, None, None
    for start in range(0, len(a), step):
        blk, wb = a[start:start + step].astype(np.float64), w[start:start + step]
        ws = float(wb.sum())
        p = wb / ws
        m = p @ blk
        blk -= m
        v = np.maximum(p @ np.square(blk, out=blk), 0.0)
        if mean is None or var is None:
            W, mean, var = ws, m, v
            continue
        total = W + ws
        delta = m - mean
        var = np.maximum((W * var + ws * v + delta**2 * (W * ws / total)) / total, 0.0)
        mean = mean + delta * (ws / total)
        W = total
    assert mean is not None and var is not None
    return mean, np.sqrt(var)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=100)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    fastgd.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((args.rows, args.cols), dtype=np.float32) * 3 + 1).astype(args.dtype)
    w = np.ones(args.rows)
    block_rows = max(1, DEFAULT_CHUNK_BYTES // (args.cols * X.dtype.itemsize))
    flat = X.reshape(-1)
    passes = {
        "read": lambda: _core.total_norm([flat], 1.0),
        "finite": lambda: _core.find_nonfinite(X),
        "stats": lambda: _core.column_moments(X, w, block_rows),
        "weighted_moments": lambda: weighted_moments(X, w),
        "old": lambda: old_block_moments(X, w),
    }
    new, old = weighted_moments(X, w), old_block_moments(X, w)
    for a, b in zip(new, old):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    times: dict[str, list[float]] = {k: [] for k in passes}
    for _ in range(args.rounds):
        for name, run in passes.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    gb = X.nbytes / 1e9
    print(f"X {args.rows} x {args.cols} {args.dtype} ({X.nbytes / 1e6:.0f} MB), {args.threads} threads, "
          f"simd {fastgd.simd_level()}, median of {args.rounds} rounds")
    print(f"{'pass':<18}{'ms':>9}{'GB/s':>9}{'of read':>9}{'vs old':>9}")
    for name, t in med.items():
        print(f"{name:<18}{t * 1e3:>9.1f}{gb / t:>9.1f}{med['read'] / t:>9.2f}{med['old'] / t:>9.1f}")


if __name__ == "__main__":
    main()
