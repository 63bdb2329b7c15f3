"""The floor of sparse logistic regression on this machine: bare loops in plain C++
(``sparse_floor.cpp``), built here with the system's C++ compiler and called through ctypes.

* ``bare per-row SGD loop``: one row at a time, a dot product over its nonzeros and a scaled
  add of it into the weights (svmsgd's and SGDClassifier's algorithm, without their options):
  the least work per row of any first-order learner;
* ``bare mini-batch Adam loop``: fastgd's default algorithm on sparse X (batches of 32, Adam
  on the batch's features only) without its options, checks and bookkeeping.

Each is one thread, 5 epochs in a random row order per epoch (a NumPy permutation, inside the
timed fit). A learner on ``t`` threads can do at most about ``t`` times the per-row loop's
samples/s, however it is written: that is the bound compare_sparse.py sets the speed targets
against.

    python bench/sparse_floor.py   # both loops on the RCV1-shaped set (320,000 rows), and the
                                   # per-row loop over the rows in their stored order
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "sparse_floor.cpp"
SGD_ROWS = "bare per-row SGD loop (C++, 1 thread)"
ADAM_BATCHES = "bare mini-batch Adam loop (C++, 1 thread)"
SGD_LR = 0.5  # constant; rows of unit norm
ADAM_LR, ADAM_BATCH = 0.01, 32  # fastgd's defaults


def build(out_dir: Path) -> ctypes.CDLL:
    """``sparse_floor.cpp`` compiled into ``out_dir`` (``$CXX`` or ``c++``, -O3) and loaded.
    Raises RuntimeError with the compiler's message if there is no compiler or the build fails."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not cxx:
        raise RuntimeError("no C++ compiler (set CXX)")
    lib = out_dir / "sparse_floor.so"
    done = subprocess.run([cxx, "-O3", "-shared", "-fPIC", "-o", str(lib), str(SOURCE)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cxx} failed: {done.stderr.strip()[:400]}")
    return ctypes.CDLL(str(lib))


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _csr(X) -> tuple:
    if X.dtype != np.float32 or X.indices.dtype != np.int32 or X.indptr.dtype != np.int32:
        raise TypeError("the bare loops take float32 values and int32 indices")
    return _ptr(X.data), _ptr(X.indices), _ptr(X.indptr)


def fit_sgd_rows(lib: ctypes.CDLL, X, y01: np.ndarray, epochs: int, seed: int | None) -> tuple[np.ndarray, float]:
    """(w, b) after ``epochs`` of the per-row loop; seed None: the rows in their stored order."""
    n, d = X.shape
    w, b = np.zeros(d, np.float32), np.zeros(1)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = np.arange(n) if seed is None else rng.permutation(n)
        lib.bare_sgd_rows(*_csr(X), _ptr(y01), _ptr(order), ctypes.c_int64(n), ctypes.c_int64(d), _ptr(w), _ptr(b),
                          ctypes.c_double(SGD_LR))
    return w, float(b[0])


def fit_adam_batches(lib: ctypes.CDLL, X, y01: np.ndarray, epochs: int, seed: int) -> tuple[np.ndarray, float]:
    """(w, b) after ``epochs`` of the mini-batch loop."""
    n, d = X.shape
    w, acc, m, v = (np.zeros(d, np.float32) for _ in range(4))
    seen = np.zeros((d + 63) // 64, np.uint64)
    b = np.zeros(3)  # the intercept and its two moments
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-n // ADAM_BATCH)
    for e in range(epochs):
        order = rng.permutation(n)
        lib.bare_adam_batches(*_csr(X), _ptr(y01), _ptr(order), ctypes.c_int64(n), ctypes.c_int64(d),
                              ctypes.c_int64(ADAM_BATCH),
                              _ptr(w), _ptr(acc), _ptr(m), _ptr(v), _ptr(seen), _ptr(b),
                              ctypes.c_int64(e * steps_per_epoch), ctypes.c_double(ADAM_LR))
    return w, float(b[0])


FITS: dict[str, Callable] = {SGD_ROWS: fit_sgd_rows, ADAM_BATCHES: fit_adam_batches}


def peers(lib: ctypes.CDLL, X, y, Xte, yte, epochs: int, timed: Callable) -> dict[str, Callable[[], tuple]]:
    """The bare loops as compare.run_fits peers: each returns (epochs, held-out accuracy,
    {"fit_s": seconds of the whole fit}). y: labels of two classes (the larger one is 1)."""
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError("the bare loops are binary")
    y01 = (y == classes[1]).astype(np.float32)

    def peer(fit: Callable) -> Callable[[], tuple]:
        def run() -> tuple:
            out: list = []
            fit_s = timed(lambda: out.append(fit(lib, X, y01, epochs, 0)))
            w, b = out[0]
            predicted = np.where(Xte @ w + b > 0, classes[1], classes[0])
            return epochs, float(np.mean(predicted == yte)), {"fit_s": fit_s}
        return run

    return {name: peer(fit) for name, fit in FITS.items()}


def main() -> int:
    sys.path.insert(0, str(HERE))
    from bench_bandwidth import timed

    import fastgd

    X, y = fastgd.datasets.make_sparse_classification(n_samples=400_000)
    n, epochs = 320_000, 5
    Xtr, Xte = X[:n], X[n:]
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(Path(tmp))
        for name, run in peers(lib, Xtr, y[:n], Xte, y[n:], epochs, timed).items():
            _, acc, t = run()
            print(f"{name}: {epochs * n / t['fit_s'] / 1e6:.2f}M samples/s, held-out accuracy {acc:.2%}")
        y01 = (y[:n] == y.max()).astype(np.float32)
        t = timed(lambda: fit_sgd_rows(lib, Xtr, y01, epochs, None))
        print(f"{SGD_ROWS}, the rows in their stored order: {epochs * n / t / 1e6:.2f}M samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
