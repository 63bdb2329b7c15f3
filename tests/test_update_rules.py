"""Every update rule against the plain-NumPy reference in reference.py.

Each test steps a fastgd optimizer and the reference side by side on the same random
gradients and compares the parameters and every state array after every step, for both
dtypes, array sizes around every vector width, and every SIMD level this CPU runs.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import reference as R

import fastgd
import fastgd.functional as F
from fastgd.optim._base import RULE_SPECS

DTYPES = [np.float32, np.float64]
# Around every vector width (4/8/16 float32 lanes, 2/4/8 float64 lanes), and more than one
# 16,384-element chunk.
SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1023, 65537]
# Eight steps: with the default betas RAdam's rho_t first exceeds 5 at step 6, so both of
# its branches run. The gradients' scale changes from step to step so that moving averages
# shrink as well as grow (AMSGrad's maximum and Adamax's exp_inf then differ from v).
GRAD_SCALES = (1.0, 0.5, 2.0, 0.05, 1.5, 0.2, 3.0, 0.01)
STEPS = len(GRAD_SCALES)

# Tolerances: relative to each element, plus an absolute part relative to the array's
# largest magnitude. The reference runs in the parameter's dtype with torch's order of
# operations and agrees with the non-FMA baseline level to a few units in the last place.
# The FMA levels (avx2, avx512, neon) round a*b+c once instead of twice: where
# g + weight_decay * p nearly cancels, that changes the small effective gradient by a large
# relative amount, and RMSprop's and Adadelta's divisions by a running RMS carry it into the
# update. Over this file that reaches ~8e-7 (float32) and ~5e-16 (float64) of an array's
# largest magnitude; the absolute parts sit above that with margin. A wrong option or formula
# is off by orders of magnitude more (float64 catches even a 1e-6 change in a constant).
TOLERANCES = {np.float32: (1e-5, 2e-6), np.float64: (1e-12, 1e-14)}

CASES = [
    ("SGD", {}),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.2, maximize=True)),
    ("Adagrad", {}),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6,
                     maximize=True)),
    ("RMSprop", {}),
    ("RMSprop", dict(lr=0.02, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(momentum=0.9, alpha=0.9, eps=1e-4, maximize=True)),
    ("RMSprop", dict(centered=True, alpha=0.9, maximize=True)),
    ("Adadelta", {}),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adam", {}),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1, betas=(0.9, 0.9))),
    ("Adam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1, maximize=True, betas=(0.8, 0.99),
                  eps=1e-6)),
    ("AdamW", {}),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True, betas=(0.9, 0.9), eps=1e-6)),
    ("Adamax", {}),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-4, weight_decay=0.1, maximize=True)),
    ("NAdam", {}),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01, maximize=True)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, betas=(0.8, 0.99), eps=1e-6)),
    ("RAdam", {}),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.9), eps=1e-6)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.5))),  # rho_inf = 3: never rectified
    ("Lion", {}),
    ("Lion", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.5, maximize=True)),
]
CASE_IDS = [f"{rule}-{'-'.join(sorted(o)) or 'defaults'}" for rule, o in CASES]
RULE_NAMES = R.CLASSES


# -- helpers --------------------------------------------------------------------------------


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    rtol, atol = TOLERANCES[expected.dtype.type]
    magnitude = np.abs(expected)
    scale = float(magnitude.max()) if expected.size else 0.0
    # The check of assert_allclose, done directly: it is the hot spot of this file. NaN
    # anywhere compares False and goes to assert_allclose, which reports the mismatch.
    if not np.all(np.abs(actual - expected) <= atol * scale + rtol * magnitude):
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)
        raise AssertionError(f"{what}: non-finite values")  # assert_allclose passes equal NaN/inf


def assert_matches(opt: fastgd.Optimizer, ref: R.ReferenceOptimizer, params: list[np.ndarray],
                   first: int = 0, when: str = "") -> None:
    """params (stepped by opt, state opt.state[first + i]) against the reference's."""
    assert len(params) == len(ref.params)
    for i, (p, q) in enumerate(zip(params, ref.params)):
        assert_close(p, q, f"{when} param {i}")
        mine = opt.state[first + i]
        assert sorted(mine) == sorted(ref.state[i]), f"{when} param {i}: state {sorted(mine)}"
        for name, expected in ref.state[i].items():
            assert_close(mine[name], expected, f"{when} param {i} state {name!r}")


def make_params(rng: np.random.Generator, shapes, dtype) -> list[np.ndarray]:
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def make_grads(rng: np.random.Generator, params, scale: float) -> list[np.ndarray]:
    """Nonzero gradients: |g| >= 1e-3 * scale, so no element is untouched by accident."""
    out = []
    for p in params:
        g = rng.standard_normal(p.shape)
        g = np.where(np.abs(g) < 1e-3, 1e-3, g) * scale
        out.append(g.astype(p.dtype))
    return out


def _stable_seed(parts) -> int:
    # hash() of strings changes between runs; a fixed polynomial over the text does not.
    h = 17
    for ch in "|".join(str(x) for x in parts):
        h = (h * 131 + ord(ch)) % (2**31 - 1)
    return h


def full_options(rule: str, options: dict) -> dict:
    return {**R.DEFAULTS[rule], **options}


# -- the rules, one array per optimizer -----------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("rule", "options"), CASES, ids=CASE_IDS)
def test_rule_matches_reference(simd_level, rule, options, dtype, size):
    rng = np.random.default_rng(_stable_seed((rule, sorted(options.items()), size)))
    params = make_params(rng, [(size,)], dtype)
    opt = getattr(fastgd, rule)(params, **options)
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], **options)
    before = params[0].copy()
    for t, scale in enumerate(GRAD_SCALES, start=1):
        grads = make_grads(rng, params, scale)
        kept = [g.copy() for g in grads]
        opt.step(grads)
        ref.step(grads)
        assert_matches(opt, ref, params, when=f"{simd_level} step {t}:")
        for g, k in zip(grads, kept):
            np.testing.assert_array_equal(g, k, err_msg="step() wrote to a gradient")
    if size:
        assert not np.array_equal(params[0], before), "the parameter never moved"
    if rule == "NAdam":
        np.testing.assert_allclose(opt.state_dict()["group_state"][0]["mu_product"], ref.mu_product,
                                   rtol=1e-15)


def test_options_cover_every_keyword():
    """Every option of every rule is set away from its default in some case above, and both
    of RAdam's branches are reached within STEPS steps with its default betas."""
    for rule in RULE_NAMES:
        changed = {k for r, o in CASES if r == rule for k, v in o.items() if v != R.DEFAULTS[rule][k]}
        unset = set(R.DEFAULTS[rule]) - changed - ({"decoupled_weight_decay"} if rule == "AdamW" else set())
        assert not unset, f"{rule}: no case sets {sorted(unset)}"
    branches = [R.radam_rectified(0.999, t) for t in range(1, STEPS + 1)]
    assert not branches[0] and branches[-1], branches
    assert not any(R.radam_rectified(0.5, t) for t in range(1, STEPS + 1))


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_defaults_are_the_reference_defaults(rule):
    # The cases with no options compare fastgd's defaults against the reference's: they
    # must be the same defaults for that to test the documented ones.
    opt = getattr(fastgd, rule)([np.zeros(3)])
    assert opt.defaults == R.DEFAULTS[rule]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_signature_is_the_rule_table_s(rule):
    # A class takes its rule's options by the table's names; the class named after its rule
    # (not AdamW, which fixes decoupled_weight_decay and changes weight_decay) with the
    # table's defaults. The step options come through **step_options.
    cls = getattr(fastgd, rule)
    spec = RULE_SPECS[cls.rule]
    table = {o["name"]: o["default"] for o in spec["options"]}
    params = inspect.signature(cls).parameters
    assert list(params)[0] == "params" and params["step_options"].kind is inspect.Parameter.VAR_KEYWORD
    mine = {k: p.default for k, p in params.items() if k not in ("params", "step_options")}
    assert set(mine) <= set(table)
    if rule.lower() == cls.rule:
        assert mine == table
    assert set(cls([np.zeros(2)]).defaults) == set(table)


def test_every_rule_has_a_class_and_a_function():
    assert [cls.rule for cls in fastgd.optim.rule_classes() if cls.__name__.lower() == cls.rule] == list(RULE_SPECS)
    for name in RULE_SPECS:
        assert name in F.__all__ and callable(getattr(F, name))


def test_step_options_are_the_base_class_s():
    with pytest.raises(TypeError, match="unexpected keyword argument 'clip_nrom'"):
        fastgd.Adam([np.zeros(2)], clip_nrom=1.0)
    with pytest.raises(TypeError, match="names no update rule"):
        fastgd.Optimizer([np.zeros(2)], {})


# -- many arrays in one call, and parameter groups -------------------------------------------

MULTI_SHAPES = [(s,) for s in SIZES] + [(3, 5), (2, 3, 4), (40, 41), (1, 1)]
MULTI_CASES = [CASES[i] for i in (1, 2, 5, 7, 11, 13, 14, 16, 18, 20, 21, 23, 27)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("rule", "options"), MULTI_CASES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(MULTI_CASES)])
def test_many_arrays_in_one_step_equal_each_alone(simd_level, threaded, rule, options, dtype):
    rng = np.random.default_rng(_stable_seed(("multi", rule, sorted(options.items()))))
    params = make_params(rng, MULTI_SHAPES, dtype)
    alone = [p.copy() for p in params]
    opt = getattr(fastgd, rule)(params, **options)
    opts_alone = [getattr(fastgd, rule)([p], **options) for p in alone]
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], **options)
    for scale in GRAD_SCALES:
        grads = make_grads(rng, params, scale)
        opt.step(grads)
        for o, g in zip(opts_alone, grads):
            o.step([g])
        ref.step(grads)
    for i, (p, q, o) in enumerate(zip(params, alone, opts_alone)):
        # The same arithmetic per element wherever the array sits in the call: bit-identical.
        np.testing.assert_array_equal(p, q, err_msg=f"param {i}")
        assert sorted(opt.state[i]) == sorted(o.state[0])
        for name in o.state[0]:
            np.testing.assert_array_equal(opt.state[i][name], o.state[0][name], err_msg=f"param {i} {name}")
    assert_matches(opt, ref, params)


@pytest.mark.parametrize(("rule", "options"), [CASES[i] for i in (1, 7, 14, 20, 23)],
                         ids=["SGD", "RMSprop", "Adam", "NAdam", "RAdam"])
def test_float32_and_float64_in_one_group(simd_level, rule, options):
    # One call runs a float32 batch and a float64 batch; NAdam's product advances once.
    rng = np.random.default_rng(_stable_seed(("mixed", rule)))
    params = [rng.standard_normal(s).astype(dt) for s in [(33,), (17,), (5, 4), (9,)]
              for dt in (np.float32, np.float64)]
    opt = getattr(fastgd, rule)(params, **options)
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], **options)
    for scale in GRAD_SCALES:
        grads = make_grads(rng, params, scale)
        opt.step(grads)
        ref.step(grads)
    assert [p.dtype for p in params] == [np.float32, np.float64] * 4
    assert_matches(opt, ref, params)
    if rule == "NAdam":
        np.testing.assert_allclose(opt.state_dict()["group_state"][0]["mu_product"], ref.mu_product,
                                   rtol=1e-15)


GROUP_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2), dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.1), dict(momentum=0.8, nesterov=True)),
    ("Adagrad", dict(lr_decay=0.1), dict(initial_accumulator_value=0.5, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(centered=True), dict(momentum=0.5, weight_decay=0.1, alpha=0.9)),
    ("Adadelta", dict(lr=0.5), dict(rho=0.5, weight_decay=0.1, maximize=True)),
    ("Adam", dict(amsgrad=True, lr=0.01, betas=(0.9, 0.9)), dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01), dict(weight_decay=0.0, amsgrad=True, maximize=True)),
    ("Adamax", dict(lr=0.01), dict(betas=(0.5, 0.9), weight_decay=0.1)),
    ("NAdam", dict(momentum_decay=0.02), dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.99)), dict(weight_decay=0.1, maximize=True)),
    ("Lion", dict(lr=0.01), dict(weight_decay=0.3, betas=(0.5, 0.9), maximize=True)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("rule", "first", "second"), GROUP_CASES,
                         ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(GROUP_CASES)])
def test_param_groups_with_different_options(simd_level, rule, first, second, dtype):
    rng = np.random.default_rng(_stable_seed(("groups", rule, sorted(first.items()))))
    group_a = make_params(rng, [(17,), (4, 8)], dtype)
    group_b = make_params(rng, [(33,), (1,), (1023,)], dtype)
    opt = getattr(fastgd, rule)([{"params": group_a, **first}, {"params": group_b, **second}])
    refs = [R.ReferenceOptimizer(rule, [p.copy() for p in group_a], **first),
            R.ReferenceOptimizer(rule, [p.copy() for p in group_b], **second)]
    for group, ref in zip(opt.param_groups, refs):
        assert {k: v for k, v in group.items() if k != "params"} == ref.options
    for scale in GRAD_SCALES:
        grads = make_grads(rng, group_a + group_b, scale)
        opt.step(grads)
        refs[0].step(grads[:2])
        refs[1].step(grads[2:])
    assert_matches(opt, refs[0], group_a, first=0, when="group 0:")
    assert_matches(opt, refs[1], group_b, first=2, when="group 1:")


# -- fused clipping --------------------------------------------------------------------------

CLIP_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(centered=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("NAdam", dict(weight_decay=0.1)),
    ("RAdam", dict(weight_decay=0.1)),
    ("Lion", dict(lr=0.01, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("Adadelta", dict(weight_decay=0.1)),
    ("Adamax", dict(weight_decay=0.1)),
]
CLIP_SHAPES = [(0,), (7,), (33,), (4, 9), (1023,)]


@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf, 3.0], ids=["l1", "l2", "linf", "l3"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("rule", "options"), CLIP_CASES, ids=[r for r, _ in CLIP_CASES])
def test_fused_clip_norm(simd_level, rule, options, dtype, norm_type, maximize):
    rng = np.random.default_rng(_stable_seed(("clip_norm", rule, norm_type, maximize)))
    params = make_params(rng, CLIP_SHAPES, dtype)
    # A max_norm between the norms of the smallest and largest gradients below, so some
    # steps clip and some do not.
    max_norm = {1.0: 100.0, 2.0: 5.0, math.inf: 1.0, 3.0: 2.5}[norm_type]
    opt = getattr(fastgd, rule)(params, clip_norm=max_norm, clip_norm_type=norm_type, maximize=maximize, **options)
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], maximize=maximize, **options)
    coefficients = []
    for t, scale in enumerate(GRAD_SCALES, start=1):
        grads = make_grads(rng, params, scale)
        kept = [g.copy() for g in grads]
        clipped, norm = R.clip_by_norm(grads, max_norm, norm_type)
        coefficients.append(R.clip_coefficient(max_norm, norm))
        opt.step(grads)
        ref.step(clipped)
        np.testing.assert_allclose(opt.last_grad_norm, norm, rtol=1e-12)
        assert_matches(opt, ref, params, when=f"step {t}:")
        for g, k in zip(grads, kept):
            np.testing.assert_array_equal(g, k, err_msg="clipping wrote to a gradient")
    assert min(coefficients) < 0.5 and max(coefficients) == 1.0, coefficients


@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("rule", "options"), CLIP_CASES, ids=[r for r, _ in CLIP_CASES])
def test_fused_clip_value(simd_level, rule, options, dtype, maximize):
    # The clamp applies to the raw gradient, before the sign flip and the weight decay term
    # (every case has weight decay, so clamping g + wd * p instead would show).
    rng = np.random.default_rng(_stable_seed(("clip_value", rule, maximize)))
    params = make_params(rng, CLIP_SHAPES, dtype)
    clip_value = 0.3
    opt = getattr(fastgd, rule)(params, clip_value=clip_value, maximize=maximize, **options)
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], maximize=maximize, **options)
    for t, scale in enumerate(GRAD_SCALES, start=1):
        grads = make_grads(rng, params, scale)
        kept = [g.copy() for g in grads]
        opt.step(grads)
        ref.step(R.clip_by_value(grads, clip_value))
        assert_matches(opt, ref, params, when=f"step {t}:")
        for g, k in zip(grads, kept):
            np.testing.assert_array_equal(g, k, err_msg="clipping wrote to a gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_clip_norm_is_global_over_groups(simd_level, dtype):
    rng = np.random.default_rng(11)
    group_a = make_params(rng, [(9,), (3, 3)], dtype)
    group_b = make_params(rng, [(100,)], dtype)
    first, second = dict(lr=0.1, momentum=0.9), dict(lr=0.05, weight_decay=0.1, maximize=True)
    opt = fastgd.SGD([{"params": group_a, **first}, {"params": group_b, **second}], clip_norm=2.0)
    refs = [R.ReferenceOptimizer("SGD", [p.copy() for p in group_a], **first),
            R.ReferenceOptimizer("SGD", [p.copy() for p in group_b], **second)]
    for scale in GRAD_SCALES:
        grads = make_grads(rng, group_a + group_b, scale)
        clipped, norm = R.clip_by_norm(grads, 2.0)
        opt.step(grads)
        refs[0].step(clipped[:2])
        refs[1].step(clipped[2:])
        np.testing.assert_allclose(opt.last_grad_norm, norm, rtol=1e-12)
    assert_matches(opt, refs[0], group_a, first=0, when="group 0:")
    assert_matches(opt, refs[1], group_b, first=2, when="group 1:")


def test_reference_clipping():
    """The reference clipping itself, on values worked out by hand."""
    grads = [np.array([3.0, -4.0]), np.array([[0.0], [-12.0]])]
    assert R.total_norm(grads, 2.0) == 13.0
    assert R.total_norm(grads, 1.0) == 19.0
    assert R.total_norm(grads, math.inf) == 12.0
    assert R.total_norm(grads, 3.0) == pytest.approx((27 + 64 + 1728) ** (1 / 3), rel=1e-15)
    assert R.total_norm([np.zeros(0)], 2.0) == 0.0
    clipped, norm = R.clip_by_norm(grads, 6.5)
    assert norm == 13.0
    np.testing.assert_allclose(clipped[0], [1.5, -2.0], rtol=1e-6)
    assert R.clip_coefficient(20.0, 13.0) == 1.0
    np.testing.assert_array_equal(R.clip_by_value(grads, 3.5)[0], [3.0, -3.5])


# -- the functional layer --------------------------------------------------------------------

FUNCTIONAL_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2)),
    ("RMSprop", dict(centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(alpha=0.9)),
    ("Adadelta", dict(weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.9, 0.9))),
    ("AdamW", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("Lion", dict(lr=0.01, weight_decay=0.1)),
]


def functional_step(rule: str, options: dict, params, grads, states, step, scalars, **transform):
    """One fastgd.functional call for a rule, its arguments laid out as the rule table says:
    the state lists in the rule's order (None where the options need none), its group scalars
    and its options by their keywords (a pair as two). Returns what it returns."""
    spec = RULE_SPECS[getattr(fastgd, rule).rule]
    o = full_options(rule, options)
    needed = R.state_names(rule, o)
    lists = [[st[s["name"]] for st in states] if s["name"] in needed else None for s in spec["states"]]
    kw = {}
    for option in spec["options"]:
        values = o[option["name"]] if option["type"] == "pair" else (o[option["name"]],)
        kw.update(zip(option["kernel"], values))
    return getattr(F, spec["name"])(params, grads, *lists, step=step, **scalars, **kw, **transform)


@pytest.mark.parametrize(("grad_scale", "clip_value"), [(1.0, math.inf), (-0.7, 0.4)], ids=["plain", "scaled"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(("rule", "options"), FUNCTIONAL_CASES,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(FUNCTIONAL_CASES)])
def test_functional_matches_reference(simd_level, rule, options, dtype, grad_scale, clip_value):
    rng = np.random.default_rng(_stable_seed(("functional", rule, sorted(options.items()), grad_scale)))
    params = make_params(rng, [(17,), (0,), (2, 33), (1023,)], dtype)
    o = full_options(rule, options)
    # The caller owns the state: as the reference starts it (SGD's buffer, which the reference
    # makes on step 1, as zeros: the kernel overwrites it with the gradient on step 1).
    states = [{n: R.init_state(rule, p, o).get(n, np.zeros_like(p)) for n in R.state_names(rule, o)}
              for p in params]
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], **options)
    scalars = dict(ref.scalars)
    for t, scale in enumerate(GRAD_SCALES, start=1):
        grads = make_grads(rng, params, scale)
        for g in grads:
            g.flags.writeable = False  # grads may be read-only, and are never written
        returned = functional_step(rule, options, params, grads, states, t, scalars, grad_scale=grad_scale,
                                   clip_value=clip_value)
        # The kernel reads grad_scale * g, then clamps it: the reference gets exactly that.
        read = R.scale_grads(grads, grad_scale)
        if math.isfinite(clip_value):
            read = R.clip_by_value(read, clip_value)
        ref.step(read)
        for i, (p, q) in enumerate(zip(params, ref.params)):
            assert_close(p, q, f"step {t} param {i}")
            for name, expected in ref.state[i].items():
                assert_close(states[i][name], expected, f"step {t} param {i} state {name!r}")
        if scalars:  # the new group scalar (NAdam's mu_product), else nothing
            (name,) = scalars
            assert returned == pytest.approx(ref.scalars[name], rel=1e-15)
            scalars[name] = returned
        else:
            assert returned is None
