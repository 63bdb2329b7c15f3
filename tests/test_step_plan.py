"""Optimizer.step() is one C++ call (fastgd._core.step) on the optimizer's step plan, made at
the first step and again only when the parameter groups change. A plan kept from step to step
must give the bits of a plan made afresh for every step: every change between steps (options,
schedules, clipping, groups, state) is read by the step itself, never missed."""

from __future__ import annotations

import numpy as np
import pytest
from test_update_rules import CASE_IDS, CASES

import fastgd as fg
from fastgd import _core
from fastgd.schedules import cosine


def pair(rule: str, shapes, dtype, **options):
    """Two optimizers on equal copies of the same parameters: one keeps its plan, the other
    (stepped by run_both) makes it again for every step."""
    rng = np.random.default_rng(7)
    a = [rng.standard_normal(s).astype(dtype) for s in shapes]
    b = [p.copy() for p in a]
    return getattr(fg, rule)(a, **options), getattr(fg, rule)(b, **options), a, b


def grads_for(rng, params):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def run_both(kept, fresh, a, b, steps=5, seed=3, edit=None):
    rng = np.random.default_rng(seed)
    for k in range(steps):
        if edit is not None:
            edit(kept, k)
            edit(fresh, k)
        g = grads_for(rng, a)
        kept.step(g)
        fresh.invalidate_plan()
        fresh.step([x.copy() for x in g])
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert kept.state_dict()["group_state"] == fresh.state_dict()["group_state"]
    for i, st in kept.state.items():
        for name, arr in st.items():
            np.testing.assert_array_equal(arr, fresh.state[i][name], err_msg=f"state[{i}][{name}]")


@pytest.mark.parametrize(("rule", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kept_plan_equals_plan_made_every_step(rule, options, dtype):
    kept, fresh, a, b = pair(rule, [(3, 5), (17,), (1,)], dtype, **options)
    assert kept.step_plan is None  # made by the first step
    kept.step(grads_for(np.random.default_rng(0), a))
    fresh.step(grads_for(np.random.default_rng(0), b))
    plan = kept.step_plan
    assert isinstance(plan, _core.StepPlan) and plan.rule == kept.rule
    run_both(kept, fresh, a, b)
    assert kept.step_plan is plan  # made once


@pytest.mark.parametrize("clip", [dict(clip_norm=0.5), dict(clip_norm=0.5, clip_norm_type=1.0),
                                  dict(clip_norm=0.5, clip_norm_type=float("inf")), dict(clip_value=0.1)])
def test_kept_plan_clips_as_a_fresh_one(clip):
    kept, fresh, a, b = pair("Adam", [(40,), (9,)], np.float32, lr=0.1, **clip)
    run_both(kept, fresh, a, b)
    if "clip_norm" in clip:
        assert kept.last_grad_norm == fresh.last_grad_norm


def test_edits_between_steps_are_honoured():
    def edit(opt, k):
        g = opt.param_groups[0]
        g["lr"] = 0.01 * (k + 1)                      # a torch-style manual schedule
        g["betas"] = (0.9, 0.99) if k % 2 else (0.8, 0.999)
        g["amsgrad"] = k >= 2                           # needs a new state array at k == 2
        opt.clip_norm = 0.3 if k == 3 else None         # clipping switched on and off
    kept, fresh, a, b = pair("Adam", [(12,), (5,)], np.float64)
    run_both(kept, fresh, a, b, steps=6, edit=edit)


def test_sgd_momentum_switched_on_midway_starts_its_buffer():
    def edit(opt, k):
        opt.param_groups[0]["momentum"] = 0.0 if k < 2 else 0.9
    kept, fresh, a, b = pair("SGD", [(8,)], np.float32, lr=0.1)
    run_both(kept, fresh, a, b, steps=5, edit=edit)
    # The buffer started as the first gradient it saw (torch), not from zeros.
    p = np.zeros(3, np.float32)
    opt = fg.SGD([p], lr=1.0)
    opt.step([np.ones(3, np.float32)])
    opt.param_groups[0]["momentum"] = 0.5
    opt.step([np.full(3, 2.0, np.float32)])
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], 2.0)
    np.testing.assert_array_equal(p, -3.0)


def test_rmsprop_centered_switched_on():
    def edit(opt, k):
        opt.param_groups[0]["centered"] = k >= 2
        opt.param_groups[0]["momentum"] = 0.5 if k >= 3 else 0.0
    kept, fresh, a, b = pair("RMSprop", [(8,)], np.float32)
    run_both(kept, fresh, a, b, steps=5, edit=edit)


def test_schedules_on_a_kept_plan():
    kept, fresh, a, b = pair("SGD", [(6,)], np.float64, lr=cosine(0.1, T_max=4), momentum=lambda k: 0.5 + 0.1 * k,
                             weight_decay=lambda k: 0.01 * k)
    run_both(kept, fresh, a, b, steps=6)


def test_added_group_and_loaded_state_remake_the_plan():
    kept, fresh, a, b = pair("Adam", [(6,)], np.float32, lr=0.05)
    run_both(kept, fresh, a, b, steps=2)
    plan = kept.step_plan
    extra_a, extra_b = np.ones(4, np.float32), np.ones(4, np.float32)
    kept.add_param_group({"params": [extra_a], "lr": 0.2})
    fresh.add_param_group({"params": [extra_b], "lr": 0.2})
    assert kept.step_plan is None
    a.append(extra_a)
    b.append(extra_b)
    run_both(kept, fresh, a, b, steps=2, seed=4)
    assert kept.step_plan is not plan
    saved = fresh.state_dict()
    kept.load_state_dict(saved)
    fresh.load_state_dict(saved)
    assert kept.step_plan is None
    run_both(kept, fresh, a, b, steps=2, seed=5)


def test_step_counts_and_nadam_mu_product_advance():
    kept, fresh, a, b = pair("NAdam", [(5,)], np.float64)
    run_both(kept, fresh, a, b, steps=4)
    assert kept.step_count == 4
    assert kept.state_dict()["group_state"][0]["mu_product"] == fresh.state_dict()["group_state"][0]["mu_product"]


@pytest.mark.parametrize("kind", ["list", "tuple", "array", "generator"])
def test_gradient_containers(kind):
    p = np.zeros(3)
    opt = fg.SGD([p], lr=1.0)
    for _ in range(3):
        g = np.ones(3)
        opt.step({"list": [g], "tuple": (g,), "array": g, "generator": (x for x in [g])}[kind])
    np.testing.assert_array_equal(p, -3.0)


def test_bad_input_on_a_kept_plan_writes_nothing():
    p = np.ones(4, np.float32)
    opt = fg.Adam([p, np.ones(2, np.float32)], lr=0.1)
    opt.step([np.ones(4, np.float32), np.ones(2, np.float32)])
    assert opt.step_plan is not None
    before = p.copy(), opt.state[0]["exp_avg"].copy(), opt.step_count
    with pytest.raises(ValueError, match="step\\(\\) got 1 gradients for 2 parameters"):
        opt.step([np.ones(4, np.float32)])
    with pytest.raises(TypeError, match=r"grads\[1\]: dtype float64 does not match params\[1\]"):
        opt.step([np.ones(4, np.float32), np.ones(2)])
    with pytest.raises(ValueError, match=r"grads\[0\]: shape \(3,\) does not match"):
        opt.step([np.ones(3, np.float32), np.ones(2, np.float32)])
    with pytest.raises(ValueError, match=r"params\[0\]: array is read-only"):
        p.flags.writeable = False
        opt.step([np.ones(4, np.float32), np.ones(2, np.float32)])
    p.flags.writeable = True
    opt.param_groups[0]["lr"] = "fast"
    with pytest.raises(TypeError):
        opt.step([np.ones(4, np.float32), np.ones(2, np.float32)])
    np.testing.assert_array_equal(p, before[0])
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], before[1])
    assert opt.step_count == before[2]


def test_a_first_step_that_fails_its_checks_creates_no_state():
    opt = fg.Adam([np.ones(4, np.float32)])
    with pytest.raises(TypeError, match=r"grads\[0\]: dtype float64"):
        opt.step([np.ones(4)])
    assert opt.state[0] == {} and opt.step_count == 0


def test_a_custom_rule_keeps_its_own_run():
    calls = []

    class Logged(fg.Adam):
        def _run(self, *args, **kwargs):
            calls.append(1)
            super()._run(*args, **kwargs)

    a, b = np.zeros(3), np.zeros(3)
    opt, plain = Logged([a]), fg.Adam([b])
    for _ in range(3):
        opt.step([np.ones(3)])
        plain.step([np.ones(3)])
    assert len(calls) == 3 and opt.step_plan is not None
    np.testing.assert_array_equal(a, b)
    assert opt.state_dict()["group_state"] == plain.state_dict()["group_state"]


def test_a_custom_update_gets_the_step_s_clipping_skipping_and_counting():
    # A subclass's own update (plain SGD in NumPy) runs inside the one step path: the
    # gradients it gets are read as clamp(grad_scale * g, +-clip_value), the step count and
    # skipped steps are the step's, and a schedule is evaluated for it.
    seen = []

    class NumpySGD(fg.SGD):
        def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
            seen.append((group["lr"], step, grad_scale, clip_value))
            for p, g in zip(params, grads):
                p -= group["lr"] * np.clip(grad_scale * g, -clip_value, clip_value)

    p = np.zeros(2)
    opt = NumpySGD([p], lr=lambda k: 0.1 * (k + 1), clip_norm=1.0, nonfinite="skip", maximize=True)
    opt.step([np.array([3.0, 4.0])])
    opt.step([np.array([np.nan, 0.0])])
    opt.step([np.array([0.3, 0.4])])
    assert opt.step_count == 2 and opt.skipped_steps == 1
    assert [(lr, step) for lr, step, _, _ in seen] == [(0.1, 1), (0.2, 2)]
    assert seen[0][2] == pytest.approx(-1.0 / (5.0 + 1e-6)) and seen[1][2] == -1.0
    np.testing.assert_allclose(p, 0.1 * np.array([3.0, 4.0]) / (5.0 + 1e-6) + 0.2 * np.array([0.3, 0.4]))


def test_an_optimizer_that_holds_its_plan_is_collected():
    import gc
    import weakref

    class Logged(fg.Adam):
        def _run(self, *args, **kwargs):
            super()._run(*args, **kwargs)

    for cls in (fg.Adam, Logged):
        opt = cls([np.zeros(3)], lr=lambda k: 0.1)
        opt.step([np.ones(3)])
        ref = weakref.ref(opt)
        del opt
        gc.collect()
        assert ref() is None, cls.__name__
