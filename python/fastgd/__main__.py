"""``python -m fastgd``: a short demonstration on built-in synthetic data.

Fits a least-squares linear model (fixed seed, 20,000 samples x 100 features) with
mini-batch steps of several update rules, and prints the loss curve of each against the
exact least-squares optimum, with the SIMD level and thread count in use.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastgd as fg


def _data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    y = X @ w + 0.1 * rng.standard_normal(n).astype(np.float32)
    return X, y


def _fit(rule: str, options: dict, X: np.ndarray, y: np.ndarray, epochs: int, batch: int) -> tuple[list, float]:
    n, d = X.shape
    w = np.zeros(d, np.float32)
    b = np.zeros(1, np.float32)
    opt = getattr(fg, rule)([w, b], **options)
    rng = np.random.default_rng(0)
    gw = np.empty_like(w)
    gb = np.empty_like(b)
    losses = []
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            r = X[idx] @ w + b[0] - y[idx]          # residuals of the mean squared error / 2
            np.matmul(r, X[idx], out=gw)
            gw /= len(idx)
            gb[0] = r.mean()
            opt.step([gw, gb])
        losses.append(float(0.5 * np.mean((X @ w + b[0] - y) ** 2)))
    return losses, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fastgd", description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--features", type=int, default=100)
    args = ap.parse_args(argv)

    X, y = _data(args.samples, args.features, seed=42)
    A = np.c_[X, np.ones(len(X), np.float32)].astype(np.float64)
    coef, *_ = np.linalg.lstsq(A, y.astype(np.float64), rcond=None)
    best = float(0.5 * np.mean((A @ coef - y) ** 2))
    print(f"fastgd {fg.__version__}: SIMD level {fg.simd_level()}, {fg.get_num_threads()} thread(s)")
    print(f"least squares on {args.samples} x {args.features} synthetic samples; "
          f"exact optimum loss {best:.6f}\n")
    print(f"{'rule':<44}" + "".join(f"{'epoch ' + str(e + 1):>12}" for e in range(args.epochs)) + f"{'time':>10}")
    rules = [
        ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
        ("Adam", {"lr": 0.01}),
        ("AdamW", {"lr": 0.01, "weight_decay": 1e-4}),
        ("RMSprop", {"lr": 0.005}),
        ("Adagrad", {"lr": 0.3}),
        ("NAdam", {"lr": 0.01}),
        ("RAdam", {"lr": 0.02}),
        ("Lion", {"lr": 0.005}),
    ]
    for rule, options in rules:
        losses, seconds = _fit(rule, options, X, y, args.epochs, args.batch_size)
        label = rule + "(" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
        print(f"{label:<44}" + "".join(f"{v:>12.6f}" for v in losses) + f"{seconds:>9.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
