"""The stateful optimizer: parameter groups and state over one C++ step.

An update rule is an entry of the rule table (``cpp/include/fastgd/rules.hpp``), which
``fastgd._core.rule_specs()`` describes: its options with their defaults and checks, its state
arrays in order with the option that needs each, and its group scalars. A rule's class
subclasses :class:`Optimizer` with ``rule="<name>"``; it keeps the docstring that states its
update and torch's ``__init__`` signature, and hands its options on. Everything else comes from
the table: the state arrays, their creation and order, the option checks.

``step()`` is one call into C++ (``fastgd._core.step``) with the optimizer's step plan, which
reads the groups' options, checks the arrays, clips, applies the non-finite policy, runs the
kernels and counts the steps. Python keeps the allocation of the state arrays and turns a
non-finite gradient under ``nonfinite="error"`` into its error.
"""

from __future__ import annotations

import copy
import operator
import os
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import numpy as np

from fastgd import _core
from fastgd.optim import _flat
from fastgd.optim._state import OptimizerState, check_state_array

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Optimizer", "StepOptions", "RULE_SPECS", "rule_classes", "clip_coefficient"]

# Every rule of the table by name, in the table's order (see fastgd._core.rule_specs).
RULE_SPECS: dict[str, dict[str, Any]] = {spec["name"]: spec for spec in _core.rule_specs()}

# Options a schedule may drive: a callable of the step (counted from 0) in place of a float,
# e.g. fastgd.schedules.cosine(0.1, T_max=1000). The k-th step() call uses schedule(k).
SCHEDULABLE = tuple(dict.fromkeys(o["name"] for spec in RULE_SPECS.values() for o in spec["options"]
                                  if o["schedulable"]))


class StepOptions(TypedDict, total=False):
    """The options of a step that belong to the optimizer as a whole, not to a parameter group
    (every rule takes them; see :class:`Optimizer`). Clipping is by the global norm over every
    gradient of every group, as ``torch.nn.utils.clip_grad_norm_``."""

    clip_norm: float | None
    clip_value: float | None
    clip_norm_type: float
    nonfinite: str


STEP_OPTIONS = tuple(StepOptions.__annotations__)

_RULE_CLASSES: list[type[Optimizer]] = []

# Every optimizer alive, for _renew_locks_after_fork.
_LIVE: weakref.WeakSet[Optimizer] = weakref.WeakSet()


def rule_classes() -> list[type[Optimizer]]:
    """The classes of fastgd's update rules (those declared with ``rule=``), in the order of
    the rule table; classes of one rule (Adam, AdamW) in the order they were declared."""
    order = list(RULE_SPECS)
    return sorted(_RULE_CLASSES, key=lambda cls: order.index(cls.rule))


def resolve_options(group: Mapping[str, Any], k: int) -> Mapping[str, Any]:
    """The group's options at its k-th step (from 0), with schedules evaluated."""
    if not any(callable(group.get(name)) for name in SCHEDULABLE):
        return group
    resolved = dict(group)
    for name in SCHEDULABLE:
        value = resolved.get(name)
        if callable(value):
            resolved[name] = float(value(k))
    return resolved


def _as_param(p: Any, where: str) -> np.ndarray:
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{where}: expected a numpy.ndarray, got {type(p).__name__}")
    if p.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where}: dtype {p.dtype} is not supported; use float32 or float64")
    if not p.flags.c_contiguous:
        raise ValueError(f"{where}: array is not C-contiguous (fastgd updates in place, never a copy)")
    if not p.flags.writeable:
        raise ValueError(f"{where}: array is read-only; parameters are updated in place")
    return p


def _describe_states(spec: Mapping[str, Any]) -> str:
    """The docstring line on a rule's state, from the rule table."""
    conditions = {"true": "{}", "nonzero": "{} != 0", "positive": "{} > 0"}
    names = [f"``{s['name']}``" + ("" if s["when"] is None else f" ({conditions[s['when'][1]].format(s['when'][0])})")
             for s in spec["states"]]
    line = "State per parameter: " + ", ".join(names)
    if spec["group_scalars"]:
        line += "; per group: " + ", ".join(f"``{name}`` (float64)" for name in spec["group_scalars"])
    return line + "."


class Optimizer:
    """Base class: ``param_groups``, ``state``, ``step(grads)``, ``state_dict()``.

    ``params`` is a list of arrays, or a list of dicts (parameter groups) each with a
    ``"params"`` list and any options that override the defaults for that group.

    Every rule also takes the step options (:class:`StepOptions`), which belong to the
    optimizer as a whole: ``clip_norm`` (with ``clip_norm_type``, default 2) or ``clip_value``
    clip the gradients inside the step (the global norm costs one extra read of the gradients,
    and the gradients are never written); ``last_grad_norm`` then holds the norm before
    clipping. ``nonfinite`` says what a step does when a gradient holds a NaN or an Inf:

    * ``"ignore"`` (default): nothing special; the NaN or Inf flows into the parameters and
      state, as in torch.optim.
    * ``"skip"``: the step changes nothing (no parameter, no state array, not the step
      count, so schedules do not advance either: as torch.amp.GradScaler's skipped steps)
      and ``skipped_steps`` goes up by one.
    * ``"error"``: raises :class:`FloatingPointError` naming the first such gradient,
      having written nothing.

    The check is one read-only pass over the gradients (their inf-norm, which is NaN or Inf
    exactly when a gradient is); with ``clip_norm`` it is the clipping norm itself, so it is
    free, and a norm that overflows to Inf counts as nonfinite too. The step options may be
    changed between steps, as may the groups' options.

    Every step checks the options it is about to use (a schedule's value, an edit of
    ``param_groups``) as the constructor does, against the rule table's checks: a NaN, an
    infinity or a value out of range raises :class:`ValueError` naming the option, the group
    and the value, having written nothing. An option takes any real number (``float``,
    ``int``, ``bool``, NumPy scalars and 0-d arrays, ``fractions.Fraction``). No two arrays
    the step writes (parameters, state arrays) may share memory: ``SGD([a[:10], a[5:15]])``
    or ``SGD([W, W[0]])`` raises :class:`ValueError` naming both, while arrays that only touch
    (``a[:10]``, ``a[10:]``) are fine. Gradients are only read, so they are not checked.

    An optimizer may be shared between threads: steps serialize. Each step holds
    :attr:`step_lock` (the kernels run without the GIL, so other threads go on with other
    work), and so do :meth:`state_dict`, :meth:`load_state_dict`, :meth:`add_param_group` and
    changes through :attr:`state`: N steps from any threads are N steps, each from the state
    the one before left, and a ``state_dict()`` is never taken halfway through a step.

    ``state`` is the truth: what ``opt.state`` and ``state_dict()`` show is exactly what the
    next step uses, and assignments to it are honoured (see :attr:`state`).

    A subclass with its own per-group update overrides :meth:`_run`; the step then calls it
    for every group in the place of the rule's kernel (clipping, the non-finite policy and the
    step counts stay the step's).
    """

    rule: ClassVar[str]  # the rule's name in the rule table

    def __init_subclass__(cls, rule: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if rule is None:
            return
        if rule not in RULE_SPECS:
            raise ValueError(f"{cls.__name__}: no rule {rule!r} in the rule table ({', '.join(RULE_SPECS)})")
        cls.rule = rule
        _RULE_CLASSES.append(cls)
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    " + _describe_states(RULE_SPECS[rule]) + \
            f"\n    Step options ({', '.join(STEP_OPTIONS)}): see Optimizer.\n"

    def __init__(self, params: Any, options: Mapping[str, Any], **step_options: Unpack[StepOptions]) -> None:
        """``options``: the rule's options by name (a rule's ``__init__`` passes its
        ``locals()``: its signature is the one list of them); other names are ignored."""
        rule = getattr(type(self), "rule", None)
        if rule is None:
            raise TypeError(f"{type(self).__name__} names no update rule: subclass a rule's class, or Optimizer "
                            "with rule='<name>'")
        self._spec = RULE_SPECS[rule]
        names = [o["name"] for o in self._spec["options"]]
        missing = [name for name in names if name not in options]
        if missing:
            raise TypeError(f"{type(self).__name__} does not pass the option(s) {missing} of rule {rule!r}")
        unknown = set(step_options) - set(STEP_OPTIONS)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        self._control = _core.StepControl(**step_options)
        pairs = {o["name"] for o in self._spec["options"] if o["type"] == "pair"}
        # A pair option that is no pair is kept as given, for the check to name.
        self.defaults = {k: tuple(v) if k in pairs and isinstance(v, Iterable) else v
                         for k, v in options.items() if k in names}
        self.param_groups: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        _LIVE.add(self)
        self._state = OptimizerState(self, type(self).__name__, [s["name"] for s in self._spec["states"]])
        self._group_state: list[dict[str, Any]] = []
        self._params: list[np.ndarray] = []  # all parameters, in group order
        self._plan: _core.StepPlan | None = None
        if isinstance(params, np.ndarray):
            params = [params]
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        if isinstance(params[0], Mapping):
            for g in params:
                self.add_param_group(g)
        else:
            self.add_param_group({"params": params})

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])

    def __getstate__(self) -> dict[str, Any]:
        # For pickle and copy.deepcopy: the step plan is made again by the next step, and a
        # lock (which does not pickle) is made anew.
        state = {**self.__dict__, "_plan": None}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        _LIVE.add(self)

    # The step options and what steps leave are kept in the optimizer's StepControl, which
    # every step reads (a setting may change between steps; a bad one is reported by the step).

    @property
    def clip_norm(self) -> float | None:
        """Clip by the global norm to this (None: not by norm)."""
        return self._control.clip_norm

    @clip_norm.setter
    def clip_norm(self, value: float | None) -> None:
        with self._lock:
            self._control.clip_norm = value

    @property
    def clip_value(self) -> float | None:
        """Clamp every gradient element to +-this (None: no clamp)."""
        return self._control.clip_value

    @clip_value.setter
    def clip_value(self, value: float | None) -> None:
        with self._lock:
            self._control.clip_value = value

    @property
    def clip_norm_type(self) -> float:
        """The p of clip_norm's p-norm (1, 2, inf or any p > 0)."""
        return self._control.clip_norm_type

    @clip_norm_type.setter
    def clip_norm_type(self, value: float) -> None:
        with self._lock:
            self._control.clip_norm_type = value

    @property
    def nonfinite(self) -> str:
        """What a step does with a NaN or Inf gradient: 'ignore', 'skip' or 'error'."""
        return self._control.nonfinite

    @nonfinite.setter
    def nonfinite(self, value: str) -> None:
        with self._lock:
            self._control.nonfinite = value

    @property
    def skipped_steps(self) -> int:
        """Steps left out by nonfinite='skip'."""
        return self._control.skipped_steps

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        with self._lock:
            self._control.skipped_steps = value

    @property
    def last_grad_norm(self) -> float | None:
        """With clip_norm: the last step's gradient norm, before clipping."""
        return self._control.last_grad_norm

    @last_grad_norm.setter
    def last_grad_norm(self, value: float | None) -> None:
        with self._lock:
            self._control.last_grad_norm = value

    # -- public seams for wrappers and training loops ------------------------------------

    @property
    def params(self) -> list[np.ndarray]:
        """Every parameter array, in group order (the order ``step`` takes gradients in)."""
        return list(self._params)

    @property
    def step_count(self) -> int:
        """Steps taken so far by the first parameter group (skipped steps do not count)."""
        return int(self._group_state[0]["step"])

    def get_last_lr(self) -> list[float]:
        """The learning rate of the last step, one per parameter group (as torch's
        ``scheduler.get_last_lr()``): a schedule evaluated at the group's last step, a float
        as it is. Before the first step, the rate the first step will use."""
        with self._lock:
            return [float(self.group_options(i, step=max(int(gs["step"]) - 1, 0))["lr"])
                    for i, gs in enumerate(self._group_state)]

    def group_options(self, group: int = 0, *, step: int | None = None) -> dict[str, Any]:
        """Parameter group ``group``'s options (without ``params``), every schedule evaluated
        at the group's ``step`` (counted from 0); by default at the next step: the values the
        next :meth:`step` uses. E.g. ``opt.group_options()["weight_decay"]``, or
        ``group_options(step=opt.step_count - 1)`` for those of the last step."""
        with self._lock:
            if not isinstance(group, int) or not -len(self.param_groups) <= group < len(self.param_groups):
                raise IndexError(f"no parameter group {group!r}: the optimizer has {len(self.param_groups)}")
            k = int(self._group_state[group]["step"]) if step is None else operator.index(step)
            if k < 0:
                raise ValueError(f"step must be >= 0, got {k}")
            options = resolve_options(self.param_groups[group], k)
            return {name: value for name, value in options.items() if name != "params"}

    @property
    def grad_prescale(self) -> float:
        """A factor every gradient is read with before anything else (the clipping norm and
        ``last_grad_norm`` included), fused into the step's read of the gradients. 1 unless a
        wrapper sets it: :class:`fastgd.distributed.DistributedOptimizer` sets 1/world_size,
        so that gradient buffers holding the sum over the ranks are stepped on as their mean."""
        return float(self._control.grad_prescale)

    @grad_prescale.setter
    def grad_prescale(self, value: float) -> None:
        with self._lock:
            self._control.grad_prescale = float(value)
            self.invalidate_plan()

    @property
    def step_plan(self) -> _core.StepPlan | None:
        """What the step runs on (``fastgd._core.step(plan, grads)``), or None before the
        first step. Loops that step the optimizer from C++ (the linear models' fused epoch)
        pass it on, holding :attr:`step_lock`; it is made again after the parameter groups
        change."""
        return self._plan

    def prepared_step_plan(self) -> _core.StepPlan:
        """:attr:`step_plan`, made now if there is none yet, as the next step would make it
        (nothing else changes: the states are still fetched, or created, by the first step).
        A loop that steps from C++ from the first step of a run on (a resumed fit's lazy
        sparse steps) takes it so. Holds :attr:`step_lock`."""
        with self._lock:
            if self._plan is None:
                self._plan = _core.StepPlan(self.rule, self._control, self.param_groups, self._group_state,
                                            self._state_lists, self._own_update())
            return self._plan

    def invalidate_plan(self) -> None:
        """Forget the step plan: the next step makes it again (after a change of the
        parameter groups' structure or of :attr:`grad_prescale`)."""
        with self._lock:
            self._plan = None

    @property
    def step_lock(self) -> threading.RLock:
        """The lock every step holds, as do :meth:`state_dict`, :meth:`load_state_dict`,
        :meth:`add_param_group` and every change made through :attr:`state` or the step
        options: an optimizer may be shared between threads, and its steps serialize. A loop
        that steps through :attr:`step_plan` itself holds it too (reentrant: a thread that
        holds it may step)."""
        return self._lock

    @property
    def state(self) -> OptimizerState:
        """Every parameter's state arrays by parameter index (in group order), exactly as
        the next step uses them: an entry is empty until a step makes it. Assignments are
        honoured, checked first (the rule's state names, the parameter's shape and dtype):
        ``opt.state[i][name] = array`` copies ``array`` into the state the step uses;
        ``opt.state[i] = {}`` (or ``del opt.state[i]``) empties parameter i's state, which the
        next step makes afresh, as a new optimizer's first step does (the step count belongs
        to the group and goes on; see :meth:`state_dict`)."""
        return self._state

    @state.setter
    def state(self, states: Mapping[int, Mapping[str, Any]]) -> None:
        self._state.install(self._state.checked_all(states))

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group: ``{"params": [...], **options}``; missing options take the defaults."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("a parameter group is a dict with a 'params' list")
        ps = param_group["params"]
        ps = [ps] if isinstance(ps, np.ndarray) else list(ps)
        unknown = set(param_group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"unknown option(s) for {type(self).__name__}: {sorted(unknown)}")
        group = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._validate_group(group, len(self.param_groups))
        with self._lock:
            start = len(self._params)
            for i, p in enumerate(ps):
                _as_param(p, f"params[{start + i}]")
            # As the step plan checks them, but said here, where they are given.
            _core.check_disjoint([*self._params, *ps], "params")
            group["params"] = ps
            self.invalidate_plan()
            self.param_groups.append(group)
            self._group_state.append({"step": 0, **self._spec["group_scalars"]})
            self._params.extend(ps)
            self._state.add(ps)

    def _validate_group(self, group: Mapping[str, Any], index: int) -> None:
        """Every option of the group (``param_groups[index]``) against its check in the rule
        table, as every step checks them; schedules are called with step 0."""
        _core.check_group(self.rule, dict(group), index)

    # -- stepping -----------------------------------------------------------------------

    def step(self, grads: Sequence[np.ndarray] | np.ndarray) -> None:
        """Update every parameter in place from ``grads`` (aligned with the parameters, in
        group order; one array is fine for one parameter). Nothing is written unless every
        array passes its checks. Holds :attr:`step_lock`: steps from several threads serialize."""
        lock = self._lock
        lock.acquire()  # rather than `with`, which costs twice as much on a tiny step
        try:
            plan = self._plan
            if plan is None:
                plan = self.prepared_step_plan()
            bad = _step(plan, grads)
        finally:
            lock.release()
        if bad is not None:
            raise FloatingPointError(self._nonfinite_message(bad))

    def _own_update(self) -> Any:
        # A subclass's _run stands in for the rule's kernel; the base's is the kernel itself.
        return None if type(self)._run is Optimizer._run else self._run

    def _run(self, group: Mapping[str, Any], params: list[np.ndarray], grads: list[np.ndarray],
             states: dict[str, list[np.ndarray]], step: int, gstate: dict[str, Any], grad_scale: float,
             clip_value: float, created: set[str]) -> None:
        """One group's update: the rule's kernel over ``params`` from ``grads`` (read as
        ``clamp(grad_scale * g, -clip_value, clip_value)``), with the group's options at this
        step (schedules evaluated), its state lists by name (``created``: those new this
        step), ``step`` (its count after this step) and ``gstate`` (its scalars, advanced in
        place). A subclass may override it; the step calls it for every group."""
        _core.run_group(self.rule, dict(group), params, grads, states, step, gstate, grad_scale, clip_value, created)

    def _group_slices(self) -> list[tuple[int, int]]:
        out, start = [], 0
        for g in self.param_groups:
            out.append((start, start + len(g["params"])))
            start += len(g["params"])
        return out

    def _state_lists(self, gi: int, wanted: list[tuple[str, float]]) -> list[tuple[list[np.ndarray], list[bool]]]:
        """For the step: group gi's lists of the states named (each with its starting value),
        created where missing, and for each parameter whether its array was created."""
        first, end = self._group_slices()[gi]
        state = self._state
        out = []
        for name, initial in wanted:
            created = [name not in state.arrays(i) for i in range(first, end)]
            state.allocate(name, initial, [i for i, new in zip(range(first, end), created) if new])
            out.append(([state.arrays(i)[name] for i in range(first, end)], created))
        return out

    def _nonfinite_message(self, index: int) -> str:
        how = "nothing was written (nonfinite='error'; 'skip' leaves such steps out)"
        for gi, (a, b) in enumerate(self._group_slices()):
            if a <= index < b:
                return f"gradient {index} (parameter group {gi}) holds a NaN or Inf; {how}"
        return f"the gradient norm is not finite (it overflows); {how}"

    # -- checkpoints -------------------------------------------------------------------

    def state_dict(self, flat: bool = False) -> dict[str, Any]:
        """A deep copy of everything a resumed run needs: per-parameter state arrays (keyed by
        parameter index), the groups' options, each group's step count (int64), the optimizer-wide
        options (clipping, ``nonfinite``) and ``skipped_steps``. Taken between two steps
        (it holds :attr:`step_lock`).

        With ``flat=True``, the same as a flat dict of NumPy arrays, for ``np.savez``: one
        entry of JSON text (class, options, schedules by their ``get_config()``, step counts)
        and one ``"state.<index>.<name>"`` entry per state array; ``np.load(path)`` reads it
        back without ``allow_pickle`` and :meth:`load_state_dict` takes it (or use
        :func:`fastgd.save_state`). A callable ``lr`` that is not a :mod:`fastgd.schedules`
        schedule has no flat form (``TypeError``)."""
        if flat:
            return _flat.flatten(type(self).__name__, self.rule, self.state_dict())
        with self._lock:
            groups = []
            for (a, b), g in zip(self._group_slices(), self.param_groups):
                d = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
                d["params"] = list(range(a, b))
                groups.append(d)
            return {
                "state": self._state.snapshot(),
                "param_groups": groups,
                "group_state": [{k: (np.int64(v) if k == "step" else float(v)) for k, v in gs.items()}
                                for gs in self._group_state],
                "global": {k: getattr(self, k) for k in STEP_OPTIONS},
                "skipped_steps": self.skipped_steps,
            }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (nested or ``flat``; also what ``np.load`` reads of a
        flat one). Checked whole before anything changes; taken between two steps (it holds
        :attr:`step_lock`). A mapping that no fastgd optimizer wrote (``torch.optim``'s
        ``state_dict()``, say) is a ``ValueError`` saying it is not a fastgd state dict."""
        if isinstance(state_dict, Mapping) and _flat.is_flat(state_dict):
            meta, state_dict = _flat.unflatten(state_dict)
            if meta.get("rule") != self.rule:
                raise ValueError(f"the state dict is of a {meta.get('optimizer')!r} (rule {meta.get('rule')!r}), "
                                 f"this optimizer is a {type(self).__name__} (rule {self.rule!r})")
        _flat.check_nested(state_dict)
        with self._lock:
            self._load_state_dict(state_dict)

    def _load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if "nonfinite" in state_dict.get("global", {}):
            _core.StepControl.check_nonfinite(state_dict["global"]["nonfinite"])
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"parameter group {i}: state_dict has {len(saved['params'])} parameters, "
                                 f"the optimizer has {len(mine['params'])}")
        new_state: dict[int, dict[str, np.ndarray]] = {i: {} for i in range(len(self._params))}
        order = [i for g in groups for i in g["params"]]
        for mine_idx, saved_idx in enumerate(order):
            p = self._params[mine_idx]
            for name, arr in state_dict["state"].get(saved_idx, {}).items():
                new_state[mine_idx][name] = check_state_array(f"state[{saved_idx}][{name!r}]", arr, p, mine_idx)
        arrays = self._state.checked_all(new_state)
        new_groups = []
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            g = {**mine, **{k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}}
            self._validate_group(g, i)
            new_groups.append(g)
        group_state = [{"step": int(gs["step"]), **{k: float(v) for k, v in gs.items() if k != "step"}}
                       for gs in state_dict["group_state"]]
        self._state.install(arrays)
        self.param_groups, self._group_state = new_groups, group_state
        self.invalidate_plan()
        for k, v in state_dict.get("global", {}).items():
            if k in STEP_OPTIONS:
                setattr(self, k, v)
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))

_step = _core.step


def _renew_locks_after_fork() -> None:
    # In a child process just forked, every optimizer's step lock is made anew, as unpickling
    # makes it: the parent's may be held by a thread that the child does not have (the logging
    # module renews its handlers' locks alike).
    for opt in list(_LIVE):
        opt.__setstate__(opt.__getstate__())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks_after_fork)


def clip_coefficient(max_norm: float, total_norm: float) -> float:
    """``min(1, max_norm / (total_norm + 1e-6))``, ``torch.nn.utils.clip_grad_norm_``'s factor."""
    return min(1.0, max_norm / (total_norm + 1e-6))
