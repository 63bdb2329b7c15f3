"""Results do not depend on the thread count: 1 and 2 threads give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
from fastgd import _core

RULES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", {"weight_decay": 0.1}),
    ("RMSprop", {"centered": True, "momentum": 0.5}),
    ("Adadelta", {}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
    ("Adamax", {}),
    ("NAdam", {}),
    ("RAdam", {}),
    ("Lion", {}),
]


@pytest.fixture
def force_parallel():
    """Run every call on the team, however small, so the split itself is exercised."""
    old = _core.get_parallel_threshold()
    _core.set_parallel_threshold(0)
    yield
    _core.set_parallel_threshold(old)


def _run(rule, options, threads, clip_norm=None):
    rng = np.random.default_rng(11)
    # Sizes around the chunk size, a large one, and 300 small arrays in one call.
    chunk = _core.chunk_elements
    shapes = [(chunk - 1,), (chunk + 5,), (200_003,)] + [(i % 37 + 1,) for i in range(300)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    with fg.num_threads(threads):
        opt = getattr(fg, rule)(params, clip_norm=clip_norm, **options)
        for _ in range(3):
            opt.step([rng.standard_normal(s).astype(np.float32) for s in shapes])
    return params, opt


@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_one_and_two_threads_same_bits(simd_level, force_parallel, rule, options):
    a, oa = _run(rule, options, 1, clip_norm=5.0)
    b, ob = _run(rule, options, 2, clip_norm=5.0)
    assert oa.last_grad_norm == ob.last_grad_norm
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("p", [1.0, 2.0, float("inf"), 3.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_same_bits_for_any_thread_count(force_parallel, p, dtype):
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(n).astype(dtype) for n in (1, 4095, 4097, 1_000_003)]
    values = []
    for threads in (1, 2, 3):
        with fg.num_threads(threads):
            values.append(fg.total_norm(grads, p))
    assert values[0] == values[1] == values[2]


def test_thread_controls():
    with fg.num_threads(1):
        assert fg.get_num_threads() == 1
        with fg.num_threads(2):
            assert fg.get_num_threads() == 2
        assert fg.get_num_threads() == 1
    fg.set_num_threads(3)
    assert fg.get_num_threads() == 3
    fg.set_num_threads(0)  # back to OpenMP's own setting
    assert fg.get_num_threads() >= 1
    with pytest.raises(ValueError):
        fg.set_num_threads(-1)
