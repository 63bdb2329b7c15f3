"""The parts of a default ``fit`` around the epoch kernel, old way against new, in turns.

For ``LogisticRegression(optimizer="adam", lr=1e-2, batch_size=1024, max_epochs=5,
random_state=0)`` on ``make_classification(1_000_000, 100, n_informative=20,
random_state=0)`` as float32 (issue 14's case), medians over the rounds, each round timing
every variant once (so that a noisy neighbour slows all alike):

* ``permutation``: one epoch's order for ``shuffle=True``: NumPy's ``Generator.permutation``
  (before) against ``fastgd.shuffling.permutation`` into a kept buffer (now);
* ``before training``: the checks and moments of X: ``check_X`` (a finite read) then
  ``weighted_moments`` over an array of n ones (a second read, weighted) (before), against
  ``check_X(finite=False)`` and the moments' unweighted read finding the non-finite values
  (now); against ``read``, fastgd's 1-norm of X (one read of every byte on every thread:
  the bandwidth the pass is measured against);
* ``fit``: the whole ``fit()`` with default arguments, in samples per second (5 epochs).

    python bench/bench_fit_path.py                      # generates the data (sklearn)
    python bench/bench_fit_path.py --X X.npy --y y.npy  # or loads it
    python bench/bench_fit_path.py --rounds 9 --threads 2

``--fit-only`` times the whole fit alone, with any build of fastgd (an earlier one has no
``fastgd.shuffling.permutation``): builds compared in alternating processes,

    for i in 1 2 3; do for p in OLD/python NEW/python; do
        PYTHONPATH=$p python bench/bench_fit_path.py --X X.npy --y y.npy --fit-only; done; done
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

import fastgd
from fastgd import _core
from fastgd.models import LogisticRegression
from fastgd.models._base import check_X
from fastgd.models._data import weighted_moments
from fastgd.models._inputs import unit_weights


def timed(parts: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(rounds):
        for name, run in parts.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--X", help="an .npy of float32 X (default: make_classification)")
    ap.add_argument("--y", help="an .npy of y")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--fit-rounds", type=int, default=5)
    ap.add_argument("--fit-only", action="store_true", help="time the whole fit only (any build)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*reached max_epochs")  # 5 epochs, as the case says
    fastgd.set_num_threads(args.threads)
    if args.X:
        X, y = np.load(args.X), np.load(args.y)
    else:
        from sklearn.datasets import make_classification

        X, y = make_classification(args.rows, 100, n_informative=20, random_state=0)
        X = X.astype(np.float32)
    n = len(X)
    print(f"X {X.shape[0]} x {X.shape[1]} {X.dtype} ({X.nbytes / 1e6:.0f} MB), {args.threads} threads, "
          f"simd {fastgd.simd_level()}, medians of {args.rounds} rounds (fit: {args.fit_rounds}), "
          f"fastgd from {fastgd.__file__}")
    if not args.fit_only:
        parts(X, args.rounds)

    def fit() -> object:
        return LogisticRegression(optimizer="adam", lr=1e-2, batch_size=1024, max_epochs=5, random_state=0).fit(X, y)

    fit()  # warm-up (first-touch of the kernels' buffers, thread team)
    t = timed({"fit": fit}, args.fit_rounds)["fit"]
    print(f"fit(): {t:.3f} s = {5 * n / t / 1e6:.1f}M samples/s (5 epochs)")


def parts(X: np.ndarray, rounds: int) -> None:
    """The permutation and the time before training, before and now."""
    from fastgd.shuffling import permutation

    n = len(X)

    rng_old, rng_new = np.random.default_rng(0), np.random.default_rng(0)
    buf = np.empty(n, np.int64)
    perm = timed({"numpy": lambda: rng_old.permutation(n), "fastgd": lambda: permutation(rng_new, n, buf)},
                 rounds)
    print(f"permutation of {n}: numpy {perm['numpy'] * 1e3:.2f} ms, fastgd {perm['fastgd'] * 1e3:.2f} ms "
          f"({perm['numpy'] / perm['fastgd']:.1f}x)")

    sw = unit_weights(n)
    flat = X.reshape(-1)

    def before() -> object:
        # As before: a finite read, then the moments with the unit weights made into an array
        # of n ones (the kernel's weighted pass).
        return weighted_moments(check_X(X), np.ascontiguousarray(sw))

    def now() -> object:
        return weighted_moments(check_X(X, finite=False), sw, check="X")

    pre = timed({"read": lambda: _core.total_norm([flat], 1.0), "before": before, "now": now}, rounds)
    gb = X.nbytes / 1e9
    for name, t in pre.items():
        print(f"before training, {name:<7}{t * 1e3:8.1f} ms {gb / t:7.1f} GB/s  {pre['read'] / t:5.2f} of a read")
    print(f"before training: now {pre['before'] / pre['now']:.2f}x faster than before")


if __name__ == "__main__":
    main()
