"""NaN propagation through every rule, above all those built on a maximum or a sign: Adamax's
exp_inf, AMSGrad's max_exp_avg_sq and Lion's sign of the interpolated momentum.

np.maximum and torch.maximum / torch.amax return NaN when either operand is NaN; x86's
max instructions return the second operand instead, so a NaN held in the state (or made by
0 * Inf in the state's decay) was dropped by the first finite gradient after it. Each case
puts NaN (or an Inf that turns into NaN) at the first, a middle and the last element, in the
gradient or in the state, at sizes around every vector width, and compares every step with
the NumPy reference (and with torch.optim where it has the rule and torch is installed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as R

import fastgd

DTYPES = [np.float32, np.float64]
# Around every vector width (4/8/16 float32 lanes, 2/4/8 float64 lanes).
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33]
TOLERANCES = {np.float32: (1e-5, 2e-6), np.float64: (1e-12, 1e-14)}

# betas[1] = 0 makes AMSGrad's exp_avg_sq forget a NaN at once, so that the next step's
# maximum(max_exp_avg_sq, exp_avg_sq) has a NaN first operand and a finite second one.
CASES = [
    ("Adamax", {}),
    ("Adamax", dict(betas=(0.0, 0.0), weight_decay=0.1)),
    ("Adam", dict(amsgrad=True, betas=(0.9, 0.0))),
    ("AdamW", dict(amsgrad=True, betas=(0.5, 0.0), weight_decay=0.01)),
    ("Lion", {}),
    ("Lion", dict(betas=(0.0, 0.5), weight_decay=0.1)),
]
# Then every other rule of the table, with every state array in use: its arithmetic carries a
# NaN on its own, and must keep doing so.
CASES += [(rule, options) for rule, options in R.rule_cases() if rule not in {r for r, _ in CASES}]
# The state each case poisons with a NaN in the "state" scenario: the one built on the
# maximum or the sign, else the rule's first (which every branch of an update reads).
POISONED = {"Adamax": "exp_inf", "Adam": "max_exp_avg_sq", "AdamW": "max_exp_avg_sq", "Lion": "exp_avg"}
IDS = [f"{rule}-{i}" for i, (rule, _) in enumerate(CASES)]


def poisoned(rule: str, options: dict) -> str:
    return POISONED.get(rule) or R.state_names(rule, {**R.DEFAULTS[rule], **options})[0]


try:
    import torch
except ImportError:
    torch = None
# The cases of the rules torch.optim has too.
TORCH_CASES = [(i, c) for i, c in zip(IDS, CASES) if torch is not None and hasattr(torch.optim, c[0])]


def special_positions(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1})


def gradients(n: int, dtype, special: float, steps: int = 3) -> list[np.ndarray]:
    """`steps` random gradients; the first holds `special` at the special positions."""
    rng = np.random.default_rng(n)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(steps)]
    grads[0][special_positions(n)] = special
    return grads


def assert_agrees(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """NaN where the reference has NaN, the same infinities, finite values within tolerance."""
    rtol, atol = TOLERANCES[expected.dtype.type]
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{what}: NaN positions differ")
    inf = np.isinf(expected)
    np.testing.assert_array_equal(actual[inf], expected[inf], err_msg=f"{what}: infinities differ")
    finite = np.isfinite(expected)
    scale = float(np.abs(expected[finite]).max()) if finite.any() else 0.0
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=atol * scale, err_msg=what)


def run_both(rule, options, param, grads, poison_after_first: str | None = None):
    """Steps fastgd and the reference side by side, comparing after every step. With
    `poison_after_first`, that state gets NaN at the special positions after step 1."""
    ref = R.ReferenceOptimizer(rule, [param.copy()], **options)
    p = param.copy()
    opt = getattr(fastgd, rule)([p], **options)
    for k, g in enumerate(grads):
        with np.errstate(all="ignore"):
            ref.step([g])
        opt.step([g.copy()])
        if k == 0 and poison_after_first is not None:
            ref.state[0][poison_after_first][special_positions(p.size)] = np.nan
            opt.state[0][poison_after_first][special_positions(p.size)] = np.nan
        assert_agrees(p, ref.params[0], f"step {k + 1}: param")
        for name, expected in ref.state[0].items():
            assert_agrees(opt.state[0][name], expected, f"step {k + 1}: state {name!r}")
    return p, opt


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_nan_gradient_stays_nan(simd_level, rule, options, n, dtype):
    param = np.random.default_rng(100 + n).standard_normal(n).astype(dtype)
    p, _ = run_both(rule, options, param, gradients(n, dtype, math.nan))
    at = special_positions(n)
    assert np.isnan(p[at]).all()
    others = np.setdiff1d(np.arange(n), at)
    assert np.isfinite(p[others]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_nan_in_state_stays_nan(simd_level, rule, options, n, dtype):
    param = np.random.default_rng(200 + n).standard_normal(n).astype(dtype)
    grads = [np.random.default_rng(300 + n + k).standard_normal(n).astype(dtype) for k in range(3)]
    p, opt = run_both(rule, options, param, grads, poison_after_first=poisoned(rule, options))
    at = special_positions(n)
    assert np.isnan(p[at]).all()
    assert np.isnan(opt.state[0][poisoned(rule, options)][at]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["+inf", "-inf"])
def test_adamax_inf_gradient_with_zero_beta2(simd_level, sign, n, dtype):
    """exp_inf = max(0 * Inf, |g| + eps) = NaN on the step after an infinite gradient."""
    param = np.random.default_rng(400 + n).standard_normal(n).astype(dtype)
    p, opt = run_both("Adamax", dict(betas=(0.0, 0.0)), param, gradients(n, dtype, sign * math.inf))
    assert np.isnan(opt.state[0]["exp_inf"][special_positions(n)]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 8, 17])
@pytest.mark.parametrize(("rule", "options"), [c for _, c in TORCH_CASES], ids=[i for i, _ in TORCH_CASES])
def test_nan_propagation_matches_torch(simd_level, rule, options, n, dtype):
    param = np.random.default_rng(500 + n).standard_normal(n).astype(dtype)
    grads = gradients(n, dtype, math.nan, steps=4)
    p = param.copy()
    opt = getattr(fastgd, rule)([p], **options)
    tp = torch.tensor(param.copy(), requires_grad=True)
    topt = getattr(torch.optim, rule)([tp], **options, foreach=False)
    for g in grads:
        opt.step([g.copy()])
        tp.grad = torch.tensor(g.copy())
        topt.step()
    expected = tp.detach().numpy()
    np.testing.assert_array_equal(np.isnan(p), np.isnan(expected))
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-12)
    if rule == "NAdam" and dtype == np.float64:
        rtol, atol = 1e-6, 1e-9  # torch keeps mu_product in float32 (see test_torch_parity.py)
    np.testing.assert_allclose(p[~np.isnan(p)], expected[~np.isnan(expected)], rtol=rtol, atol=atol)
    for name, s in opt.state[0].items():
        t = topt.state[tp][name].numpy()
        np.testing.assert_array_equal(np.isnan(s), np.isnan(t), err_msg=name)
