"""Plain-NumPy reference implementations of every fastgd update rule and of gradient clipping.

Written from the formulas, independently of fastgd: torch.optim's single-tensor algorithms
(same names, defaults, state and order of operations), and Lion from Chen et al. 2023,
"Symbolic Discovery of Optimization Algorithms", Algorithm 2.

Every array operation runs in the parameter's dtype (float32 or float64). Scalar coefficients
(bias corrections, decayed learning rates, NAdam's momentum schedule) are computed in Python
floats (double) and rounded to the dtype where they meet an array, as torch does for its
``alpha=``/``value=`` arguments. No step ever upcasts an array: :func:`_put` checks it.

Each rule is a function ``rule(param, grad, state, step, **options)`` that updates ``param``
and the arrays in ``state`` (a dict named as in the fastgd class docstrings) in place, from
the gradient as the optimizer reads it (already clipped; ``maximize`` flips its sign here).
``step`` is the step count after this step (1 on the first call). :class:`ReferenceOptimizer`
wraps a rule with defaults, lazily created state and a step counter, for one parameter group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from fastgd.optim import rule_classes
from fastgd.optim._base import RULE_SPECS

__all__ = [
    "CLASSES", "DEFAULTS", "RULES", "ReferenceOptimizer", "state_names", "init_state", "all_states_on", "rule_cases",
    "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamax", "nadam", "radam", "lion",
    "radam_rectified", "total_norm", "clip_coefficient", "clip_by_norm", "clip_by_value", "scale_grads",
]


# -- helpers --------------------------------------------------------------------------------


def _c(x: float, like: np.ndarray) -> np.generic:
    """A Python-float coefficient rounded to the array's dtype (never an upcast)."""
    return like.dtype.type(x)


def _put(dst: np.ndarray, value: np.ndarray) -> None:
    """dst[...] = value, refusing any silent change of dtype (NumPy would cast in place)."""
    value = np.asarray(value)
    if value.dtype != dst.dtype:
        raise AssertionError(f"reference computed in {value.dtype}, expected {dst.dtype}")
    dst[...] = value


def _read_grad(param: np.ndarray, grad: np.ndarray, maximize: bool) -> np.ndarray:
    if grad.dtype != param.dtype or grad.shape != param.shape:
        raise AssertionError("grad must have the parameter's dtype and shape")
    return -grad if maximize else grad.copy()


def _couple_weight_decay(param: np.ndarray, g: np.ndarray, weight_decay: float) -> np.ndarray:
    # torch: grad = grad.add(param, alpha=weight_decay)
    if weight_decay != 0:
        return g + _c(weight_decay, param) * param
    return g


def _decouple_weight_decay(param: np.ndarray, lr: float, weight_decay: float) -> None:
    # torch: param.mul_(1 - lr * weight_decay)
    if weight_decay != 0:
        _put(param, param * _c(1.0 - lr * weight_decay, param))


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    # torch's lerp_ for weight < 0.5: start + weight * (end - start)
    return start + _c(weight, start) * (end - start)


# -- the update rules -----------------------------------------------------------------------


def sgd(param, grad, state, step, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    g = _couple_weight_decay(param, _read_grad(param, grad, maximize), weight_decay)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            # torch: the buffer starts as (a copy of) the first gradient, undamped.
            buf = state["momentum_buffer"] = g.copy()
        else:
            _put(buf, buf * _c(momentum, g) + _c(1.0 - dampening, g) * g)
        g = g + _c(momentum, g) * buf if nesterov else buf
    _put(param, param + _c(-lr, param) * g)


def adagrad(param, grad, state, step, *, lr, lr_decay, weight_decay, initial_accumulator_value, eps,
            maximize):
    g = _couple_weight_decay(param, _read_grad(param, grad, maximize), weight_decay)
    clr = lr / (1.0 + (step - 1) * lr_decay)
    s = state["sum"]
    _put(s, s + g * g)
    std = np.sqrt(s) + _c(eps, s)
    _put(param, param + _c(-clr, param) * (g / std))


def rmsprop(param, grad, state, step, *, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    g = _couple_weight_decay(param, _read_grad(param, grad, maximize), weight_decay)
    sq = state["square_avg"]
    _put(sq, sq * _c(alpha, sq) + _c(1.0 - alpha, sq) * (g * g))
    if centered:
        ga = state["grad_avg"]
        _put(ga, _lerp(ga, g, 1.0 - alpha))
        avg = np.sqrt(sq - ga * ga)
    else:
        avg = np.sqrt(sq)
    avg = avg + _c(eps, avg)
    if momentum > 0:
        buf = state["momentum_buffer"]
        _put(buf, buf * _c(momentum, buf) + g / avg)
        _put(param, param + _c(-lr, param) * buf)
    else:
        _put(param, param + _c(-lr, param) * (g / avg))


def adadelta(param, grad, state, step, *, lr, rho, eps, weight_decay, maximize):
    g = _couple_weight_decay(param, _read_grad(param, grad, maximize), weight_decay)
    sq, acc = state["square_avg"], state["acc_delta"]
    _put(sq, sq * _c(rho, sq) + _c(1.0 - rho, sq) * (g * g))
    std = np.sqrt(sq + _c(eps, sq))
    delta = np.sqrt(acc + _c(eps, acc)) / std * g
    _put(acc, acc * _c(rho, acc) + _c(1.0 - rho, acc) * (delta * delta))
    _put(param, param + _c(-lr, param) * delta)


def adam(param, grad, state, step, *, lr, betas, eps, weight_decay, amsgrad, maximize,
         decoupled_weight_decay):
    beta1, beta2 = betas
    g = _read_grad(param, grad, maximize)
    if decoupled_weight_decay:
        _decouple_weight_decay(param, lr, weight_decay)
    else:
        g = _couple_weight_decay(param, g, weight_decay)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    _put(m, _lerp(m, g, 1.0 - beta1))
    _put(v, v * _c(beta2, v) + _c(1.0 - beta2, v) * (g * g))
    step_size = lr / (1.0 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
    if amsgrad:
        vmax = state["max_exp_avg_sq"]
        _put(vmax, np.maximum(vmax, v))
        second = vmax
    else:
        second = v
    denom = np.sqrt(second) / _c(bias_correction2_sqrt, second) + _c(eps, second)
    _put(param, param + _c(-step_size, param) * (m / denom))


def adamax(param, grad, state, step, *, lr, betas, eps, weight_decay, maximize):
    beta1, beta2 = betas
    g = _couple_weight_decay(param, _read_grad(param, grad, maximize), weight_decay)
    m, u = state["exp_avg"], state["exp_inf"]
    _put(m, _lerp(m, g, 1.0 - beta1))
    _put(u, np.maximum(u * _c(beta2, u), np.abs(g) + _c(eps, g)))
    clr = lr / (1.0 - beta1**step)
    _put(param, param + _c(-clr, param) * (m / u))


def nadam(param, grad, state, step, *, mu_product, lr, betas, eps, weight_decay, momentum_decay,
          decoupled_weight_decay, maximize) -> float:
    """One NAdam step; ``mu_product`` is prod_{i < t} mu_i, the new product is returned."""
    beta1, beta2 = betas
    g = _read_grad(param, grad, maximize)
    if decoupled_weight_decay:
        _decouple_weight_decay(param, lr, weight_decay)
    else:
        g = _couple_weight_decay(param, g, weight_decay)
    bias_correction2 = 1.0 - beta2**step
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product = mu_product * mu
    m, v = state["exp_avg"], state["exp_avg_sq"]
    _put(m, _lerp(m, g, 1.0 - beta1))
    _put(v, v * _c(beta2, v) + _c(1.0 - beta2, v) * (g * g))
    denom = np.sqrt(v / _c(bias_correction2, v)) + _c(eps, v)
    _put(param, param + _c(-lr * (1.0 - mu) / (1.0 - mu_product), param) * (g / denom))
    _put(param, param + _c(-lr * mu_next / (1.0 - mu_product * mu_next), param) * (m / denom))
    return mu_product


def radam_rectified(beta2: float, step: int) -> bool:
    """Whether RAdam takes the rectified (adaptive) branch at this step: rho_t > 5."""
    return _radam_rho(beta2, step)[1] > 5.0


def _radam_rho(beta2: float, step: int) -> tuple[float, float]:
    bias_correction2 = 1.0 - beta2**step
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * step * beta2**step / bias_correction2
    return rho_inf, rho_t


def radam(param, grad, state, step, *, lr, betas, eps, weight_decay, decoupled_weight_decay, maximize):
    beta1, beta2 = betas
    g = _read_grad(param, grad, maximize)
    if decoupled_weight_decay:
        _decouple_weight_decay(param, lr, weight_decay)
    else:
        g = _couple_weight_decay(param, g, weight_decay)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    _put(m, _lerp(m, g, 1.0 - beta1))
    _put(v, v * _c(beta2, v) + _c(1.0 - beta2, v) * (g * g))
    bias_correction1 = 1.0 - beta1**step
    bias_correction2 = 1.0 - beta2**step
    corrected = m / _c(bias_correction1, m)
    rho_inf, rho_t = _radam_rho(beta2, step)
    if rho_t > 5.0:
        rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
        adaptive = _c(math.sqrt(bias_correction2), v) / (np.sqrt(v) + _c(eps, v))
        _put(param, param - corrected * _c(lr, m) * adaptive * _c(rect, m))
    else:
        _put(param, param - corrected * _c(lr, m))


def lion(param, grad, state, step, *, lr, betas, weight_decay, maximize):
    # Chen et al. 2023, Algorithm 2: c = b1 m + (1 - b1) g;
    # theta <- theta - lr (sign(c) + wd theta);  m <- b2 m + (1 - b2) g.
    beta1, beta2 = betas
    g = _read_grad(param, grad, maximize)
    m = state["exp_avg"]
    c = _c(beta1, m) * m + _c(1.0 - beta1, m) * g
    _decouple_weight_decay(param, lr, weight_decay)
    _put(param, param - _c(lr, param) * np.sign(c))
    _put(m, _c(beta2, m) * m + _c(1.0 - beta2, m) * g)


# -- defaults, state, and a stateful wrapper ------------------------------------------------

_ADAM_LIKE = dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False)

DEFAULTS: dict[str, dict[str, Any]] = {
    "SGD": dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    "Adagrad": dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                    maximize=False),
    "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                    maximize=False),
    "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False),
    "Adam": dict(_ADAM_LIKE, lr=1e-3, amsgrad=False, decoupled_weight_decay=False),
    "AdamW": dict(_ADAM_LIKE, lr=1e-3, weight_decay=1e-2, amsgrad=False, decoupled_weight_decay=True),
    "Adamax": dict(_ADAM_LIKE, lr=2e-3),
    "NAdam": dict(_ADAM_LIKE, lr=2e-3, momentum_decay=4e-3, decoupled_weight_decay=False),
    "RAdam": dict(_ADAM_LIKE, lr=1e-3, decoupled_weight_decay=False),
    "Lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False),
}

# Every rule class of fastgd (from its rule table): the lists of rules the tests run over.
CLASSES: list[str] = [cls.__name__ for cls in rule_classes()]
_RULE_OF: dict[str, str] = {cls.__name__: cls.rule for cls in rule_classes()}

# The reference function of each class: the one named after its rule above.
_missing = sorted(set(_RULE_OF.values()) - set(globals()))
if _missing:
    raise ImportError(f"reference.py has no function for the rule(s) {_missing}: write each from its formula")
RULES: dict[str, Callable[..., Any]] = {name: globals()[rule] for name, rule in _RULE_OF.items()}


def state_names(rule: str, options: dict[str, Any]) -> list[str]:
    """The per-parameter state arrays a rule keeps for these (complete) options, in order."""
    tests = {"true": bool, "nonzero": lambda v: v != 0, "positive": lambda v: v > 0}
    return [s["name"] for s in RULE_SPECS[_RULE_OF[rule]]["states"]
            if s["when"] is None or tests[s["when"][1]](options[s["when"][0]])]


def init_state(rule: str, param: np.ndarray, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """Initial state arrays: zeros, or the option the rule table names (Adagrad's sum starts
    at initial_accumulator_value). SGD's momentum buffer is created by the first step, from
    the first gradient."""
    initial = {s["name"]: s["initial"] for s in RULE_SPECS[_RULE_OF[rule]]["states"]}
    names = [n for n in state_names(rule, options) if not (rule == "SGD" and n == "momentum_buffer")]
    return {n: np.full_like(param, options[initial[n]] if isinstance(initial[n], str) else initial[n])
            for n in names}


def all_states_on(rule: str) -> dict[str, Any]:
    """Options that make the rule keep every one of its state arrays."""
    on = {"true": True, "nonzero": 0.5, "positive": 0.5}
    return {s["when"][0]: on[s["when"][1]] for s in RULE_SPECS[_RULE_OF[rule]]["states"] if s["when"] is not None}


def rule_cases(options: dict[str, dict[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(class name, options) for every rule class: the options given for it, else those that
    keep every state array (all_states_on)."""
    options = options or {}
    unknown = set(options) - set(CLASSES)
    if unknown:
        raise KeyError(f"not rule classes: {sorted(unknown)}")
    return [(name, options.get(name, all_states_on(name))) for name in CLASSES]


class ReferenceOptimizer:
    """One parameter group stepped by a reference rule. ``params`` are updated in place (pass
    copies); ``state[i]`` holds parameter i's arrays; ``scalars`` the rule's group scalars
    (``mu_product``: NAdam's product)."""

    def __init__(self, rule: str, params: Sequence[np.ndarray], **options: Any) -> None:
        unknown = set(options) - set(DEFAULTS[rule])
        if unknown:
            raise TypeError(f"unknown option(s) for {rule}: {sorted(unknown)}")
        self.rule = rule
        self.options = {**DEFAULTS[rule], **options}
        self.params = list(params)
        self.state: list[dict[str, np.ndarray]] = [init_state(rule, p, self.options) for p in self.params]
        self.step_count = 0
        self.scalars = dict(RULE_SPECS[_RULE_OF[rule]]["group_scalars"])  # NAdam: mu_product

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One step from gradients as the rule reads them (clip them first if clipping)."""
        if len(grads) != len(self.params):
            raise AssertionError("one gradient per parameter")
        self.step_count += 1
        t = self.step_count
        fn = RULES[self.rule]
        if self.scalars:
            # One value per group (torch keeps an identical copy per parameter), which the
            # rule's function returns advanced.
            (name, value), = self.scalars.items()
            new = value
            for p, g, st in zip(self.params, grads, self.state):
                new = fn(p, g, st, t, **{name: value}, **self.options)
            self.scalars[name] = new
        else:
            for p, g, st in zip(self.params, grads, self.state):
                fn(p, g, st, t, **self.options)

    @property
    def mu_product(self) -> float:
        return self.scalars["mu_product"]


# -- clipping -------------------------------------------------------------------------------


def total_norm(grads: Sequence[np.ndarray], norm_type: float = 2.0) -> float:
    """The p-norm of all gradients taken as one vector, in double: (sum |g|^p)^(1/p), or
    max |g| for p = inf (0 for no elements)."""
    flat = np.concatenate([np.abs(np.asarray(g, dtype=np.float64)).ravel() for g in grads] + [np.zeros(0)])
    if math.isinf(norm_type):
        return float(flat.max()) if flat.size else 0.0
    # In numpy, so that a sum past the double range gives Inf (as the kernels' does), quietly.
    with np.errstate(over="ignore"):
        if norm_type == 1.0:
            return float(flat.sum())
        if norm_type == 2.0:
            return math.sqrt(float(np.dot(flat, flat)))
        return float(np.sum(flat**norm_type) ** np.float64(1.0 / norm_type))


def clip_coefficient(max_norm: float, norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6))."""
    return min(1.0, max_norm / (norm + 1e-6))


def scale_grads(grads: Sequence[np.ndarray], factor: float) -> list[np.ndarray]:
    """New arrays g * factor, with the factor rounded to each gradient's dtype."""
    return [g * _c(factor, g) for g in grads]


def clip_by_norm(grads: Sequence[np.ndarray], max_norm: float,
                 norm_type: float = 2.0) -> tuple[list[np.ndarray], float]:
    """Clipped copies of the gradients (global norm over all of them) and the norm before."""
    norm = total_norm(grads, norm_type)
    return scale_grads(grads, clip_coefficient(max_norm, norm)), norm


def clip_by_value(grads: Sequence[np.ndarray], clip_value: float) -> list[np.ndarray]:
    """Copies clamped to [-clip_value, clip_value]."""
    return [np.clip(g, _c(-clip_value, g), _c(clip_value, g)) for g in grads]
