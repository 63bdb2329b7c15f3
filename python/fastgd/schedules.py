r"""Learning-rate schedules: plain callables of the step, as in optax.

A schedule maps a step :math:`t = 0, 1, 2, \dots` (an integer) to a learning rate (a float).
Step :math:`t` is the learning rate of the :math:`t`-th update, counted from 0: it equals
torch's ``optimizer.param_groups[0]["lr"]`` after :math:`t` calls of ``scheduler.step()``.
Every argument is checked when the schedule is built (``ValueError``/``TypeError`` naming
it), and a built schedule never raises for a step :math:`\ge 0`; each docstring says what
happens past the schedule's end.

::

    from fastgd import SGD, schedules

    # Any optimizer takes a schedule where it takes a float lr: step() call t uses lr(t).
    lr = schedules.warmup(schedules.cosine(0.1, T_max=900), warmup_steps=100)
    opt = SGD([W], lr=lr, momentum=0.9)
    for t in range(1000):
        opt.step([grad(W)])

A schedule is a :class:`Schedule`: ``get_config()`` gives its name and arguments as plain
data (nested for :func:`warmup` and :func:`join`) and :func:`from_config` rebuilds it, so a
checkpoint can store it. :data:`SCHEDULES` maps every schedule's name to its function.
:class:`ReduceLROnPlateau` is not a function of the step but of a metric: a small controller
with ``step(metric)`` and ``state_dict()``.
"""

from __future__ import annotations

import math
import numbers
import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class Schedule:
    """A learning-rate schedule: ``schedule(step) -> float`` for an integer ``step >= 0``.

    Built by the functions of this module; ``name`` and ``get_config()`` say which one and
    with which arguments. Schedules pickle by their config.
    """

    __slots__ = ("name", "_args", "_fn")

    def __init__(self, name: str, args: dict[str, Any], fn: Callable[[int], float]) -> None:
        self.name = name
        self._args = args
        self._fn = fn

    def __call__(self, step: int) -> float:
        try:
            t = operator.index(step)
        except TypeError:
            raise TypeError(f"{self.name}: step must be an integer, got {type(step).__name__}") from None
        if t < 0:
            raise ValueError(f"{self.name}: step must be >= 0, got {t}")
        return float(self._fn(t))

    def get_config(self) -> dict[str, Any]:
        """``{"name": ..., **arguments}``, nested schedules as their own configs."""
        return {"name": self.name, **{k: _dump(v) for k, v in self._args.items()}}

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Schedule:
        """Rebuild a schedule from :meth:`get_config`'s dict."""
        args = dict(config)
        name = args.pop("name", None)
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(SCHEDULES)}")
        return SCHEDULES[name](**{k: _load(v) for k, v in args.items()})

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self._args.items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (from_config, (self.get_config(),))


from_config = Schedule.from_config


def _dump(value: Any) -> Any:
    if isinstance(value, Schedule):
        return value.get_config()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if callable(value):
        raise TypeError(f"{value!r} is not a fastgd schedule: its config cannot be stored")
    return value


def _load(value: Any) -> Any:
    if isinstance(value, Mapping) and "name" in value:
        return from_config(value)
    if isinstance(value, list):
        return [_load(v) for v in value]
    return value


# ---- argument checks ---------------------------------------------------------------------

def _float(fn: str, name: str, value: Any, *, positive: bool = False) -> float:
    """A finite real number >= 0 (> 0 if positive), as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0 or (positive and value == 0):
        raise ValueError(f"{fn}: {name} must be a finite number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def _int(fn: str, name: str, value: Any, minimum: int) -> int:
    """An integer >= minimum, as a Python int."""
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {value!r}") from None
    if n < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {n}")
    return n


def _at_most(fn: str, name: str, value: float, high: float, *, strict: bool = False) -> float:
    if value > high or (strict and value == high):
        raise ValueError(f"{fn}: {name} must be {'<' if strict else '<='} {high}, got {value!r}")
    return value


def _choice(fn: str, name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def _power(base: float, exponent: float) -> float:
    """``base ** exponent``, ``inf`` where Python would raise OverflowError."""
    try:
        return base ** exponent
    except OverflowError:
        return math.inf


def _decay(lr: float, gamma: float, k: int) -> float:
    """``lr * gamma ** k`` (``gamma > 1`` grows to ``inf``, never raises)."""
    g = _power(gamma, k)
    return lr * g if lr != 0 else 0.0


# ---- schedules ---------------------------------------------------------------------------

def constant(lr: float) -> Schedule:
    r""":math:`\eta_t = \text{lr}` at every step."""
    lr = _float("constant", "lr", lr)
    return Schedule("constant", dict(lr=lr), lambda t: lr)


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""Decay by ``gamma`` every ``step_size`` steps (torch ``StepLR``).

    .. math:: \eta_t = \text{lr}\cdot\gamma^{\lfloor t / \text{step\_size}\rfloor}

    No end: the decay goes on for ever (to 0 for :math:`\gamma < 1`, to ``inf`` for
    :math:`\gamma > 1`).
    """
    lr = _float("step_decay", "lr", lr)
    step_size = _int("step_decay", "step_size", step_size, 1)
    gamma = _float("step_decay", "gamma", gamma)
    return Schedule("step_decay", dict(lr=lr, step_size=step_size, gamma=gamma),
                    lambda t: _decay(lr, gamma, t // step_size))


def multistep(lr: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    r"""Decay by ``gamma`` at each milestone (torch ``MultiStepLR``).

    .. math:: \eta_t = \text{lr}\cdot\gamma^{\#\{m \in \text{milestones} \,:\, m \le t\}}

    Milestones may come in any order; one given twice decays twice (as torch). After the last
    milestone the rate stays at :math:`\text{lr}\cdot\gamma^{\text{len(milestones)}}`.
    """
    lr = _float("multistep", "lr", lr)
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (Sequence, set, frozenset)):
        raise ValueError(f"multistep: milestones must be a list of integers >= 0, got {milestones!r}")
    marks = sorted(_int("multistep", f"milestones[{i}]", m, 0) for i, m in enumerate(milestones))
    gamma = _float("multistep", "gamma", gamma)
    return Schedule("multistep", dict(lr=lr, milestones=marks, gamma=gamma),
                    lambda t: _decay(lr, gamma, bisect_right(marks, t)))


def exponential(lr: float, gamma: float) -> Schedule:
    r"""Decay by ``gamma`` every step (torch ``ExponentialLR``): :math:`\eta_t = \text{lr}\cdot\gamma^t`.

    No end; :math:`\gamma > 1` (a learning-rate range test) grows to ``inf``, never raises.
    """
    lr = _float("exponential", "lr", lr)
    gamma = _float("exponential", "gamma", gamma)
    return Schedule("exponential", dict(lr=lr, gamma=gamma), lambda t: _decay(lr, gamma, t))


def cosine(lr: float, T_max: int, eta_min: float = 0.0) -> Schedule:
    r"""Cosine annealing from ``lr`` to ``eta_min`` over ``T_max`` steps (torch ``CosineAnnealingLR``).

    .. math:: \eta_t = \eta_{\min} + \tfrac12(\text{lr} - \eta_{\min})\,(1 + \cos(\pi t / T_{\max}))

    torch's closed form, for every step: past ``T_max`` the cosine goes on, back up to ``lr``
    at :math:`2T_{\max}` and so on with period :math:`2T_{\max}` (what torch's scheduler does
    too). For a single anneal that then stays at ``eta_min``, join it with a constant:
    ``join([cosine(lr, T), constant(eta_min)], [T])``.
    """
    lr = _float("cosine", "lr", lr)
    T_max = _int("cosine", "T_max", T_max, 1)
    eta_min = _float("cosine", "eta_min", eta_min)
    return Schedule("cosine", dict(lr=lr, T_max=T_max, eta_min=eta_min),
                    lambda t: eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2)


def cosine_restarts(lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> Schedule:
    r"""Cosine annealing with warm restarts, SGDR (torch ``CosineAnnealingWarmRestarts``).

    .. math:: \eta_t = \eta_{\min} + \tfrac12(\text{lr} - \eta_{\min})\,(1 + \cos(\pi T_{cur} / T_i))

    where cycle :math:`i = 0, 1, \dots` lasts :math:`T_i = T_0\,T_{mult}^i` steps and
    :math:`T_{cur}` counts the steps since its start: the rate is back at ``lr`` at steps
    :math:`0, T_0, T_0 + T_0 T_{mult}, \dots`. No end: it restarts for ever.
    """
    lr = _float("cosine_restarts", "lr", lr)
    T_0 = _int("cosine_restarts", "T_0", T_0, 1)
    T_mult = _int("cosine_restarts", "T_mult", T_mult, 1)
    eta_min = _float("cosine_restarts", "eta_min", eta_min)

    def fn(t: int) -> float:
        T_i = T_0
        if T_mult == 1:
            t %= T_0
        else:
            while t >= T_i:  # integers: exact at every restart (O(log t) cycles)
                t -= T_i
                T_i *= T_mult
        return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t / T_i)) / 2

    return Schedule("cosine_restarts", dict(lr=lr, T_0=T_0, T_mult=T_mult, eta_min=eta_min), fn)


def linear(lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5) -> Schedule:
    r"""Linear change of the factor from ``start_factor`` to ``end_factor`` (torch ``LinearLR``).

    .. math:: \eta_t = \text{lr}\,\bigl(s + (e - s)\,\min(t, T) / T\bigr)
        \quad (s, e = \text{start\_factor}, \text{end\_factor};\ T = \text{total\_iters})

    After ``total_iters`` steps the rate stays at ``lr * end_factor``. Any factors >= 0 are
    accepted (torch asks :math:`0 < s \le 1` and :math:`0 \le e \le 1` for its recursive
    form; the closed form needs neither), so ``start_factor=0`` warms up from zero.
    """
    lr = _float("linear", "lr", lr)
    s = _float("linear", "start_factor", start_factor)
    e = _float("linear", "end_factor", end_factor)
    T = _int("linear", "total_iters", total_iters, 1)
    return Schedule("linear", dict(lr=lr, start_factor=s, end_factor=e, total_iters=T),
                    lambda t: lr * (s + (e - s) * min(T, t) / T))


def polynomial(lr: float, total_iters: int = 5, power: float = 1.0) -> Schedule:
    r"""Polynomial decay to 0 over ``total_iters`` steps (torch ``PolynomialLR``).

    .. math:: \eta_t = \text{lr}\,(1 - \min(t, T) / T)^{p} \quad (T = \text{total\_iters},\ p = \text{power})

    From ``total_iters`` on the rate is 0 (for ``power > 0``).
    """
    lr = _float("polynomial", "lr", lr)
    T = _int("polynomial", "total_iters", total_iters, 1)
    power = _float("polynomial", "power", power)
    return Schedule("polynomial", dict(lr=lr, total_iters=T, power=power),
                    lambda t: lr * (1.0 - min(T, t) / T) ** power)


def cyclic(base_lr: float, max_lr: float, step_size_up: int = 2000, step_size_down: int | None = None,
           mode: str = "triangular", gamma: float = 1.0) -> Schedule:
    r"""Cyclical learning rate, Smith 2017 (torch ``CyclicLR``, its three modes).

    A triangle wave between ``base_lr`` and ``max_lr``: up in ``step_size_up`` steps, down in
    ``step_size_down`` (default: ``step_size_up``). With :math:`L` the cycle length,
    :math:`c = \lfloor 1 + t/L \rfloor` the cycle (from 1) and :math:`x \in [0, 1)` the position
    in it, :math:`h(x)` rising from 0 to 1 on :math:`x \le u = \text{up}/L`, then falling:

    .. math:: \eta_t = \text{base\_lr} + (\text{max\_lr} - \text{base\_lr})\, h(x)\, s

    with the amplitude scale :math:`s = 1` (``"triangular"``), :math:`s = 2^{1-c}` (halved each
    cycle, ``"triangular2"``) or :math:`s = \gamma^t` (``"exp_range"``, :math:`0 < \gamma \le 1`).
    No end: it cycles for ever.
    """
    base_lr = _float("cyclic", "base_lr", base_lr)
    max_lr = _float("cyclic", "max_lr", max_lr)
    up = _int("cyclic", "step_size_up", step_size_up, 1)
    down = up if step_size_down is None else _int("cyclic", "step_size_down", step_size_down, 1)
    mode = _choice("cyclic", "mode", mode, ("triangular", "triangular2", "exp_range"))
    gamma = _at_most("cyclic", "gamma", _float("cyclic", "gamma", gamma, positive=True), 1.0)
    total = float(up + down)
    ratio = up / total

    def fn(t: int) -> float:  # torch's arithmetic, operation for operation
        cycle = math.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        if mode == "triangular":
            amplitude = 1.0
        elif mode == "triangular2":
            amplitude = 1 / _power(2.0, cycle - 1)
        else:
            amplitude = gamma ** t
        return base_lr + (max_lr - base_lr) * scale * amplitude

    return Schedule("cyclic", dict(base_lr=base_lr, max_lr=max_lr, step_size_up=up, step_size_down=step_size_down,
                                   mode=mode, gamma=gamma), fn)


def one_cycle(max_lr: float, total_steps: int, pct_start: float = 0.3, anneal_strategy: str = "cos",
              div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False) -> Schedule:
    r"""The 1cycle policy, Smith & Topin 2017 (torch ``OneCycleLR``).

    From ``initial = max_lr / div_factor`` up to ``max_lr`` in the first ``pct_start`` of
    ``total_steps``, then down to ``min = initial / final_div_factor`` at step
    ``total_steps - 1``; with ``three_phase``, back down to ``initial`` in as many steps as
    the way up, then to ``min``. Each phase anneals by ``anneal_strategy``, from :math:`a` to
    :math:`b` as :math:`p` goes from 0 to 1:

    .. math:: \text{cos}: b + \tfrac12(a - b)(1 + \cos \pi p) \qquad \text{linear}: a + (b - a)\,p

    Phase boundaries are torch's (``pct_start * total_steps - 1``, ...). A phase of length 0
    is at its end value. Past the end, from ``total_steps - 1`` on, the rate stays at ``min``
    (torch extrapolates one step further, then raises).
    """
    fn_name = "one_cycle"
    max_lr = _float(fn_name, "max_lr", max_lr)
    total = _int(fn_name, "total_steps", total_steps, 1)
    pct_start = _at_most(fn_name, "pct_start", _float(fn_name, "pct_start", pct_start), 1.0)
    anneal_strategy = _choice(fn_name, "anneal_strategy", anneal_strategy, ("cos", "linear"))
    div_factor = _float(fn_name, "div_factor", div_factor, positive=True)
    final_div_factor = _float(fn_name, "final_div_factor", final_div_factor, positive=True)
    if not isinstance(three_phase, bool):
        raise ValueError(f"{fn_name}: three_phase must be True or False, got {three_phase!r}")
    initial = max_lr / div_factor
    low = initial / final_div_factor
    up_end = float(pct_start * total) - 1
    if three_phase:
        phases = [(up_end, initial, max_lr), (float(2 * pct_start * total) - 2, max_lr, initial),
                  (total - 1, initial, low)]
    else:
        phases = [(up_end, initial, max_lr), (total - 1, max_lr, low)]

    def anneal(a: float, b: float, p: float) -> float:
        if anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * p) + 1)
        return (b - a) * p + a

    def fn(t: int) -> float:
        t = min(t, total - 1)
        start = 0.0
        for i, (end, a, b) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                return anneal(a, b, (t - start) / (end - start) if end != start else 1.0)
            start = end
        raise AssertionError("unreachable")

    return Schedule(fn_name, dict(max_lr=max_lr, total_steps=total, pct_start=pct_start,
                                  anneal_strategy=anneal_strategy, div_factor=div_factor,
                                  final_div_factor=final_div_factor, three_phase=three_phase), fn)


def inverse_time(lr: float, power_t: float = 0.5) -> Schedule:
    r"""Inverse scaling (scikit-learn's ``learning_rate="invscaling"``).

    .. math:: \eta_t = \text{lr} / (t + 1)^{\text{power\_t}}

    Step :math:`t` (from 0) is scikit-learn's :math:`t + 1` (it counts from 1), so both start
    at ``lr``. No end: it decays for ever.
    """
    lr = _float("inverse_time", "lr", lr)
    power_t = _float("inverse_time", "power_t", power_t)
    return Schedule("inverse_time", dict(lr=lr, power_t=power_t), lambda t: lr / _power(t + 1, power_t))


def warmup(schedule: Callable[[int], float], warmup_steps: int, start_factor: float = 0.0) -> Schedule:
    r"""A linear warm-up, then ``schedule`` from its own step 0 (as optax's warm-up schedules).

    .. math::

        \eta_t = \begin{cases}
            \eta^s_0 \,\bigl(f + (1 - f)\, t / W\bigr) & t < W \\
            \eta^s_{t - W} & t \ge W
        \end{cases}
        \quad (\eta^s = \text{schedule},\ W = \text{warmup\_steps},\ f = \text{start\_factor})

    The ramp reaches ``schedule(0)`` at step ``W``, where ``schedule`` starts; ``W = 0`` is
    ``schedule`` itself. It equals torch's ``SequentialLR([LinearLR(opt, f, 1.0, W), sched],
    milestones=[W])``.
    """
    if not callable(schedule):
        raise TypeError(f"warmup: schedule must be callable, got {type(schedule).__name__}")
    W = _int("warmup", "warmup_steps", warmup_steps, 0)
    f = _at_most("warmup", "start_factor", _float("warmup", "start_factor", start_factor), 1.0)

    def fn(t: int) -> float:
        if t < W:
            return schedule(0) * (f + (1.0 - f) * t / W)
        return schedule(t - W)

    return Schedule("warmup", dict(schedule=schedule, warmup_steps=W, start_factor=f), fn)


def join(schedules: Sequence[Callable[[int], float]], boundaries: Sequence[int]) -> Schedule:
    r"""One schedule after another (optax ``join_schedules``, torch ``SequentialLR``).

    With boundaries :math:`0 < b_1 < \dots < b_{n-1}` and :math:`b_0 = 0`, schedule :math:`i`
    runs on :math:`b_i \le t < b_{i+1}`, from its own step 0:

    .. math:: \eta_t = \eta^{(i)}_{t - b_i}

    The last schedule runs for ever (past its own end as it documents).
    """
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence) or not schedules:
        raise ValueError(f"join: schedules must be a non-empty list of schedules, got {schedules!r}")
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"join: schedules[{i}] must be callable, got {type(s).__name__}")
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Sequence):
        raise ValueError(f"join: boundaries must be a list of integers, got {boundaries!r}")
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join: {len(schedules)} schedules need {len(schedules) - 1} boundaries, "
                         f"got {len(boundaries)}")
    bounds = [_int("join", f"boundaries[{i}]", b, 1) for i, b in enumerate(boundaries)]
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise ValueError(f"join: boundaries must be strictly increasing, got {bounds}")
    parts = list(schedules)

    def fn(t: int) -> float:
        i = bisect_right(bounds, t)
        return parts[i](t - bounds[i - 1] if i else t)

    return Schedule("join", dict(schedules=parts, boundaries=bounds), fn)


#: Every schedule function by name: the one list of schedules. ``from_config``, this module's
#: ``__all__`` and the command line's ``--schedule`` read it; a new schedule is its function
#: above and its entry here.
SCHEDULES: dict[str, Callable[..., Schedule]] = {
    f.__name__: f for f in (constant, step_decay, multistep, exponential, cosine, cosine_restarts, linear,
                            polynomial, cyclic, one_cycle, inverse_time, warmup, join)
}

__all__ = ["Schedule", "SCHEDULES", "from_config", *SCHEDULES, "ReduceLROnPlateau"]


# ---- metric-driven -----------------------------------------------------------------------

class ReduceLROnPlateau:
    r"""Reduce the learning rate when a metric stops improving (torch ``ReduceLROnPlateau``).

    ``lr = controller.step(metric)`` after each evaluation. The metric improves when it beats
    the best so far by the threshold: :math:`m < \text{best}\,(1 - \tau)` (``"rel"``) or
    :math:`m < \text{best} - \tau` (``"abs"``) in ``"min"`` mode, mirrored in ``"max"`` mode.
    After more than ``patience`` evaluations without improvement:

    .. math:: \text{lr} \leftarrow \max(\text{lr}\cdot\text{factor},\ \text{min\_lr})

    unless that changes it by no more than ``eps = 1e-8`` (torch's rule), then ``cooldown``
    evaluations are ignored. The rate never goes below ``min_lr``.

    Attributes: ``lr`` (current rate), ``best``, ``num_bad_epochs``, ``cooldown_counter``,
    ``last_epoch`` (evaluations so far), all in ``state_dict()``.
    """

    eps = 1e-8
    _COUNTERS = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(self, lr: float, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        name = "ReduceLROnPlateau"
        self.lr = _float(name, "lr", lr)
        self.mode = _choice(name, "mode", mode, ("min", "max"))
        self.factor = _at_most(name, "factor", _float(name, "factor", factor), 1.0, strict=True)
        self.patience = _int(name, "patience", patience, 0)
        self.threshold = _float(name, "threshold", threshold)
        self.threshold_mode = _choice(name, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = _int(name, "cooldown", cooldown, 0)
        self.min_lr = _float(name, "min_lr", min_lr)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def _is_better(self, a: float) -> bool:
        best, tau = self.best, self.threshold
        if self.mode == "min":
            return a < best * (1.0 - tau) if self.threshold_mode == "rel" else a < best - tau
        return a > best * (tau + 1.0) if self.threshold_mode == "rel" else a > best + tau

    def step(self, metric: float) -> float:
        """Record one evaluation of the metric; return the learning rate to use from now on."""
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad evaluations in cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.lr

    def _settings(self) -> dict[str, Any]:
        return dict(lr=self.lr, mode=self.mode, factor=self.factor, patience=self.patience,
                    threshold=self.threshold, threshold_mode=self.threshold_mode, cooldown=self.cooldown,
                    min_lr=self.min_lr)

    def state_dict(self) -> dict[str, Any]:
        """Settings (with the current ``lr``) and counters, as plain Python numbers and strings."""
        return {**self._settings(), **{k: getattr(self, k) for k in self._COUNTERS}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s settings and counters (checked; nothing changes on error)."""
        state = dict(state_dict)
        missing = [k for k in self._COUNTERS if k not in state]
        if missing:
            raise ValueError(f"ReduceLROnPlateau.load_state_dict: missing {missing}")
        counters = {k: state.pop(k) for k in self._COUNTERS}
        fresh = type(self)(**state)
        fresh.best = float(counters["best"])
        for k in ("num_bad_epochs", "cooldown_counter", "last_epoch"):
            setattr(fresh, k, _int("ReduceLROnPlateau", k, counters[k], 0))
        self.__dict__.update(fresh.__dict__)

    def __repr__(self) -> str:
        return f"ReduceLROnPlateau({', '.join(f'{k}={v!r}' for k, v in self._settings().items())})"
