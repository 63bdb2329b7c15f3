"""What a hostile or careless user tries on an optimizer: arrays that share memory, and options
that turn bad after construction or come in other number types. Each probe is refused with an
error that names what is wrong, and a refused step leaves the parameters, the state and the
step counts bit-identical. The rules and their options come from the rule table."""

from __future__ import annotations

import fractions
import math
import re

import numpy as np
import pytest
import reference as R

import fastgd as fg
import fastgd.functional as F
from fastgd import _core
from fastgd.optim._base import RULE_SPECS

NAN, INF = float("nan"), float("inf")


def spec_of(cls: str) -> dict:
    return RULE_SPECS[getattr(fg, cls).rule]


# Values that fail each check of the rule table (every number must also be finite).
BAD_VALUES = {
    "nonnegative": [-1.0, NAN, INF],
    "unit_open": [1.0, -0.5, NAN],
    "unit_closed": [1.5, -0.5, NAN],
    "finite": [NAN, INF, -INF],
}


def number_options(cls: str) -> list[dict]:
    """The rule's options that hold numbers (a pair included), from the rule table."""
    return [o for o in spec_of(cls)["options"] if o["type"] in ("float", "pair")]


def bad_option_cases() -> list[tuple[str, str, int, float]]:
    """(class, option, index in a pair or -1, bad value) for every number option of every rule."""
    cases = []
    for cls in R.CLASSES:
        for o in number_options(cls):
            for index in ([0, 1] if o["type"] == "pair" else [-1]):
                cases += [(cls, o["name"], index, v) for v in BAD_VALUES[o["check"]]]
    return cases


def with_value(cls: str, name: str, index: int, value: float, base: dict) -> object:
    """The option's value with `value` in it (at `index` of a pair)."""
    if index < 0:
        return value
    pair = list(base.get(name, next(o["default"] for o in spec_of(cls)["options"] if o["name"] == name)))
    pair[index] = value
    return tuple(pair)


def snapshot(opt, params):
    """Bits of everything a step may write: parameters, state arrays, group state."""
    sd = opt.state_dict()
    return ([p.tobytes() for p in params],
            {i: {k: v.tobytes() for k, v in st.items()} for i, st in sd["state"].items()},
            repr(sd["group_state"]), opt.step_count, opt.skipped_steps)


def setup(cls: str, dtype=np.float32, **options):
    """An optimizer over two parameters in two groups (every state of the rule on), stepped once."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]
    opts = {**R.all_states_on(cls), **options}
    opt = getattr(fg, cls)([{"params": [params[0]]}, {"params": [params[1]]}], **opts)
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    opt.step(grads)
    return opt, params, grads, opts


def message(cls: str, name: str, index: int, value: float, where: str) -> str:
    option = next(o for o in spec_of(cls)["options"] if o["name"] == name)
    place = f" at index {index}" if index >= 0 else ""
    return re.escape(f"Invalid {option['label']}{place}: {value} ({where}")


# -- item 8: options checked at every step ---------------------------------------------------


@pytest.mark.parametrize(("cls", "name", "index", "value"), bad_option_cases())
def test_bad_option_in_param_groups_refused_by_step_writing_nothing(cls, name, index, value):
    opt, params, grads, opts = setup(cls)
    before = snapshot(opt, params)
    opt.param_groups[1][name] = with_value(cls, name, index, value, opts)
    with pytest.raises(ValueError, match=message(cls, name, index, value, f"option '{name}' of parameter group 1)")):
        opt.step(grads)
    assert snapshot(opt, params) == before


@pytest.mark.parametrize(("cls", "name", "index", "value"), bad_option_cases())
def test_bad_option_refused_at_construction(cls, name, index, value):
    opts = {**R.all_states_on(cls), name: with_value(cls, name, index, value, R.all_states_on(cls))}
    with pytest.raises(ValueError, match=message(cls, name, index, value, f"option '{name}' of parameter group 0)")):
        getattr(fg, cls)([np.zeros(3)], **opts)


def schedule_cases() -> list[tuple[str, str, float]]:
    return [(cls, o["name"], v) for cls in R.CLASSES for o in number_options(cls) if o["schedulable"]
            for v in BAD_VALUES[o["check"]]]


@pytest.mark.parametrize(("cls", "name", "value"), schedule_cases())
def test_schedule_turning_bad_after_step_zero_is_refused(cls, name, value):
    good = R.all_states_on(cls).get(name, next(o["default"] for o in spec_of(cls)["options"] if o["name"] == name))
    opt, params, grads, _ = setup(cls, **{name: lambda k: good if k < 2 else value})
    opt.step(grads)  # k = 1: still good
    before = snapshot(opt, params)
    where = f"option '{name}' of parameter group 0, as its schedule gave it at step 2)"
    with pytest.raises(ValueError, match=message(cls, name, -1, value, where)):
        opt.step(grads)
    assert snapshot(opt, params) == before


def test_the_issue_probes():
    # momentum=nan and dampening=nan at construction; betas=(2, 2) and eps=-1 through
    # param_groups; a NaN learning rate set by hand.
    with pytest.raises(ValueError, match=r"Invalid momentum value: nan \(option 'momentum' of parameter group 0\)"):
        fg.SGD([np.zeros(3)], momentum=NAN)
    with pytest.raises(ValueError, match=r"Invalid dampening value: nan \(option 'dampening' of parameter group 0\)"):
        fg.SGD([np.zeros(3)], momentum=0.9, dampening=NAN)
    for name, value, msg in [("betas", (2, 2), "Invalid beta parameter at index 0: 2"), ("eps", -1, "Invalid epsilon"),
                             ("lr", NAN, "Invalid learning rate: nan")]:
        p = np.ones(3)
        opt = fg.Adam([p], lr=0.1)
        opt.step([np.ones(3)])
        before = snapshot(opt, [p])
        opt.param_groups[0][name] = value
        with pytest.raises(ValueError, match=re.escape(msg)):
            opt.step([np.ones(3)])
        assert snapshot(opt, [p]) == before


def test_load_state_dict_with_a_bad_option_changes_nothing():
    opt, params, grads, _ = setup("Adam")
    sd = opt.state_dict()
    sd["param_groups"][1]["lr"] = -0.5
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"Invalid learning rate: -0.5 \(option 'lr' of parameter group 1\)"):
        opt.load_state_dict(sd)
    assert snapshot(opt, params) == before and opt.param_groups[1]["lr"] == 0.001


REAL_NUMBERS = [np.float32(0.125), np.float64(0.25), np.int64(1), np.uint8(1), fractions.Fraction(1, 8),
                np.array(0.5), np.array(0.5, np.float32), True, np.bool_(True), np.float16(0.5)]


@pytest.mark.parametrize("cls", R.CLASSES)
@pytest.mark.parametrize("value", REAL_NUMBERS, ids=[f"{type(v).__name__}-{v}" for v in REAL_NUMBERS])
def test_any_real_number_type_is_an_option_value(cls, value):
    # At construction and through param_groups, with the trajectory of the same float.
    a, b, c = (np.linspace(-1, 1, 6) for _ in range(3))
    given = getattr(fg, cls)([a], lr=value)
    plain = getattr(fg, cls)([b], lr=float(value))
    edited = getattr(fg, cls)([c], lr=0.5)
    edited.param_groups[0]["lr"] = value
    for k in range(3):
        g = np.cos(np.arange(6.0) + k)
        for opt in (given, plain, edited):
            opt.step([g.copy()])
    assert a.tobytes() == b.tobytes() == c.tobytes()


def test_real_number_types_in_a_pair_and_a_float32_lr():
    # lr=np.float32(0.1) was refused with "Invalid learning rate: 0.10000000149011612".
    a, b = np.ones(4), np.ones(4)
    fg.Adam([a], lr=np.float32(0.1), betas=(np.float32(0.5), fractions.Fraction(3, 4))).step([np.ones(4)])
    fg.Adam([b], lr=float(np.float32(0.1)), betas=(0.5, 0.75)).step([np.ones(4)])
    assert a.tobytes() == b.tobytes()


NOT_NUMBERS = [("0.1", "str"), (1 + 0j, "complex"), (np.complex64(0.1), "numpy.complex64"),
               (np.array([0.1]), "numpy.ndarray"), (None, "NoneType"), ([0.1], "list")]


@pytest.mark.parametrize(("value", "type_name"), NOT_NUMBERS, ids=[t for _, t in NOT_NUMBERS])
def test_other_types_are_refused_naming_the_option(value, type_name):
    msg = re.escape(f"option 'lr' of parameter group 0 must be a real number, got {type_name}")
    with pytest.raises(TypeError, match=msg):
        fg.SGD([np.zeros(3)], lr=value)
    p = np.zeros(3)
    opt = fg.SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = value
    with pytest.raises(TypeError, match=msg):
        opt.step([np.ones(3)])
    assert not p.any() and opt.step_count == 0


def test_a_pair_option_must_be_a_pair_of_numbers():
    where = "option 'betas' of parameter group 0"
    with pytest.raises(TypeError, match=f"{where} must be a pair of real numbers, got float"):
        fg.Adam([np.zeros(3)], betas=0.9)
    with pytest.raises(ValueError, match=rf"{where} must be a pair, got \(0.9, 0.9, 0.9\)"):
        fg.Adam([np.zeros(3)], betas=(0.9, 0.9, 0.9))
    with pytest.raises(TypeError, match=f"{where} at index 1 must be a real number, got str"):
        fg.Adam([np.zeros(3)], betas=(0.9, "0.999"))


def test_fused_linear_epoch_checks_every_step():
    # The linear models' loop over mini-batches steps through the same entry point: a schedule
    # turning NaN stops it at that step, with the steps before it taken as the plain loop does.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((37, 5))
    y = (rng.random(37) > 0.5).astype(np.float64)
    order = np.arange(37)
    batches = np.arange(5)

    def run(lr, n_batches):
        theta, grad = np.zeros(6), np.zeros(6)
        opt = fg.Adam([theta], lr=lr)
        opt.step([grad])  # builds the plan
        args = ("log_loss", X, y, theta, grad, 1, None, order, batches[:n_batches], 0, 8, None, 1e-3, 0.0, 1.0,
                opt.step_plan, [grad], (0.0, 0.0, 0.0), None, None)
        return theta, opt, args

    theta, opt, args = run(lambda k: 0.05 if k < 3 else NAN, 5)
    with pytest.raises(ValueError, match=r"Invalid learning rate: nan \(option 'lr' of parameter group 0, as its "
                                         r"schedule gave it at step 3\)"):
        _core.linear_batches(*args)
    assert opt.step_count == 3
    ref, _, ref_args = run(0.05, 2)
    _core.linear_batches(*ref_args)
    assert theta.tobytes() == ref.tobytes()


def test_estimator_fit_with_a_schedule_turning_nan_raises():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    model = fg.LinearRegression(lr=lambda k: 0.01 if k < 20 else NAN, max_epochs=5, batch_size=16)
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        model.fit(X, X @ [1.0, 2.0, 3.0])


# -- the functional layer ---------------------------------------------------------------------


def functional_call(rule: str, params, grads, states=None, **options):
    """fastgd.functional.<rule> with every state on (fresh zero arrays unless given), the
    table's defaults for the other options."""
    spec = RULE_SPECS[rule]
    on = {"true": True, "nonzero": 0.5, "positive": 0.5}
    kwargs = {"step": 1, **spec["group_scalars"]}
    for o in spec["options"]:
        if o["type"] == "pair":
            kwargs.update(zip(o["kernel"], o["default"]))
        elif o["kernel"]:
            kwargs[o["kernel"][0]] = o["default"]
    for s in spec["states"]:
        if s["when"] is not None:
            kwargs[s["when"][0]] = on[s["when"][1]]
    if states is None:
        states = [[np.zeros_like(p) for p in params] for _ in spec["states"]]
    return getattr(F, rule)(params, grads, *states, **{**kwargs, **options})


@pytest.mark.parametrize("rule", list(RULE_SPECS))
def test_functional_refuses_bad_options_writing_nothing(rule):
    p, g = np.ones(4), np.ones(4)
    states = [[np.zeros(4)] for _ in RULE_SPECS[rule]["states"]]
    with pytest.raises(ValueError, match=r"Invalid learning rate: nan \(argument 'lr'\)"):
        functional_call(rule, [p], [g], states, lr=NAN)
    pair = next((o for o in RULE_SPECS[rule]["options"] if o["type"] == "pair"), None)
    if pair is not None:
        beta2 = pair["kernel"][1]
        with pytest.raises(ValueError, match=rf"Invalid beta parameter at index 1: 2 \(argument '{beta2}'\)"):
            functional_call(rule, [p], [g], states, **{pair["kernel"][1]: 2})
    assert (p == 1).all() and not any(s[0].any() for s in states)


# -- item 1: arrays that share memory ----------------------------------------------------------


def overlap_cases():
    a = np.zeros(20, np.float32)
    W = np.zeros((3, 4))
    b = np.zeros(6)
    v = np.zeros(8)
    e = np.zeros(0)
    return [
        ("slices", lambda: [a[:10], a[5:15]], r"params\[0\] and params\[1\] overlap in memory \(they share 20 bytes\)"),
        ("row", lambda: [W, W[0]], r"params\[0\] and params\[1\] overlap in memory \(params\[1\] lies within "
                                   r"params\[0\]'s memory\)"),
        ("same", lambda: [b, W, b], r"params\[0\] and params\[2\] are the same array \(one array appears more than "
                                    r"once\)"),
        ("view", lambda: [W.reshape(-1)[4:], W[2]], r"params\[1\] lies within params\[0\]'s memory"),
        ("groups", lambda: [{"params": [b, W]}, {"params": [W[2]]}], r"params\[1\] and params\[2\] overlap in memory"),
        ("dtypes", lambda: [v, v.view(np.float32)[2:4]], r"params\[0\] and params\[1\] overlap in memory"),
        ("empty-twice", lambda: [e, e], r"params\[0\] and params\[1\] are the same array"),
    ]


@pytest.mark.parametrize("cls", R.CLASSES)
@pytest.mark.parametrize(("name", "make", "msg"), overlap_cases(), ids=[c[0] for c in overlap_cases()])
def test_overlapping_params_refused(cls, name, make, msg):
    with pytest.raises(ValueError, match=msg):
        getattr(fg, cls)(make())


def test_overlap_through_add_param_group_keeps_the_groups():
    W = np.zeros((3, 4))
    opt = fg.Adam([W])
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] overlap in memory"):
        opt.add_param_group({"params": [W[1]], "lr": 0.1})
    assert len(opt.param_groups) == 1 and len(opt.params) == 1


def test_overlap_made_after_construction_refused_by_the_plan():
    # The plan is made again after a change of the groups, and checks them then (not per step).
    a, b = np.ones(10), np.ones(10)
    opt = fg.SGD([a, b], lr=0.1)
    opt.step([np.ones(10), np.ones(10)])
    opt.param_groups[0]["params"][1] = a[::-1][::-1]  # a view of all of a, another object
    opt.invalidate_plan()
    before = a.tobytes()
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] overlap in memory \(params\[1\] lies within"):
        opt.step([np.ones(10), np.ones(10)])
    assert a.tobytes() == before and opt.step_plan is None


@pytest.mark.parametrize("cls", R.CLASSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_that_only_touch_are_fine(cls, dtype):
    # a[:10] and a[10:20] share no element: stepped as two separate arrays are, bit for bit.
    a = np.linspace(-1, 1, 20).astype(dtype)
    b = [a[:10].copy(), a[10:].copy()]
    joined = getattr(fg, cls)([a[:10], a[10:]], **R.all_states_on(cls))
    apart = getattr(fg, cls)(b, **R.all_states_on(cls))
    for k in range(3):
        g = np.sin(np.arange(20) + k).astype(dtype)
        joined.step([g[:10], g[10:]])
        apart.step([g[:10].copy(), g[10:].copy()])
    assert a.tobytes() == np.concatenate(b).tobytes()
    getattr(fg, cls)([a, a[3:3]]).step([np.ones(20, dtype), np.ones(0, dtype)])  # an empty view shares nothing


def plan_with_states(rule: str, params, states_of):
    """A step plan over one group whose state arrays are the lists states_of(name) gives."""
    spec = RULE_SPECS[rule]
    group = {o["name"]: o["default"] for o in spec["options"]}
    on = {"true": True, "nonzero": 0.5, "positive": 0.5}
    group.update({s["when"][0]: on[s["when"][1]] for s in spec["states"] if s["when"] is not None})
    group["params"] = params

    def state_lists(gi, wanted):
        # Each list with a flag per array: whether it was just created.
        return [(states_of(name), [True] * len(params)) for name, _ in wanted]

    return _core.StepPlan(rule, _core.StepControl(), [group], [{"step": 0, **spec["group_scalars"]}], state_lists)


@pytest.mark.parametrize("rule", [r for r in RULE_SPECS if RULE_SPECS[r]["states"]])
def test_state_sharing_memory_refused_when_the_plan_takes_it(rule):
    # The plan checks the state arrays it is handed (once, when it takes them) against the
    # parameters and each other; refused, they are taken and checked again by the next step.
    base, q = np.ones(9), np.ones(6)
    p = base[:6]
    names = [s["name"] for s in RULE_SPECS[rule]["states"]]
    plan = plan_with_states(rule, [p, q], lambda name: [np.zeros(6), base[3:]] if name == names[0] else
                            [np.zeros(6), np.zeros(6)])
    for _ in range(2):
        with pytest.raises(ValueError, match=re.escape(f"params[0] and state[1]['{names[0]}'] overlap in memory "
                                                       "(they share 24 bytes)")):
            _core.step(plan, [np.ones(6), np.ones(6)])
        assert (base == 1).all() and (q == 1).all()
    if len(names) > 1:
        shared = [np.zeros(6), np.zeros(6)]
        plan = plan_with_states(rule, [p, q], lambda name: shared)
        with pytest.raises(ValueError, match=r"state\[(\d)\]\['\w+'\] and state\[\1\]\['\w+'\] are the same array"):
            _core.step(plan, [np.ones(6), np.ones(6)])
        assert (base == 1).all() and not shared[0].any()


@pytest.mark.parametrize("rule", list(RULE_SPECS))
def test_functional_refuses_arrays_sharing_memory(rule):
    states = RULE_SPECS[rule]["states"]
    p, g = np.ones(4), np.ones(4)
    first = states[0]["arg"]
    st = [[np.zeros(4)] for _ in states]
    st[0] = [p]  # the parameter as its own moment
    with pytest.raises(ValueError, match=re.escape(f"params[0] and {first}[0] are the same array")):
        functional_call(rule, [p], [g], st)
    if len(states) > 1:
        m = np.zeros(4)
        st = [[np.zeros(4)] for _ in states]
        st[0], st[1] = [m], [m]  # one array as two moments
        with pytest.raises(ValueError, match=re.escape(f"{first}[0] and {states[1]['arg']}[0] are the same array")):
            functional_call(rule, [p], [g], st)
        assert not m.any()
    buf = np.zeros(7)
    st = [[np.zeros(4), np.zeros(4)] for _ in states]
    st[-1] = [buf[:4], buf[3:]]  # one state's arrays of two parameters overlap
    with pytest.raises(ValueError, match=re.escape(f"{states[-1]['arg']}[0] and {states[-1]['arg']}[1] overlap in "
                                                   "memory (they share 8 bytes)")):
        functional_call(rule, [p, np.ones(4)], [g, g], st)
    assert (p == 1).all() and not buf.any()


@pytest.mark.parametrize("rule", list(RULE_SPECS))
def test_functional_states_in_one_buffer_are_fine(rule):
    # Consecutive slices of one buffer per state (what the optimizer allocates) only touch.
    n = len(RULE_SPECS[rule]["states"])
    params = [np.linspace(-1, 1, 5), np.linspace(1, 2, 3)]
    copies = [p.copy() for p in params]
    bufs = [np.zeros(8) for _ in range(n)]
    functional_call(rule, params, [np.ones(5), np.ones(3)], [[b[:5], b[5:]] for b in bufs])
    functional_call(rule, copies, [np.ones(5), np.ones(3)])
    assert all(x.tobytes() == y.tobytes() for x, y in zip(params, copies))


def test_clipping_refuses_gradients_sharing_memory():
    g = np.ones(4)
    for max_norm in (1.0, 100.0):  # also when nothing would be scaled
        with pytest.raises(ValueError, match=r"grads\[0\] and grads\[1\] are the same array"):
            fg.clip_grad_norm_([g, g], max_norm)
    with pytest.raises(ValueError, match=r"grads\[0\] and grads\[1\] overlap in memory \(grads\[1\] lies within"):
        fg.clip_grad_value_([g, g[1:]], 0.5)
    assert (g == 1).all()
    a = np.full(8, 2.0)  # halves that only touch
    fg.clip_grad_value_([a[:4], a[4:]], 0.5)
    n = fg.clip_grad_norm_([a[:4], a[4:]], 1.0)
    assert n == pytest.approx(math.sqrt(8 * 0.25)) and np.allclose(a, 0.5 / n)
    assert fg.total_norm([g, g]) == math.sqrt(8)  # read only: the same array twice is fine
