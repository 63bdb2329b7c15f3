"""Learning-rate schedules: closed forms written out here, torch's schedulers step by step
(when torch is installed), argument checks, behaviour past the end, composition, configs."""

from __future__ import annotations

import json
import math
import pickle
import random

import numpy as np
import pytest

from fastgd import schedules as S


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# ---- independent closed forms ------------------------------------------------------------

def ref_step_decay(lr, step_size, gamma):
    def f(t):
        v = lr
        for k in range(1, t + 1):
            if k % step_size == 0:
                v *= gamma
        return v
    return f


def ref_multistep(lr, milestones, gamma):
    return lambda t: lr * gamma ** sum(1 for m in milestones if m <= t)


def ref_cosine(lr, T, eta_min):
    return lambda t: eta_min + (lr - eta_min) * math.cos(math.pi * t / (2 * T)) ** 2


def ref_cosine_restarts(lr, T_0, T_mult, eta_min):
    def f(t):  # walk the restarts one step at a time, as SGDR describes them
        cur, T_i = 0, T_0
        for _ in range(t):
            cur += 1
            if cur == T_i:
                cur, T_i = 0, T_i * T_mult
        return eta_min + (lr - eta_min) * math.cos(math.pi * cur / (2 * T_i)) ** 2
    return f


def ref_linear(lr, s, e, T):
    return lambda t: lr * e if t >= T else lr * (s * (T - t) + e * t) / T


def ref_polynomial(lr, T, p):
    return lambda t: 0.0 if t >= T else lr * ((T - t) / T) ** p


def ref_cyclic(base, top, up, down, mode, gamma):
    down = up if down is None else down

    def f(t):
        cycle, pos = divmod(t, up + down)
        h = pos / up if pos <= up else (up + down - pos) / down
        scale = {"triangular": 1.0, "triangular2": 0.5 ** cycle, "exp_range": gamma ** t}[mode]
        return base + (top - base) * h * scale
    return f


def ref_one_cycle(max_lr, T, pct, strategy, div, final_div, three):
    start, low = max_lr / div, max_lr / div / final_div
    peak = pct * T - 1  # the step at max_lr
    knots = ([(0.0, start), (peak, max_lr), (2 * peak, start), (T - 1, low)] if three
             else [(0.0, start), (peak, max_lr), (T - 1, low)])

    def f(t):
        t = min(t, T - 1)
        for (x0, y0), (x1, y1) in zip(knots, knots[1:]):
            if t <= x1 or x1 == T - 1:
                p = (t - x0) / (x1 - x0)
                return y0 + (y1 - y0) * (p if strategy == "linear" else (1 - math.cos(math.pi * p)) / 2)
    return f


def ref_inverse_time(lr, power_t):
    return lambda t: lr / math.pow(t + 1, power_t)  # scikit-learn's t starts at 1


# id, schedule, closed form, torch scheduler (None: torch has none), steps to check
CASES = [
    ("constant", S.constant(0.3), lambda t: 0.3, None, 20),
    ("step_decay", S.step_decay(0.1, 7, 0.5), ref_step_decay(0.1, 7, 0.5),
     lambda L, o: L.StepLR(o, 7, 0.5), 21),
    ("step_decay_1", S.step_decay(0.1, 1), ref_step_decay(0.1, 1, 0.1), lambda L, o: L.StepLR(o, 1), 10),
    ("multistep", S.multistep(0.1, [9, 3, 9, 20], 0.5), ref_multistep(0.1, [3, 9, 9, 20], 0.5),
     lambda L, o: L.MultiStepLR(o, [3, 9, 9, 20], 0.5), 60),
    ("multistep_0", S.multistep(0.1, [0, 5]), ref_multistep(0.1, [0, 5], 0.1),
     lambda L, o: L.MultiStepLR(o, [0, 5]), 15),
    ("exponential", S.exponential(0.1, 0.9), lambda t: 0.1 * 0.9 ** t, lambda L, o: L.ExponentialLR(o, 0.9), 60),
    ("exponential_up", S.exponential(1e-4, 1.2), lambda t: 1e-4 * 1.2 ** t, lambda L, o: L.ExponentialLR(o, 1.2), 60),
    *[(f"cosine_T{T}_min{m}", S.cosine(0.1, T, m), ref_cosine(0.1, T, m),
       lambda L, o, T=T, m=m: L.CosineAnnealingLR(o, T, m), 3 * T + 1)
      for T in (1, 2, 7, 50) for m in (0.0, 0.01)],
    *[(f"cosine_restarts_{T0}_{Tm}", S.cosine_restarts(0.1, T0, Tm, 0.001), ref_cosine_restarts(0.1, T0, Tm, 0.001),
       lambda L, o, T0=T0, Tm=Tm: L.CosineAnnealingWarmRestarts(o, T0, Tm, 0.001), n)
      for T0, Tm, n in ((1, 1, 10), (5, 1, 16), (3, 2, 3 * 21 + 1), (2, 3, 3 * 26 + 1), (1, 2, 3 * 31 + 1))],
    ("linear", S.linear(0.1, 0.25, 0.75, 8), ref_linear(0.1, 0.25, 0.75, 8),
     lambda L, o: L.LinearLR(o, 0.25, 0.75, 8), 25),
    ("linear_default", S.linear(0.1), ref_linear(0.1, 1 / 3, 1.0, 5), lambda L, o: L.LinearLR(o), 16),
    ("linear_decay", S.linear(0.1, 1.0, 0.0, 10), ref_linear(0.1, 1.0, 0.0, 10),
     lambda L, o: L.LinearLR(o, 1.0, 0.0, 10), 31),
    ("linear_1", S.linear(0.1, 0.5, 1.0, 1), ref_linear(0.1, 0.5, 1.0, 1), lambda L, o: L.LinearLR(o, 0.5, 1.0, 1), 4),
    ("linear_from_0", S.linear(0.1, 0.0, 1.0, 4), ref_linear(0.1, 0.0, 1.0, 4), None, 13),
    *[(f"polynomial_{p}", S.polynomial(0.1, 9, p), ref_polynomial(0.1, 9, p),
       lambda L, o, p=p: L.PolynomialLR(o, 9, p), 28) for p in (1.0, 2.0, 0.5)],
    ("polynomial_default", S.polynomial(0.1), ref_polynomial(0.1, 5, 1.0), lambda L, o: L.PolynomialLR(o), 16),
    *[(f"cyclic_{mode}_{up}_{down}", S.cyclic(0.01, 0.1, up, down, mode, 0.97),
       ref_cyclic(0.01, 0.1, up, down, mode, 0.97),
       lambda L, o, up=up, down=down, mode=mode: L.CyclicLR(o, 0.01, 0.1, up, down, mode, 0.97,
                                                            cycle_momentum=False),
       3 * (up + (down or up)) + 1)
      for mode in ("triangular", "triangular2", "exp_range") for up, down in ((4, None), (3, 5), (1, 1), (5, 2))],
    ("cyclic_inverted", S.cyclic(0.1, 0.01, 3), ref_cyclic(0.1, 0.01, 3, None, "triangular", 1.0),
     lambda L, o: L.CyclicLR(o, 0.1, 0.01, 3, cycle_momentum=False), 19),
    *[(f"one_cycle_{T}_{pct}_{strat}_{'3' if three else '2'}", S.one_cycle(0.1, T, pct, strat, three_phase=three),
       ref_one_cycle(0.1, T, pct, strat, 25.0, 1e4, three),
       lambda L, o, T=T, pct=pct, strat=strat, three=three: L.OneCycleLR(
           o, 0.1, T, pct_start=pct, anneal_strategy=strat, three_phase=three, cycle_momentum=False), T)
      for T, pct in ((100, 0.3), (10, 0.25), (7, 0.5), (9, 0.0), (2, 0.3), (1, 0.3))
      for strat in ("cos", "linear") for three in (False, True)],
    ("one_cycle_factors", S.one_cycle(1.0, 30, 0.4, div_factor=10.0, final_div_factor=100.0),
     ref_one_cycle(1.0, 30, 0.4, "cos", 10.0, 100.0, False),
     lambda L, o: L.OneCycleLR(o, 1.0, 30, pct_start=0.4, div_factor=10.0, final_div_factor=100.0,
                               cycle_momentum=False), 30),
    ("inverse_time", S.inverse_time(0.1), ref_inverse_time(0.1, 0.5), None, 30),
    ("inverse_time_1", S.inverse_time(0.1, 1.0), lambda t: 0.1 / (t + 1), None, 30),
    ("warmup_cosine", S.warmup(S.cosine(0.1, 20, 0.001), 5, 0.1),
     lambda t: 0.1 * (0.1 + 0.9 * t / 5) if t < 5 else ref_cosine(0.1, 20, 0.001)(t - 5),
     lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.1, 1.0, 5), L.CosineAnnealingLR(o, 20, 0.001)], [5]), 66),
    ("warmup_from_0", S.warmup(S.exponential(0.1, 0.9), 4),
     lambda t: 0.1 * t / 4 if t < 4 else 0.1 * 0.9 ** (t - 4), None, 20),
    ("join", S.join([S.linear(0.1, 0.5, 1.0, 4), S.exponential(0.1, 0.9), S.step_decay(0.1, 3, 0.5)], [6, 15]),
     lambda t: (ref_linear(0.1, 0.5, 1.0, 4)(t) if t < 6 else 0.1 * 0.9 ** (t - 6) if t < 15
                else ref_step_decay(0.1, 3, 0.5)(t - 15)),
     lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.5, 1.0, 4), L.ExponentialLR(o, 0.9), L.StepLR(o, 3, 0.5)],
                                 [6, 15]), 45),
    ("join_restarts", S.join([S.linear(0.1, 0.2, 1.0, 3), S.cosine_restarts(0.1, 4, 2)], [3]),
     lambda t: ref_linear(0.1, 0.2, 1.0, 3)(t) if t < 3 else ref_cosine_restarts(0.1, 4, 2, 0.0)(t - 3),
     lambda L, o: L.SequentialLR(o, [L.LinearLR(o, 0.2, 1.0, 3), L.CosineAnnealingWarmRestarts(o, 4, 2)], [3]),
     3 * 28 + 1),
]
IDS = [c[0] for c in CASES]
TORCH_CASES = [c for c in CASES if c[3] is not None]


def close(a, b):
    """Equal to float rounding (every rate in these tests is at most 1)."""
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-14)


@pytest.mark.parametrize("name, sched, ref, _torch, n", CASES, ids=IDS)
def test_closed_form(name, sched, ref, _torch, n):
    for t in range(n):
        value = sched(t)
        assert type(value) is float
        assert close(value, ref(t)), f"{name} step {t}: {value} != {ref(t)}"


# ---- torch, step by step -----------------------------------------------------------------

def torch_lrs(torch, make, n, lr=1.0):
    """torch's lr for steps 0..n-1: the optimizer's lr before each scheduler.step()."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make(torch.optim.lr_scheduler, opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n - 1):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("name, sched, _ref, make, n", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_torch_every_step(torch, name, sched, _ref, make, n):
    # torch's schedulers scale the optimizer's lr (cyclic and one_cycle set their own): give
    # it our base rate (0.1 in every composed case)
    theirs = torch_lrs(torch, make, n, lr=sched.get_config().get("lr", 0.1))
    for t, expected in enumerate(theirs):
        assert close(sched(t), expected), f"{name} step {t}: {sched(t)} != torch {expected}"


def test_torch_cosine_restarts_long(torch):
    """Several restarts with T_mult = 2 up to step 3000: restarts land on the same steps."""
    ours = S.cosine_restarts(0.1, 3, 2, 1e-3)
    theirs = torch_lrs(torch, lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 2, 1e-3), 3000, lr=0.1)
    assert all(close(ours(t), v) for t, v in enumerate(theirs))


def test_torch_one_cycle_degenerate_phases(torch):
    """Where torch divides by a zero-length phase we give the phase's end value, and torch
    agrees on every step it can compute."""
    # pct_start * total_steps == 1: torch raises at construction, we start at max_lr
    with pytest.raises(ZeroDivisionError):
        torch_lrs(torch, lambda L, o: L.OneCycleLR(o, 0.1, 10, pct_start=0.1, cycle_momentum=False), 1)
    s = S.one_cycle(0.1, 10, pct_start=0.1)
    assert s(0) == 0.1
    assert s(9) == pytest.approx(0.1 / 25 / 1e4)
    # pct_start = 1 (two phases): torch reaches max_lr, then raises one step past the end
    s = S.one_cycle(0.1, 9, pct_start=1.0)
    theirs = torch_lrs(torch, lambda L, o: L.OneCycleLR(o, 0.1, 9, pct_start=1.0, cycle_momentum=False), 9)
    assert all(close(s(t), v) for t, v in enumerate(theirs))
    assert s(8) == s(9) == s(10**6) == 0.1


def test_torch_one_cycle_past_the_end(torch):
    """torch extrapolates one step past the last (below min_lr with 'linear') and then raises;
    we hold the final value."""
    total = 20
    make = lambda L, o: L.OneCycleLR(o, 0.1, total, anneal_strategy="linear", cycle_momentum=False)  # noqa: E731
    theirs = torch_lrs(torch, make, total + 1)
    assert theirs[total] < theirs[total - 1]
    with pytest.raises(ValueError, match="Tried to step"):
        torch_lrs(torch, make, total + 2)
    s = S.one_cycle(0.1, total, anneal_strategy="linear")
    assert s(total - 1) == theirs[total - 1]
    assert s(total) == s(total + 1) == s(10**9) == s(total - 1)


# ---- ReduceLROnPlateau -------------------------------------------------------------------

def metric_sequence(n=200, seed=0):
    """A loss-like curve: noisy decrease with plateaus."""
    rng = random.Random(seed)
    v, out = 1.0, []
    for _ in range(n):
        if rng.random() < 0.6:
            v *= 1 - 0.05 * rng.random()
        out.append(v + 0.002 * rng.random())
    return out


PLATEAU_SETTINGS = [
    dict(mode=mode, factor=0.5, patience=3, threshold=th, threshold_mode=tm, cooldown=cd, min_lr=mn)
    for mode in ("min", "max") for tm, th in (("rel", 1e-2), ("abs", 1e-3)) for cd in (0, 3) for mn in (0.0, 1e-3)
] + [dict(), dict(patience=0, factor=0.0), dict(mode="max", threshold=0.0, patience=1, cooldown=1)]


def plateau_metrics(mode):
    seq = metric_sequence()
    return seq if mode == "min" else [2.0 - m for m in seq]  # "max": an accuracy-like curve


@pytest.mark.parametrize("settings", PLATEAU_SETTINGS, ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_plateau_against_torch(torch, settings):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **settings)
    ours = S.ReduceLROnPlateau(0.1, **settings)
    changes = 0
    for m in plateau_metrics(settings.get("mode", "min")):
        theirs.step(m)
        before = ours.lr
        assert ours.step(m) == opt.param_groups[0]["lr"] == ours.lr
        changes += ours.lr != before
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == (
            theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter, theirs.last_epoch)
    assert changes >= 1 or settings == {}


def test_plateau_by_hand():
    r = S.ReduceLROnPlateau(1.0, patience=2, factor=0.5, threshold=0.0)
    lrs = [r.step(m) for m in [5, 4, 4, 4, 4, 3, 3, 3, 3, 3]]
    # improvement at 5, 4, 3; three bad evaluations in a row (> patience 2) halve the rate
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    r = S.ReduceLROnPlateau(1.0, patience=0, factor=0.5, cooldown=2, threshold=0.0)
    assert [r.step(m) for m in [1, 2, 2, 2, 2, 2]] == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    r = S.ReduceLROnPlateau(1.0, mode="max", patience=0, factor=0.5, threshold=0.1, threshold_mode="abs")
    assert [r.step(m) for m in [1.0, 1.05, 1.2, 1.25]] == [1.0, 0.5, 0.5, 0.25]
    r = S.ReduceLROnPlateau(1.0, patience=0, factor=0.1, min_lr=0.05)
    assert [r.step(m) for m in [1, 1, 1, 1]] == [1.0, 0.1, 0.05, 0.05]


def test_plateau_eps_rule():
    """A reduction by no more than 1e-8 is skipped (torch's eps)."""
    r = S.ReduceLROnPlateau(1.5e-8, patience=0)
    r.step(1.0)
    assert r.step(1.0) == pytest.approx(1.5e-9)  # changed by 1.35e-8 > 1e-8
    assert r.step(1.0) == pytest.approx(1.5e-9)  # would change by 1.35e-9: kept
    r = S.ReduceLROnPlateau(0.1, patience=0, factor=0.5, min_lr=0.1 - 5e-9)
    r.step(1.0)
    assert r.step(1.0) == 0.1


def test_plateau_nan_metric_is_a_bad_evaluation():
    r = S.ReduceLROnPlateau(1.0, patience=1)
    assert [r.step(m) for m in [1.0, math.nan, math.nan]] == [1.0, 1.0, 0.1]


def test_plateau_state_dict_resumes_exactly():
    seq = metric_sequence(120, seed=3)
    settings = dict(factor=0.5, patience=2, cooldown=2, min_lr=1e-4)
    whole = S.ReduceLROnPlateau(0.1, **settings)
    expected = [whole.step(m) for m in seq]
    first = S.ReduceLROnPlateau(0.1, **settings)
    got = [first.step(m) for m in seq[:57]]
    state = json.loads(json.dumps(first.state_dict()))  # plain data
    resumed = S.ReduceLROnPlateau(1.0)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == first.state_dict()
    got += [resumed.step(m) for m in seq[57:]]
    assert got == expected
    assert "ReduceLROnPlateau(lr=" in repr(resumed)


@pytest.mark.parametrize("change, match", [
    (dict(mode="up"), "mode must be one of 'min', 'max'"),
    (dict(num_bad_epochs=-1), "num_bad_epochs must be an integer >= 0"),
    (dict(factor=1.0), "factor must be < 1.0"),
    (dict(best=None), None),
])
def test_plateau_load_state_dict_checks(change, match):
    r = S.ReduceLROnPlateau(0.1, patience=1)
    for m in [1.0, 2.0]:
        r.step(m)
    before = r.state_dict()
    bad = {**before, **change}
    with pytest.raises((ValueError, TypeError), match=match):
        r.load_state_dict(bad)
    assert r.state_dict() == before
    missing = dict(before)
    del missing["cooldown_counter"]
    with pytest.raises(ValueError, match="missing"):
        r.load_state_dict(missing)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-0.1), "lr must be a finite number >= 0"),
    (dict(lr=math.nan), "lr must be a finite number"),
    (dict(lr=0.1, mode="best"), "mode must be one of"),
    (dict(lr=0.1, factor=1.0), "factor must be < 1.0"),
    (dict(lr=0.1, factor=-0.5), "factor must be a finite number >= 0"),
    (dict(lr=0.1, patience=-1), "patience must be an integer >= 0"),
    (dict(lr=0.1, patience=2.5), "patience must be an integer"),
    (dict(lr=0.1, threshold=-1e-4), "threshold must be a finite number >= 0"),
    (dict(lr=0.1, threshold_mode="pct"), "threshold_mode must be one of 'rel', 'abs'"),
    (dict(lr=0.1, cooldown=-1), "cooldown must be an integer >= 0"),
    (dict(lr=0.1, min_lr=-1.0), "min_lr must be a finite number >= 0"),
])
def test_plateau_checks_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S.ReduceLROnPlateau(**kwargs)


# ---- argument checks ---------------------------------------------------------------------

BAD = [
    (S.constant, dict(lr=-1.0), "constant: lr must be a finite number >= 0, got -1.0"),
    (S.constant, dict(lr=math.inf), "constant: lr must be a finite number >= 0"),
    (S.constant, dict(lr="0.1"), "constant: lr must be a finite number >= 0, got '0.1'"),
    (S.constant, dict(lr=True), "constant: lr must be a finite number"),
    (S.step_decay, dict(lr=0.1, step_size=0), r"step_decay: step_size must be an integer >= 1, got 0"),
    (S.step_decay, dict(lr=0.1, step_size=2.0), r"step_decay: step_size must be an integer >= 1, got 2.0"),
    (S.step_decay, dict(lr=0.1, step_size=2, gamma=-0.1), "step_decay: gamma must be a finite number >= 0"),
    (S.multistep, dict(lr=0.1, milestones=5), "multistep: milestones must be a list of integers"),
    (S.multistep, dict(lr=0.1, milestones=[3, -1]), r"multistep: milestones\[1\] must be an integer >= 0, got -1"),
    (S.multistep, dict(lr=0.1, milestones=[3, 4.5]), r"multistep: milestones\[1\] must be an integer"),
    (S.exponential, dict(lr=0.1, gamma=math.nan), "exponential: gamma must be a finite number >= 0"),
    (S.cosine, dict(lr=0.1, T_max=0), "cosine: T_max must be an integer >= 1, got 0"),
    (S.cosine, dict(lr=0.1, T_max=10, eta_min=-1e-3), "cosine: eta_min must be a finite number >= 0"),
    (S.cosine_restarts, dict(lr=0.1, T_0=0), "cosine_restarts: T_0 must be an integer >= 1"),
    (S.cosine_restarts, dict(lr=0.1, T_0=5, T_mult=0), "cosine_restarts: T_mult must be an integer >= 1"),
    (S.cosine_restarts, dict(lr=0.1, T_0=5, T_mult=1.5), "cosine_restarts: T_mult must be an integer >= 1"),
    (S.linear, dict(lr=0.1, start_factor=-0.1), "linear: start_factor must be a finite number >= 0"),
    (S.linear, dict(lr=0.1, end_factor=math.inf), "linear: end_factor must be a finite number >= 0"),
    (S.linear, dict(lr=0.1, total_iters=0), "linear: total_iters must be an integer >= 1, got 0"),
    (S.polynomial, dict(lr=0.1, total_iters=0), "polynomial: total_iters must be an integer >= 1"),
    (S.polynomial, dict(lr=0.1, power=-1.0), "polynomial: power must be a finite number >= 0"),
    (S.cyclic, dict(base_lr=-0.1, max_lr=0.1), "cyclic: base_lr must be a finite number >= 0"),
    (S.cyclic, dict(base_lr=0.01, max_lr=0.1, step_size_up=0), "cyclic: step_size_up must be an integer >= 1"),
    (S.cyclic, dict(base_lr=0.01, max_lr=0.1, step_size_down=0), "cyclic: step_size_down must be an integer >= 1"),
    (S.cyclic, dict(base_lr=0.01, max_lr=0.1, mode="sine"),
     "cyclic: mode must be one of 'triangular', 'triangular2', 'exp_range'; got 'sine'"),
    (S.cyclic, dict(base_lr=0.01, max_lr=0.1, gamma=0.0), "cyclic: gamma must be a finite number > 0, got 0.0"),
    (S.cyclic, dict(base_lr=0.01, max_lr=0.1, gamma=1.5), r"cyclic: gamma must be <= 1.0, got 1.5"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=0), "one_cycle: total_steps must be an integer >= 1, got 0"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=None), "one_cycle: total_steps must be an integer >= 1, got None"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, pct_start=1.5), r"one_cycle: pct_start must be <= 1.0"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, pct_start=-0.1), "one_cycle: pct_start must be a finite"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     "one_cycle: anneal_strategy must be one of 'cos', 'linear'"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, div_factor=0), "one_cycle: div_factor must be a finite number > 0"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, final_div_factor=-1.0), "one_cycle: final_div_factor must be"),
    (S.one_cycle, dict(max_lr=0.1, total_steps=10, three_phase="yes"), "one_cycle: three_phase must be True or False"),
    (S.inverse_time, dict(lr=0.1, power_t=-0.5), "inverse_time: power_t must be a finite number >= 0"),
    (S.warmup, dict(schedule=S.constant(0.1), warmup_steps=-1), "warmup: warmup_steps must be an integer >= 0"),
    (S.warmup, dict(schedule=S.constant(0.1), warmup_steps=3, start_factor=1.5),
     r"warmup: start_factor must be <= 1.0"),
    (S.join, dict(schedules=[], boundaries=[]), "join: schedules must be a non-empty list"),
    (S.join, dict(schedules=[S.constant(0.1), S.constant(0.2)], boundaries=[]), "join: 2 schedules need 1 boundaries"),
    (S.join, dict(schedules=[S.constant(0.1), S.constant(0.2)], boundaries=[0]),
     r"join: boundaries\[0\] must be an integer >= 1, got 0"),
    (S.join, dict(schedules=[S.constant(0.1)] * 3, boundaries=[5, 5]), r"join: boundaries must be strictly increasing"),
    (S.join, dict(schedules=[S.constant(0.1)] * 2, boundaries=5), "join: boundaries must be a list of integers"),
]


@pytest.mark.parametrize("fn, kwargs, match", BAD, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(**kwargs)


def test_not_callable():
    with pytest.raises(TypeError, match="warmup: schedule must be callable, got float"):
        S.warmup(0.1, 5)
    with pytest.raises(TypeError, match=r"join: schedules\[1\] must be callable, got float"):
        S.join([S.constant(0.1), 0.1], [5])


def test_step_must_be_a_non_negative_integer():
    s = S.cosine(0.1, 10)
    with pytest.raises(ValueError, match="cosine: step must be >= 0, got -1"):
        s(-1)
    with pytest.raises(TypeError, match="cosine: step must be an integer, got float"):
        s(1.5)
    assert s(np.int64(3)) == s(3) == s(np.array(3, dtype=np.int32))


def test_numpy_arguments_become_python_numbers():
    s = S.cosine(np.float32(0.5), np.int64(10), eta_min=np.float64(0.0))
    config = s.get_config()
    assert type(config["lr"]) is float and type(config["T_max"]) is int
    assert json.loads(json.dumps(config)) == config


# ---- past the end ------------------------------------------------------------------------

HUGE = [10**6, 10**12 + 7, 2**62 + 3]


@pytest.mark.parametrize("name, sched, _ref, _torch, _n", CASES, ids=IDS)
def test_far_steps_never_raise(name, sched, _ref, _torch, _n):
    for t in HUGE:
        v = sched(t)
        assert type(v) is float and v >= 0 and not math.isnan(v)


def test_growth_saturates_instead_of_raising():
    assert S.exponential(1e-4, 1.2)(10**6) == math.inf
    assert S.exponential(0.0, 1.2)(10**6) == 0.0
    assert S.step_decay(0.1, 1, 10.0)(10**6) == math.inf
    assert S.exponential(0.1, 0.5)(10**6) == 0.0
    assert S.inverse_time(0.1, 30.0)(2**62) == 0.0
    tri2 = S.cyclic(0.01, 0.1, 1, mode="triangular2")
    assert tri2(2 * 2000 + 1) == 0.01  # amplitude 2**-2000 (torch: OverflowError at 2**1024)


def test_cosine_keeps_torch_period_past_t_max():
    s = S.cosine(0.1, 10, 0.01)
    assert s(10) == pytest.approx(0.01)
    for k in range(1, 11):
        assert s(10 + k) == pytest.approx(s(10 - k), rel=1e-12)
    assert s(20) == pytest.approx(0.1) and s(20 + 3) == pytest.approx(s(3))
    once = S.join([S.cosine(0.1, 10, 0.01), S.constant(0.01)], [10])  # the documented "anneal once"
    assert once(9) == s(9) and all(once(t) == 0.01 for t in (10, 11, 25, 10**9))


def test_linear_polynomial_hold_their_end():
    lin = S.linear(0.2, 0.5, 0.25, 8)
    assert all(lin(t) == 0.2 * 0.25 for t in (8, 9, 100, 10**12))
    poly = S.polynomial(0.2, 8, 2.0)
    assert poly(7) > 0 and all(poly(t) == 0.0 for t in (8, 9, 100, 10**12))
    assert S.polynomial(0.2, 8, 0.0)(100) == 0.2  # power 0: constant


@pytest.mark.parametrize("three", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_holds_min_after_the_end(three, strategy):
    s = S.one_cycle(0.5, 50, anneal_strategy=strategy, three_phase=three)
    low = 0.5 / 25 / 1e4
    assert s(0) == pytest.approx(0.5 / 25)
    assert s(14) == pytest.approx(0.5)  # pct_start 0.3 of 50 steps: max at step 14
    assert s(49) == pytest.approx(low)
    assert all(s(t) == s(49) for t in (50, 51, 1000, 10**9))


def test_cyclic_and_restarts_are_periodic():
    c = S.cyclic(0.01, 0.1, 3, 5)
    assert all(c(t) == pytest.approx(c(t + 8 * 1000)) for t in range(8))
    assert c(3) == pytest.approx(0.1) and c(8) == pytest.approx(0.01)
    r = S.cosine_restarts(0.1, 4, 3)
    starts = [0, 4, 16, 52, 160, 484]  # T_i = 4, 12, 36, 108, 324
    assert all(r(t) == 0.1 for t in starts)
    assert all(r(t) < 0.1 for t in range(1, 484) if t not in starts)


# ---- composition -------------------------------------------------------------------------

def test_warmup_convention():
    inner = S.cosine(0.1, 10)
    w = S.warmup(inner, 5, 0.2)
    assert [w(t) for t in range(5)] == pytest.approx([0.1 * (0.2 + 0.8 * t / 5) for t in range(5)])
    assert all(w(5 + t) == inner(t) for t in range(30))  # inner starts at its own step 0
    plain = S.warmup(inner, 0)
    assert all(plain(t) == inner(t) for t in range(30))
    assert S.warmup(inner, 4)(0) == 0.0


def test_join_convention():
    a, b, c = S.constant(1.0), S.exponential(1.0, 0.5), S.linear(1.0, 0.0, 1.0, 4)
    j = S.join([a, b, c], [3, 5])
    assert [j(t) for t in range(10)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.25, 0.5, 0.75, 1.0]
    assert S.join([b], [])(3) == b(3)


def test_nested_and_plain_callables():
    inner = S.join([S.warmup(S.cosine(0.1, 20), 5), S.constant(0.0)], [25])
    outer = S.warmup(inner, 3, 0.5)
    assert outer(0) == 0.0  # inner(0) is the start of a warm-up from 0
    assert outer(3 + 5) == pytest.approx(0.1) and outer(3 + 25) == 0.0
    custom = S.join([lambda t: 0.5, S.constant(0.1)], [2])  # any callable of the step composes
    assert [custom(t) for t in range(4)] == [0.5, 0.5, 0.1, 0.1]
    with pytest.raises(TypeError, match="is not a fastgd schedule"):
        custom.get_config()


# ---- configs -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, sched, _ref, _torch, n", CASES, ids=IDS)
def test_config_round_trip(name, sched, _ref, _torch, n):
    config = sched.get_config()
    assert config["name"] == sched.name
    stored = json.loads(json.dumps(config))
    rebuilt = S.from_config(stored)
    assert rebuilt.get_config() == config and repr(rebuilt) == repr(sched)
    assert isinstance(rebuilt, S.Schedule)
    pickled = pickle.loads(pickle.dumps(sched))
    for t in list(range(n)) + HUGE:
        assert rebuilt(t) == sched(t) == pickled(t)


def test_config_contents_and_repr():
    s = S.warmup(S.multistep(0.1, (30, 10)), 5)
    assert s.get_config() == {"name": "warmup", "warmup_steps": 5, "start_factor": 0.0,
                              "schedule": {"name": "multistep", "lr": 0.1, "milestones": [10, 30], "gamma": 0.1}}
    assert repr(s) == "warmup(schedule=multistep(lr=0.1, milestones=[10, 30], gamma=0.1), warmup_steps=5, " \
                      "start_factor=0.0)"
    cfg = s.get_config()
    cfg["schedule"]["milestones"].append(50)  # a copy: the schedule is unchanged
    assert s.get_config()["schedule"]["milestones"] == [10, 30]
    assert S.Schedule.from_config(s.get_config()).get_config() == s.get_config()


def test_from_config_rejects_unknown():
    with pytest.raises(ValueError, match="unknown schedule 'sawtooth'"):
        S.from_config({"name": "sawtooth", "lr": 0.1})
    with pytest.raises(ValueError, match="unknown schedule None"):
        S.from_config({"lr": 0.1})
    with pytest.raises(TypeError, match="unexpected keyword argument 'T'"):
        S.from_config({"name": "cosine", "lr": 0.1, "T": 10})
    with pytest.raises(ValueError, match="cosine: T_max must be"):
        S.from_config({"name": "cosine", "lr": 0.1, "T_max": -10})


# ---- the table ---------------------------------------------------------------------------

def test_table_names_every_schedule():
    # Each entry is its function under the schedule's own name, exported, and checked by a
    # closed form above (a new schedule without a reference case fails here).
    assert S.SCHEDULES, "empty table"
    for name, fn in S.SCHEDULES.items():
        assert fn.__name__ == name and getattr(S, name) is fn and name in S.__all__
    assert {c[1].name for c in CASES} == set(S.SCHEDULES)
    public = {n for n, v in vars(S).items() if callable(v) and getattr(v, "__module__", None) == S.__name__
              and not n.startswith("_") and not isinstance(v, type)}
    assert public - {"from_config"} == set(S.SCHEDULES)


def test_user_guide_lists_every_schedule():
    import pathlib

    guide = pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide" / "schedules.rst"
    if not guide.exists():
        pytest.skip("docs/ is not next to the tests (installed package)")
    text = guide.read_text(encoding="utf-8")
    assert [n for n in S.SCHEDULES if f"``{n}``" not in text] == []
