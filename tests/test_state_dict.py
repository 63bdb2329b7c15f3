"""state_dict / load_state_dict round-trip exactly: interrupted and resumed training equals
uninterrupted training, bit for bit."""

from __future__ import annotations

import io

import numpy as np
import pytest
import reference as R

import fastgd as fg

# Every rule class; these with the options given, the others with every state array in use.
RULES = R.rule_cases({
    "SGD": {"lr": 0.1, "momentum": 0.9},
    "Adagrad": {"initial_accumulator_value": 0.1, "lr_decay": 0.01},
    "AdamW": {},
    "Adadelta": {},
    "Adamax": {},
    "NAdam": {},
    "RAdam": {},
    "Lion": {},
})


def _grads(seed, params):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def _params():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((9, 4)).astype(np.float32), rng.standard_normal(33)]


def _save_load(sd):
    """Through np.savez without pickle, as a user would put it on disk."""
    flat = {}
    for i, st in sd["state"].items():
        for k, v in st.items():
            flat[f"state/{i}/{k}"] = v
    for g, gs in enumerate(sd["group_state"]):
        for k, v in gs.items():
            flat[f"group_state/{g}/{k}"] = np.asarray(v)
    buf = io.BytesIO()
    np.savez(buf, **flat)
    buf.seek(0)
    data = np.load(buf, allow_pickle=False)
    out = {"state": {}, "group_state": [dict() for _ in sd["group_state"]], "param_groups": sd["param_groups"]}
    for key in data.files:
        kind, a, b = key.split("/")
        if kind == "state":
            out["state"].setdefault(int(a), {})[b] = data[key]
        else:
            out["group_state"][int(a)][b] = data[key][()]
    return out


@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_resume_equals_uninterrupted(rule, options):
    straight = _params()
    opt = getattr(fg, rule)([{"params": [straight[0]]}, {"params": [straight[1]], "lr": 0.05}], **options)
    for s in range(8):
        opt.step(_grads(s, straight))

    first = _params()
    opt1 = getattr(fg, rule)([{"params": [first[0]]}, {"params": [first[1]], "lr": 0.05}], **options)
    for s in range(4):
        opt1.step(_grads(s, first))
    sd = _save_load(opt1.state_dict())
    saved_params = [p.copy() for p in first]

    resumed = saved_params
    opt2 = getattr(fg, rule)([{"params": [resumed[0]]}, {"params": [resumed[1]], "lr": 0.05}], **options)
    opt2.load_state_dict(sd)
    for s in range(4, 8):
        opt2.step(_grads(s, resumed))
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)
    assert opt2.state_dict()["group_state"][0]["step"] == 8
    assert isinstance(opt2.state_dict()["group_state"][0]["step"], np.int64)


def test_state_dict_is_a_copy():
    p = _params()
    opt = fg.Adam(p)
    opt.step(_grads(0, p))
    sd = opt.state_dict()
    saved = sd["state"][0]["exp_avg"].copy()
    opt.step(_grads(1, p))
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], saved)


def test_load_keeps_lr_changes_and_checks_shapes():
    p = _params()
    opt = fg.Adam(p, lr=0.1)
    opt.param_groups[0]["lr"] = 0.01
    opt.step(_grads(0, p))
    sd = opt.state_dict()
    other = fg.Adam(_params(), lr=0.5)
    other.load_state_dict(sd)
    assert other.param_groups[0]["lr"] == 0.01

    wrong = fg.Adam([np.zeros((4, 9), np.float32), np.zeros(33)])
    with pytest.raises(ValueError, match=r"does not match parameter 0"):
        wrong.load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter groups"):
        fg.Adam([{"params": [np.zeros(3)]}, {"params": [np.zeros(3)]}]).load_state_dict(sd)
    # a failed load changed nothing
    assert wrong.state[0] == {}


def test_mutating_param_groups_changes_the_next_step():
    a, b = np.ones(5, np.float32), np.ones(5, np.float32)
    oa, ob = fg.SGD([a], lr=0.1), fg.SGD([b], lr=0.1)
    oa.param_groups[0]["lr"] = 0.5
    g = np.ones(5, np.float32)
    oa.step([g])
    ob.step([g])
    np.testing.assert_allclose(a, 0.5)
    np.testing.assert_allclose(b, 0.9)


def test_momentum_switched_on_mid_run_starts_from_the_gradient():
    p = np.zeros(4)
    opt = fg.SGD([p], lr=1.0)
    opt.step([np.ones(4)])
    opt.param_groups[0]["momentum"] = 0.9
    opt.step([np.full(4, 2.0)])  # buffer = g on its first use (torch), so p = -1 - 2
    np.testing.assert_array_equal(p, -3.0)
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], 2.0)
