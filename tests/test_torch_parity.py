"""Same names, same defaults, same trajectory as torch.optim (skipped when torch is absent)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import reference as R

import fastgd as fg

torch = pytest.importorskip("torch")

# Every rule class that torch.optim has too.
RULES = [name for name in R.CLASSES if hasattr(torch.optim, name)]

CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("RMSprop", dict()),
    ("RMSprop", dict(momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adadelta", dict(weight_decay=0.1, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(decoupled_weight_decay=True, weight_decay=0.1, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(amsgrad=True)),
    ("Adamax", dict(weight_decay=0.1)),
    ("NAdam", dict()),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict()),
    ("RAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
]


@pytest.mark.parametrize("name", RULES)
def test_same_keywords_and_defaults(name):
    ours = inspect.signature(getattr(fg, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    torch_only = {"foreach", "capturable", "differentiable", "fused"}
    for key, p in theirs.items():
        if key in torch_only or key == "params":
            continue
        assert key in ours, f"{name} lacks torch's keyword {key!r}"
        assert ours[key].default == p.default, f"{name}.{key}: {ours[key].default} != torch {p.default}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_same_trajectory(name, options, dtype):
    rng = np.random.default_rng(7)
    shapes = [(33, 17), (5,), (1,)]
    ours = [rng.standard_normal(s).astype(dtype) for s in shapes]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in ours]
    opt = getattr(fg, name)(ours, **options)
    topt = getattr(torch.optim, name)(theirs, **options, foreach=False)
    for _ in range(30):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        for t, g in zip(theirs, grads):
            t.grad = torch.from_numpy(g.copy())
        topt.step()
        opt.step(grads)
    rtol, atol = (2e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    if name == "NAdam" and dtype == np.float64:
        # torch keeps NAdam's mu_product as a float32 tensor even for float64 parameters;
        # fastgd keeps it in float64, so the two differ at float32 rounding (~1e-8 relative).
        rtol, atol = 1e-6, 1e-9
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, float("inf"), 3.0])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(3)
    # torch refuses the inf-norm of an empty tensor; fastgd takes it as 0 (max over nothing).
    shapes = [(100, 7), (13,)] + ([] if norm_type == float("inf") else [(0,)])
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    tgrads = [torch.from_numpy(g.copy()) for g in grads]
    params = [torch.zeros_like(t, requires_grad=True) for t in tgrads]
    for p, g in zip(params, tgrads):
        p.grad = g
    expected = torch.nn.utils.clip_grad_norm_(params, 1.5, norm_type=norm_type, foreach=False)
    total = fg.clip_grad_norm_(grads, 1.5, norm_type=norm_type)
    np.testing.assert_allclose(total, expected.item(), rtol=1e-5)
    for g, p in zip(grads, params):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-7)
