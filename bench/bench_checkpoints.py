"""What a checkpoint costs, and what ``checkpoint_every`` saves.

1. One write (``fastgd.persistence.save``, as ``fit(checkpoint=...)`` does after an epoch) of
   a small model (LogisticRegression, 100 features) and a medium one (MLPClassifier
   100-256-256-10, Adam): the median time, the file's size and the share of it spent outside
   the two fsyncs (building the metadata and the ``.npz``, the rename).
2. ``fit`` for ``--epochs`` epochs without a checkpoint and with ``checkpoint_every`` 1, 5 and
   20: the median time of each and the overhead per epoch against no checkpoint.

Variants are timed in turns (one run each per round), so that a noisy neighbour slows all
alike; figures are medians over the rounds. The syncs' cost belongs to the file system and
the disk (and everything else writing to it): run it on the disk the checkpoints go to.

    python bench/bench_checkpoints.py [--dir DIR] [--rounds 15] [--epochs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from contextlib import contextmanager

import fastgd
from fastgd import datasets, persistence
from fastgd.models import LogisticRegression, MLPClassifier


@contextmanager
def _no_fsync():
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def _models():
    Xc, yc = datasets.make_classification(n_samples=2000, n_features=100, n_classes=2, random_state=0)
    Xm, ym = datasets.make_classification(n_samples=2000, n_features=100, n_classes=10, random_state=0)
    small = (LogisticRegression, {"random_state": 0, "tol": None}, Xc, yc)
    medium = (MLPClassifier, {"hidden_layer_sizes": (256, 256), "random_state": 0, "tol": None}, Xm, ym)
    return {"logistic 100": small, "MLP 100-256-256-10": medium}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=".", help="where the checkpoints are written (default: here)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    warnings.simplefilter("ignore", fastgd.models.ConvergenceWarning)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = os.path.join(d, "ck.npz")
        print(f"fastgd {fastgd.__version__}, checkpoints in {os.path.abspath(args.dir)}\n")
        print(f"{'model':<20} {'write ms':>9} {'no-fsync ms':>12} {'file kB':>8}")
        for name, (cls, params, X, y) in _models().items():
            model = cls(max_epochs=1, **params).fit(X, y)
            full, nosync = [], []
            for _ in range(3 * args.rounds):
                t0 = time.perf_counter()
                persistence.save(model, path)
                full.append(time.perf_counter() - t0)
                with _no_fsync():
                    t0 = time.perf_counter()
                    persistence.save(model, path)
                    nosync.append(time.perf_counter() - t0)
            print(f"{name:<20} {statistics.median(full) * 1e3:9.2f} {statistics.median(nosync) * 1e3:12.2f} "
                  f"{os.path.getsize(path) / 1e3:8.0f}")
        print(f"\nfit, {args.epochs} epochs: median ms (overhead per epoch against no checkpoint)")
        variants = [None, 1, 5, 20]
        for name, (cls, params, X, y) in _models().items():
            times: dict[int | None, list[float]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for every in variants:
                    kw = {} if every is None else {"checkpoint": path, "checkpoint_every": every}
                    model = cls(max_epochs=args.epochs, **params)
                    t0 = time.perf_counter()
                    model.fit(X, y, **kw)
                    times[every].append(time.perf_counter() - t0)
            base = statistics.median(times[None])
            cells = [f"none {base * 1e3:.0f}"]
            for every in variants[1:]:
                t = statistics.median(times[every])
                cells.append(f"every {every}: {t * 1e3:.0f} (+{(t - base) / args.epochs * 1e3:.2f})")
            print(f"{name:<20} " + ", ".join(cells))


if __name__ == "__main__":
    main()
