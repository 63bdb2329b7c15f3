"""Training on data larger than memory: LogisticRegression on a memory-mapped ``.npy`` file
against the same data as an in-memory array.

Writes an ``n x d`` float32 file (default 1,000,000 x 100: 400 MB) and its labels, reads the
file once so that the page cache is warm, then fits ``LogisticRegression`` (Adam, batch 256,
``--epochs`` epochs, ``tol=None``) in a fresh subprocess per run:

* ``array``: ``np.load(path)`` (the data in anonymous memory; fit standardizes a copy of it),
* ``memmap``: ``np.load(path, mmap_mode="r")`` (streamed in blocks through the shuffle buffer,
  ``--buffer-mb`` of it),

each with ``shuffle=True`` and ``shuffle="batches"``. Runs go in turns, one of each per round,
so that a noisy neighbour slows all alike. Reported per variant (medians over the rounds):
samples per second over the whole fit (the memmap's includes its pass for the
standardization) and over the epochs alone, and the peak growth of RssAnon during the fit
(sampled every 5 ms from /proc/self/status; the file's pages are RssFile and do not count)
with the array's own size apart.

    python bench/bench_stream.py [--n 1000000] [--d 100] [--epochs 2] [--rounds 1]
                                 [--buffer-mb 64] [--dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

_RUN = r"""
import json, sys, threading, time
import numpy as np
from fastgd.models import LogisticRegression
from fastgd.streaming import ChunkStream

def anon_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])

xpath, ypath, kind, shuffle, epochs, buffer_mb = sys.argv[1:7]
shuffle = shuffle == "True" or shuffle
y = np.load(ypath)
base0 = anon_kb()
X = np.load(xpath, mmap_mode="r" if kind == "memmap" else None)
base = anon_kb()
peak = [base]
done = threading.Event()

def watch():
    while not done.is_set():
        peak[0] = max(peak[0], anon_kb())
        time.sleep(0.005)

t = threading.Thread(target=watch, daemon=True)
t.start()
m = LogisticRegression(batch_size=256, max_epochs=int(epochs), tol=None, random_state=0, shuffle=shuffle)
data = ChunkStream(X, y, buffer_size=int(buffer_mb) * 2**20 // (4 * X.shape[1])) if kind == "memmap" else X
t0 = time.perf_counter()
m.fit(data, None if kind == "memmap" else y)
total = time.perf_counter() - t0
done.set()
t.join()
print(json.dumps({"total_s": total, "epochs_s": m.history_.records[-1]["time"], "data_mb": (base - base0) / 1024,
                  "growth_mb": (max(peak[0], anon_kb()) - base) / 1024,
                  "accuracy": float(m.score(X[:100000], y[:100000]))}))
"""


def _write(dirname: str, n: int, d: int) -> tuple[str, str]:
    xpath, ypath = os.path.join(dirname, "X.npy"), os.path.join(dirname, "y.npy")
    X = np.lib.format.open_memmap(xpath, mode="w+", dtype=np.float32, shape=(n, d))
    y = np.empty(n, np.int8)
    rng = np.random.default_rng(0)
    w = rng.normal(size=d).astype(np.float32)
    step = 100_000
    for start in range(0, n, step):
        block = (rng.standard_normal((min(step, n - start), d), dtype=np.float32) * 2 + 1).astype(np.float32)
        X[start:start + len(block)] = block
        y[start:start + len(block)] = (block - 1) @ w + rng.logistic(size=len(block)) > 0
    X.flush()
    del X
    np.save(ypath, y)
    return xpath, ypath


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--buffer-mb", type=int, default=64)
    ap.add_argument("--dir", default=None, help="where to write the data (default: a temporary directory)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        xpath, ypath = _write(tmp, args.n, args.d)
        warm = np.load(xpath, mmap_mode="r")
        for start in range(0, len(warm), 100_000):
            float(warm[start:start + 100_000].sum())  # the page cache is warm for every run
        del warm
        variants = [(kind, shuffle) for shuffle in ("True", "batches") for kind in ("array", "memmap")]
        results: dict[str, list[dict]] = {f"{k} shuffle={s}": [] for k, s in variants}
        for _ in range(args.rounds):
            for kind, shuffle in variants:
                out = subprocess.run([sys.executable, "-c", _RUN, xpath, ypath, kind, shuffle, str(args.epochs),
                                      str(args.buffer_mb)], capture_output=True, text=True, check=True)
                results[f"{kind} shuffle={shuffle}"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    n_trained = args.n * args.epochs
    print(f"LogisticRegression, {args.n} x {args.d} float32 ({args.n * args.d * 4 / 2**20:.0f} MiB), "
          f"{args.epochs} epochs, batch 256, buffer {args.buffer_mb} MiB, median of {args.rounds}")
    print(f"{'variant':28s} {'samples/s fit':>14s} {'samples/s epochs':>17s} {'data MiB':>9s} "
          f"{'peak growth MiB':>16s} {'accuracy':>9s}")
    summary = {}
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        summary[name] = med
        print(f"{name:28s} {n_trained / med['total_s']:14.0f} {n_trained / med['epochs_s']:17.0f} "
              f"{med['data_mb']:9.0f} {med['growth_mb']:16.0f} {med['accuracy']:9.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": summary, "runs": results}, f, indent=1)


if __name__ == "__main__":
    main()
