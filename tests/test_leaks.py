"""Memory stays flat over many optimizer steps, on the normal path and on the error path.

Each test warms up (so that allocator pools, caches and lazily created state exist), then
records the process's resident set size and tracemalloc's count of live Python-level bytes,
runs many more calls, and requires both to stay within a small bound. A per-step leak of even
a few dozen bytes adds up to megabytes over 100,000 steps.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import fastgd

WARMUP = 10_000
STEPS = 100_000
RSS_LIMIT = 4 * 2**20  # bytes of resident memory growth allowed after the warm-up
PY_LIMIT = 256 * 2**10  # bytes of live Python allocations allowed after the warm-up

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def assert_flat(call, warmup: int, steps: int) -> None:
    for _ in range(warmup):
        call()
    gc.collect()
    tracemalloc.start()
    try:
        py_before = tracemalloc.get_traced_memory()[0]
        rss_before = rss_bytes()
        for _ in range(steps):
            call()
        gc.collect()
        py_growth = tracemalloc.get_traced_memory()[0] - py_before
        rss_growth = rss_bytes() - rss_before
    finally:
        tracemalloc.stop()
    assert rss_growth < RSS_LIMIT, f"resident memory grew by {rss_growth / 2**20:.1f} MiB over {steps} calls"
    assert py_growth < PY_LIMIT, f"live Python allocations grew by {py_growth / 2**10:.0f} KiB over {steps} calls"


def small_params(dtype=np.float32):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in [(7,), (33,), (4, 5)]]


@pytest.mark.parametrize(("rule", "options"), [
    ("Adam", dict(lr=1e-3)),
    ("SGD", dict(lr=1e-3, momentum=0.9, clip_norm=1.0)),
], ids=["Adam", "SGD-clip_norm"])
def test_step_does_not_leak(rule, options):
    params = small_params()
    grads = [np.full_like(p, 0.01) for p in params]
    opt = getattr(fastgd, rule)(params, **options)
    assert_flat(lambda: opt.step(grads), WARMUP, STEPS)


def test_failing_step_does_not_leak():
    params = small_params()
    opt = fastgd.Adam(params, lr=1e-3)
    bad = [np.zeros(3, np.float32), np.zeros(33, np.float32), np.zeros((4, 5), np.float32)]  # wrong shape

    def call():
        try:
            opt.step(bad)
        except ValueError:
            return
        raise AssertionError("step() accepted a gradient of the wrong shape")

    before = [p.copy() for p in params]
    assert_flat(call, 1_000, 10_000)
    for p, q in zip(params, before):
        np.testing.assert_array_equal(p, q)
