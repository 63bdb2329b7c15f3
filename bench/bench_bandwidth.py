"""How close is each update rule to the memory-bandwidth bound?

1. A STREAM-like measurement with NumPy on arrays far larger than the caches: copy, in-place
   scale, in-place add (a += b: two reads and one write of the same array, the access
   pattern of every update rule) and triad (a = b + s*c, computed in cache-sized blocks so
   the temporary never reaches memory). With 2 threads, two Python threads each take half of
   every array (NumPy releases the GIL inside ufuncs).
2. For each fastgd update rule at a large float32 size: the bytes it must move per element
   (parameter read + write, gradient read, each state array read + write), the lower bound
   time = bytes / bandwidth, the measured median step time and the fraction of the bound
   achieved (1.0 = running at memory speed). Like is set against like: the median step
   against the highest median bandwidth of any STREAM kernel at the same thread count
   ("bound"), and the best step against the highest bandwidth seen ("floor"). NumPy's
   streams are not quite the fastest the memory goes (a fused AVX2 loop can do a little
   better), so a rule at memory speed can show slightly more than 1.0.
3. Adam side by side with the best plain NumPy can do (in-place ufuncs, one scratch array)
   and, when ``import torch`` works, torch.optim.Adam with fused=True and foreach=True.

Every variant, the STREAM kernels included, is timed in turns (one call each per round) so
that a noisy neighbour slows all alike; figures are medians over the rounds.

    python bench/bench_bandwidth.py            # about 1-2 minutes
    python bench/bench_bandwidth.py --quick    # smaller arrays (partly in cache: fractions run high)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import fastgd

F32 = 4

# name -> (constructor, state arrays per parameter)
RULES: dict[str, tuple[Callable[[np.ndarray], fastgd.Optimizer], int]] = {
    "Adam": (lambda p: fastgd.Adam([p], lr=1e-3), 2),
    "AdamW": (lambda p: fastgd.AdamW([p], lr=1e-3, weight_decay=1e-2), 2),
    "SGD momentum": (lambda p: fastgd.SGD([p], lr=1e-3, momentum=0.9), 1),
    "Adagrad": (lambda p: fastgd.Adagrad([p], lr=1e-2), 1),
    "RMSprop": (lambda p: fastgd.RMSprop([p], lr=1e-2), 1),
    "Adadelta": (lambda p: fastgd.Adadelta([p]), 2),
    "Adamax": (lambda p: fastgd.Adamax([p]), 2),
    "NAdam": (lambda p: fastgd.NAdam([p]), 2),
    "RAdam": (lambda p: fastgd.RAdam([p]), 2),
    "Lion": (lambda p: fastgd.Lion([p]), 1),
}


def bytes_per_element(states: int, itemsize: int = F32) -> int:
    """Parameter read + write, gradient read, each state read + write."""
    return itemsize * (2 + 1 + 2 * states)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# -- STREAM-like bandwidth ------------------------------------------------------------------


def stream_kernels(n: int, block: int) -> tuple[dict[str, tuple[Callable[[slice], None], int]], list]:
    """Kernels over a slice of three float64 arrays, with the bytes each counts per element
    (STREAM's convention: each array read or written once counts once)."""
    a = np.empty(n)
    b = np.empty(n)
    c = np.empty(n)
    a.fill(1.0)
    b.fill(2.0)
    c.fill(0.5)
    s = 0.999

    def copy(sl: slice) -> None:
        np.copyto(a[sl], b[sl])

    def scale(sl: slice) -> None:
        np.multiply(a[sl], s, out=a[sl])

    def add(sl: slice) -> None:
        np.add(a[sl], b[sl], out=a[sl])

    def triad(sl: slice) -> None:
        # Blocked so that a's block stays in cache between the two ufuncs: memory sees one
        # pass (read b, read c, write a), as STREAM's fused loop.
        start, stop = sl.start, sl.stop
        for i in range(start, stop, block):
            j = min(i + block, stop)
            np.multiply(c[i:j], s, out=a[i:j])
            np.add(a[i:j], b[i:j], out=a[i:j])

    return {"copy": (copy, 16), "scale in place": (scale, 16), "add in place": (add, 24),
            "triad": (triad, 24)}, [a, b, c]


def run_split(fn: Callable[[slice], None], n: int, threads: int, pool: ThreadPoolExecutor | None) -> None:
    if threads == 1:
        fn(slice(0, n))
        return
    assert pool is not None
    step = (n // threads + 4095) // 4096 * 4096
    futures = [pool.submit(fn, slice(i, min(i + step, n))) for i in range(0, n, step)]
    for f in futures:
        f.result()


# -- NumPy and torch Adam ---------------------------------------------------------------------


class NumpyAdam:
    """Adam as the best plain NumPy does it: in-place ufuncs, one preallocated scratch array,
    no temporaries (10 passes over memory where the fused kernel makes one)."""

    def __init__(self, p: np.ndarray, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.p, self.lr, self.b1, self.b2, self.eps = p, lr, betas[0], betas[1], eps
        self.m = np.zeros_like(p)
        self.v = np.zeros_like(p)
        self.tmp = np.empty_like(p)
        self.t = 0

    def step(self, g: np.ndarray) -> None:
        self.t += 1
        b1, b2, m, v, tmp, dt = self.b1, self.b2, self.m, self.v, self.tmp, self.p.dtype.type
        np.subtract(g, m, out=tmp)                       # m += (1 - b1) * (g - m)
        tmp *= dt(1 - b1)
        m += tmp
        np.multiply(g, g, out=tmp)                       # v = b2 * v + (1 - b2) * g^2
        tmp *= dt(1 - b2)
        v *= dt(b2)
        v += tmp
        step_size = self.lr / (1 - b1 ** self.t)
        np.sqrt(v, out=tmp)                              # denom = sqrt(v) / sqrt(bc2) + eps
        tmp *= dt(1 / (1 - b2 ** self.t) ** 0.5)
        tmp += dt(self.eps)
        np.divide(m, tmp, out=tmp)                       # p -= step_size * m / denom
        tmp *= dt(-step_size)
        self.p += tmp


def torch_adams(n: int, g: np.ndarray) -> tuple[dict[str, Callable[[], None]], object, str | None]:
    try:
        import torch
    except ImportError as e:
        return {}, None, f"torch is not importable ({e}); skipping the torch comparison"
    out = {}
    for name, kw in (("torch Adam fused", {"fused": True}), ("torch Adam foreach", {"foreach": True})):
        p = torch.zeros(n, dtype=torch.float32, requires_grad=True)
        p.grad = torch.from_numpy(g)
        try:
            opt = torch.optim.Adam([p], lr=1e-3, **kw)
            opt.step()
        except (RuntimeError, ValueError, TypeError) as e:
            print(f"{name}: not available here ({e})")
            continue
        out[name] = opt.step
    return out, torch, None


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stream-mb", type=float, default=128, help="MB per STREAM array (default 128)")
    ap.add_argument("--size", type=int, default=16 * 1024 * 1024, help="float32 elements (default 16M)")
    ap.add_argument("--rounds", type=int, default=41, help="timed steps per variant (default 41)")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--quick", action="store_true", help="64 MB STREAM arrays, 4M elements, 7 rounds")
    ap.add_argument("--no-torch", action="store_true", help="skip torch even if it is importable")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bandwidth.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.stream_mb, args.size, args.rounds = 64, 4 * 1024 * 1024, 7
    thread_counts = [int(t) for t in args.threads.split(",")]
    n = args.size
    print(f"fastgd {fastgd.__version__}, SIMD {fastgd.simd_level()}, {os.cpu_count()} CPUs, "
          f"parallel threshold {fastgd._core.get_parallel_threshold()}, numpy {np.__version__}")

    # Every variant, STREAM kernels included, is timed in the same rounds, so that the bound
    # and the step times see the same neighbours.
    sn = int(args.stream_mb * 1e6 / 8)
    kernels, _keep = stream_kernels(sn, 32768)
    pool = ThreadPoolExecutor(max(thread_counts)) if max(thread_counts) > 1 else None
    stream_variants: dict[tuple[str, int], Callable[[], None]] = {
        (name, t): (lambda fn=fn, t=t: run_split(fn, sn, t, pool)) for name, (fn, _) in kernels.items()
        for t in thread_counts}

    rng = np.random.default_rng(0)
    g = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-3)
    variants: dict[tuple[str, int], Callable[[], None]] = {}
    for name, (make, _) in RULES.items():
        opt = make(rng.standard_normal(n, dtype=np.float32))
        for t in thread_counts:
            variants[(name, t)] = lambda opt=opt: opt.step([g])
    np_adam = NumpyAdam(rng.standard_normal(n, dtype=np.float32))
    variants[("NumPy Adam", 1)] = lambda: np_adam.step(g)
    torch_steps, torch, why = ({}, None, "--no-torch given") if args.no_torch else torch_adams(n, g)
    if why:
        print(why)
    for name, fn in torch_steps.items():
        for t in thread_counts:
            variants[(name, t)] = fn

    def prepare(t: int) -> None:
        fastgd.set_num_threads(t)
        if torch is not None:
            torch.set_num_threads(t)

    everything = {**{("stream", *k): v for k, v in stream_variants.items()},
                  **{("step", *k): v for k, v in variants.items()}}
    saved = fastgd.get_num_threads()
    times: dict[tuple[str, str, int], list[float]] = {k: [] for k in everything}
    print(f"timing {len(everything)} variants x {args.rounds} rounds: STREAM on 3 float64 arrays of "
          f"{sn * 8 / 1e6:.0f} MB, update rules on {n:,} float32 elements ...", flush=True)
    try:
        for _ in range(6):  # state allocated, pages faulted in, RAdam past its unrectified steps
            for key, fn in everything.items():
                prepare(key[2])
                fn()
        order = list(everything)
        for r in range(args.rounds):
            for key in order if r % 2 == 0 else reversed(order):
                prepare(key[2])
                times[key].append(timed(everything[key]))
    finally:
        fastgd.set_num_threads(saved)
        if pool is not None:
            pool.shutdown()

    stream = []
    for (kind, name, t), ts in times.items():
        if kind == "stream":
            nbytes = kernels[name][1] * sn
            stream.append({"kernel": name, "threads": t, "bytes": nbytes, "best_gbs": nbytes / min(ts) / 1e9,
                           "median_gbs": nbytes / statistics.median(ts) / 1e9, "rounds": len(ts)})
    print(f"\nSTREAM-like, NumPy{'':<10}{'best GB/s':>11}{'median GB/s':>13}")
    for r in stream:
        print(f"{r['kernel'] + ', ' + str(r['threads']) + ' thr':<27}{r['best_gbs']:>11.1f}{r['median_gbs']:>13.1f}")
    # Like with like: the median step against the best median bandwidth of any kernel, the
    # best step against the best bandwidth seen.
    bw_median = {t: max(r["median_gbs"] for r in stream if r["threads"] == t) for t in thread_counts}
    bw_best = {t: max(r["best_gbs"] for r in stream if r["threads"] == t) for t in thread_counts}
    for t in thread_counts:
        print(f"bound at {t} thread(s): {bw_median[t]:.1f} GB/s (best median), {bw_best[t]:.1f} GB/s (best)")

    rows = []
    for (kind, name, t), ts in times.items():
        if kind != "step":
            continue
        states = RULES[name][1] if name in RULES else 2
        bpe = bytes_per_element(states)
        bound = bpe * n / (bw_median[t] * 1e9)
        floor = bpe * n / (bw_best[t] * 1e9)
        med, best = statistics.median(ts), min(ts)
        rows.append({"variant": name, "threads": t, "bytes_per_element": bpe, "bound_ms": bound * 1e3,
                     "floor_ms": floor * 1e3, "median_ms": med * 1e3, "best_ms": best * 1e3,
                     "fraction_of_bound": bound / med, "best_fraction_of_floor": floor / best,
                     "effective_gbs": bpe * n / med / 1e9})

    print(f"\n{'variant':<20}{'thr':>4}{'B/elem':>7}{'bound ms':>10}{'median ms':>11}{'GB/s':>7}{'of bound':>10}"
          f"{'best ms':>9}{'of floor':>10}")
    for r in rows:
        print(f"{r['variant']:<20}{r['threads']:>4}{r['bytes_per_element']:>7}{r['bound_ms']:>10.2f}"
              f"{r['median_ms']:>11.2f}{r['effective_gbs']:>7.1f}{r['fraction_of_bound']:>10.0%}"
              f"{r['best_ms']:>9.2f}{r['best_fraction_of_floor']:>10.0%}")
    print("bound = bytes / best median STREAM bandwidth; floor = bytes / best STREAM bandwidth seen")

    by = {(r["variant"], r["threads"]): r["median_ms"] for r in rows}
    ratios = {}
    print("\nAdam, time relative to fastgd at the same thread count (>1 = slower than fastgd):")
    for name in ["NumPy Adam", *torch_steps]:
        for t in thread_counts:
            if (name, t) in by and ("Adam", t) in by:
                ratio = by[(name, t)] / by[("Adam", t)]
                ratios[f"{name} / fastgd Adam, {t} thread(s)"] = ratio
                print(f"  {name:<20} {t} thread(s): {ratio:5.2f}x")
    if ("NumPy Adam", 1) in by:
        for t in thread_counts[1:]:
            ratio = by[("NumPy Adam", 1)] / by[("Adam", t)]
            ratios[f"NumPy Adam (1 thread) / fastgd Adam, {t} thread(s)"] = ratio
            print(f"  {'NumPy Adam (1 thr)':<20} vs fastgd {t} thread(s): {ratio:5.2f}x")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "bandwidth",
        "fastgd_version": fastgd.__version__,
        "simd_level": fastgd.simd_level(),
        "parallel_threshold": fastgd._core.get_parallel_threshold(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "numpy_version": np.__version__,
        "torch_version": getattr(torch, "__version__", None),
        "size": n,
        "rounds": args.rounds,
        "stream": stream,
        "bandwidth_for_bound_gbs": {str(t): v for t, v in bw_median.items()},
        "bandwidth_for_floor_gbs": {str(t): v for t, v in bw_best.items()},
        "results": rows,
        "ratios_vs_fastgd": ratios,
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
