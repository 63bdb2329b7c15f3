"""Where an MLP's training time goes, and how close it comes to the machine's SGEMM peak.

A 100-256-256-10 ReLU network, 3 epochs of Adam (batch 256, lr 1e-3) on 200,000 x 100
float32 samples of 10 classes (scikit-learn's ``make_classification``): fastgd's
``MLPClassifier`` (standardizing, the default, and ``standardize=False`` as compare.py runs
it) next to the same PyTorch loop as compare.py, on the same thread count, in turns; then
NumPy's SGEMM (a large square product and the products of one training step) on that many
threads, and the fraction of that peak a training step reaches: forward and backward FLOPs
per sample (2 per multiply-add) times the samples per second of the whole fit. Last, where
one step's time goes: a block of the batch (its products alone, and all of its compiled
step), the optimizer's step and the gradient norm, per call.

    python bench/bench_mlp_step.py [--threads 2] [--repeats 5] [--n 200000] [--out PATH]

Medians of wall time and of the process's CPU time (which a busy machine inflates less),
written as JSON too (default bench/results/bench_mlp_step.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import fastgd

sys.path.insert(0, str(Path(__file__).parent))

D, HIDDEN, K, EPOCHS, BATCH, LR = 100, (256, 256), 10, 3, 256, 1e-3


def flops_per_sample(sizes: list[int]) -> int:
    """Forward (every layer's product) and backward (the weight gradients, and the input
    gradients of all layers but the first): 2 FLOPs per multiply-add."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 2 * (2 * sum(a * b for a, b in pairs) + sum(a * b for a, b in pairs[1:]))


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=D, n_informative=30, n_classes=K, random_state=0)
    return X.astype(np.float32), y.astype(np.int64)


def peers(X: np.ndarray, y: np.ndarray) -> dict:
    def fastgd_fit(standardize: bool):
        def fit():
            fastgd.MLPClassifier(HIDDEN, optimizer="adam", lr=LR, batch_size=BATCH, max_epochs=EPOCHS, alpha=0.0,
                                 tol=None, standardize=standardize, random_state=0).fit(X, y)
        return fit

    out = {"fastgd MLPClassifier": fastgd_fit(True), "fastgd MLPClassifier, standardize=False": fastgd_fit(False)}
    try:
        import torch
    except ImportError:
        return out
    from compare import torch_train

    torch.set_num_threads(fastgd.get_num_threads())
    # As compare.py gives it: standardized once beforehand.
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)

    def torch_fit():
        torch.manual_seed(0)
        nn = torch.nn
        model = nn.Sequential(nn.Linear(D, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                              nn.Linear(HIDDEN[1], K))
        torch_train(torch, model, nn.CrossEntropyLoss(), Xs, y, EPOCHS, BATCH, LR, 0)

    out["PyTorch (compare.py's loop)"] = torch_fit
    return out


def gflops(fn, flops: float, seconds: float = 1.0) -> dict[str, float]:
    """The best rates of ``fn`` over 5 timings of about ``seconds`` / 5 each: by wall time,
    and per CPU-second of the process (what a busy machine's waiting does not count)."""
    fn()
    t = time.perf_counter()
    fn()
    reps = max(1, int(seconds / 5 / max(time.perf_counter() - t, 1e-6)))
    best_wall = best_cpu = float("inf")
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(reps):
            fn()
        best_wall = min(best_wall, (time.perf_counter() - t) / reps)
        best_cpu = min(best_cpu, max(time.process_time() - c, 1e-9) / reps)
    return {"wall": flops / best_wall / 1e9, "cpu": flops / best_cpu / 1e9}


def sgemm_peak(threads: int) -> dict:
    """NumPy's SGEMM on ``threads`` BLAS threads: a 2048 square product, and one training
    step's products at batch 256 and at its halves (128 rows, which fastgd's two threads run
    side by side on one BLAS thread each)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    out = {}
    with threadpool_limits(threads, user_api="blas"):
        n = 2048
        A, B = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        C = np.empty_like(A)
        out["square 2048"] = gflops(lambda: np.matmul(A, B, out=C), 2 * n**3)
    sizes = [D, *HIDDEN, K]
    for rows, blas_threads in ((BATCH, threads), (BATCH // 2, 1)):
        a = [rng.standard_normal((rows, s), dtype=np.float32) * 0.1 for s in sizes]
        W = [rng.standard_normal((p, q), dtype=np.float32) * 0.1 for p, q in zip(sizes[:-1], sizes[1:])]
        gW = [np.empty_like(w) for w in W]
        d = [np.empty((rows, s), np.float32) for s in sizes]

        def step(a=a, W=W, gW=gW, d=d):
            for i, w in enumerate(W):
                np.matmul(a[i], w, out=a[i + 1])
            for i in range(len(W) - 1, -1, -1):
                np.matmul(a[i].T, a[i + 1], out=gW[i])
                if i:
                    np.matmul(a[i + 1], W[i].T, out=d[i])

        with threadpool_limits(blas_threads, user_api="blas"):
            out[f"one step's products, {rows} rows, {blas_threads} BLAS thread(s)"] = gflops(
                step, rows * flops_per_sample(sizes))
    return out


def step_parts(X: np.ndarray, y: np.ndarray, threads: int) -> dict[str, float]:
    """Microseconds of CPU time per call of each part of one training step of the benchmark's
    network (batch 256, standardized raw rows, Adam), on this thread, BLAS on one thread:
    one block of 128 rows (its products alone, and the whole compiled block), the optimizer's
    step and the gradient norm; and the wall time of a whole compiled step on ``threads``
    threads. A step's critical path is one block plus the serial rest (the norm, the
    optimizer step, the sum of the two blocks' gradients and Python's own work)."""
    from threadpoolctl import threadpool_limits

    from fastgd import _core
    from fastgd.clip import total_norm
    from fastgd.models._gemm import numpy_sgemm
    from fastgd.models.mlp_layers import Network, RowScaling
    from fastgd.optim.registry import get_optimizer

    sizes = [D, *HIDDEN, K]
    net = Network(sizes, "relu", 0.0, False, np.float32)
    theta = np.zeros(net.size, np.float32)
    net.init(theta, "xavier", np.random.default_rng(0))
    scaling = RowScaling(X.mean(axis=0, dtype=np.float64), X.std(axis=0, dtype=np.float64))
    rows = np.random.default_rng(0).permutation(len(X))[:BATCH]
    yb = y[rows]
    opt = get_optimizer("adam", [theta], LR)

    def softmax(z, yy, w, d, gb, n):
        return _core.softmax_cross_entropy_grad_(z, yy, d, w=w, gb=gb, scale=1.0 / n), True

    def per_call(fn, reps: int = 300, clock=time.thread_time) -> float:
        fn()
        best = float("inf")
        for _ in range(5):
            t = clock()
            for _ in range(reps):
                fn()
            best = min(best, (clock() - t) / reps)
        return best * 1e6

    def batch(n_rows: int, t: int):
        return lambda: net.train_batch(theta, X, yb[:n_rows], None, softmax, rng=None, threads=t,
                                       rows=rows[:n_rows], scaling=scaling, softmax_output=True)

    out: dict[str, float] = {}
    with threadpool_limits(1, user_api="blas"):
        a = [np.random.default_rng(1).standard_normal((BATCH // 2, s), dtype=np.float32) for s in sizes]
        W, _, _ = net.views(theta)
        gW, _, _ = net.views(net.grad, cache=False)
        d = [np.empty_like(x) for x in a]

        def products():
            for i, w in enumerate(W):
                np.matmul(a[i], w, out=a[i + 1])
            for i in range(len(W) - 1, -1, -1):
                np.matmul(a[i].T, a[i + 1], out=gW[i])
                if i:
                    np.matmul(a[i + 1], W[i].T, out=d[i])

        out["a block's products (128 rows)"] = per_call(products)
        gemm = numpy_sgemm()
        if gemm is not None:
            half = BATCH // 2
            scratch = np.empty(half * _core.mlp_scratch_per_row(sizes), np.float32)
            g2 = np.zeros_like(net.grad)
            idx, labels = np.ascontiguousarray(rows[:half]), np.ascontiguousarray(yb[:half])

            def block():  # one block of 128 rows (split = all of them), as each thread runs it
                _core.mlp_train_step_(gemm.address, gemm.ilp64, sizes, theta, net.grad, g2, X, idx, 0,
                                      scaling.mean, scaling.scale, labels, None, scratch, half, 1)

            out["a block's compiled step (128 rows)"] = per_call(block)
        out["optimizer step (Adam)"] = per_call(lambda: opt.step([net.grad]))
        out["gradient norm"] = per_call(lambda: total_norm([net.grad]))
        out[f"whole step, {threads} thread(s), wall"] = per_call(batch(BATCH, threads), clock=time.perf_counter)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_mlp_step.json")
    args = ap.parse_args(argv)
    if args.threads:
        fastgd.set_num_threads(args.threads)
    threads = fastgd.get_num_threads()
    print(f"fastgd {fastgd.__version__}, simd_level {fastgd.simd_level()}, {threads} thread(s)", flush=True)
    X, y = data(args.n)
    fits = peers(X, y)
    wall: dict[str, list[float]] = {k: [] for k in fits}
    cpu: dict[str, list[float]] = {k: [] for k in fits}
    for r in range(args.repeats):
        for name in list(fits) if r % 2 == 0 else reversed(list(fits)):
            t, c = time.perf_counter(), time.process_time()
            fits[name]()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            print(f"  {name:<42} {wall[name][-1]:7.2f} s wall {cpu[name][-1]:7.2f} s CPU", flush=True)
    peak = sgemm_peak(threads)
    fl = flops_per_sample([D, *HIDDEN, K])
    samples = args.n * EPOCHS
    print(f"\nmedians of {args.repeats} ({samples:,} samples, {fl:,} FLOPs per sample):")
    ref = min(wall, key=lambda k: statistics.median(wall[k]))
    for name in fits:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:<42} {w:7.2f} s wall ({w / statistics.median(wall[ref]):.2f}x the fastest) "
              f"{c:7.2f} s CPU  {samples * fl / w / 1e9:6.1f} GFLOP/s")
    print(f"\nNumPy SGEMM on {threads} thread(s), GFLOP/s by wall time and per CPU-second:")
    for name, rate in peak.items():
        print(f"  {name:<52} {rate['wall']:6.1f} {rate['cpu']:6.1f}")
    square = peak["square 2048"]
    for name in fits:
        rate = samples * fl / statistics.median(wall[name]) / 1e9
        # Per CPU-second: threads that wait for a core on a busy machine do not count
        # (BLAS or OpenMP threads that spin while waiting do, in the fit and the peak alike).
        cpu_rate = samples * fl / statistics.median(cpu[name]) / 1e9
        print(f"  {name}: {rate / square['wall']:.0%} of the square product's rate by wall time, "
              f"{cpu_rate / square['cpu']:.0%} per CPU-second")
    parts = step_parts(X, y, threads)
    steps = EPOCHS * -(-args.n // BATCH)
    print(f"\nwhere a step's time goes (microseconds per call; {steps:,} steps per fit):")
    for name, us in parts.items():
        print(f"  {name:<52} {us:7.1f}")
    for name in fits:
        print(f"  {name}: {statistics.median(wall[name]) / steps * 1e6:.0f} us per step of the whole fit (wall)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "simd_level": fastgd.simd_level(), "threads": threads, "samples": samples, "flops_per_sample": fl,
        "fits": {k: {"wall_s": wall[k], "cpu_s": cpu[k]} for k in fits}, "sgemm_gflops": peak,
        "step_parts_us": parts}, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
