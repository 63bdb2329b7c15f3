"""Sparse (CSR) logistic regression side by side with scikit-learn, in one command.

Two data sets, each split 80% / 20% (training / held out; the rows are in a random order):

* ``rcv1``: ``fastgd.datasets.make_sparse_classification()`` at its defaults: 400,000 x
  47,236 float32 (``--quick``: 40,000), RCV1-shaped TF-IDF rows (~53 nonzeros per row, Zipf
  feature frequencies, unit rows), labels of a sparse linear model;
* ``text``: 200,000 generated documents (``--quick``: 20,000) hashed into 2**20 features by
  scikit-learn's ``HashingVectorizer`` (``sparse_data.py``: float32, ~106 nonzeros per row).

On each, 5 epochs, the whole ``fit()`` of

* fastgd ``LogisticRegression(max_epochs=5, tol=None, random_state=0)``, every other argument
  at its default (sparse X: ``sparse_update="lazy"``), and with ``sparse_update="exact"``,
  on fastgd's thread count; and on 1 thread (``fastgd.num_threads(1)``: the per-core figure)
  with Adam (the default) and with ``optimizer="adagrad"``;
* scikit-learn ``SGDClassifier(loss="log_loss", max_iter=5, tol=None, random_state=0)``
  (one thread by nature);
* scikit-learn ``LogisticRegression(solver="saga")`` to convergence: the accuracy reference;
* the floor (``sparse_floor.py``): bare C++ loops, one thread, 5 epochs, of per-row SGD (the
  least work per row of any first-order learner) and of fastgd's mini-batch Adam, without
  options or checks. ``threads`` times the per-row loop's samples/s is about the most any
  learner can do here; the targets are set against it. Without a C++ compiler, left out.

A fastgd variant this version cannot run (an unknown parameter, sparse input refused: a
``TypeError`` or ``ValueError`` on a small fit) is reported as not available, with the reason.
Samples/s = training rows x passes over them (``n_iter_``: 5, saga's own epochs) / the
median fit time; held-out accuracy on the 20%. The variants are timed in turns (one fit
each per round, the order reversed every other round, each after an idle pause) and the
medians of ``--repeats`` rounds are reported.

Then the peak anonymous memory growth of one fit (defaults, 5 epochs) on a 1,000,000 x 2**20
CSR with ~60 nonzeros per row (``--quick``: 100,000 rows) in a fresh process
(``fit_memory.py``), as a multiple of the matrix's own bytes (data + indices + indptr).

    python bench/compare_sparse.py                  # a few minutes on 2 cores
    python bench/compare_sparse.py --quick          # smaller sizes, one round: a smoke run
    python bench/compare_sparse.py --only rcv1,memory
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

import fastgd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_memory  # noqa: E402
import sparse_data  # noqa: E402
import sparse_floor  # noqa: E402
from bench_bandwidth import timed  # noqa: E402
from compare import (  # noqa: E402
    cpu_model,
    finish_run,
    load_average,
    note,
    print_fits,
    run_fits,
    summarize_fits,
)

HERE = Path(__file__).resolve().parent
EPOCHS = 5
TEST_FRACTION = 0.2
# The configuration; everything else at fastgd's defaults.
FASTGD_PARAMS = {"max_epochs": EPOCHS, "tol": None, "random_state": 0}
LAZY = "fastgd LogisticRegression, defaults (lazy)"
EXACT = "fastgd, sparse_update='exact'"
ADAM_1T = "fastgd, defaults (Adam), 1 thread"
ADAGRAD_1T = "fastgd, optimizer='adagrad', 1 thread"
SGD_CLASSIFIER = "sklearn SGDClassifier(log_loss)"
SAGA = "sklearn LogisticRegression(solver='saga')"
# fastgd's variants: name -> (parameters besides FASTGD_PARAMS, threads: None = the run's).
FASTGD_VARIANTS: dict[str, tuple[dict, int | None]] = {
    LAZY: ({}, None),
    EXACT: ({"sparse_update": "exact"}, None),
    ADAM_1T: ({}, 1),
    ADAGRAD_1T: ({"optimizer": "adagrad"}, 1),
}
PER_CORE = (ADAM_1T, ADAGRAD_1T)
FLOOR = tuple(sparse_floor.FITS)
MEMORY_ROWS, MEMORY_FEATURES, MEMORY_NNZ = 1_000_000, 2**20, 60

# The data sets: name -> (description, rows of the full and of the --quick run, maker).
DATASETS: dict[str, tuple[str, int, int, Callable[[int], tuple]]] = {
    "rcv1": ("fastgd.datasets.make_sparse_classification (RCV1-shaped TF-IDF, 47,236 features)", 400_000, 40_000,
             lambda n: fastgd.datasets.make_sparse_classification(n_samples=n)),
    "text": ("generated documents through HashingVectorizer(2**20, alternate_sign=False, norm='l2')", 200_000,
             20_000, lambda n: sparse_data.make_hashed_text(n_docs=n)),
}
# The parts, in the order they run (--only takes the names).
PARTS = {name: f"fits on {desc}" for name, (desc, *_) in DATASETS.items()} | {
    "memory": "peak memory growth of fit on a 1M x 2**20 CSR, a fresh process"}


def split(X, y) -> tuple:
    n = len(y) - int(TEST_FRACTION * len(y))
    return X[:n], y[:n], X[n:], y[n:]


def fastgd_fit(X, y, Xte, yte, params: dict, threads: int | None) -> tuple[int, float, dict]:
    m = fastgd.LogisticRegression(**(FASTGD_PARAMS | params))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*reached max_epochs")
        if threads is None:
            fit_s = timed(lambda: m.fit(X, y))
        else:
            with fastgd.num_threads(threads):
                fit_s = timed(lambda: m.fit(X, y))
    return m.n_iter_, float(np.mean(m.predict(Xte) == yte)), {"fit_s": fit_s}


def unavailable(X, y, params: dict) -> str | None:
    """Why this fastgd cannot fit a CSR with ``params`` (a small fit tells), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fastgd.LogisticRegression(**(FASTGD_PARAMS | params | {"max_epochs": 1})).fit(X[:512], y[:512])
    except (TypeError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def peers_for(X, y, Xte, yte, missing: dict[str, str], floor) -> dict[str, Callable[[], tuple]]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    peers: dict[str, Callable[[], tuple]] = {}
    for name, (params, threads) in FASTGD_VARIANTS.items():
        why = unavailable(X, y, params)
        if why is not None:
            missing[name] = why
            note(f"{name}: not available in this fastgd ({why})")
            continue
        peers[name] = lambda params=params, threads=threads: fastgd_fit(X, y, Xte, yte, params, threads)

    def sgd_fit() -> tuple:
        m = SGDClassifier(loss="log_loss", max_iter=EPOCHS, tol=None, random_state=0)
        fit_s = timed(lambda: m.fit(X, y))
        return m.n_iter_, float(m.score(Xte, yte)), {"fit_s": fit_s}

    def saga_fit() -> tuple:
        m = LogisticRegression(solver="saga")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit_s = timed(lambda: m.fit(X, y))
        return int(np.max(m.n_iter_)), float(m.score(Xte, yte)), {"fit_s": fit_s}

    peers[SGD_CLASSIFIER] = sgd_fit
    peers[SAGA] = saga_fit
    if isinstance(floor, str):
        missing |= dict.fromkeys(FLOOR, floor)
    else:
        peers |= sparse_floor.peers(floor, X, y, Xte, yte, EPOCHS, timed)
    return peers


def data_properties(X) -> dict:
    lengths = np.diff(X.indptr)
    df = np.sort(np.bincount(X.indices, minlength=X.shape[1]))[::-1]
    return {"nnz_per_row": X.nnz / X.shape[0], "nnz_per_row_min": int(lengths.min()),
            "nnz_per_row_max": int(lengths.max()),
            "top_1pct_features_share": float(df[:max(1, X.shape[1] // 100)].sum() / df.sum()),
            "features_in_no_row": int((df == 0).sum()), "csr_bytes": X.data.nbytes + X.indices.nbytes
            + X.indptr.nbytes, "dtype": str(X.dtype)}


def bench_dataset(name: str, args, floor) -> dict:
    """The fits on one data set; floor: the bare loops' library, or why it is missing."""
    desc, n_full, n_quick, make = DATASETS[name]
    n = n_quick if args.quick else n_full
    t = time.perf_counter()
    X_all, y_all = make(n)
    made_s = time.perf_counter() - t
    X, y, Xte, yte = split(X_all, y_all)
    props = data_properties(X_all)
    del X_all, y_all
    print(f"  data: {desc}: {X.shape[0]:,} + {Xte.shape[0]:,} held out x {X.shape[1]:,} {props['dtype']}, "
          f"{props['nnz_per_row']:.1f} nonzeros per row, top 1% of features hold "
          f"{props['top_1pct_features_share']:.0%} of them ({made_s:.1f} s)", flush=True)
    missing: dict[str, str] = {}
    peers = peers_for(X, y, Xte, yte, missing, floor)
    raw = run_fits(peers, 1 if args.quick else args.repeats)
    rows = summarize_fits(raw, X.shape[0], PER_CORE + FLOOR)
    by = {r["peer"]: r for r in rows}
    sgd = by[SGD_CLASSIFIER]["samples_per_s"]
    for r in rows:
        r["vs_sgd_classifier"] = r["samples_per_s"] / sgd
    return {"data": desc, "n_train": X.shape[0], "n_test": Xte.shape[0], "n_features": X.shape[1],
            "epochs": EPOCHS, "generate_s": made_s, "properties": props, "results": rows,
            "not_available": missing}


def bench_memory(args, tmp: Path, threads: int) -> dict | None:
    """Peak memory growth of one fit with defaults (5 epochs) on a CSR in memory, in a fresh
    process (``fit_memory.py``), against the matrix's bytes."""
    import scipy.sparse

    rows = MEMORY_ROWS // 10 if args.quick else MEMORY_ROWS
    t = time.perf_counter()
    X, y = fastgd.datasets.make_sparse_classification(n_samples=rows, n_features=MEMORY_FEATURES,
                                                      nnz_per_row=MEMORY_NNZ)
    xp, yp = tmp / "sparse_X.npz", tmp / "sparse_y.npy"
    scipy.sparse.save_npz(xp, X, compressed=False)
    np.save(yp, y)
    print(f"  data: {rows:,} x {MEMORY_FEATURES:,}, {X.nnz / rows:.1f} nonzeros per row, "
          f"{(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20:.0f} MiB "
          f"({time.perf_counter() - t:.1f} s)", flush=True)
    width = int(np.ceil(X.nnz / rows))  # a batch passes through its rows' nonzeros
    del X, y
    r = fit_memory.peak_growth(xp, yp, "LogisticRegression", FASTGD_PARAMS, [width, 1], threads)
    if r is None:
        return None
    # The bound: the matrix's own bytes (where the dense allowance has 5% of them), the
    # model's state and the batch buffers. A densified copy would pass it many times over.
    r["bound_bytes"] = r["allowance_bytes"] + 0.95 * r["x_bytes"]
    r["bound_of_x"] = r["bound_bytes"] / r["x_bytes"]
    print(f"  {LAZY:<52} peak growth {r['anon_growth_of_x']:.3f} x X (RssAnon), "
          f"{r['hwm_growth_of_x']:.3f} x X (VmHWM), X {r['x_bytes'] / 2**20:.0f} MiB", flush=True)
    return r | {"model": LAZY, "n_rows": rows, "n_features": MEMORY_FEATURES}


def targets(out: dict) -> list[dict]:
    """The figures the issue aims at, each with the measured value and whether it holds
    (None: not measured, a variant not available)."""
    res: list[dict] = []
    for name in DATASETS:
        part = out.get(name)
        if not part:
            continue
        by = {r["peer"]: r for r in part["results"]}
        sgd, saga, lazy = by[SGD_CLASSIFIER], by[SAGA], by.get(LAZY)
        rows_floor, adam_floor = (by.get(k) for k in FLOOR)
        # The most any learner does here: the per-row loop's samples/s on every thread.
        bound = "" if rows_floor is None else (
            f"; the machine allows about {out['threads'] * rows_floor['vs_sgd_classifier']:.2f}x "
            f"({out['threads']} x the bare per-row loop's {rows_floor['samples_per_s'] / 1e6:.2f}M)")
        per_core_floor = "" if rows_floor is None else (
            f"; bare loops: per-row SGD {rows_floor['samples_per_s'] / 1e6:.2f}M, mini-batch Adam "
            f"{adam_floor['samples_per_s'] / 1e6:.2f}M")
        where = f"{name} ({part['n_train']:,} x {part['n_features']:,})"
        if lazy is None:
            why = part["not_available"].get(LAZY, "")
            res.append({"target": f"{where}: fastgd whole fit >= 5x SGDClassifier's samples/s (moonshot 10x)",
                        "value": f"not available ({why})", "holds": None})
        else:
            ratio = lazy["vs_sgd_classifier"]
            res.append({"target": f"{where}: fastgd whole fit >= 5x SGDClassifier's samples/s (moonshot 10x)",
                        "value": (f"{ratio:.2f}x ({lazy['samples_per_s'] / 1e6:.2f}M vs "
                                  f"{sgd['samples_per_s'] / 1e6:.2f}M samples/s; moonshot "
                                  f"{'met' if ratio >= 10 else 'not met'}){bound}"),
                        "holds": ratio >= 5})
            diff = (lazy["accuracy"] - saga["accuracy"]) * 100
            res.append({"target": f"{where}: fastgd accuracy >= SGDClassifier's and within 1 pt of saga",
                        "value": (f"{lazy['accuracy']:.2%} vs SGDClassifier {sgd['accuracy']:.2%}, "
                                  f"saga {saga['accuracy']:.2%} ({diff:+.2f} pt)"),
                        "holds": lazy["accuracy"] >= sgd["accuracy"] and abs(diff) <= 1.0})
        for name_1t in PER_CORE:
            r = by.get(name_1t)
            target = f"{where}: {name_1t}: >= 3M samples/s per core"
            if r is None:
                res.append({"target": target, "value": f"not available ({part['not_available'].get(name_1t, '')})",
                            "holds": None})
            else:
                res.append({"target": target, "value": f"{r['samples_per_s'] / 1e6:.2f}M samples/s{per_core_floor}",
                            "holds": r["samples_per_s"] >= 3e6})
    mem = out.get("memory")
    if mem:
        stricter = "within" if mem["anon_growth_bytes"] <= mem["allowance_bytes"] else "above"
        res.append({"target": (f"peak memory growth of fit, {mem['n_rows']:,} x 2**20 CSR: <= the matrix's own "
                               "size + the model's state + O(batch) buffers"),
                    "value": (f"{mem['anon_growth_of_x']:.3f} x X (VmHWM {mem['hwm_growth_of_x']:.3f} x X), "
                              f"allowed {mem['bound_of_x']:.3f} x X; {stricter} the dense path's allowance "
                              f"(5% of X in place of X: {mem['allowance_of_x']:.3f} x X)"),
                    "holds": mem["anon_growth_bytes"] <= mem["bound_bytes"]})
    elif "memory" in out:
        res.append({"target": "peak memory growth of fit on a CSR", "value": "not available (the child failed)",
                    "holds": None})
    return [t | {"simd_level": out["simd_level"]} for t in res]


def print_report(out: dict) -> None:
    simd = out["simd_level"]
    for name in DATASETS:
        part = out.get(name)
        if not part:
            continue
        p = part["properties"]
        print_fits(f"{name}: {part['n_train']:,} x {part['n_features']:,} {p['dtype']} CSR "
                   f"({p['nnz_per_row']:.1f} nonzeros per row), {part['epochs']} epochs, fastgd {out['threads']} "
                   f"thread(s) unless said (SIMD {simd})", part["results"], part["n_train"])
        print("\n| implementation | samples/s over SGDClassifier's |")
        print("| --- | ---: |")
        for r in part["results"]:
            print(f"| {r['peer']} | {r['vs_sgd_classifier']:.2f}x |")
        for k, why in part["not_available"].items():
            print(f"\n{k}: not available ({why})")
    mem = out.get("memory")
    if mem:
        print(f"\n### Peak memory growth of fit on a CSR, a fresh process (SIMD {simd})\n")
        print("| model | X MiB | growth RssAnon | growth VmHWM | allowed (X + model + batch buffers) | "
              "the dense path's allowance (5% of X + model + batch buffers) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        print(f"| {mem['model']}, {mem['n_rows']:,} x {mem['n_features']:,} | {mem['x_bytes'] / 2**20:.0f} | "
              f"{mem['anon_growth_bytes'] / 2**20:.1f} MiB ({mem['anon_growth_of_x']:.3f} x X) | "
              f"{mem['hwm_growth_bytes'] / 2**20:.1f} MiB ({mem['hwm_growth_of_x']:.3f} x X) | "
              f"{mem['bound_bytes'] / 2**20:.1f} MiB ({mem['bound_of_x']:.3f} x X) | "
              f"{mem['allowance_bytes'] / 2**20:.1f} MiB ({mem['allowance_of_x']:.3f} x X) |")
    if out["targets"]:
        print(f"\n### Targets (SIMD {simd})\n")
        print("| target | measured | holds |")
        print("| --- | --- | --- |")
        for t in out["targets"]:
            holds = "n/a" if t["holds"] is None else ("yes" if t["holds"] else "no")
            print(f"| {t['target']} | {t['value']} | {holds} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a tenth of the rows, 1 round: a smoke run")
    ap.add_argument("--only", default=",".join(PARTS),
                    help="parts to run, comma-separated: " + "; ".join(f"{k}: {v}" for k, v in PARTS.items())
                    + " (default all)")
    ap.add_argument("--threads", type=int, default=None, help="threads for fastgd (default: fastgd's default)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of fits (default 3; --quick: 1)")
    ap.add_argument("--data-dir", default=None,
                    help="where the memory part writes its CSR (default: a temporary directory)")
    ap.add_argument("--out", default=str(HERE / "results" / "compare_sparse.json"))
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        ap.error(f"--only: unknown part(s) {sorted(unknown)}")
    try:
        import scipy
        import sklearn
    except ImportError as e:
        ap.error(f"compare_sparse.py needs scipy and scikit-learn ({e})")

    threads = args.threads or fastgd.get_num_threads()
    fastgd.set_num_threads(threads)
    cpu = cpu_model()
    print(f"{cpu}: fastgd {fastgd.__version__}, SIMD {fastgd.simd_level()}, {os.cpu_count()} CPUs, "
          f"{threads} thread(s), numpy {np.__version__}, scipy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}", flush=True)
    t_start = time.perf_counter()
    out: dict = {"benchmark": "compare_sparse", "quick": args.quick, "fastgd_version": fastgd.__version__,
                 "simd_level": fastgd.simd_level(), "cpu": cpu, "cpu_count": os.cpu_count(),
                 "machine": platform.machine(), "threads": threads, "numpy_version": np.__version__,
                 "scipy_version": scipy.__version__, "sklearn_version": sklearn.__version__,
                 "load_average_start": load_average(), "part_seconds": {}}
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        try:
            floor = sparse_floor.build(Path(tmp))
        except RuntimeError as e:
            floor = f"not built: {e}"
            note(f"the bare loops: {floor}")
        for i, part in enumerate(p for p in PARTS if p in parts):
            print(f"\n{i + 1}. {PARTS[part]} (SIMD {out['simd_level']})", flush=True)
            t_part = time.perf_counter()
            if part == "memory":
                out["memory"] = bench_memory(args, Path(tmp), threads)
            else:
                out[part] = bench_dataset(part, args, floor)
            out["part_seconds"][part] = round(time.perf_counter() - t_part, 1)
    finish_run(out, t_start, targets, print_report, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
