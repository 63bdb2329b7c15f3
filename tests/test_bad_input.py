"""In place or an error: every bad input raises a clear TypeError/ValueError naming the
argument, and nothing is written."""

from __future__ import annotations

import numpy as np
import pytest
import reference as R

import fastgd as fg
import fastgd.functional as F


def _setup(dtype=np.float32):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((4, 5)).astype(dtype), rng.standard_normal(7).astype(dtype)]
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    return params, grads


def _assert_unchanged(opt, params, before_params, before_state):
    for p, b in zip(params, before_params):
        np.testing.assert_array_equal(p, b)
    for i, st in opt.state.items():
        for k, v in st.items():
            np.testing.assert_array_equal(v, before_state[i][k])


def _bad_cases():
    rng = np.random.default_rng(1)
    g64 = rng.standard_normal((4, 5))
    g_f = np.asfortranarray(rng.standard_normal((4, 5)).astype(np.float32))  # not C-contiguous
    g_shape = rng.standard_normal((5, 4)).astype(np.float32)
    g_int = np.ones((4, 5), np.int32)
    return [
        ("dtype", [g64, None], TypeError, r"grads\[0\]: dtype float64 does not match params\[0\] dtype float32"),
        ("noncontig", [g_f, None], ValueError, r"grads\[0\]: array is not C-contiguous"),
        ("shape", [g_shape, None], ValueError, r"grads\[0\]: shape \(5, 4\) does not match params\[0\] shape \(4, 5\)"),
        ("int", [g_int, None], TypeError, r"grads\[0\]: dtype int32 is not supported"),
        ("list", [[1.0] * 20, None], TypeError, r"grads\[0\]: expected a numpy.ndarray, got list"),
        ("second", [None, np.zeros(8, np.float32)], ValueError, r"grads\[1\]: shape \(8,\) does not match"),
        ("count", "short", ValueError, r"2 parameters"),
    ]


@pytest.mark.parametrize("rule", R.CLASSES)
@pytest.mark.parametrize("case", _bad_cases(), ids=[c[0] for c in _bad_cases()])
@pytest.mark.parametrize("clip", [None, "norm", "value"])
def test_bad_grads_raise_and_write_nothing(rule, case, clip):
    params, good = _setup()
    kwargs = {"clip_norm": 1.0} if clip == "norm" else {"clip_value": 0.5} if clip == "value" else {}
    opt = getattr(fg, rule)(params, **R.all_states_on(rule), **kwargs)
    opt.step(good)  # create state, then snapshot it
    before = [p.copy() for p in params]
    before_state = {i: {k: v.copy() for k, v in st.items()} for i, st in opt.state.items()}
    step_before = opt.step_count
    _, bad, exc, msg = case
    grads = good[:1] if bad == "short" else [b if b is not None else g for b, g in zip(bad, good)]
    with pytest.raises(exc, match=msg):
        opt.step(grads)
    _assert_unchanged(opt, params, before, before_state)
    assert opt.step_count == step_before


def test_multi_group_checks_every_group_before_writing():
    params, grads = _setup()
    opt = fg.Adam([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.1}])
    before = [p.copy() for p in params]
    bad = [grads[0], grads[1].astype(np.float64)]  # the second group is bad
    with pytest.raises(TypeError, match=r"grads\[0\]: dtype float64"):
        opt.step(bad)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)


def test_read_only_param_rejected_at_construction_and_step():
    params, grads = _setup()
    params[1].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\]: array is read-only"):
        fg.SGD(params, lr=0.1)
    params[1].flags.writeable = True
    opt = fg.SGD(params, lr=0.1)
    params[1].flags.writeable = False
    before = params[0].copy()
    with pytest.raises(ValueError, match=r"params\[1\]: array is read-only"):
        opt.step(grads)
    np.testing.assert_array_equal(params[0], before)


def test_read_only_grads_are_fine():
    params, grads = _setup()
    for g in grads:
        g.flags.writeable = False
    fg.Adam(params, clip_norm=1.0).step(grads)


@pytest.mark.parametrize(
    ("bad", "exc", "msg"),
    [
        (lambda: np.zeros((3, 4), np.float32).T, ValueError, r"params\[0\]: array is not C-contiguous"),
        (lambda: np.zeros(3, np.int64), TypeError, r"params\[0\]: dtype int64 is not supported"),
        (lambda: np.zeros(3, np.float16), TypeError, r"params\[0\]: dtype float16 is not supported"),
        (lambda: [1.0, 2.0], TypeError, r"params\[0\]: expected a numpy.ndarray, got list"),
        (lambda: np.zeros(3, ">f4"), TypeError, r"params\[0\]"),
    ],
)
def test_bad_params_rejected(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        fg.Adam([bad()])


def test_functional_names_the_state_argument():
    p = np.zeros(5, np.float32)
    g = np.ones(5, np.float32)
    m = np.zeros(5, np.float32)
    v = np.zeros(5, np.float64)
    with pytest.raises(TypeError, match=r"exp_avg_sq\[0\]: dtype float64 does not match params\[0\] dtype float32"):
        F.adam([p], [g], [m], [v], None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
               amsgrad=False, decoupled_weight_decay=False)
    assert not p.any() and not m.any()
    with pytest.raises(ValueError, match="max_exp_avg_sq is required when amsgrad=True"):
        F.adam([p], [g], [m], [m.copy()], None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=0.0, amsgrad=True, decoupled_weight_decay=False)
    with pytest.raises(ValueError, match="exp_avg has 2 arrays but params has 1"):
        F.adam([p], [g], [m, m], [m], None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
               weight_decay=0.0, amsgrad=False, decoupled_weight_decay=False)
    with pytest.raises(TypeError, match="params must be a list of numpy arrays"):
        F.sgd(p, [g], None, step=1, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    with pytest.raises(ValueError, match="step must be >= 1"):
        F.lion([p], [g], [m], step=0, lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0)
    assert not p.any() and not m.any()


def test_state_array_read_only_rejected():
    p, g, m = np.zeros(5), np.ones(5), np.zeros(5)
    m.flags.writeable = False
    with pytest.raises(ValueError, match=r"exp_avg\[0\]: array is read-only"):
        F.lion([p], [g], [m], step=1, lr=0.1, beta1=0.9, beta2=0.99, weight_decay=0.0)
    assert not p.any()


@pytest.mark.parametrize(
    ("make", "msg"),
    [
        (lambda p: fg.Adam(p, lr=-1.0), "Invalid learning rate"),
        (lambda p: fg.Adam(p, betas=(0.9, 1.0)), "Invalid beta parameter at index 1"),
        (lambda p: fg.Adam(p, eps=-1e-8), "Invalid epsilon"),
        (lambda p: fg.SGD(p, nesterov=True), "Nesterov momentum requires"),
        (lambda p: fg.SGD(p, momentum=-0.1), "Invalid momentum"),
        (lambda p: fg.Adam(p, clip_norm=1.0, clip_value=1.0), "clip_norm or clip_value, not both"),
        (lambda p: fg.Adam(p, clip_norm=0.0), "clip_norm must be > 0"),
        (lambda p: fg.Adam(p, clip_norm_type=0.0), "clip_norm_type must be > 0"),
        (lambda p: fg.Adam([]), "empty parameter list"),
        (lambda p: fg.Adam(p + p), "appears more than once"),
    ],
)
def test_bad_hyperparameters(make, msg):
    with pytest.raises(ValueError, match=msg):
        make([np.zeros(3, np.float32)])


def test_unknown_group_option():
    with pytest.raises(TypeError, match="unknown option"):
        fg.Adam([{"params": [np.zeros(3)], "momentum": 0.9}])


def test_clip_functions_reject_bad_input_and_write_nothing():
    g = np.ones(4, np.float32)
    ro = np.ones(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[1\]: array is read-only"):
        fg.clip_grad_norm_([g, ro], 0.1)
    with pytest.raises(ValueError, match=r"grads\[1\]: array is read-only"):
        fg.clip_grad_norm_([g, ro], 100.0)
    with pytest.raises(ValueError, match=r"grads\[1\]: array is read-only"):
        fg.clip_grad_value_([g, ro], 0.1)
    np.testing.assert_array_equal(g, 1.0)
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        fg.total_norm([g], 0.0)
    with pytest.raises(ValueError, match="clip_value must be > 0"):
        fg.clip_grad_value_([g], -1.0)
