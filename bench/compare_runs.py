"""Two versions of fastgd side by side, from the JSON files of ``compare.py``.

Run ``compare.py`` with each version in turn (A B A B ..., one environment per version, the
same script and machine), then::

    python bench/compare_runs.py --before base-1.json base-2.json --after new-1.json new-2.json

Every fastgd figure of the runs (optimizer steps, clipping, the fits, the memmap fits, the
statistics pass, the fits' peak memory growth, the small-step overhead) is printed with its
median over the runs of each version and the ratio after/before (below 1: faster). Peers'
figures (torch, NumPy, scikit-learn) are the same code in both versions, so their own
after/before ratio shows how much the machine drifted between the runs; a fastgd ratio is
only meaningful beyond that drift.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable
from pathlib import Path


def _figures(run: dict) -> Iterable[tuple[str, float]]:
    """(name, time) for every timed figure of one compare.py run; smaller is better."""
    for r in run.get("optimizers", {}).get("results", []):
        yield f"step {r['config']} {r['rule']}: {r['variant']} (ms)", r["median_ms"]
    for c in run.get("optimizers", {}).get("clip", []):
        yield f"step {c['config']} Adam(clip_norm): fastgd (ms)", c["fastgd_adam_clip_ms"]
    for part in ("logreg", "mlp", "memmap"):
        for r in run.get(part, {}).get("results", []):
            yield f"{part}: {r['peer']} (s)", r["median_s"]
    moments = run.get("logreg", {}).get("parts", {}).get("moments", {})
    if moments.get("median_s") is not None:
        yield "logreg: the statistics pass alone (s)", moments["median_s"]
    for r in run.get("memory", {}).get("results", []):
        yield f"memory: peak growth of fit, {r['model']} (x X)", r["anon_growth_of_x"]
    for r in run.get("small", {}).get("results", []):
        yield f"one step(), 10 elements: {r['variant']} (us)", r["us_per_step"]


def _medians(paths: list[Path]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for path in paths:
        for name, value in _figures(json.loads(path.read_text())):
            values.setdefault(name, []).append(value)
    return {name: statistics.median(v) for name, v in values.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", nargs="+", type=Path, required=True, help="compare.py JSON files of the old version")
    ap.add_argument("--after", nargs="+", type=Path, required=True, help="compare.py JSON files of the new version")
    ap.add_argument("--all", action="store_true", help="peers' figures too (the machine's drift)")
    args = ap.parse_args(argv)
    before, after = _medians(args.before), _medians(args.after)
    print(f"medians of {len(args.before)} run(s) before and {len(args.after)} after\n")
    print("| figure | before | after | after/before |")
    print("| --- | ---: | ---: | ---: |")
    for name, b in before.items():
        if name not in after or not (args.all or "fastgd" in name):
            continue
        a = after[name]
        print(f"| {name} | {b:.4g} | {a:.4g} | {a / b:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
