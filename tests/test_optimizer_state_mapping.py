"""Optimizer.state is the truth: what ``opt.state`` and ``state_dict()`` show is exactly what the
next step uses, and assignments to it are honoured (as in torch).

``opt.state[i][name] = array`` is copied into the state the step reads; ``opt.state[i] = {}``,
``del opt.state[i]`` and ``del opt.state[i][name]`` empty it, and the next step makes it afresh
as a new optimizer's first step does (torch's lazily created state; the step count is the
group's and goes on). Each rule is checked against the plain-NumPy reference after such
changes, for every rule and state name of the rule table.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import reference as R
from test_update_rules import assert_matches, full_options, make_grads

import fastgd as fg

# Every rule class with the options that make it keep every state array.
CASES = [(rule, options) for rule, options in R.rule_cases()
         if R.state_names(rule, full_options(rule, options))]
IDS = [rule for rule, _ in CASES]
# Mixed dtypes in one group: a group whose states are new for some parameters only runs in
# parts, and a part may hold one dtype only (NAdam's group scalar must advance once).
DTYPES = [np.float32, np.float64, np.float32]
SHAPES = [(5,), (3, 2), (9,)]


def _pair(rule, options, seed=0):
    """A fastgd optimizer and the reference, on equal parameters."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]
    opt = getattr(fg, rule)(params, **options)
    ref = R.ReferenceOptimizer(rule, [p.copy() for p in params], **options)
    return opt, ref, params


def _step_both(opt, ref, params, rng, steps, scale=1.0):
    for _ in range(steps):
        grads = make_grads(rng, params, scale)
        opt.step(grads)
        ref.step([g.copy() for g in grads])


def _bytes(opt):
    return {i: {k: v.tobytes() for k, v in st.items()} for i, st in opt.state.items()}


def test_the_probe_rebinding_a_momentum_buffer_is_used():
    p = np.ones(4)
    opt = fg.SGD([p], lr=0.1, momentum=0.9)
    opt.step([np.ones(4)])
    buf = opt.state[0]["momentum_buffer"]
    opt.state[0]["momentum_buffer"] = np.zeros(4)
    assert opt.state[0]["momentum_buffer"] is buf  # copied in place: the step's array
    opt.step([np.ones(4)])
    np.testing.assert_array_equal(p, 0.9 - 0.1 * (0.9 * 0.0 + 1.0))
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["momentum_buffer"], 1.0)


def test_the_probe_an_emptied_state_is_empty_and_made_afresh():
    p = np.ones(4)
    opt = fg.Adam([p], lr=0.1)
    opt.step([np.ones(4)])
    opt.state[0] = {}
    assert opt.state[0] == {} and opt.state_dict()["state"] == {}
    opt.step([np.full(4, 2.0)])
    # The moments started again from zero: m = (1 - beta1) g, v = (1 - beta2) g^2.
    np.testing.assert_allclose(opt.state[0]["exp_avg"], 0.1 * 2.0)
    np.testing.assert_allclose(opt.state[0]["exp_avg_sq"], 0.001 * 4.0)
    assert opt.step_count == 2  # the group's count goes on


@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_assigned_state_is_what_the_next_step_uses(rule, options):
    opt, ref, params = _pair(rule, options)
    rng = np.random.default_rng(1)
    _step_both(opt, ref, params, rng, 2)
    plan = opt.step_plan
    for i in range(len(params)):
        for name in list(opt.state[i]):
            before = opt.state[i][name]
            new = before * 0.5  # keeps every rule's state valid (second moments >= first moments^2)
            opt.state[i][name] = new
            ref.state[i][name] = new.copy()
            assert opt.state[i][name] is before
            np.testing.assert_array_equal(opt.state_dict()["state"][i][name], new)
    assert opt.step_plan is plan  # in place: the plan keeps its arrays
    _step_both(opt, ref, params, rng, 3)
    assert_matches(opt, ref, params, when=f"{rule}")


@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
@pytest.mark.parametrize("how", ["assign", "del", "del names", "setter"])
@pytest.mark.parametrize("which", [0, 1])
def test_emptied_state_is_made_afresh_for_that_parameter_only(rule, options, how, which):
    opt, ref, params = _pair(rule, options)
    rng = np.random.default_rng(2)
    _step_both(opt, ref, params, rng, 3)
    if how == "assign":
        opt.state[which] = {}
    elif how == "del":
        del opt.state[which]
    elif how == "del names":
        for name in list(opt.state[which]):
            del opt.state[which][name]
    else:
        opt.state = {i: dict(opt.state[i]) for i in range(len(params)) if i != which}
    ref.state[which] = R.init_state(rule, ref.params[which], full_options(rule, options))
    assert opt.state[which] == {} and which in opt.state
    saved = opt.state_dict()
    assert which not in saved["state"] and sorted(saved["state"]) == [i for i in range(3) if i != which]
    _step_both(opt, ref, params, rng, 3)
    assert_matches(opt, ref, params, when=f"{rule} after emptying state[{which}]")


@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_a_checkpoint_taken_after_emptying_resumes_with_the_same_bits(rule, options):
    opt, ref, params = _pair(rule, options)
    rng = np.random.default_rng(3)
    _step_both(opt, ref, params, rng, 2)
    opt.state[1] = {}
    copies = [p.copy() for p in params]
    resumed = getattr(fg, rule)(copies, **options)
    resumed.load_state_dict(opt.state_dict())
    for _ in range(3):
        grads = make_grads(rng, params, 1.0)
        opt.step(grads)
        resumed.step([g.copy() for g in grads])
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a, b)
    assert _bytes(opt) == _bytes(resumed)


@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_state_given_before_the_first_step_is_used(rule, options):
    """Torch uses a state given before the first step (SGD's buffer too: it starts as the
    gradient only when it is new)."""
    opt, ref, params = _pair(rule, options)
    rng = np.random.default_rng(4)
    donor, _, donor_params = _pair(rule, options, seed=9)  # states that are valid for the rule
    for _ in range(3):
        donor.step(make_grads(rng, donor_params, 1.0))
    for i in range(len(params)):
        for name, value in donor.state[i].items():
            opt.state[i][name] = value
            ref.state[i][name] = value.copy()
    _step_both(opt, ref, params, rng, 3)
    assert_matches(opt, ref, params, when=rule)


def test_sgd_buffer_given_before_the_first_step_matches_torch():
    torch = pytest.importorskip("torch")
    p = np.array([1.0, -2.0, 3.0])
    buf = np.array([0.5, 0.25, -1.0])
    opt = fg.SGD([p], lr=0.1, momentum=0.9, dampening=0.2)
    opt.state[0]["momentum_buffer"] = buf
    tp = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, dampening=0.2)
    topt.state[tp]["momentum_buffer"] = torch.tensor(buf)
    for k in range(3):
        g = np.array([0.3, -0.1, 0.7]) * (k + 1)
        opt.step([g])
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-15, atol=0)
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"], topt.state[tp]["momentum_buffer"].numpy(),
                               rtol=1e-15, atol=0)


def test_a_subclass_update_sees_the_parts_of_a_partly_emptied_group():
    """A subclass's own _run is called once per part (its new states named in ``created``),
    and gives the bits of the rule's kernel."""
    calls = []

    class Recording(fg.SGD):
        def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
            calls.append((len(params), sorted(created)))
            super()._run(group, params, grads, states, step, gstate, grad_scale, clip_value, created)

    rng = np.random.default_rng(5)
    a = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]
    b = [p.copy() for p in a]
    mine, base = Recording(a, lr=0.1, momentum=0.9, dampening=0.3), fg.SGD(b, lr=0.1, momentum=0.9, dampening=0.3)
    for k in range(4):
        if k == 2:
            mine.state[1] = {}
            base.state[1] = {}
        grads = make_grads(rng, a, 1.0)
        mine.step(grads)
        base.step([g.copy() for g in grads])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert _bytes(mine) == _bytes(base)
    assert calls == [(3, ["momentum_buffer"]), (3, []), (2, []), (1, ["momentum_buffer"]), (3, [])]


@pytest.mark.parametrize("bad", [
    pytest.param(lambda p: np.zeros(p.size + 1, p.dtype), id="shape"),
    pytest.param(lambda p: np.zeros(p.shape, np.float64 if p.dtype == np.float32 else np.float32), id="dtype"),
    pytest.param(lambda p: np.zeros(p.shape, np.int64), id="int"),
])
def test_a_wrong_array_is_refused_naming_the_key_and_parameter(bad):
    rng = np.random.default_rng(6)
    params = [rng.standard_normal(s).astype(d) for s, d in zip(SHAPES, DTYPES)]
    opt = fg.Adam(params, lr=0.1)
    opt.step(make_grads(rng, params, 1.0))
    before, plan = _bytes(opt), opt.step_plan
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg'\]: .* does not match parameter 1"):
        opt.state[1]["exp_avg"] = bad(params[1])
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg_sq'\]: .* does not match parameter 1"):
        opt.state[1] = {"exp_avg": np.zeros_like(params[1]), "exp_avg_sq": bad(params[1])}
    with pytest.raises(ValueError, match=r"state\[2\]\['exp_avg'\]: .* does not match parameter 2"):
        opt.state = {0: {}, 2: {"exp_avg": bad(params[2])}}
    assert _bytes(opt) == before and opt.step_plan is plan  # nothing changed


def test_other_wrong_changes_are_refused():
    params = [np.zeros(3), np.zeros(2)]
    opt = fg.SGD(params, lr=0.1, momentum=0.9)
    opt.step([np.ones(3), np.ones(2)])
    before = _bytes(opt)
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\]: SGD keeps no state of that name "
                                         r"\(its states: momentum_buffer\)"):
        opt.state[0]["exp_avg"] = np.zeros(3)
    with pytest.raises(KeyError, match="no parameter 2"):
        opt.state[2] = {}
    with pytest.raises(KeyError, match="no parameter -1"):
        opt.state[-1]["momentum_buffer"] = np.zeros(3)
    with pytest.raises(KeyError):
        del opt.state[0]["nothing"]
    with pytest.raises(TypeError, match=r"state\[0\]: a parameter's state is a mapping"):
        opt.state[0] = np.zeros(3)
    assert _bytes(opt) == before


def test_a_state_dict_naming_no_state_of_the_rule_is_refused():
    opt = fg.Adam([np.zeros(3)], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = np.zeros(3)
    other = fg.Adam([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match=r"keeps no state of that name"):
        other.load_state_dict(sd)
    assert other.state[0] == {} and other.step_count == 0


def test_the_mapping_reads_like_a_dict():
    opt = fg.Adam([np.zeros(3), np.zeros(2, np.float32)], lr=0.1)
    assert list(opt.state) == [0, 1] and len(opt.state) == 2 and opt.state[1] == {}
    opt.step([np.ones(3), np.ones(2, np.float32)])
    assert sorted(opt.state[0]) == ["exp_avg", "exp_avg_sq"] and len(opt.state[0]) == 2
    assert "exp_avg" in opt.state[1] and "max_exp_avg_sq" not in opt.state[1]
    assert {i: sorted(st) for i, st in opt.state.items()} == {0: ["exp_avg", "exp_avg_sq"],
                                                             1: ["exp_avg", "exp_avg_sq"]}
    assert "exp_avg" in repr(opt.state) and "exp_avg_sq" in repr(opt.state[0])
    opt.add_param_group({"params": [np.zeros(4)]})
    assert list(opt.state) == [0, 1, 2] and opt.state[2] == {}


def test_copies_keep_their_own_state():
    opt = fg.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    for other in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        other.state[0]["momentum_buffer"] = np.full(3, 7.0)
        np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], 1.0)
        other.step([np.ones(3)])
        np.testing.assert_array_equal(other.state[0]["momentum_buffer"], 0.9 * 7.0 + 1.0)
