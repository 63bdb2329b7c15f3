"""Clipping: every norm type against NumPy, in place, and fused clipping equals clip-then-step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as R

import fastgd as fg

SHAPES = [(0,), (1,), (7,), (33,), (31, 33), (65537,)]
NORMS = [1.0, 2.0, math.inf, 3.0, 0.5]


def _grads(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _numpy_norm(grads, p):
    flat = np.concatenate([g.ravel().astype(np.float64) for g in grads])
    if math.isinf(p):
        return float(np.max(np.abs(flat))) if flat.size else 0.0
    return float(np.sum(np.abs(flat) ** p) ** (1.0 / p))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", NORMS)
def test_total_norm(simd_level, dtype, p):
    grads = _grads(dtype)
    np.testing.assert_allclose(fg.total_norm(grads, p), _numpy_norm(grads, p), rtol=1e-12)


def test_total_norm_mixed_dtypes_and_empty():
    grads = _grads(np.float32) + _grads(np.float64, seed=1)
    np.testing.assert_allclose(fg.total_norm(grads), _numpy_norm(grads, 2.0), rtol=1e-12)
    assert fg.total_norm([]) == 0.0


@pytest.mark.parametrize("p", NORMS)
def test_nonfinite_norms(p):
    g = np.ones(100, np.float32)
    g[57] = np.nan
    assert math.isnan(fg.total_norm([np.ones(3, np.float32), g], p))
    g[57] = np.inf
    assert fg.total_norm([g], p) == math.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm(simd_level, dtype, p, max_norm):
    grads = _grads(dtype)
    original = [g.copy() for g in grads]
    expected_norm = _numpy_norm(grads, p)
    total = fg.clip_grad_norm_(grads, max_norm, norm_type=p)
    np.testing.assert_allclose(total, expected_norm, rtol=1e-12)
    coef = min(1.0, max_norm / (total + 1e-6))
    expected = [g * dtype(coef) for g in original]
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)
    if max_norm < expected_norm:
        np.testing.assert_allclose(_numpy_norm(grads, p), max_norm, rtol=1e-5)


def test_clip_grad_norm_error_if_nonfinite_writes_nothing():
    g = np.ones(10, np.float32)
    g[3] = np.inf
    before = g.copy()
    with pytest.raises(fg.NonFiniteNormError, match="non-finite"):
        fg.clip_grad_norm_([g], 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):  # torch's exception type still catches it
        fg.clip_grad_norm_([g], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(g, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value(simd_level, dtype):
    grads = _grads(dtype)
    grads[2][3] = np.nan
    expected = [np.clip(g, -0.5, 0.5) for g in grads]
    fg.clip_grad_value_(grads, 0.5)
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)  # NaN stays NaN (assert_array_equal treats NaN == NaN)
    assert np.isnan(grads[2][3])


# Every rule class; these with the options given, the others with every state array in use.
RULES = R.rule_cases({
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "Adagrad": {},
    "AdamW": {},
    "Adadelta": {},
    "Adamax": {},
    "NAdam": {},
    "RAdam": {},
    "Lion": {"weight_decay": 0.1},
})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("p", [2.0, math.inf, 1.0])
@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_fused_clip_norm_equals_clip_then_step(simd_level, rule, options, p, maximize, dtype):
    rng = np.random.default_rng(5)
    a = [rng.standard_normal(s).astype(dtype) for s in [(17, 9), (65537,), (1,)]]
    b = [x.copy() for x in a]
    fused = getattr(fg, rule)(a, clip_norm=0.7, clip_norm_type=p, maximize=maximize, **options)
    plain = getattr(fg, rule)(b, maximize=maximize, **options)
    for _ in range(4):
        grads = [rng.standard_normal(x.shape).astype(dtype) for x in a]
        fused.step(grads)
        clipped = [g.copy() for g in grads]
        norm = fg.clip_grad_norm_(clipped, 0.7, norm_type=p)
        assert fused.last_grad_norm == norm
        plain.step(clipped)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_fused_clip_value_equals_clamp_then_step(simd_level, rule, options):
    rng = np.random.default_rng(6)
    a = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(17, 9), (65537,)]]
    b = [x.copy() for x in a]
    fused = getattr(fg, rule)(a, clip_value=0.25, **options)
    plain = getattr(fg, rule)(b, **options)
    for _ in range(3):
        grads = [rng.standard_normal(x.shape).astype(np.float32) for x in a]
        fused.step(grads)
        clipped = [g.copy() for g in grads]
        fg.clip_grad_value_(clipped, 0.25)
        plain.step(clipped)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_fused_clipping_never_writes_gradients():
    rng = np.random.default_rng(2)
    p = rng.standard_normal(1000).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32) * 10
    before = g.copy()
    fg.Adam([p], clip_norm=0.1).step([g])
    fg.Adam([p], clip_value=0.1).step([g])
    np.testing.assert_array_equal(g, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inf_norm_finds_nan_and_inf_at_every_position(simd_level, dtype):
    """The inf-norm pass keeps max |x| per vector lane in four accumulators and a block tail:
    a NaN or an Inf in any lane of any of them, and a NaN after an Inf or an Inf after a NaN,
    must reach the result."""
    for n in (1, 3, 4, 5, 8, 15, 16, 17, 31, 33, 64, 65, 70):
        base = np.random.default_rng(n).uniform(-1, 1, n).astype(dtype)
        assert fg.total_norm([base], math.inf) == float(np.abs(base).max())
        for i in range(n):
            g = base.copy()
            g[i] = -np.inf
            assert fg.total_norm([g], math.inf) == math.inf, (n, i)
            g[i] = np.nan
            assert math.isnan(fg.total_norm([g], math.inf)), (n, i)
            g[(i + n // 2) % n] = np.inf if n > 1 else np.nan
            assert math.isnan(fg.total_norm([g], math.inf)), (n, i)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inf_norm_same_bits_on_any_thread_count(threaded, dtype):
    rng = np.random.default_rng(11)
    grads = [rng.standard_normal(n).astype(dtype) for n in (100_003, 70_001, 5)]
    for poison in (None, np.inf, np.nan):
        if poison is not None:
            grads[1][54_321] = poison
        with fg.num_threads(1):
            serial = fg.total_norm(grads, math.inf)
        parallel = fg.total_norm(grads, math.inf)
        expected = float(np.abs(np.concatenate(grads)).max())  # NaN if any is NaN
        assert np.array_equal(np.float64(serial), np.float64(parallel), equal_nan=True)
        assert np.array_equal(np.float64(serial), np.float64(expected), equal_nan=True)
