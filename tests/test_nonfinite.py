"""Optimizer(nonfinite=...): a step whose gradients hold a NaN or an Inf is ignored (today's
behaviour), skipped (nothing written, the step count does not advance), or an error."""

from __future__ import annotations

import numpy as np
import pytest

import fastgd as fg
from fastgd.optim import OPTIMIZERS, SGD, Adam, RMSprop

RULES = [(name, cls, kw) for name, (cls, kw) in OPTIMIZERS.items()] + [
    ("adam-amsgrad", Adam, {"amsgrad": True}),
    ("rmsprop-centered-momentum", RMSprop, {"centered": True, "momentum": 0.5}),
]
SIZES = (1, 17, 1023)
# (which gradient, where in it): first, middle and last element of each size.
PLACES = [(i, pos) for i in range(len(SIZES)) for pos in sorted({0, SIZES[i] // 2, SIZES[i] - 1})]
BAD = {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf}


def _params(dtype):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(n).astype(dtype) for n in SIZES]


def _grads(dtype, k):
    rng = np.random.default_rng(100 + k)
    return [rng.standard_normal(n).astype(dtype) for n in SIZES]


def _snapshot(opt, params):
    return ([p.tobytes() for p in params],
            {i: {k: v.tobytes() for k, v in st.items()} for i, st in opt.state.items()},
            opt.state_dict()["group_state"])


def _make(cls, kw, dtype, clip, nonfinite=None):
    params = _params(dtype)
    extra = {"clip_norm": 0.5} if clip else {}
    if nonfinite is not None:
        extra["nonfinite"] = nonfinite
    return params, cls(params, lr=1e-2, **kw, **extra)


def _all_finite(opt, params):
    arrays = list(params) + [v for st in opt.state.values() for v in st.values()]
    return all(np.isfinite(a).all() for a in arrays)


# bad_at: the step that gets the bad gradient; at step 0 the state does not exist yet (nor the
# step plan), later steps run on the kept plan and state.
@pytest.mark.parametrize("bad_at", [0, 2])
@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [False, True], ids=["noclip", "clip"])
@pytest.mark.parametrize("mode", ["skip", "error"])
@pytest.mark.parametrize("name,cls,kw", RULES, ids=[r[0] for r in RULES])
def test_skip_and_error_write_nothing(name, cls, kw, mode, clip, dtype, bad, bad_at):
    n_after = 3
    for which, pos in PLACES:
        params, opt = _make(cls, kw, dtype, clip, mode)
        ref_params, ref = _make(cls, kw, dtype, clip)
        for k in range(bad_at):
            opt.step(_grads(dtype, k))
            ref.step(_grads(dtype, k))
        assert (opt.step_plan is not None) == (bad_at > 0)
        before = _snapshot(opt, params)
        g = _grads(dtype, 99)
        g[which][pos] = BAD[bad]
        if mode == "skip":
            opt.step(g)
            assert opt.skipped_steps == 1
        else:
            with pytest.raises(FloatingPointError, match=rf"gradient {which} \(parameter group 0\)"):
                opt.step(g)
            assert opt.skipped_steps == 0
        assert _snapshot(opt, params) == before, (which, pos)
        # The next finite steps are those of an optimizer that never saw the bad one.
        for k in range(bad_at, bad_at + n_after):
            opt.step(_grads(dtype, k))
            ref.step(_grads(dtype, k))
        assert _snapshot(opt, params) == _snapshot(ref, ref_params), (which, pos)
        assert opt.skipped_steps == (1 if mode == "skip" else 0)


@pytest.mark.parametrize("bad_at", [0, 2])
@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("clip", [False, True], ids=["noclip", "clip"])
@pytest.mark.parametrize("name,cls,kw", RULES, ids=[r[0] for r in RULES])
def test_ignore_is_the_default(name, cls, kw, clip, dtype, bad, bad_at):
    for which, pos in PLACES[::2]:
        params, opt = _make(cls, kw, dtype, clip, "ignore")
        ref_params, ref = _make(cls, kw, dtype, clip)
        assert ref.nonfinite == "ignore"
        for k in range(bad_at + 2):
            g = _grads(dtype, k)
            if k == bad_at:
                g[which][pos] = BAD[bad]
            opt.step(g)
            ref.step([x.copy() for x in g])
        for a, b in zip(params, ref_params):
            np.testing.assert_array_equal(a, b)
        assert not _all_finite(opt, params)  # the NaN or Inf reached the parameters or state
        assert opt.step_count == bad_at + 2
        assert opt.skipped_steps == 0


@pytest.mark.parametrize("clip", [False, True], ids=["noclip", "clip"])
def test_skip_counts_every_skipped_step_before_and_after_the_state_exists(clip):
    params, opt = _make(SGD, {"momentum": 0.9}, np.float64, clip, "skip")
    bad = [np.full(n, np.nan) for n in SIZES]
    opt.step(bad)  # before any state: none is created
    assert opt.state[0] == {} and opt.step_count == 0
    opt.step(_grads(np.float64, 0))
    opt.step(_grads(np.float64, 1))
    for _ in range(3):
        opt.step(bad)
    assert opt.skipped_steps == 4
    assert opt.step_count == 2


def test_option_read_each_step_on_a_kept_plan():
    params, opt = _make(Adam, {}, np.float32, False)
    opt.step(_grads(np.float32, 0))
    opt.step(_grads(np.float32, 1))
    g = _grads(np.float32, 2)
    g[1][3] = np.inf
    opt.nonfinite = "error"
    before = _snapshot(opt, params)
    with pytest.raises(FloatingPointError, match="gradient 1"):
        opt.step(g)
    assert _snapshot(opt, params) == before
    opt.nonfinite = "skip"
    opt.step(g)
    assert opt.skipped_steps == 1 and _snapshot(opt, params) == before
    opt.nonfinite = "bogus"
    with pytest.raises(ValueError, match="nonfinite"):
        opt.step(_grads(np.float32, 3))
    assert _snapshot(opt, params) == before


def test_error_names_the_group():
    a, b, c = (np.zeros(5, np.float64) for _ in range(3))
    opt = Adam([{"params": [a]}, {"params": [b, c], "lr": 0.1}], nonfinite="error")
    for _ in range(3):
        g = [np.ones(5), np.ones(5), np.ones(5)]
        g[2][4] = np.nan
        with pytest.raises(FloatingPointError, match=r"gradient 2 \(parameter group 1\)"):
            opt.step(g)
        opt.step([np.ones(5)] * 3)


def test_overflowing_clip_norm_counts_as_nonfinite():
    p = np.zeros(4, np.float64)
    opt = SGD([p], lr=0.1, clip_norm=1.0, nonfinite="error")
    with pytest.raises(FloatingPointError, match="norm is not finite"):
        opt.step([np.full(4, 1e300)])
    assert not p.any()


@pytest.mark.parametrize("value", ["raise", None, 1, "Skip"])
def test_bad_option(value):
    with pytest.raises(ValueError, match="nonfinite"):
        SGD([np.zeros(3)], nonfinite=value)
    with pytest.raises(ValueError, match="nonfinite"):
        fg.optim.get_optimizer("adam", [np.zeros(3)], nonfinite=value)


def test_state_dict_keeps_option_and_count():
    params, opt = _make(Adam, {}, np.float64, True, "skip")
    opt.step([np.full(n, np.nan) for n in SIZES])
    opt.step(_grads(np.float64, 0))
    sd = opt.state_dict()
    assert sd["global"]["nonfinite"] == "skip" and sd["skipped_steps"] == 1
    params2, opt2 = _make(Adam, {}, np.float64, True)
    opt2.load_state_dict(sd)
    assert opt2.nonfinite == "skip" and opt2.skipped_steps == 1
    sd["global"]["nonfinite"] = "sometimes"
    with pytest.raises(ValueError, match="nonfinite"):
        opt2.load_state_dict(sd)
    assert opt2.nonfinite == "skip"
