"""How long does ``fastgd.io.read_csv`` (behind ``fastgd train`` and ``predict``) take on wide
and on tall files, and does its time grow linearly with the number of cells?

For each shape (columns x rows) a file of random numbers is written to a temporary directory,
then read ``--rounds`` times, the shapes in turns so that a noisy neighbour slows all alike.
Prints the median time and the time per million cells; a reader linear in the size keeps the
last figure about constant from row to row.

    python bench/bench_csv.py [--rounds 5] [--out bench/results/bench_csv.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

import fastgd
from fastgd import io

#: (columns, rows): three rows of ever more columns, then the same 300,000 cells as a tall file.
SHAPES = [(10_000, 3), (40_000, 3), (100_000, 3), (10, 30_000)]


def _write(path: str, n_cols: int, n_rows: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write(",".join([f"f{j}" for j in range(n_cols)] + ["y"]) + "\n")
        for i in range(n_rows):
            f.write(",".join(f"{v:.6f}" for v in rng.standard_normal(n_cols)) + f",{i % 2}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_csv.json"))
    args = ap.parse_args()
    times: dict[tuple[int, int], list[float]] = {s: [] for s in SHAPES}
    with tempfile.TemporaryDirectory() as d:
        paths = {s: os.path.join(d, f"{s[0]}x{s[1]}.csv") for s in SHAPES}
        for s, p in paths.items():
            _write(p, *s)
        for _ in range(args.rounds):
            for s, p in paths.items():
                t0 = time.perf_counter()
                table = io.read_csv(p, "y")
                times[s].append(time.perf_counter() - t0)
                assert table.X.shape == (s[1], s[0])
    print(f"fastgd {fastgd.__version__}, NumPy {np.__version__}, median of {args.rounds}\n")
    print(f"{'columns':>8} {'rows':>7} {'read s':>8} {'s per M cells':>14}")
    results = []
    for (cols, rows), ts in times.items():
        med = statistics.median(ts)
        per_m = med / (cols * rows) * 1e6
        print(f"{cols:>8,} {rows:>7,} {med:8.3f} {per_m:14.2f}")
        results.append({"columns": cols, "rows": rows, "median_s": med, "s_per_million_cells": per_m, "times": ts})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"fastgd": fastgd.__version__, "numpy": np.__version__, "results": results}, f, indent=1)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
