"""Optimizer.step() runs in one C++ call (fastgd._core.step_groups) once a Python step has
built its plan. Both paths must give the same bits, and every change between steps (options,
clipping, groups, state) must either be honoured by the one-call path or send the step back
to Python, never be missed."""

from __future__ import annotations

import numpy as np
import pytest
from test_update_rules import CASE_IDS, CASES

import fastgd as fg
from fastgd.schedules import cosine


def pair(rule: str, shapes, dtype, **options):
    """Two optimizers on equal copies of the same parameters: one normal, one that never
    leaves the Python path."""
    rng = np.random.default_rng(7)
    a = [rng.standard_normal(s).astype(dtype) for s in shapes]
    b = [p.copy() for p in a]
    fast = getattr(fg, rule)(a, **options)
    slow = getattr(fg, rule)(b, **options)
    slow._make_plan = lambda: None
    return fast, slow, a, b


def grads_for(rng, params):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def run_both(fast, slow, a, b, steps=5, seed=3, edit=None):
    rng = np.random.default_rng(seed)
    for k in range(steps):
        if edit is not None:
            edit(fast, k)
            edit(slow, k)
        g = grads_for(rng, a)
        fast.step(g)
        slow.step([x.copy() for x in g])
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert fast.state_dict()["group_state"] == slow.state_dict()["group_state"]
    for i, st in fast.state.items():
        for name, arr in st.items():
            np.testing.assert_array_equal(arr, slow.state[i][name], err_msg=f"state[{i}][{name}]")


@pytest.mark.parametrize(("rule", "options"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_call_step_equals_python_step(rule, options, dtype):
    fast, slow, a, b = pair(rule, [(3, 5), (17,), (1,)], dtype, **options)
    python_steps = []
    original = fast._step_python
    fast._step_python = lambda grads: (python_steps.append(1), original(grads))
    run_both(fast, slow, a, b)
    assert len(python_steps) == 1  # the first step builds the plan; the other four are one call
    assert fast._plan is not None and slow._plan is None


@pytest.mark.parametrize("clip", [dict(clip_norm=0.5), dict(clip_norm=0.5, clip_norm_type=1.0),
                                  dict(clip_norm=0.5, clip_norm_type=float("inf")), dict(clip_value=0.1)])
def test_one_call_step_clips_as_python(clip):
    fast, slow, a, b = pair("Adam", [(40,), (9,)], np.float32, lr=0.1, **clip)
    run_both(fast, slow, a, b)
    if "clip_norm" in clip:
        assert fast.last_grad_norm == slow.last_grad_norm


def test_edits_between_steps_are_honoured():
    def edit(opt, k):
        g = opt.param_groups[0]
        g["lr"] = 0.01 * (k + 1)                      # a torch-style manual schedule
        g["betas"] = (0.9, 0.99) if k % 2 else (0.8, 0.999)
        g["amsgrad"] = k >= 2                           # needs a new state array at k == 2
        opt.clip_norm = 0.3 if k == 3 else None         # clipping switched on and off
    fast, slow, a, b = pair("Adam", [(12,), (5,)], np.float64)
    run_both(fast, slow, a, b, steps=6, edit=edit)


def test_sgd_momentum_switched_on_midway_starts_its_buffer():
    def edit(opt, k):
        opt.param_groups[0]["momentum"] = 0.0 if k < 2 else 0.9
    fast, slow, a, b = pair("SGD", [(8,)], np.float32, lr=0.1)
    run_both(fast, slow, a, b, steps=5, edit=edit)


def test_rmsprop_centered_switched_on():
    def edit(opt, k):
        opt.param_groups[0]["centered"] = k >= 2
        opt.param_groups[0]["momentum"] = 0.5 if k >= 3 else 0.0
    fast, slow, a, b = pair("RMSprop", [(8,)], np.float32)
    run_both(fast, slow, a, b, steps=5, edit=edit)


def test_schedules_on_the_one_call_path():
    fast, slow, a, b = pair("SGD", [(6,)], np.float64, lr=cosine(0.1, T_max=4), momentum=lambda k: 0.5 + 0.1 * k,
                            weight_decay=lambda k: 0.01 * k)
    run_both(fast, slow, a, b, steps=6)


def test_added_group_and_loaded_state_rebuild_the_plan():
    fast, slow, a, b = pair("Adam", [(6,)], np.float32, lr=0.05)
    run_both(fast, slow, a, b, steps=2)
    extra_a, extra_b = np.ones(4, np.float32), np.ones(4, np.float32)
    fast.add_param_group({"params": [extra_a], "lr": 0.2})
    slow.add_param_group({"params": [extra_b], "lr": 0.2})
    a.append(extra_a)
    b.append(extra_b)
    run_both(fast, slow, a, b, steps=2, seed=4)
    saved = slow.state_dict()
    fast.load_state_dict(saved)
    slow.load_state_dict(saved)
    run_both(fast, slow, a, b, steps=2, seed=5)


def test_step_counts_and_nadam_mu_product_advance():
    fast, slow, a, b = pair("NAdam", [(5,)], np.float64)
    run_both(fast, slow, a, b, steps=4)
    assert fast._group_state[0]["step"] == 4
    assert fast._group_state[0]["mu_product"] == slow._group_state[0]["mu_product"]


@pytest.mark.parametrize("kind", ["list", "tuple", "array", "generator"])
def test_gradient_containers(kind):
    p = np.zeros(3)
    opt = fg.SGD([p], lr=1.0)
    for _ in range(3):
        g = np.ones(3)
        opt.step({"list": [g], "tuple": (g,), "array": g, "generator": (x for x in [g])}[kind])
    np.testing.assert_array_equal(p, -3.0)


def test_bad_input_on_the_one_call_path_writes_nothing():
    p = np.ones(4, np.float32)
    opt = fg.Adam([p, np.ones(2, np.float32)], lr=0.1)
    opt.step([np.ones(4, np.float32), np.ones(2, np.float32)])
    assert opt._plan is not None
    before = p.copy(), opt.state[0]["exp_avg"].copy(), opt._group_state[0]["step"]
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
    assert opt._group_state[0]["step"] == before[2]


def test_a_custom_rule_keeps_its_own_run():
    calls = []

    class Logged(fg.Adam):
        def _run(self, *args, **kwargs):
            calls.append(1)
            super()._run(*args, **kwargs)

    opt = Logged([np.zeros(3)])
    for _ in range(3):
        opt.step([np.ones(3)])
    assert len(calls) == 3 and opt._plan is None
