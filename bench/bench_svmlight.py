"""How fast does ``fastgd.io.read_svmlight`` (behind ``fastgd train`` on an svmlight file)
parse, and how does it compare with scikit-learn's compiled ``load_svmlight_file``?

A file of ``--rows`` lines with ``--nnz`` values each, indices drawn from 1 to
``--features`` (1,000,000 by default: the width that rules out a dense matrix), is written to a
temporary directory, then read ``--rounds`` times by each reader in turns, so that a noisy
neighbour slows all alike. Prints the median time, MB/s and lines/s of each, after checking
that both give the same matrix.

    python bench/bench_svmlight.py [--rows 200000] [--nnz 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import fastgd
from fastgd import io


def write_file(path: str, rows: int, nnz: int, features: int, seed: int = 0) -> None:
    """``rows`` lines ``label i:v ...`` with ``nnz`` distinct sorted 1-based indices each."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            idx = np.sort(rng.choice(features, size=(n, nnz), replace=True), axis=1) + 1
            vals = rng.standard_normal((n, nnz)).round(6)
            labels = rng.integers(0, 2, n) * 2 - 1
            for label, i, v in zip(labels, idx.tolist(), vals.tolist()):
                pairs = dict(zip(i, v))  # a repeated draw keeps one value
                f.write(f"{label} " + " ".join(f"{k}:{x}" for k, x in pairs.items()) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--nnz", type=int, default=20)
    ap.add_argument("--features", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    try:
        from sklearn.datasets import load_svmlight_file
    except ImportError:
        load_svmlight_file = None
    readers = {"fastgd.io.read_svmlight": lambda p: io.read_svmlight(p).X}
    if load_svmlight_file is not None:
        readers["sklearn load_svmlight_file"] = lambda p: load_svmlight_file(p, n_features=args.features)[0]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.svm")
        write_file(path, args.rows, args.nnz, args.features)
        mb = os.path.getsize(path) / 1e6
        results = {name: read(path) for name, read in readers.items()}
        ours = results.pop("fastgd.io.read_svmlight")
        for name, X in results.items():
            assert (ours != X[:, :ours.shape[1]]).nnz == 0, f"{name} reads another matrix"
        times: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(args.rounds):
            for name, read in readers.items():
                t0 = time.perf_counter()
                read(path)
                times[name].append(time.perf_counter() - t0)
    print(f"fastgd {fastgd.__version__}, NumPy {np.__version__}: {args.rows:,} lines x {args.nnz} values, "
          f"indices up to {args.features:,}, {mb:.1f} MB; median of {args.rounds}\n")
    print(f"{'reader':<28} {'s':>7} {'MB/s':>7} {'lines/s':>10}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<28} {med:7.3f} {mb / med:7.1f} {args.rows / med:10,.0f}")


if __name__ == "__main__":
    main()
