"""fastgd side by side with its peers, in one command.

1. Optimizer steps, float32: fastgd against torch.optim (for-loop ``foreach=False``,
   ``foreach=True``, ``fused=True``) and a plain NumPy implementation (in-place ufuncs, one
   scratch array per parameter), for SGD with momentum, Adagrad, Adam and AdamW, on one
   20M-element array (``--quick``: 4M), 200 arrays of 10k and 2,000 arrays of 1k. With Adam
   also gradient clipping by the global norm: alone (``fastgd.clip_grad_norm_`` against
   ``torch.nn.utils.clip_grad_norm_(foreach=True)``) and together with the step (fastgd:
   ``Adam(clip_norm=1.0)``, clipping fused into the step; torch: clip, then the fused step).
   Each figure is also set against the memory-bandwidth bound: the bytes the operation must
   move per element over a STREAM-like bandwidth (the kernels of ``bench_bandwidth.py``)
   measured in the same rounds.
2. Logistic regression, 1,000,000 x 100 float32 (``--quick``: 200,000), 5 epochs of
   mini-batch Adam (batch 1024, lr 1e-2): the whole ``fit()`` of fastgd
   ``LogisticRegression(optimizer="adam", lr=1e-2, batch_size=1024, max_epochs=5,
   random_state=0)`` with every other argument at its default (``shuffle=True``,
   ``standardize=True``: the headline), and with ``shuffle="batches"`` (the contiguous
   batches in a new random order each epoch); a plain NumPy loop and PyTorch (``nn.Linear`` +
   ``BCEWithLogitsLoss``), with scikit-learn's ``SGDClassifier(loss="log_loss", max_iter=5,
   tol=None)`` and ``LogisticRegression()`` (lbfgs) alongside. The parts of a fit, from the
   public API: the epochs (``history_``), the rest (statistics pass, checks, any copy of X),
   standardization (against ``standardize=False`` in the same rounds), one epoch from the
   1- and 5-epoch fits, and fastgd's moments function alone where it is found. Each epoch
   is set against the machine's read bandwidth and FMA peak.
3. An MLP 100 -> 256 -> 256 -> 10 (ReLU), 3 epochs of Adam (batch 256, lr 1e-3, no
   penalty) on 200,000 samples (``--quick``: 50,000): fastgd ``MLPClassifier``, PyTorch on
   the same thread count and scikit-learn's ``MLPClassifier(max_iter=3)``; fastgd's
   products (FLOPs forward + backward per sample x samples/s) as a fraction of the SGEMM peak.
4. Small problems: the time of one ``step()`` call on a 10-element array (all overhead),
   fastgd Adam / Adam with clipping / SGD against torch.optim.Adam (for-loop, foreach,
   fused) and the NumPy Adam.
5. The machine's bounds, in the same run (``machine_bounds.py``): read bandwidth, rows of the
   logistic regression's width read in a random order (a shuffled epoch's access pattern) and
   the float32 FMA peak (``machine_peak.cpp``, built with the system's C++ compiler), SGEMM
   (NumPy's BLAS) on a large square product and on the MLP step's products.
6. Peak memory growth of one fit on an in-memory X, a fresh process per model
   (``fit_memory.py``: RssAnon sampled every 5 ms, and VmHWM), as a multiple of X's size.
7. fit on ``np.load(path, mmap_mode="r")`` against the same rows in memory, page cache warm,
   with defaults and with ``shuffle="batches"``.

Peers that are not installed (torch, scikit-learn) are left out with a note. The variants of
each comparison are timed in turns (one call, or one fit, each per round; the order reversed
every other round), so that a noisy neighbour slows all of them alike; figures are medians.
Before every timed optimizer call the gradients are refreshed from a pristine copy (not
timed), as a backward pass would just have written them: the clipping variants scale them in
place, and every variant sees them in the same state. Every table names the SIMD level.

    python bench/compare.py                  # about 5 minutes on 2 cores
    python bench/compare.py --quick          # about 1.5 minutes on a quiet machine: smaller sizes
    python bench/compare.py --only logreg,memory,memmap   # parts: bounds, opt, logreg, mlp,
                                                           # small, memory, memmap
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import fastgd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_memory  # noqa: E402
import machine_bounds  # noqa: E402
from bench_bandwidth import NumpyAdam, bytes_per_element, run_split, stream_kernels, timed  # noqa: E402

HERE = Path(__file__).resolve().parent
M = 1_000_000
LOGREG_D, LOGREG_TEST = 100, 100_000
# The configuration; everything else at fastgd's defaults (shuffle=True, standardize=True).
LOGREG_PARAMS = {"optimizer": "adam", "lr": 1e-2, "batch_size": 1024, "max_epochs": 5, "random_state": 0}
LOGREG_EPOCHS, LOGREG_BATCH, LOGREG_LR = LOGREG_PARAMS["max_epochs"], LOGREG_PARAMS["batch_size"], LOGREG_PARAMS["lr"]
LOGREG_DEFAULTS = "fastgd LogisticRegression, defaults (shuffle=True)"
LOGREG_BATCHES = "fastgd LogisticRegression, shuffle='batches'"
LOGREG_ONE_EPOCH = "fastgd, defaults, max_epochs=1"
LOGREG_RAW = "fastgd, defaults, standardize=False"
LOGREG_IN_ORDER = "fastgd, shuffle=False (rows in order)"
SGD_CLASSIFIER = "sklearn SGDClassifier(log_loss)"
LBFGS = "sklearn LogisticRegression (lbfgs)"
MLP_LAYERS, MLP_TEST, MLP_BATCH = [100, 256, 256, 10], 20_000, 256
# The MLP section's settings; the memory part fits with these and standardize at its default.
MLP_PARAMS = {"hidden_layer_sizes": tuple(MLP_LAYERS[1:-1]), "optimizer": "adam", "lr": 1e-3, "batch_size": MLP_BATCH,
              "max_epochs": 3, "alpha": 0.0, "tol": None, "random_state": 0}
MLP_FASTGD = "fastgd MLPClassifier (init='xavier', its default)"
TORCH_MLP = "PyTorch nn.Sequential + Adam (fused)"


def note(msg: str) -> None:
    print(f"note: {msg}", flush=True)


def optional_imports(no_torch: bool, no_sklearn: bool):
    torch = sklearn = None
    if no_torch:
        note("--no-torch given: the PyTorch peers are left out")
    else:
        try:
            import torch
        except ImportError as e:
            note(f"torch is not installed ({e}): the PyTorch peers are left out")
    if no_sklearn:
        note("--no-sklearn given: the scikit-learn peers are left out")
    else:
        try:
            import sklearn
        except ImportError as e:
            note(f"scikit-learn is not installed ({e}): its peers are left out, data from fastgd.datasets")
    return torch, sklearn


def interleaved(variants: dict[str, Callable[[], object]], rounds: int, warmup: int,
                before: Callable[[], None] | None = None, plain: frozenset = frozenset()) -> dict[str, list[float]]:
    """Median-ready timings: ``warmup`` untimed calls each, then ``rounds`` rounds of one
    timed call per variant, in reverse order every other round. ``before`` runs (untimed)
    before every call of a variant not in ``plain``."""
    order = list(variants)
    for _ in range(warmup):
        for k in order:
            if before is not None and k not in plain:
                before()
            variants[k]()
    times: dict[str, list[float]] = {k: [] for k in order}
    for r in range(rounds):
        for k in order if r % 2 == 0 else reversed(order):
            if before is not None and k not in plain:
                before()
            times[k].append(timed(variants[k]))
    return times


# -- 1. optimizer steps ----------------------------------------------------------------------

LR = {"SGD momentum": 1e-3, "Adagrad": 1e-2, "Adam": 1e-3, "AdamW": 1e-3}
MOMENTUM, WD = 0.9, 1e-2
STATES = {"SGD momentum": 1, "Adagrad": 1, "Adam": 2, "AdamW": 2}


def fastgd_rule(rule: str, ps: list[np.ndarray], **kw) -> fastgd.Optimizer:
    if rule == "SGD momentum":
        return fastgd.SGD(ps, lr=LR[rule], momentum=MOMENTUM, **kw)
    if rule == "Adagrad":
        return fastgd.Adagrad(ps, lr=LR[rule], **kw)
    if rule == "Adam":
        return fastgd.Adam(ps, lr=LR[rule], **kw)
    return fastgd.AdamW(ps, lr=LR[rule], weight_decay=WD, **kw)


def torch_rule(torch, rule: str, ps: list, **kw):
    if rule == "SGD momentum":
        return torch.optim.SGD(ps, lr=LR[rule], momentum=MOMENTUM, **kw)
    if rule == "Adagrad":
        return torch.optim.Adagrad(ps, lr=LR[rule], **kw)
    if rule == "Adam":
        return torch.optim.Adam(ps, lr=LR[rule], **kw)
    return torch.optim.AdamW(ps, lr=LR[rule], weight_decay=WD, **kw)


class NumpyRule:
    """The rule as plain NumPy does it best: per array, in-place ufuncs into one scratch
    array, no temporaries (torch.optim's arithmetic, one pass per ufunc)."""

    def __init__(self, rule: str, ps: list[np.ndarray]) -> None:
        self.rule, self.ps, self.t = rule, ps, 0
        self.lr = LR[rule]
        if rule in ("Adam", "AdamW"):
            self.adams = [NumpyAdam(p, lr=self.lr) for p in ps]
        else:
            self.state = [np.zeros_like(p) for p in ps]
            self.tmp = [np.empty_like(p) for p in ps]

    def step(self, gs: list[np.ndarray]) -> None:
        self.t += 1
        f = np.float32
        if self.rule in ("Adam", "AdamW"):
            decay = f(1 - self.lr * WD)
            for a, g in zip(self.adams, gs):
                if self.rule == "AdamW":
                    a.p *= decay
                a.step(g)
        elif self.rule == "SGD momentum":
            for p, g, buf, tmp in zip(self.ps, gs, self.state, self.tmp):
                if self.t == 1:
                    np.copyto(buf, g)
                else:
                    buf *= f(MOMENTUM)
                    buf += g
                np.multiply(buf, f(self.lr), out=tmp)
                p -= tmp
        else:  # Adagrad: sum += g^2; p -= lr * g / (sqrt(sum) + eps)
            for p, g, s, tmp in zip(self.ps, gs, self.state, self.tmp):
                np.multiply(g, g, out=tmp)
                s += tmp
                np.sqrt(s, out=tmp)
                tmp += f(1e-10)
                np.divide(g, tmp, out=tmp)
                tmp *= f(self.lr)
                p -= tmp


def rule_group(rule: str, sizes: list[int], g_work: list[np.ndarray], torch, rng) -> dict[str, tuple]:
    """name -> (step callable, bytes per element the operation must move)."""
    bpe = bytes_per_element(STATES[rule])
    out: dict[str, tuple] = {}

    def params() -> list[np.ndarray]:
        return [rng.standard_normal(n, dtype=np.float32) for n in sizes]

    opt = fastgd_rule(rule, params())
    out["fastgd"] = (lambda: opt.step(g_work), bpe)
    np_opt = NumpyRule(rule, params())
    out["NumPy"] = (lambda: np_opt.step(g_work), bpe)
    tparams = None
    if torch is not None:
        tgrads = [torch.from_numpy(g) for g in g_work]
        for name, kw in (("torch for-loop", {"foreach": False}), ("torch foreach", {"foreach": True}),
                         ("torch fused", {"fused": True})):
            ps = [torch.from_numpy(p).requires_grad_(True) for p in params()]
            for p, g in zip(ps, tgrads):
                p.grad = g
            try:
                topt = torch_rule(torch, rule, ps, **kw)
                topt.step()
            except (RuntimeError, ValueError, TypeError) as e:
                note(f"{name} {rule}: not available here ({e})")
                continue
            out[name] = (topt.step, bpe)
            tparams = ps
    if rule == "Adam":
        # Clipping by the global 2-norm: at least one more read of the gradients (fused:
        # the norm pass, then the step reads them again scaled on the fly); alone, a read
        # for the norm and a read + write to scale them.
        clipped = fastgd_rule(rule, params(), clip_norm=1.0)
        out["fastgd Adam+clip"] = (lambda: clipped.step(g_work), bpe + 4)
        out["fastgd clip"] = (lambda: fastgd.clip_grad_norm_(g_work, 1.0), 12)
        if torch is not None:
            ps = [torch.from_numpy(p).requires_grad_(True) for p in params()]
            for p, g in zip(ps, tgrads):
                p.grad = g
            try:
                fused = torch.optim.Adam(ps, lr=LR[rule], fused=True)
                fused.step()
            except (RuntimeError, ValueError, TypeError) as e:
                note(f"torch fused Adam: not available here ({e}); clip + step uses foreach")
                fused = torch.optim.Adam(ps, lr=LR[rule], foreach=True)
            clip = torch.nn.utils.clip_grad_norm_

            def clip_then_step(ps=ps, fused=fused) -> None:
                clip(ps, 1.0, foreach=True)
                fused.step()

            out["torch clip + fused Adam"] = (clip_then_step, bpe + 4)
            cps = tparams if tparams is not None else ps
            out["torch clip"] = (lambda: clip(cps, 1.0, foreach=True), 12)
    return out


def bench_optimizers(args, torch, threads: int) -> dict:
    big = 4 * M if args.quick else 20 * M
    configs = [(f"1 x {big // M}M", [big]), ("200 x 10k", [10_000] * 200), ("2,000 x 1k", [1_000] * 2000)]
    rounds = {0: 5, 1: 9, 2: 7} if args.quick else {0: 11, 1: 21, 2: 15}
    rules = list(LR)
    sn = int((64 if args.quick else 128) * 1e6 / 8)
    kernels, keep = stream_kernels(sn, 32768)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    stream_fns = {f"STREAM {k}": (lambda fn=fn: run_split(fn, sn, threads, pool)) for k, (fn, _) in kernels.items()}
    stream_times: dict[str, list[float]] = {k: [] for k in stream_fns}
    raw: list[dict] = []
    rng = np.random.default_rng(0)
    try:
        for ci, (cname, sizes) in enumerate(configs):
            n = sum(sizes)
            g_orig = [rng.standard_normal(s, dtype=np.float32) * np.float32(1e-3) for s in sizes]
            g_work = [g.copy() for g in g_orig]

            def refresh(g_work=g_work, g_orig=g_orig) -> None:
                for w, o in zip(g_work, g_orig):
                    np.copyto(w, o)

            for rule in rules:
                t0 = time.perf_counter()
                group = rule_group(rule, sizes, g_work, torch, rng)
                variants = {k: fn for k, (fn, _) in group.items()}
                if ci == 0:  # the bandwidth, in the same rounds as the large arrays
                    variants.update(stream_fns)
                ts = interleaved(variants, rounds[ci], 3, refresh, plain=frozenset(stream_fns))
                for k, v in ts.items():
                    if k in stream_fns:
                        stream_times[k] += v
                    else:
                        raw.append({"config": cname, "arrays": len(sizes), "elements": n, "rule": rule,
                                    "variant": k, "bytes_per_element": group[k][1], "times": v})
                print(f"  {cname:<11} {rule:<13} {len(group)} variants x {rounds[ci]} rounds: "
                      f"{time.perf_counter() - t0:5.1f} s", flush=True)
                del group, variants
                gc.collect()
            del g_orig, g_work
            gc.collect()
    finally:
        if pool is not None:
            pool.shutdown()
        del keep

    stream = []
    for k, ts in stream_times.items():
        nbytes = kernels[k.removeprefix("STREAM ")][1] * sn
        stream.append({"kernel": k.removeprefix("STREAM "), "threads": threads,
                       "median_gbs": nbytes / statistics.median(ts) / 1e9, "best_gbs": nbytes / min(ts) / 1e9,
                       "calls": len(ts)})
    bw = max(s["median_gbs"] for s in stream)

    rows = []
    for r in raw:
        med = statistics.median(r["times"])
        bound = r["bytes_per_element"] * r["elements"] / (bw * 1e9)
        rows.append({k: v for k, v in r.items() if k != "times"} | {
            "times_ms": [round(t * 1e3, 4) for t in r["times"]],
            "median_ms": med * 1e3, "best_ms": min(r["times"]) * 1e3, "rounds": len(r["times"]),
            "ns_per_param": med / r["elements"] * 1e9, "gparams_per_s": r["elements"] / med / 1e9,
            "bound_ms": bound * 1e3, "fraction_of_bound": bound / med})
    step_peers = ("fastgd", "NumPy", "torch for-loop", "torch foreach", "torch fused")
    for cname, _ in configs:
        for rule in rules:
            group = [r for r in rows if r["config"] == cname and r["rule"] == rule and r["variant"] in step_peers]
            best = min(r["median_ms"] for r in group)
            for r in group:
                r["vs_best"] = r["median_ms"] / best
    clip_rows = []
    for cname, _ in configs:
        by = {r["variant"]: r for r in rows if r["config"] == cname and r["rule"] == "Adam"}
        for pair in (("fastgd clip", "torch clip"), ("fastgd Adam+clip", "torch clip + fused Adam")):
            present = [by[v] for v in pair if v in by]
            best = min(r["median_ms"] for r in present)
            for r in present:
                r["vs_best"] = r["median_ms"] / best
        entry = {"config": cname, "elements": by["fastgd"]["elements"],
                 "fastgd_adam_ms": by["fastgd"]["median_ms"],
                 "fastgd_adam_clip_ms": by["fastgd Adam+clip"]["median_ms"],
                 "fastgd_clip_fused_over_adam": by["fastgd Adam+clip"]["median_ms"] / by["fastgd"]["median_ms"],
                 "fastgd_clip_fused_over_adam_paired": paired(by["fastgd Adam+clip"], by["fastgd"])[0]}
        if "torch clip + fused Adam" in by and "torch fused" in by:
            entry["torch_clip_then_fused_over_fused"] = (by["torch clip + fused Adam"]["median_ms"]
                                                         / by["torch fused"]["median_ms"])
            entry["torch_clip_then_fused_over_fastgd_adam_clip"] = (by["torch clip + fused Adam"]["median_ms"]
                                                                    / by["fastgd Adam+clip"]["median_ms"])
        if "torch clip" in by:
            entry["torch_clip_over_fastgd_clip"] = by["torch clip"]["median_ms"] / by["fastgd clip"]["median_ms"]
        clip_rows.append(entry)
    return {"configs": [c for c, _ in configs], "threads": threads, "stream": stream, "bandwidth_gbs": bw,
            "stream_array_mb": sn * 8 / 1e6, "results": rows, "clip": clip_rows}


def paired(a: dict, b: dict) -> tuple[float, float]:
    """Over the rounds (each times both variants): the median of a's time over b's, and the
    share of rounds in which a was the faster."""
    ratios = [x / y for x, y in zip(a["times_ms"], b["times_ms"])]
    return statistics.median(ratios), sum(r < 1 for r in ratios) / len(ratios)


def print_optimizers(res: dict) -> None:
    print(f"\nSTREAM-like bandwidth, NumPy, {res['threads']} thread(s), 3 float64 arrays of "
          f"{res['stream_array_mb']:.0f} MB (median / best GB/s):")
    for s in res["stream"]:
        print(f"  {s['kernel']:<16} {s['median_gbs']:6.1f} / {s['best_gbs']:5.1f}")
    print(f"bound: {res['bandwidth_gbs']:.1f} GB/s (the best median)")
    for cname in res["configs"]:
        rows = [r for r in res["results"] if r["config"] == cname and "vs_best" in r and "clip" not in r["variant"]]
        print(f"\n### Optimizer step, {cname} float32 ({rows[0]['elements']:,} parameters)\n")
        print("| rule | implementation | median ms | ns/param | G params/s | vs best | of bound |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['rule']} | {r['variant']} | {fmt(r['median_ms'])} | {r['ns_per_param']:.2f} | "
                  f"{r['gparams_per_s']:.2f} | {r['vs_best']:.2f}x | {r['fraction_of_bound']:.0%} |")
    print("\n### Clipping by the global norm (max_norm 1.0), Adam float32\n")
    print("| arrays | implementation | median ms | ns/param | vs best | of bound |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    order = ("fastgd clip", "torch clip", "fastgd Adam", "fastgd Adam+clip", "torch fused", "torch clip + fused Adam")
    for cname in res["configs"]:
        by = {r["variant"]: r for r in res["results"] if r["config"] == cname and r["rule"] == "Adam"}
        by["fastgd Adam"] = by["fastgd"]
        for v in order:
            if v in by:
                r = by[v]
                vs = f"{r['vs_best']:.2f}x" if "clip" in v else ""
                name = {"fastgd clip": "fastgd.clip_grad_norm_", "torch clip": "torch clip_grad_norm_ (foreach)",
                        "fastgd Adam+clip": "fastgd Adam(clip_norm=1.0)", "fastgd Adam": "fastgd Adam (no clip)",
                        "torch fused": "torch Adam fused (no clip)",
                        "torch clip + fused Adam": "torch clip, then Adam fused"}[v]
                print(f"| {cname} | {name} | {fmt(r['median_ms'])} | {r['ns_per_param']:.2f} | {vs} | "
                      f"{r['fraction_of_bound']:.0%} |")
    print("\nClipping fused into the step, time over the step alone:")
    for c in res["clip"]:
        line = f"  {c['config']:<11} fastgd Adam(clip_norm) / Adam: {c['fastgd_clip_fused_over_adam']:.2f}x"
        if "torch_clip_then_fused_over_fused" in c:
            line += (f"   torch clip + fused / fused: {c['torch_clip_then_fused_over_fused']:.2f}x"
                     f"   torch clip + fused / fastgd Adam(clip_norm): "
                     f"{c['torch_clip_then_fused_over_fastgd_adam_clip']:.2f}x")
        print(line)


def fmt(ms: float) -> str:
    return f"{ms:.3g}" if ms < 10 else f"{ms:.1f}"


# -- 2. and 3. training ---------------------------------------------------------------------


def classification_data(sklearn, n: int, n_test: int, n_features: int, n_classes: int, seed: int, **kw):
    """Float32 features standardized once by the training part's mean and standard
    deviation (so that every peer sees the same inputs and none needs its own scaling)."""
    if sklearn is not None:
        from sklearn.datasets import make_classification
        X, y = make_classification(n_samples=n + n_test, n_features=n_features, n_classes=n_classes,
                                   random_state=seed, **kw)
        source = "sklearn.datasets.make_classification"
    else:
        X, y = fastgd.datasets.make_classification(n_samples=n + n_test, n_features=n_features,
                                                   n_classes=n_classes, random_state=seed)
        source = "fastgd.datasets.make_classification"
    X = X.astype(np.float32)
    mean, std = X[:n].mean(axis=0), X[:n].std(axis=0)
    X -= mean
    X /= std
    return X[:n], y[:n].astype(np.int64), X[n:], y[n:].astype(np.int64), source


# Idle time before each timed fit: BLAS libraries' threads keep spinning after a call
# (OpenBLAS's for about 2^28 cycles, ~0.1 s), and so do OpenMP runtimes' for a while, and a
# fit that starts while they spin shares the cores with them. Measured here: a fastgd fit
# right after NumPy products takes 1.5x its time on an idle machine. Without the pause, each
# peer would pay for the threads of the one before (its own held-out prediction included).
SETTLE_S = 0.3


def run_fits(peers: dict[str, Callable[[], tuple]], repeats: int) -> dict[str, dict]:
    """Each peer's fit ``repeats`` times, in turns, each after ``SETTLE_S`` of idle time;
    ``fit()`` returns (passes, accuracy) or
    (passes, accuracy, {name: seconds}), parts of the fit it timed itself. With ``fit_s``
    among them, that is the fit's time (the fit alone, without the held-out prediction);
    else the whole call's."""
    order = list(peers)
    out: dict[str, dict] = {k: {"times": [], "accuracy": [], "passes": [], "parts": []} for k in order}
    for r in range(repeats):
        for k in order if r % 2 == 0 else reversed(order):
            time.sleep(SETTLE_S)
            t = time.perf_counter()
            passes, acc, *parts = peers[k]()
            elapsed = time.perf_counter() - t
            more = dict(parts[0]) if parts else {}
            out[k]["times"].append(more.pop("fit_s", elapsed))  # fit() alone, where the peer timed it
            out[k]["accuracy"].append(acc)
            out[k]["passes"].append(passes)
            out[k]["parts"].append(more)
            print(f"  {k:<52} {out[k]['times'][-1]:7.2f} s  accuracy {acc:.4f}", flush=True)
    return out


def summarize_fits(raw: dict[str, dict], n: int, extras: tuple[str, ...]) -> list[dict]:
    """Medians; ``vs best`` against the fastest like-for-like peer (not the ``extras``)."""
    rows = []
    for k, v in raw.items():
        med = statistics.median(v["times"])
        passes = statistics.median(v["passes"])
        parts = {p: statistics.median(d[p] for d in v["parts"]) for p in v["parts"][0]}
        parts |= {p.removesuffix("_s") + "_all_s": [d[p] for d in v["parts"]] for p in v["parts"][0]}
        rows.append({"peer": k, "median_s": med, "best_s": min(v["times"]), "repeats": len(v["times"]),
                     "times_s": v["times"], "passes": passes, "samples_per_s": n * passes / med,
                     "accuracy": statistics.median(v["accuracy"]), "extra": k in extras} | parts)
    best = max(r["samples_per_s"] for r in rows if not r["extra"])
    for r in rows:
        r["vs_best"] = best / r["samples_per_s"]
    return rows


def print_fits(title: str, rows: list[dict], n: int) -> None:
    print(f"\n### {title}\n")
    print("| implementation | median s | passes | samples/s | vs best | held-out accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['peer']}{' *' if r['extra'] else ''} | {r['median_s']:.2f} | {r['passes']:g} | "
              f"{r['samples_per_s'] / 1e6:.2f} M | {r['vs_best']:.2f}x | {r['accuracy']:.2%} |")
    if any(r["extra"] for r in rows):
        print("\n\\* not like-for-like (other settings), for reference; vs best is against the others")


def numpy_logreg(X, y, Xte, yte, epochs: int, bs: int, lr: float, seed: int) -> tuple[float, float]:
    n, d = X.shape
    theta = np.zeros(d + 1, np.float32)
    w = theta[:d]
    adam = NumpyAdam(theta, lr=lr)
    grad = np.empty_like(theta)
    yf = y.astype(np.float32)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            Xb = X[idx]
            z = Xb @ w
            z += theta[d]
            # sigmoid(z) - y, overflow-free: sigmoid(z) = (1 + tanh(z / 2)) / 2
            np.multiply(z, np.float32(0.5), out=z)
            np.tanh(z, out=z)
            z += np.float32(1)
            z *= np.float32(0.5)
            z -= yf[idx]
            z /= np.float32(len(idx))
            np.matmul(z, Xb, out=grad[:d])
            grad[d] = z.sum()
            adam.step(grad)
    acc = float(np.mean(((Xte @ w + theta[d]) > 0) == yte))
    return epochs, acc


def torch_train(torch, model, loss_fn, X, y, epochs: int, bs: int, lr: float, seed: int) -> None:
    try:
        opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    n = len(X)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()


_DATA: dict[tuple, tuple] = {}


def logreg_data(args, sklearn) -> tuple:
    """The logistic-regression data (made once per run: the memory and memmap parts reuse it)."""
    key = ("logreg", args.quick, sklearn is None)
    if key not in _DATA:
        n = 200_000 if args.quick else M
        t = time.perf_counter()
        _DATA[key] = classification_data(sklearn, n, LOGREG_TEST, LOGREG_D, 2, 0, n_informative=20, n_redundant=10)
        print(f"  data: {_DATA[key][4]}, {n:,} + {LOGREG_TEST:,} held out x {LOGREG_D} float32 "
              f"({time.perf_counter() - t:.1f} s)", flush=True)
    return _DATA[key]


def fastgd_logreg(**overrides) -> fastgd.LogisticRegression:
    return fastgd.LogisticRegression(**(LOGREG_PARAMS | overrides))


def timed_logreg_fit(X, y, Xte, yte, **overrides) -> tuple[int, float, dict]:
    """One fit: epochs run, held-out accuracy, the time of ``fit()`` alone, and the epochs'
    time as ``history_`` records it (from the start of training to the end of the last epoch)."""
    m = fastgd_logreg(**overrides)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*reached max_epochs")
        fit_s = timed(lambda: m.fit(X, y))
    return (m.n_iter_, float(np.mean(m.predict(Xte) == yte)),
            {"fit_s": fit_s, "epochs_s": m.history_.records[-1]["time"]})


def bench_logreg(args, torch, sklearn) -> dict:
    n, d, epochs, bs, lr = 200_000 if args.quick else M, LOGREG_D, LOGREG_EPOCHS, LOGREG_BATCH, LOGREG_LR
    X, y, Xte, yte, source = logreg_data(args, sklearn)
    repeats = 1 if args.quick else args.repeats
    fit = functools.partial(timed_logreg_fit, X, y, Xte, yte)
    peers: dict[str, Callable] = {LOGREG_DEFAULTS: fit, LOGREG_BATCHES: lambda: fit(shuffle="batches"),
                                  "NumPy mini-batch Adam": lambda: numpy_logreg(X, y, Xte, yte, epochs, bs, lr, 0)}
    if torch is not None:
        yf = y.astype(np.float32)

        def torch_fit():
            torch.manual_seed(0)
            model = torch.nn.Linear(d, 1)
            bce = torch.nn.BCEWithLogitsLoss()
            torch_train(torch, model, lambda z, t: bce(z.squeeze(1), t), X, yf, epochs, bs, lr, 0)
            with torch.no_grad():
                pred = (model(torch.from_numpy(Xte)).squeeze(1) > 0).numpy()
            return epochs, float(np.mean(pred == yte))

        peers["PyTorch nn.Linear + Adam (fused)"] = torch_fit
    if sklearn is not None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        def sgd_fit():
            m = SGDClassifier(loss="log_loss", max_iter=epochs, tol=None, random_state=0)
            fit_s = timed(lambda: m.fit(X, y))
            return m.n_iter_, float(m.score(Xte, yte)), {"fit_s": fit_s}

        def lbfgs_fit():
            m = LogisticRegression()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fit_s = timed(lambda: m.fit(X, y))
            return int(np.max(m.n_iter_)), float(m.score(Xte, yte)), {"fit_s": fit_s}

        peers[SGD_CLASSIFIER] = sgd_fit
        peers[LBFGS] = lbfgs_fit
    # Not like-for-like, for the parts of a fit: one epoch (what a fit pays once), no
    # standardization (what the statistics pass and the standardization cost), and the
    # same batches every epoch in the same order (the floor of what shuffling costs).
    peers[LOGREG_ONE_EPOCH] = lambda: fit(max_epochs=1)
    peers[LOGREG_RAW] = lambda: fit(standardize=False)
    peers[LOGREG_IN_ORDER] = lambda: fit(shuffle=False)
    raw = run_fits(peers, repeats)
    # The parts are differences of fits: at least 3 rounds of fastgd's, even with --quick.
    ours = [k for k in peers if k.startswith("fastgd")]
    for k, v in run_fits({k: peers[k] for k in ours}, max(0, 3 - repeats)).items():
        for field, values in v.items():
            raw[k][field] += values
    rows = summarize_fits(raw, n, (LOGREG_ONE_EPOCH, LOGREG_RAW, LOGREG_IN_ORDER))
    return {"n_train": n, "n_test": LOGREG_TEST, "n_features": d, "epochs": epochs, "batch_size": bs, "lr": lr,
            "data": source, "results": rows, "parts": logreg_parts(rows, X, repeats)}


def logreg_parts(rows: list[dict], X: np.ndarray, repeats: int) -> dict:
    """Where a fit with defaults spends its time, from the public API: the epochs as
    ``history_`` times them, the rest of the fit (the statistics pass, checks, labels, any
    copy of X), the cost of standardizing (that rest against the rest of a fit with
    ``standardize=False`` in the same rounds, paired round by round), an epoch from the
    difference of the 5- and 1-epoch fits, and the moments function alone when fastgd has
    one we know."""
    by = {r["peer"]: r for r in rows}
    full, one, raw = by[LOGREG_DEFAULTS], by[LOGREG_ONE_EPOCH], by[LOGREG_RAW]
    out: dict = {}
    for name in (LOGREG_DEFAULTS, LOGREG_BATCHES, LOGREG_RAW, LOGREG_IN_ORDER):
        r = by[name]
        out[name] = {"fit_s": r["median_s"], "epochs_s": r["epochs_s"], "epoch_s": r["epochs_s"] / r["passes"],
                     "outside_epochs_s": r["median_s"] - r["epochs_s"]}
    # What a fit pays once with standardization and once without, round by round: the
    # epochs themselves may run at another speed on the standardized copy than on X.
    once = [t - e for t, e in zip(full["times_s"], full["epochs_all_s"])]
    once_raw = [t - e for t, e in zip(raw["times_s"], raw["epochs_all_s"])]
    out["standardize_s"] = statistics.median(a - b for a, b in zip(once, once_raw))
    if full["passes"] > one["passes"]:
        out["epoch_by_difference_s"] = (full["median_s"] - one["median_s"]) / (full["passes"] - one["passes"])
    out["moments"] = time_moments(X, repeats)
    return out


# Where fastgd keeps the weighted column moments of X (fit's statistics pass), newest first.
MOMENTS_FUNCTIONS = (("fastgd.models._data", "weighted_moments"),)


def time_moments(X: np.ndarray, repeats: int) -> dict:
    """The statistics pass alone: fastgd's moments function over X with unit weights, or a
    note saying that none was found (it is a private function: it may move)."""
    import importlib

    w = np.ones(len(X))  # float64, as fit's checked sample weights
    for module, name in MOMENTS_FUNCTIONS:
        try:
            fn = getattr(importlib.import_module(module), name)
            fn(X[:1024], w[:1024])
        except (ImportError, AttributeError, TypeError) as e:
            note(f"statistics pass alone: {module}.{name}(X, w) not usable here ({e})")
            continue
        ts = [timed(lambda fn=fn: fn(X, w)) for _ in range(max(3, repeats))]
        return {"function": f"{module}.{name}", "median_s": statistics.median(ts), "best_s": min(ts)}
    return {"function": None, "note": "no moments function found: see the standardize=False difference"}


def mlp_data(args, sklearn) -> tuple:
    """The MLP's data (made once per run: the memory part reuses it)."""
    key = ("mlp", args.quick, sklearn is None)
    if key not in _DATA:
        n = 50_000 if args.quick else 200_000
        t = time.perf_counter()
        _DATA[key] = classification_data(sklearn, n, MLP_TEST, MLP_LAYERS[0], MLP_LAYERS[-1], 1, n_informative=30,
                                         n_redundant=10)
        print(f"  data: {_DATA[key][4]}, {n:,} + {MLP_TEST:,} held out x {MLP_LAYERS[0]} float32, "
              f"{MLP_LAYERS[-1]} classes ({time.perf_counter() - t:.1f} s)", flush=True)
    return _DATA[key]


def bench_mlp(args, torch, sklearn) -> dict:
    X, y, Xte, yte, source = mlp_data(args, sklearn)
    n, d, k, hidden = len(X), MLP_LAYERS[0], MLP_LAYERS[-1], tuple(MLP_LAYERS[1:-1])
    epochs, bs, lr = MLP_PARAMS["max_epochs"], MLP_PARAMS["batch_size"], MLP_PARAMS["lr"]
    repeats = 1 if args.quick else args.repeats

    # Glorot/Xavier uniform weights for all three (scikit-learn's only choice, fastgd's
    # default; torch's nn.Linear has its own), so that accuracies compare.
    def fastgd_fit(init: str = "xavier"):
        m = fastgd.MLPClassifier(**MLP_PARAMS, standardize=False, init=init)
        m.fit(X, y)
        return m.n_iter_, float(np.mean(m.predict(Xte) == yte))

    peers: dict[str, Callable] = {MLP_FASTGD: fastgd_fit}
    if torch is not None:
        def torch_fit():
            torch.manual_seed(0)
            nn = torch.nn
            model = nn.Sequential(nn.Linear(d, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                  nn.Linear(hidden[1], k))
            for layer in model:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)
            torch_train(torch, model, nn.CrossEntropyLoss(), X, y, epochs, bs, lr, 0)
            with torch.no_grad():
                pred = model(torch.from_numpy(Xte)).argmax(1).numpy()
            return epochs, float(np.mean(pred == yte))

        peers[TORCH_MLP] = torch_fit
    if sklearn is not None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        def sk_fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m = MLPClassifier(hidden, solver="adam", learning_rate_init=lr, batch_size=bs, max_iter=epochs,
                                  alpha=0.0, random_state=0).fit(X, y)
            return m.n_iter_, float(m.score(Xte, yte))

        peers["sklearn MLPClassifier"] = sk_fit
    # Not like-for-like: He's initialization, for reference.
    extra = "fastgd MLPClassifier, init='he'"
    peers[extra] = lambda: fastgd_fit("he")
    raw = run_fits(peers, repeats)
    return {"n_train": n, "n_test": MLP_TEST, "layers": MLP_LAYERS, "epochs": epochs, "batch_size": bs, "lr": lr,
            "data": source, "threads": fastgd.get_num_threads(),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "results": summarize_fits(raw, n, (extra,))}


# -- 5. and 6. memory and memory-mapped files -------------------------------------------------


def saved_npy(tmp: Path, name: str, X: np.ndarray, y: np.ndarray) -> tuple[Path, Path]:
    """X and y as .npy files in ``tmp`` (written once per run)."""
    xp, yp = tmp / f"{name}_X.npy", tmp / f"{name}_y.npy"
    if not xp.exists():
        np.save(xp, X)
        np.save(yp, y)
    return xp, yp


def bench_memory(args, sklearn, tmp: Path, threads: int) -> dict:
    """Peak memory growth of one fit with an in-memory X, a fresh process per model
    (``fit_memory.py``): logistic regression with defaults and with shuffle="batches", and
    the MLP (the MLP section's settings, standardize at its default)."""
    X, y, *_ = logreg_data(args, sklearn)
    xp, yp = saved_npy(tmp, "logreg", X, y)
    runs = {LOGREG_DEFAULTS: (xp, yp, "LogisticRegression", LOGREG_PARAMS, [LOGREG_D, 1]),
            LOGREG_BATCHES: (xp, yp, "LogisticRegression", LOGREG_PARAMS | {"shuffle": "batches"}, [LOGREG_D, 1])}
    Xm, ym, *_ = mlp_data(args, sklearn)
    mxp, myp = saved_npy(tmp, "mlp", Xm, ym)
    runs["fastgd MLPClassifier"] = (mxp, myp, "MLPClassifier", MLP_PARAMS, MLP_LAYERS)
    results = []
    for name, (xpath, ypath, est, params, widths) in runs.items():
        r = fit_memory.peak_growth(xpath, ypath, est, params, widths, threads)
        if r is not None:
            results.append(r | {"model": name})
            print(f"  {name:<52} peak growth {r['anon_growth_of_x']:.3f} x X (RssAnon), "
                  f"{r['hwm_growth_of_x']:.3f} x X (VmHWM), X {r['x_bytes'] / 2**20:.0f} MiB", flush=True)
    return {"results": results}


def warm_page_cache(X: np.ndarray, block_rows: int = 65_536) -> float:
    """Read a memmap once, block by block, so that its pages are in the page cache; seconds."""
    t = time.perf_counter()
    for start in range(0, len(X), block_rows):
        float(X[start:start + block_rows].sum(dtype=np.float64))
    return time.perf_counter() - t


MEMMAP_VARIANTS = {"defaults (shuffle=True)": {}, "shuffle='batches'": {"shuffle": "batches"}}


def bench_memmap(args, sklearn, tmp: Path) -> dict:
    """fit on ``np.load(path, mmap_mode="r")`` against the same rows in memory, page cache
    warm, in turns; speed ratio = in-memory time / memmap time (1.0: as fast)."""
    X, y, Xte, yte, _ = logreg_data(args, sklearn)
    xp, _ = saved_npy(tmp, "logreg", X, y)
    Xm = np.load(xp, mmap_mode="r")
    warm_s = warm_page_cache(Xm)
    print(f"  page cache warmed: {Xm.nbytes / 2**20:.0f} MiB read in {warm_s:.2f} s", flush=True)
    peers: dict[str, Callable] = {}
    for label, kw in MEMMAP_VARIANTS.items():
        peers[f"in memory, {label}"] = functools.partial(timed_logreg_fit, X, y, Xte, yte, **kw)
        peers[f"memmap, {label}"] = functools.partial(timed_logreg_fit, Xm, y, Xte, yte, **kw)
    raw = run_fits(peers, max(3, args.repeats))
    rows = summarize_fits(raw, len(X), ())
    ratios = []
    for label in MEMMAP_VARIANTS:
        mem, mm = raw[f"in memory, {label}"]["times"], raw[f"memmap, {label}"]["times"]
        ratios.append({"variant": label, "speed_ratio": statistics.median(mem) / statistics.median(mm),
                       "paired_median": statistics.median(a / b for a, b in zip(mem, mm))})
    return {"n_train": len(X), "warm_s": warm_s, "results": rows, "ratios": ratios}


# -- reports of the parts above ---------------------------------------------------------------


def logreg_vs_bounds(lr: dict, bounds: dict | None, threads: int) -> list[dict]:
    """Each timed epoch as a rate: rows read (4 bytes x features per row) against the read
    bandwidth of its access pattern (rows in a random order for per-sample shuffling, the
    sequential read for rows in order), and 4 FLOPs per element (a multiply-add for z = Xw,
    one for the gradient X^T g) against the FMA peak, on fastgd's thread count."""
    n, d = lr["n_train"], lr["n_features"]
    seq = machine_bounds.bound(bounds["read"], threads, "best_gbs") if bounds else None
    rand = machine_bounds.bound(bounds.get("random_rows", []), threads, "best_gbs") if bounds else None
    fma = machine_bounds.bound(bounds["fma"], threads, "best_gflops") if bounds else None
    rows = []
    for name in (LOGREG_DEFAULTS, LOGREG_BATCHES, LOGREG_IN_ORDER):
        epoch = lr["parts"][name]["epoch_s"]
        gbs, gflops = n * d * 4 / epoch / 1e9, 4 * n * d / epoch / 1e9
        read, kind = (rand, "rows in a random order") if name == LOGREG_DEFAULTS else (seq, "sequential")
        rows.append({"variant": name, "epoch_s": epoch, "rows_per_s": n / epoch, "read_gbs": gbs, "gflops": gflops,
                     "read_bound": kind, "read_bound_gbs": read["best_gbs"] if read else None,
                     "of_read_bandwidth": gbs / read["best_gbs"] if read else None,
                     "of_fma_peak": gflops / fma["best_gflops"] if fma else None})
    return rows


def mlp_vs_sgemm(mlp: dict, bounds: dict | None, threads: int) -> dict | None:
    """The MLP's products as a rate (FLOPs forward + backward per sample x samples/s) over
    the SGEMM peak (the best SGEMM rate of the run on at most ``threads`` threads) and over
    the step's own products, split over the threads as fastgd splits a batch."""
    if not bounds:
        return None
    fg = next(r for r in mlp["results"] if r["peer"] == MLP_FASTGD)
    gflops = bounds["mlp_flops_per_sample"] * fg["samples_per_s"] / 1e9
    peak = machine_bounds.sgemm_peak(bounds, threads)
    own = next(r for r in bounds["mlp_products"] if r["split"] and r["threads"] == threads)
    return {"gflops": gflops, "flops_per_sample": bounds["mlp_flops_per_sample"],
            "sgemm_peak_gflops": peak["best_gflops"], "of_sgemm_peak": gflops / peak["best_gflops"],
            "step_products_gflops": own["best_gflops"], "step_products_batch": own["batch"],
            "of_step_products": gflops / own["best_gflops"]}


def print_logreg_parts(lr: dict, simd: str) -> None:
    parts = lr["parts"]
    print(f"\n### Where a logistic-regression fit spends its time (SIMD {simd}, medians)\n")
    print("| fit | whole fit s | epochs s (history_) | per epoch ms | outside the epochs s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in (LOGREG_DEFAULTS, LOGREG_BATCHES, LOGREG_RAW, LOGREG_IN_ORDER):
        p = parts[name]
        print(f"| {name} | {p['fit_s']:.3f} | {p['epochs_s']:.3f} | {p['epoch_s'] * 1e3:.1f} | "
              f"{p['outside_epochs_s']:.3f} |")
    print(f"\nstandardization (outside the epochs: defaults - standardize=False, paired by round): "
          f"{difference_ms(parts['standardize_s'])}")
    if "epoch_by_difference_s" in parts:
        print(f"one epoch from (5-epoch fit - 1-epoch fit) / 4: {difference_ms(parts['epoch_by_difference_s'])}")
    m = parts["moments"]
    if m.get("function"):
        print(f"statistics pass alone, {m['function']}(X, ones): {m['median_s'] * 1e3:.1f} ms "
              f"(best {m['best_s'] * 1e3:.1f})")
    else:
        print(f"statistics pass alone: {m['note']}")
    if lr.get("vs_bounds"):
        print(f"\n| epoch (SIMD {simd}) | ms | M rows/s | rows read GB/s | read bound GB/s | of the bound | GFLOP/s "
              "| of FMA peak |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in lr["vs_bounds"]:
            bound = r.get("read_bound_gbs")
            bb = f"{bound:.1f} ({r['read_bound']})" if bound is not None else "n/a"
            rb = f"{r['of_read_bandwidth']:.0%}" if r["of_read_bandwidth"] is not None else "n/a"
            fp = f"{r['of_fma_peak']:.0%}" if r["of_fma_peak"] is not None else "n/a"
            print(f"| {r['variant']} | {r['epoch_s'] * 1e3:.1f} | {r['rows_per_s'] / 1e6:.1f} | {r['read_gbs']:.1f} | "
                  f"{bb} | {rb} | {r['gflops']:.1f} | {fp} |")


def difference_ms(seconds: float) -> str:
    """A difference of two timings, or why it says nothing."""
    if seconds <= 0:
        return f"{seconds * 1e3:.0f} ms: not resolved, the run's noise is larger (more --repeats, a quieter machine)"
    return f"{seconds * 1e3:.1f} ms"


def print_memory(mem: dict, simd: str) -> None:
    print(f"\n### Peak memory growth of fit, in-memory X, a fresh process per model (SIMD {simd})\n")
    print("| model | X MiB | growth RssAnon | growth VmHWM | allowed (5% of X + model + batch buffers) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in mem["results"]:
        print(f"| {r['model']} | {r['x_bytes'] / 2**20:.0f} | {r['anon_growth_bytes'] / 2**20:.1f} MiB "
              f"({r['anon_growth_of_x']:.3f} x X) | {r['hwm_growth_bytes'] / 2**20:.1f} MiB "
              f"({r['hwm_growth_of_x']:.3f} x X) | {r['allowance_bytes'] / 2**20:.1f} MiB "
              f"({r['allowance_of_x']:.3f} x X) |")


def print_memmap(mm: dict, simd: str) -> None:
    print_fits(f"LogisticRegression on a memmap vs in memory, {mm['n_train']:,} rows, page cache warm "
               f"(SIMD {simd})", mm["results"], mm["n_train"])
    for r in mm["ratios"]:
        print(f"  {r['variant']}: memmap speed / in-memory speed = {r['speed_ratio']:.2f} "
              f"(paired rounds: {r['paired_median']:.2f})")


def print_mlp_sgemm(s: dict | None, simd: str) -> None:
    if s:
        print(f"\nMLP products (SIMD {simd}): {s['flops_per_sample']:,} FLOPs per sample forward + backward, "
              f"{s['gflops']:.1f} GFLOP/s = {s['of_sgemm_peak']:.0%} of the SGEMM peak "
              f"({s['sgemm_peak_gflops']:.1f} GFLOP/s), {s['of_step_products']:.0%} of the step's own products "
              f"alone, {s['step_products_batch']} rows on each thread ({s['step_products_gflops']:.1f} GFLOP/s)")


# -- targets, chart, main --------------------------------------------------------------------


# -- 4. small problems: the cost of one step() call ------------------------------------------

SMALL_SIZE = 10
SMALL_CALLS = 2000  # step() calls per timed sample: one call is too short to time alone


def bench_small(args, torch) -> dict:
    """Per-call time of step() on one 10-element float32 array: all overhead (argument
    handling, checks, dispatch), next to no arithmetic."""
    rng = np.random.default_rng(0)
    g = rng.standard_normal(SMALL_SIZE).astype(np.float32)
    grads = [g]

    def fastgd_opt(**kw):
        opt = fastgd.Adam([np.zeros(SMALL_SIZE, np.float32)], lr=1e-3, **kw)
        opt.step(grads)
        return opt

    adam, clipped = fastgd_opt(), fastgd_opt(clip_norm=1.0)
    sgd = fastgd.SGD([np.zeros(SMALL_SIZE, np.float32)], lr=1e-3, momentum=0.9)
    sgd.step(grads)
    numpy_adam = NumpyAdam(np.zeros(SMALL_SIZE, np.float32))
    variants: dict[str, Callable[[], object]] = {
        "fastgd Adam": lambda: adam.step(grads),
        "fastgd Adam(clip_norm=1.0)": lambda: clipped.step(grads),
        "fastgd SGD momentum": lambda: sgd.step(grads),
        "NumPy Adam (in-place ufuncs)": lambda: numpy_adam.step(g),
    }
    if torch is not None:
        for name, kw in [("torch Adam (for-loop)", dict(foreach=False)), ("torch Adam (foreach)", dict(foreach=True)),
                         ("torch Adam (fused)", dict(fused=True))]:
            tp = torch.zeros(SMALL_SIZE, requires_grad=True)
            tp.grad = torch.from_numpy(g.copy())
            topt = torch.optim.Adam([tp], lr=1e-3, **kw)
            topt.step()
            variants[name] = topt.step

    def many(f: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(SMALL_CALLS):
                f()
        return run

    times = interleaved({k: many(f) for k, f in variants.items()}, rounds=5 if args.quick else 25, warmup=1)
    results = [{"variant": k, "us_per_step": statistics.median(v) / SMALL_CALLS * 1e6} for k, v in times.items()]
    for r in results:
        print(f"  {r['variant']:<30} {r['us_per_step']:7.2f} us per step()", flush=True)
    return {"size": SMALL_SIZE, "calls_per_sample": SMALL_CALLS, "results": results}


def targets(out: dict) -> list[dict]:
    """The figures the project aims at, each with the measured value and whether it holds."""
    res: list[dict] = []
    for t in targets_of_parts(out):
        res.append(t | {"simd_level": out["simd_level"]})
    return res


def random_row_bound(lr: dict) -> str:
    """What the machine allows a shuffled fit: its epochs at the measured bandwidth of rows
    read in a random order, the rest of the fit as measured."""
    rows = {r["variant"]: r for r in lr.get("vs_bounds") or []}
    r = rows.get(LOGREG_DEFAULTS)
    if r is None or r.get("read_bound_gbs") is None:
        return ""
    rate = r["read_bound_gbs"] * 1e9 / (4 * lr["n_features"])  # rows per second at the bound
    outside = lr["parts"][LOGREG_DEFAULTS].get("outside_epochs_s")
    with_rest = ""
    if outside is not None:
        n = lr["n_train"] * lr["epochs"]
        with_rest = f", {n / (n / rate + outside) / 1e6:.1f}M/s with the rest of the fit"
    return f"; bound by rows read in a random order: {rate / 1e6:.1f}M/s for the epochs alone{with_rest}"


def targets_of_parts(out: dict) -> list[dict]:
    res: list[dict] = []
    opt = out.get("optimizers")
    if opt:
        big, small = opt["configs"][0], opt["configs"][-1]
        by = {(r["config"], r["rule"], r["variant"]): r for r in opt["results"]}
        a = by[(big, "Adam", "fastgd")]
        res.append({"target": f"Adam step, {big}: >= 90% of the bandwidth bound",
                    "value": f"{a['fraction_of_bound']:.0%}", "holds": a["fraction_of_bound"] >= 0.9})
        f = by.get((big, "Adam", "torch fused"))
        if f:
            ratio = f["median_ms"] / a["median_ms"]
            pr, wins = paired(f, a)
            res.append({"target": f"Adam step, {big}: no slower than torch fused",
                        "value": (f"torch fused / fastgd = {ratio:.2f}x (paired rounds: median {pr:.2f}x, "
                                  f"fastgd faster in {1 - wins:.0%})"), "holds": ratio >= 1.0})
            f2, a2 = by[(small, "Adam", "torch fused")], by[(small, "Adam", "fastgd")]
            ratio = f2["median_ms"] / a2["median_ms"]
            res.append({"target": f"Adam step, {small}: >= 5x faster than torch fused",
                        "value": f"{ratio:.2f}x", "holds": ratio >= 5.0})
        c = opt["clip"][0]
        ratio = c["fastgd_clip_fused_over_adam"]
        res.append({"target": f"Adam(clip_norm=1.0), {big}: <= 1.2x Adam alone",
                    "value": f"{ratio:.2f}x (paired rounds: median {c['fastgd_clip_fused_over_adam_paired']:.2f}x)",
                    "holds": ratio <= 1.2})
    lr = out.get("logreg")
    if lr:
        by = {r["peer"]: r for r in lr["results"]}
        fg, fb = by[LOGREG_DEFAULTS], by[LOGREG_BATCHES]
        size = f"{lr['n_train']:,} x {lr['n_features']}"
        res.append({"target": f"logistic regression {size}, {lr['epochs']} epochs, whole fit() with defaults: "
                              ">= 30M samples/s",
                    "value": f"{fg['samples_per_s'] / 1e6:.1f}M samples/s ({fg['median_s']:.2f} s)"
                             + random_row_bound(lr),
                    "holds": fg["samples_per_s"] >= 30e6})
        sgd = by.get(SGD_CLASSIFIER)
        if sgd:
            ratio = fg["samples_per_s"] / sgd["samples_per_s"]
            res.append({"target": "logistic regression, defaults: >= 15x SGDClassifier(loss='log_loss', max_iter=5)",
                        "value": f"{ratio:.1f}x", "holds": ratio >= 15})
        sk = by.get(LBFGS)
        if sk:
            diff = (fg["accuracy"] - sk["accuracy"]) * 100
            res.append({"target": "logistic regression, defaults: accuracy within 0.5 pt of sklearn LogisticRegression",
                        "value": f"{fg['accuracy']:.2%} vs {sk['accuracy']:.2%} ({diff:+.2f} pt)",
                        "holds": abs(diff) <= 0.5})
        res.append({"target": "logistic regression, shuffle='batches': >= 40M samples/s",
                    "value": f"{fb['samples_per_s'] / 1e6:.1f}M samples/s ({fb['median_s']:.2f} s)",
                    "holds": fb["samples_per_s"] >= 40e6})
    mem = out.get("memory")
    for r in mem["results"] if mem else []:
        res.append({"target": f"peak memory growth of fit, {r['model']}: <= 5% of X + model + O(batch) buffers",
                    "value": (f"{r['anon_growth_of_x']:.3f} x X (VmHWM {r['hwm_growth_of_x']:.3f} x X), "
                              f"allowed {r['allowance_of_x']:.3f} x X"),
                    "holds": r["anon_growth_bytes"] <= r["allowance_bytes"]})
    mlp = out.get("mlp")
    if mlp:
        by = {r["peer"]: r for r in mlp["results"]}
        fg, tp = by[MLP_FASTGD], by.get(TORCH_MLP)
        if tp:
            ratio = fg["samples_per_s"] / tp["samples_per_s"]
            diff = (fg["accuracy"] - tp["accuracy"]) * 100
            s = mlp.get("vs_sgemm")
            frac = f", {s['of_sgemm_peak']:.0%} of SGEMM peak" if s else ""
            res.append({"target": (f"MLP {'-'.join(map(str, mlp['layers']))}, {mlp['n_train']:,} samples, "
                                   f"{mlp['epochs']} epochs: >= 2x PyTorch on {mlp['torch_threads']} thread(s)"),
                        "value": (f"{ratio:.2f}x, accuracy {fg['accuracy']:.2%} vs {tp['accuracy']:.2%} "
                                  f"({diff:+.2f} pt){frac}"),
                        "holds": ratio >= 2.0 and diff >= -1.0})
    mm = out.get("memmap")
    for r in mm["ratios"] if mm else []:
        res.append({"target": f"fit on a memmap, {r['variant']}: >= 0.8x the in-memory speed (page cache warm)",
                    "value": f"{r['speed_ratio']:.2f}x (paired rounds {r['paired_median']:.2f}x)",
                    "holds": r["speed_ratio"] >= 0.8})
    small = out.get("small")
    if small:
        by = {r["variant"]: r["us_per_step"] for r in small["results"]}
        us = by["fastgd Adam"]
        value = f"{us:.2f} us"
        if "torch Adam (fused)" in by:
            value += f" (torch fused {by['torch Adam (fused)']:.1f} us)"
        res.append({"target": f"small problems: Python overhead per step() <= 2 us (Adam, {small['size']} elements)",
                    "value": value, "holds": us <= 2.0})
    return res


def log_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel("ns per parameter (log scale)")


def wrapped(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters (tick labels, titles: none overlaps
    its neighbour or runs past the figure)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def chart(out: dict):
    """The side-by-side chart of ``out`` (what main writes to JSON) as a matplotlib Figure,
    or None when ``out`` has nothing to draw. No pyplot: the figure only goes to a file."""
    from matplotlib.figure import Figure

    opt = out.get("optimizers")
    panels = (len(opt["configs"]) + 1 if opt else 0) + ("logreg" in out) + ("mlp" in out)
    if not panels:
        return None
    cols = 3
    rows_n = math.ceil(panels / cols)
    # Constrained layout: long tick labels and titles get room instead of being cut.
    fig = Figure(figsize=(6 * cols, 4.6 * rows_n), layout="constrained")
    axes = list(fig.subplots(rows_n, cols, squeeze=False).ravel())
    colors = {"fastgd": "#1f77b4", "NumPy": "#7f7f7f", "torch for-loop": "#ffbb78", "torch foreach": "#ff7f0e",
              "torch fused": "#d62728"}

    def legend_above_bars(ax) -> None:
        # Room above the tallest bar (a log axis), so that the legend covers none.
        low, high = ax.get_ylim()
        ax.set_ylim(low, high * 6)
        ax.legend(fontsize=7, ncols=3, loc="upper left")

    if opt:
        rules = list(LR)
        for cname in opt["configs"]:
            ax = axes.pop(0)
            by = {(r["rule"], r["variant"]): r for r in opt["results"] if r["config"] == cname}
            peers = [p for p in colors if any((ru, p) in by for ru in rules)]
            width = 0.8 / len(peers)
            for i, p in enumerate(peers):
                xs = [j + (i - (len(peers) - 1) / 2) * width for j, ru in enumerate(rules) if (ru, p) in by]
                ys = [by[(ru, p)]["ns_per_param"] for ru in rules if (ru, p) in by]
                ax.bar(xs, ys, width, label=p, color=colors[p])
            for j, ru in enumerate(rules):  # the bandwidth bound of each rule
                bound = bytes_per_element(STATES[ru]) / opt["bandwidth_gbs"]
                ax.hlines(bound, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1,
                          label="bandwidth bound" if j == 0 else None)
            ax.set_xticks(range(len(rules)), [wrapped(ru, 10) for ru in rules])
            log_axis(ax)
            ax.set_title(wrapped(f"optimizer step, {cname} float32", 48))
            legend_above_bars(ax)
        ax = axes.pop(0)
        names = ["fastgd Adam", "fastgd Adam+clip", "torch fused", "torch clip + fused Adam", "fastgd clip",
                 "torch clip"]
        ccolors = ["#1f77b4", "#aec7e8", "#d62728", "#ff9896", "#2ca02c", "#98df8a"]
        width = 0.8 / len(names)
        for i, (nm, col) in enumerate(zip(names, ccolors)):
            key = "fastgd" if nm == "fastgd Adam" else nm
            xs, ys = [], []
            for j, cname in enumerate(opt["configs"]):
                r = next((r for r in opt["results"] if r["config"] == cname and r["rule"] == "Adam"
                          and r["variant"] == key), None)
                if r:
                    xs.append(j + (i - (len(names) - 1) / 2) * width)
                    ys.append(r["ns_per_param"])
            if xs:
                ax.bar(xs, ys, width, label=nm, color=col)
        ax.set_xticks(range(len(opt["configs"])), [wrapped(c, 12) for c in opt["configs"]])
        log_axis(ax)
        ax.set_title(wrapped("clip by global norm, with and without Adam", 48))
        legend_above_bars(ax)
    titles = {"logreg": "logistic regression, whole fit(), 5 epochs", "mlp": "MLP 100-256-256-10, 3 epochs"}
    for key, title in titles.items():
        if key not in out:
            continue
        ax = axes.pop(0)
        rs = out[key]["results"]
        bars = ax.barh([wrapped(r["peer"] + (" *" if r["extra"] else ""), 28) for r in rs],
                       [r["samples_per_s"] / 1e6 for r in rs],
                       color=["#1f77b4" if r["peer"].startswith("fastgd") else "#bbbbbb" for r in rs])
        for b, r in zip(bars, rs):
            if r["extra"]:
                b.set_alpha(0.45)
                b.set_hatch("//")
        for i, r in enumerate(rs):
            ax.text(r["samples_per_s"] / 1e6, i, f" {r['accuracy']:.1%}", va="center", fontsize=8)
        ax.set_xlim(0, 1.25 * max(r["samples_per_s"] for r in rs) / 1e6)
        ax.invert_yaxis()
        ax.set_xlabel(wrapped("M samples/s (label: held-out accuracy; * other settings)", 52))
        ax.set_title(wrapped(f"{title}, {out[key]['n_train']:,} samples", 48))
        ax.tick_params(axis="y", labelsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"fastgd {fastgd.__version__} side by side ({out['cpu_count']} CPUs, {out['threads']} threads, "
                 f"SIMD {out['simd_level']})")
    return fig


def draw(out: dict, path: Path) -> None:
    fig = chart(out)
    if fig is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def load_average() -> list[float] | None:
    """The OS's load averages (1, 5, 15 minutes): how busy the machine was around the run."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def finish_run(out: dict, t_start: float, targets: Callable[[dict], list], print_report: Callable[[dict], None],
               path: Path) -> None:
    """The end of a comparison run (this script's, compare_sparse.py's): its time and the
    load, its targets checked, the report printed and ``out`` written to ``path`` as JSON."""
    out["seconds"] = time.perf_counter() - t_start
    out["load_average_end"] = load_average()
    out["targets"] = targets(out)
    print_report(out)
    print(f"\nseconds per part: {out['part_seconds']}")
    print(f"total {out['seconds']:.0f} s; load average (1, 5, 15 min) at the start {out['load_average_start']}, "
          f"at the end {out['load_average_end']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


def cpu_model() -> str:
    """The CPU's name as the OS reports it (Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The parts, in the order they run: name -> what it measures (--only takes the names).
PARTS = {
    "bounds": "the machine's bounds: read bandwidth, FMA peak, SGEMM",
    "opt": "optimizer steps against torch.optim and NumPy",
    "logreg": "logistic regression, whole fit() with defaults, its parts, against its peers",
    "mlp": "an MLP against PyTorch (same thread count) and scikit-learn",
    "small": "one step() on a 10-element array",
    "memory": "peak memory growth of fit, a fresh process per model",
    "memmap": "fit on a memmap against the same array in memory",
}


def run_parts(args, torch, sklearn, threads: int, out: dict) -> None:
    parts = args.parts_set
    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        out["part_seconds"] = {}
        for i, part in enumerate(p for p in PARTS if p in parts):
            print(f"\n{i + 1}. {PARTS[part]} (SIMD {out['simd_level']})", flush=True)
            t_part = time.perf_counter()
            if part == "bounds":
                out["bounds"] = machine_bounds.measure(threads, args.quick, MLP_LAYERS, MLP_BATCH, LOGREG_D)
            elif part == "opt":
                out["optimizers"] = bench_optimizers(args, torch, threads)
            elif part == "logreg":
                out["logreg"] = bench_logreg(args, torch, sklearn)
                out["logreg"]["vs_bounds"] = logreg_vs_bounds(out["logreg"], out.get("bounds"), threads)
            elif part == "mlp":
                out["mlp"] = bench_mlp(args, torch, sklearn)
                out["mlp"]["vs_sgemm"] = mlp_vs_sgemm(out["mlp"], out.get("bounds"), threads)
            elif part == "small":
                out["small"] = bench_small(args, torch)
            elif part == "memory":
                out["memory"] = bench_memory(args, sklearn, Path(tmp), threads)
            elif part == "memmap":
                out["memmap"] = bench_memmap(args, sklearn, Path(tmp))
            out["part_seconds"][part] = round(time.perf_counter() - t_part, 1)


def print_report(out: dict) -> None:
    simd = out["simd_level"]
    if "bounds" in out:
        machine_bounds.print_bounds(out["bounds"], simd)
    if "optimizers" in out:
        print_optimizers(out["optimizers"])
    if "logreg" in out:
        lr = out["logreg"]
        print_fits(f"Logistic regression, {lr['n_train']:,} x {lr['n_features']} float32, {lr['epochs']} epochs, "
                   f"batch {lr['batch_size']} (SIMD {simd})", lr["results"], lr["n_train"])
        print_logreg_parts(lr, simd)
    if "mlp" in out:
        m = out["mlp"]
        print_fits(f"MLP {' -> '.join(map(str, m['layers']))}, {m['n_train']:,} samples, {m['epochs']} epochs, "
                   f"batch {m['batch_size']}, fastgd {m['threads']} / torch {m['torch_threads']} thread(s) "
                   f"(SIMD {simd})", m["results"], m["n_train"])
        print_mlp_sgemm(m.get("vs_sgemm"), simd)
    if "memory" in out:
        print_memory(out["memory"], simd)
    if "memmap" in out:
        print_memmap(out["memmap"], simd)
    if out["targets"]:
        print(f"\n### Targets (SIMD {simd})\n")
        print("| target | measured | holds |")
        print("| --- | --- | --- |")
        for t in out["targets"]:
            print(f"| {t['target']} | {t['value']} | {'yes' if t['holds'] else 'no'} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="4M-element array, 200k / 50k samples, 1 fit per peer (3 of fastgd's logistic fits)")
    ap.add_argument("--only", default=",".join(PARTS),
                    help="parts to run, comma-separated: " + "; ".join(f"{k}: {v}" for k, v in PARTS.items())
                    + " (default all)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for fastgd, torch and the STREAM kernels (default: fastgd's default)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="fits per peer for logreg and mlp (default 3; --quick: 1), and memmap (at least 3)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    ap.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out even if it is installed")
    ap.add_argument("--data-dir", default=None,
                    help="where the memory and memmap parts write X as .npy (default: the temporary directory)")
    ap.add_argument("--out", default=str(HERE / "results" / "compare.json"))
    ap.add_argument("--chart", default=str(HERE / "results" / "compare.png"))
    args = ap.parse_args(argv)
    args.parts_set = {p.strip() for p in args.only.split(",") if p.strip()}
    unknown = args.parts_set - set(PARTS)
    if unknown:
        ap.error(f"--only: unknown part(s) {sorted(unknown)}")

    torch, sklearn = optional_imports(args.no_torch, args.no_sklearn)
    threads = args.threads or fastgd.get_num_threads()
    fastgd.set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)
    cpu = cpu_model()
    print(f"{cpu}: fastgd {fastgd.__version__}, SIMD {fastgd.simd_level()}, {os.cpu_count()} CPUs, "
          f"{threads} thread(s), "
          f"numpy {np.__version__}, torch {getattr(torch, '__version__', 'absent')}, "
          f"scikit-learn {getattr(sklearn, '__version__', 'absent')}", flush=True)
    t_start = time.perf_counter()
    out: dict = {"benchmark": "compare", "quick": args.quick, "fastgd_version": fastgd.__version__,
                 "simd_level": fastgd.simd_level(), "cpu": cpu, "cpu_count": os.cpu_count(),
                 "machine": platform.machine(),
                 "threads": threads, "numpy_version": np.__version__,
                 "torch_version": getattr(torch, "__version__", None),
                 "sklearn_version": getattr(sklearn, "__version__", None)}
    out["load_average_start"] = load_average()
    run_parts(args, torch, sklearn, threads, out)
    finish_run(out, t_start, targets, print_report, Path(args.out))
    try:
        draw(out, Path(args.chart))
        print(f"wrote {args.chart}")
    except ImportError as e:
        note(f"matplotlib is not installed ({e}): no chart")
    return 0


if __name__ == "__main__":
    sys.exit(main())
