"""One thread or two? Times ``opt.step`` of Adam and SGD (float32) with 1 and 2 threads over
log-spaced sizes and recommends the parallel threshold: the smallest size from which two
threads win at every larger size measured, for every rule.

The 1- and 2-thread calls alternate (in alternating order) so that a noisy neighbour slows
both alike, and the run sweeps over every size again and again until its time budget is
spent, so each size's samples are spread over the whole run; each figure is a median over
all its calls. The 2-thread calls set the parallel threshold to 0, so they take the parallel
path at every size.

    python bench/bench_threads.py                  # about 2 minutes
    python bench/bench_threads.py --quick          # about 30 seconds, 1 size per octave
    python bench/bench_threads.py --gap-us 2000    # busy work between steps (workers cool down)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import fastgd
from fastgd import _core

RULES = {
    "adam": lambda p: fastgd.Adam([p], lr=1e-3),
    "sgd": lambda p: fastgd.SGD([p], lr=1e-3),
}


def sizes(lo: int, hi: int, per_octave: int) -> list[int]:
    """Log-spaced sizes from lo to hi, rounded to multiples of 1024 (whole SIMD vectors)."""
    n = round(math.log2(hi / lo) * per_octave)
    out = []
    for k in range(n + 1):
        s = int(round(lo * 2 ** (k / per_octave) / 1024)) * 1024
        if s not in out:
            out.append(s)
    return out


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def use_threads(n: int) -> None:
    if n == 1:
        fastgd.set_num_threads(1)
    else:
        fastgd.set_num_threads(n)
        _core.set_parallel_threshold(0)


class Case:
    """One rule at one size: its optimizer, and the timings gathered over the rounds."""

    def __init__(self, rule: str, n: int) -> None:
        rng = np.random.default_rng(0)
        self.rule, self.n = rule, n
        self.g = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-3)
        self.opt = RULES[rule](rng.standard_normal(n, dtype=np.float32))
        self.times: dict[int, list[float]] = {1: [], 2: []}
        self.pairs = 1
        for th in (1, 2, 1, 2):  # allocate state, fault pages in, wake the thread team
            use_threads(th)
            self.opt.step([self.g])

    def calibrate(self, burst_s: float, gap_s: float) -> None:
        """Pairs of calls per burst, so that one burst lasts about burst_s (from the fastest of
        a few tries, so that a busy moment does not shrink the burst)."""
        best = {1: math.inf, 2: math.inf}
        for _ in range(3):
            for th in (1, 2):
                use_threads(th)
                t0 = time.perf_counter()
                self.opt.step([self.g])
                best[th] = min(best[th], time.perf_counter() - t0)
        pair = best[1] + best[2] + 2 * gap_s
        self.pairs = max(1, int(burst_s / max(pair, 1e-9)))

    def burst(self, gap_s: float) -> None:
        """One untimed pair to bring the arrays back into cache, then `pairs` timed pairs, the
        order of the two thread counts alternating."""
        opt, g, times = self.opt, self.g, self.times
        for r in range(-1, self.pairs):
            for th in ((1, 2) if r % 2 == 0 else (2, 1)):
                use_threads(th)
                if gap_s:
                    busy_wait(gap_s)
                t = time.perf_counter_ns()
                opt.step([g])
                if r >= 0:
                    times[th].append((time.perf_counter_ns() - t) / 1e3)

    def summary(self) -> dict:
        a, b = self.times[1], self.times[2]
        t1, t2 = statistics.median(a), statistics.median(b)
        wins = sum(y < x for x, y in zip(a, b)) / len(a)
        return {"rule": self.rule, "size": self.n, "samples": len(a), "t1_us": t1, "t2_us": t2,
                "speedup": t1 / t2, "win_fraction": wins}


def measure(cases: list[Case], budget_s: float, burst_s: float, min_rounds: int, gap_s: float) -> int:
    """Rounds over every case, one short burst each, until the time budget is spent: each
    case's samples are spread over the whole run, so a neighbour's burst of activity spoils
    a few samples of every size instead of all samples of one size."""
    for c in cases:
        c.calibrate(burst_s, gap_s)
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or time.perf_counter() - start < budget_s:
        for c in cases if rounds % 2 == 0 else reversed(cases):
            c.burst(gap_s)
        rounds += 1
    return rounds


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def recommend(rows: list[dict], margin: float, min_wins: float) -> int | None:
    """Smallest size from which 2 threads win (median speedup >= margin and faster in at least
    min_wins of the paired calls) at that size and every larger one, for every rule."""
    by_size: dict[int, bool] = {}
    for r in rows:
        ok = r["speedup"] >= margin and r["win_fraction"] >= min_wins
        by_size[r["size"]] = by_size.get(r["size"], True) and ok
    best = None
    for s in sorted(by_size, reverse=True):
        if not by_size[s]:
            break
        best = s
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-size", type=int, default=4096)
    ap.add_argument("--max-size", type=int, default=16 * 1024 * 1024)
    ap.add_argument("--per-octave", type=int, default=None, help="sizes per doubling (default 2, --quick 1)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of timing in all, shared by every rule and size (default 100, "
                         "--quick 20)")
    ap.add_argument("--burst", type=float, default=0.01,
                    help="seconds per size per round (default 0.01; large sizes take one pair)")
    ap.add_argument("--min-rounds", type=int, default=5)
    ap.add_argument("--gap-us", type=float, default=0.0,
                    help="busy-wait this long before each step, as a training loop computes between "
                         "steps (default 0: back to back)")
    ap.add_argument("--margin", type=float, default=1.05,
                    help="median speedup 2 threads must reach to count as a win (default 1.05)")
    ap.add_argument("--min-wins", type=float, default=0.6,
                    help="fraction of paired calls 2 threads must win (default 0.6)")
    ap.add_argument("--rules", default="adam,sgd", help="comma-separated: adam,sgd")
    ap.add_argument("--quick", action="store_true", help="1 size per octave, shorter budget")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "threads.json"))
    args = ap.parse_args(argv)
    if args.per_octave is None:
        args.per_octave = 1 if args.quick else 2
    if args.budget is None:
        args.budget = 20.0 if args.quick else 100.0

    if not _core.openmp_enabled():
        print("this build of fastgd has no OpenMP: nothing to compare", file=sys.stderr)
        return 1
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    unknown = set(rules) - set(RULES)
    if unknown:
        ap.error(f"unknown rule(s) {sorted(unknown)}; choose from {sorted(RULES)}")

    saved_threshold, saved_threads = _core.get_parallel_threshold(), fastgd.get_num_threads()
    print(f"fastgd {fastgd.__version__}, SIMD {fastgd.simd_level()}, {os.cpu_count()} CPUs, "
          f"default threshold {saved_threshold}, gap {args.gap_us:g} us")
    print(f"load average before: {load_average()}")
    try:
        cases = [Case(rule, n) for rule in rules for n in sizes(args.min_size, args.max_size, args.per_octave)]
        print(f"timing {len(cases)} cases, 1 and 2 threads, for about {args.budget:g} s ...", flush=True)
        rounds = measure(cases, args.budget, args.burst, args.min_rounds, args.gap_us / 1e6)
    finally:
        _core.set_parallel_threshold(saved_threshold)
        fastgd.set_num_threads(saved_threads)
    print(f"load average after:  {load_average()} ({rounds} rounds)")
    rows = [c.summary() for c in cases]
    for rule in rules:
        print(f"\n{rule} float32{'':>8}{'1 thread us':>14}{'2 threads us':>14}{'speedup':>9}{'2T wins':>9}"
              f"{'samples':>9}")
        for r in (r for r in rows if r["rule"] == rule):
            print(f"{r['size']:>20,}{r['t1_us']:>14.1f}{r['t2_us']:>14.1f}{r['speedup']:>9.2f}"
                  f"{r['win_fraction']:>9.0%}{r['samples']:>9}")

    crossover = recommend(rows, args.margin, args.min_wins)
    threshold = None if crossover is None else 1 << math.ceil(math.log2(crossover))
    if crossover is None:
        print("\n2 threads never win consistently up to the largest size: keep kernels serial")
    else:
        print(f"\n2 threads win at every size from {crossover:,} elements up (speedup >= {args.margin}, "
              f"won >= {args.min_wins:.0%} of paired calls)")
        print(f"recommended parallel threshold: {threshold:,} elements (2^{int(math.log2(threshold))})")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "threads",
        "fastgd_version": fastgd.__version__,
        "simd_level": fastgd.simd_level(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "numpy_version": np.__version__,
        "gap_us": args.gap_us,
        "rounds": rounds,
        "budget_s": args.budget,
        "margin": args.margin,
        "min_wins": args.min_wins,
        "crossover_elements": crossover,
        "recommended_threshold": threshold,
        "results": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
