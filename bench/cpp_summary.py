"""Markdown tables from the JSON of the C++ benchmarks (bench_kernels, bench_tuning).

    build-bench/bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \\
        --benchmark_out=bench/results/kernels.json --benchmark_out_format=json
    python bench/cpp_summary.py bench/results/kernels.json --n 10000000 --dtype f32

For bench_kernels: one row per rule / clipping mode at one size and dtype, at the best level
in the file: GB/s, frac_bound and frac_stream on 1 and N threads, and the N-thread speedup,
all from the median aggregates (the best repetition in brackets with --best). For
bench_tuning: the threshold and chunk sweeps (speedup, vs_default and the times per call).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

NAME = re.compile(r"^(?P<base>.+?)/(?:iterations:\d+/)?(?:real|manual)_time_(?P<stat>mean|median|stddev|cv|min)$")


def aggregates(path: Path) -> dict[str, dict[str, dict]]:
    """base name -> statistic -> benchmark entry."""
    out: dict[str, dict[str, dict]] = {}
    for b in json.loads(path.read_text())["benchmarks"]:
        m = NAME.match(b["name"])
        if m:
            out.setdefault(m["base"], {})[m["stat"]] = b
    return out


def kernels_table(agg: dict[str, dict[str, dict]], n: int, dtype: str, best: bool) -> str:
    levels = sorted({k.split("/")[3] for k in agg if k.startswith("rule/")}, key=["baseline", "avx2", "avx512"].index)
    level = levels[-1]
    threads = sorted({int(k.rsplit(":", 1)[1]) for k in agg if k.startswith("rule/")})
    names = []
    for k in agg:
        kind, name, dt, lv, size, omp = k.split("/") if k.count("/") == 5 else [""] * 6
        if kind in ("rule", "clip") and dt == dtype and lv == level and size == f"n:{n}" and omp == "omp:1":
            names.append(f"{kind}/{name}")
    head = ["kernel"]
    for t in threads:
        head += [f"GB/s {t} thr", f"frac_bound {t} thr", f"frac_stream {t} thr"]
    head.append(f"speedup {threads[-1]} thr")
    lines = [
        f"{dtype}, {n:,} elements, level {level}, median of the repetitions" + (" (best)" if best else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" + " ---: |" * (len(head) - 1),
    ]
    for name in names:
        row = [name]
        times = []
        for t in threads:
            e = agg[f"{name}/{dtype}/{level}/n:{n}/omp:{t}"]
            med = e["median"]
            cell = f"{med['bytes_per_second'] / 1e9:.1f}"
            if best:  # "min" is the fastest repetition's time (and the smallest of each counter)
                cell += f" ({med['bytes_per_second'] * med['real_time'] / e['min']['real_time'] / 1e9:.1f})"
            row += [cell, f"{med['frac_bound']:.2f}", f"{med['frac_stream']:.2f}"]
            times.append(med["real_time"])
        row.append(f"{times[0] / times[-1]:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def tuning_tables(agg: dict[str, dict[str, dict]]) -> str:
    """The counters of the pairs, medians over the repetitions."""
    thr: dict[int, dict[str, dict]] = {}
    chunk: dict[int, dict[int, dict]] = {}
    for k, stats in agg.items():
        parts = k.split("/")
        if k.startswith("tune/threshold/"):
            thr.setdefault(int(parts[4][2:]), {})[f"{parts[2]} {parts[3]}"] = stats["median"]
        elif k.startswith("tune/chunk/"):
            chunk.setdefault(int(parts[4][6:]), {})[int(parts[3][2:])] = stats["median"]
    cols = sorted({c for row in thr.values() for c in row})
    lines = [
        "Threshold sweep: speedup of N threads over 1 (1 thread / N threads, us per call)",
        "",
        "| elements | " + " | ".join(cols) + " |",
        "| ---: |" + " ---: |" * len(cols),
    ]
    for n in sorted(thr):
        cells = []
        for c in cols:
            e = thr[n].get(c)
            cells.append(f"{e['speedup']:.2f} ({e['one_us']:.1f} / {e['many_us']:.1f})" if e else "-")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    sizes = sorted({s for row in chunk.values() for s in row})
    lines += [
        "",
        "Chunk sweep: Adam on N threads, vs_default = default chunk's time / this chunk's (us per call)",
        "",
        "| chunk | " + " | ".join(f"n = {s:,}" for s in sizes) + " |",
        "| ---: |" + " ---: |" * len(sizes),
    ]
    for c in sorted(chunk):
        cells = []
        for s in sizes:
            e = chunk[c].get(s)
            cells.append(f"{e['vs_default']:.2f} ({e['chunk_us']:.0f})" if e else "-")
        lines.append(f"| {c:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--best", action="store_true", help="also the best repetition's GB/s")
    args = ap.parse_args()
    agg = aggregates(args.json)
    if any(k.startswith("tune/") for k in agg):
        print(tuning_tables(agg))
    else:
        print(kernels_table(agg, args.n, args.dtype, args.best))


if __name__ == "__main__":
    main()
