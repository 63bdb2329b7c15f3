"""The stateful optimizer: parameter groups and state over one kernel call per group.

Every rule subclasses :class:`Optimizer` and says three things: its defaults, which state
arrays it keeps for a group's current options, and which ``fastgd._core`` kernel runs a
group. ``step()`` only gathers lists and calls that kernel; all arithmetic is in C++.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastgd import _core

__all__ = ["Optimizer"]

# Options that belong to the optimizer as a whole, not to a parameter group: clipping is by
# the global norm over every gradient of every group, as torch.nn.utils.clip_grad_norm_.
_GLOBAL_OPTIONS = ("clip_norm", "clip_value", "clip_norm_type", "nonfinite")

# What a step does when a gradient holds a NaN or an Inf (Optimizer's nonfinite option).
NONFINITE = ("ignore", "skip", "error")

# Options a schedule may drive: a callable of the step (counted from 0) in place of a float,
# e.g. fastgd.schedules.cosine(0.1, T_max=1000). The k-th step() call uses schedule(k).
SCHEDULABLE = ("lr", "weight_decay", "momentum")


def resolve_options(group: Mapping[str, Any], k: int) -> Mapping[str, Any]:
    """The group's options at its k-th step (from 0), with schedules evaluated."""
    # Spelled out (not any() over SCHEDULABLE): this runs on every step of every group.
    if not (callable(group.get("lr")) or callable(group.get("weight_decay")) or callable(group.get("momentum"))):
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


class Optimizer:
    """Base class: ``param_groups``, ``state``, ``step(grads)``, ``state_dict()``.

    ``params`` is a list of arrays, or a list of dicts (parameter groups) each with a
    ``"params"`` list and any options that override the defaults for that group.
    ``clip_norm`` (with ``clip_norm_type``) and ``clip_value`` clip the gradients inside the
    step: the global norm costs one extra read of the gradients and the gradients are never
    written.

    ``nonfinite`` says what a step does when a gradient holds a NaN or an Inf:

    * ``"ignore"`` (default): nothing special; the NaN or Inf flows into the parameters and
      state, as in torch.optim.
    * ``"skip"``: the step changes nothing (no parameter, no state array, not the step
      count, so schedules do not advance either: as torch.amp.GradScaler's skipped steps)
      and ``skipped_steps`` goes up by one.
    * ``"error"``: raises :class:`FloatingPointError` naming the first such gradient,
      having written nothing.

    The check is one read-only pass over the gradients (their inf-norm, which is NaN or Inf
    exactly when a gradient is); with ``clip_norm`` it is the clipping norm itself, so it is
    free, and a norm that overflows to Inf counts as nonfinite too.
    """

    # Per rule: {state name: initial value}, for the options of one group.
    def _state_spec(self, group: Mapping[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    # Per rule: one kernel call for one group. `gstate` holds the group's scalar state
    # (NAdam's mu_product), updated in place; `created` names state lists new this step.
    def _run(self, group: Mapping[str, Any], params: list, grads: list, states: dict[str, list],
             step: int, gstate: dict[str, Any], grad_scale: float, clip_value: float,
             created: set[str]) -> None:
        raise NotImplementedError

    # Per rule: scalar state kept per group besides the step count (NAdam's mu_product).
    _group_scalars: dict[str, float] = {}

    # Per rule, for the one-call step (fastgd._core.step_groups): the kernel's name and its
    # state lists in the kernel's order. None: every step takes the Python path (_run).
    _kernel: str | None = None
    _state_order: tuple[str, ...] = ()

    # A factor every gradient is read with before anything else (the clipping norm and
    # last_grad_norm included), fused into the step's read of the gradients. 1 except under
    # fastgd.distributed.DistributedOptimizer, which sets 1/world_size: the gradient buffers
    # then hold the sum over the ranks and the step sees their mean.
    _grad_prescale: float = 1.0

    def __init__(self, params: Any, defaults: dict[str, Any], *, clip_norm: float | None = None,
                 clip_value: float | None = None, clip_norm_type: float = 2.0,
                 nonfinite: str = "ignore") -> None:
        if clip_norm is not None and clip_value is not None:
            raise ValueError("give clip_norm or clip_value, not both (as Keras: one clipping per optimizer)")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {clip_norm}")
        if clip_value is not None and not clip_value > 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        if not clip_norm_type > 0:
            raise ValueError(f"clip_norm_type must be > 0 (1, 2, inf or any p > 0), got {clip_norm_type}")
        _check_nonfinite(nonfinite)
        self.defaults = dict(defaults)
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.clip_norm_type = float(clip_norm_type)
        self.nonfinite = nonfinite
        self.skipped_steps = 0  # steps left out by nonfinite="skip"
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self._group_state: list[dict[str, Any]] = []
        self._params: list[np.ndarray] = []  # all parameters, in group order
        self._lists: dict[int, tuple[tuple, dict[str, list]]] = {}  # group -> (spec, state lists)
        self.last_grad_norm: float | None = None
        self._plan: tuple | None = None  # what _core.step_groups needs; rebuilt by the Python path
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

    # -- public seams for wrappers and training loops ------------------------------------

    @property
    def params(self) -> list[np.ndarray]:
        """Every parameter array, in group order (the order ``step`` takes gradients in)."""
        return list(self._params)

    @property
    def step_count(self) -> int:
        """Steps taken so far by the first parameter group (skipped steps do not count)."""
        return int(self._group_state[0]["step"])

    @property
    def grad_prescale(self) -> float:
        """A factor every gradient is read with before anything else (the clipping norm and
        ``last_grad_norm`` included), fused into the step's read of the gradients. 1 unless a
        wrapper sets it: :class:`fastgd.distributed.DistributedOptimizer` sets 1/world_size,
        so that gradient buffers holding the sum over the ranks are stepped on as their mean."""
        return self._grad_prescale

    @grad_prescale.setter
    def grad_prescale(self, value: float) -> None:
        value = float(value)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"grad_prescale must be a finite number > 0, got {value}")
        self._grad_prescale = value
        self.invalidate_plan()

    @property
    def step_plan(self) -> Any:
        """What one fused step needs (``fastgd._core``'s step entry point takes it), or None
        until the first step has set up the state. Loops that step the optimizer from C++ (the
        linear models' fused epoch) pass it on; it is rebuilt whenever the groups change."""
        return self._plan

    def invalidate_plan(self) -> None:
        """Forget the cached step plan: the next step rebuilds it (after a change of the
        parameter groups' structure or of :attr:`grad_prescale`)."""
        self._plan = None

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
        self._validate_group(resolve_options(group, 0))
        seen = {id(p) for p in self._params}
        start = len(self._params)
        for i, p in enumerate(ps):
            _as_param(p, f"params[{start + i}]")
            if id(p) in seen:
                raise ValueError(f"params[{start + i}] appears more than once (it would be updated twice)")
            seen.add(id(p))
        group["params"] = ps
        self._plan = None
        self.param_groups.append(group)
        self._group_state.append({"step": 0, **self._group_scalars})
        self._params.extend(ps)
        for i in range(start, len(self._params)):
            self.state[i] = {}

    def _validate_group(self, group: Mapping[str, Any]) -> None:
        lr = group.get("lr")
        if not (isinstance(lr, (int, float)) and lr >= 0 and math.isfinite(lr)):
            raise ValueError(f"Invalid learning rate: {lr}")
        eps = group.get("eps", 0.0)
        if not eps >= 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        wd = group.get("weight_decay", 0.0)
        if not wd >= 0:
            raise ValueError(f"Invalid weight_decay value: {wd}")
        betas = group.get("betas")
        if betas is not None:
            if len(betas) != 2:
                raise ValueError(f"betas must be a pair, got {betas}")
            for i, b in enumerate(betas):
                if not 0.0 <= b < 1.0:
                    raise ValueError(f"Invalid beta parameter at index {i}: {b}")

    # -- stepping -----------------------------------------------------------------------

    def _group_slices(self) -> list[tuple[int, int]]:
        out, start = [], 0
        for g in self.param_groups:
            out.append((start, start + len(g["params"])))
            start += len(g["params"])
        return out

    def _states_for(self, gi: int, group: Mapping[str, Any], first: int) -> tuple[dict[str, list], set[str]]:
        """The group's state lists for its current options, created (lazily) where missing.
        Cached per group, so a step does no per-parameter Python work."""
        spec = self._state_spec(group)
        key = tuple(spec.items())
        cached = self._lists.get(gi)
        if cached is not None and cached[0] == key:
            return cached[1], set()
        params = group["params"]
        created: set[str] = set()
        for name, init in spec.items():
            missing = [k for k in range(len(params)) if name not in self.state[first + k]]
            if missing:
                self._allocate(name, init, [(first + k, params[k]) for k in missing])
                created.add(name)
        lists = {name: [self.state[first + k][name] for k in range(len(params))] for name in spec}
        self._lists[gi] = (key, lists)
        return lists, created

    def _allocate(self, name: str, init: float, params: list[tuple[int, np.ndarray]]) -> None:
        """One buffer per dtype for a state of many parameters, each parameter's state a
        view of it: the kernel then streams through adjacent memory, as for one array."""
        for dtype in {p.dtype for _, p in params}:
            members = [(i, p) for i, p in params if p.dtype == dtype]
            buf = np.full(sum(p.size for _, p in members), init, dtype=dtype)
            offset = 0
            for i, p in members:
                self.state[i][name] = buf[offset:offset + p.size].reshape(p.shape)
                offset += p.size

    def step(self, grads: Sequence[np.ndarray] | np.ndarray) -> None:
        """Update every parameter in place from ``grads`` (aligned with the parameters, in
        group order; one array is fine for one parameter). Nothing is written unless every
        array passes its checks."""
        # One C++ call does the whole step while nothing structural changed since the last
        # (the same as the Python path below, which it falls back to, having written nothing).
        plan = self._plan
        if plan is not None and _core.step_groups(plan, grads):
            return
        self._step_python(grads)
        self._plan = self._make_plan()

    def _make_plan(self) -> tuple | None:
        owner = next((c for c in type(self).__mro__ if "_kernel" in c.__dict__), None)
        # A subclass with its own _run (a custom rule) keeps the Python path.
        if self._kernel is None or owner is None or type(self)._run is not owner._run:
            return None
        states = []
        for gi in range(len(self.param_groups)):
            cached = self._lists.get(gi)
            if cached is None:
                return None
            states.append(tuple(cached[1].get(name) for name in self._state_order))
        plan = (self._kernel, self, self.param_groups, self._group_state, tuple(states))
        return plan if self._grad_prescale == 1.0 else (*plan, float(self._grad_prescale))

    def _step_python(self, grads: Sequence[np.ndarray] | np.ndarray) -> None:
        if isinstance(grads, np.ndarray):
            grads = [grads]
        elif not isinstance(grads, list):
            grads = list(grads)
        if len(grads) != len(self._params):
            raise ValueError(f"step() got {len(grads)} gradients for {len(self._params)} parameters; "
                             "pass one gradient per parameter, in the order of the parameters")
        slices = self._group_slices()
        if len(slices) > 1 or self.nonfinite != "ignore":  # before the norm reads them
            for a, b in slices:
                _core.check_arrays(self._params[a:b], grads[a:b])
        prescale = self._grad_prescale
        grad_scale, clip_value = prescale, math.inf
        # _core.step_groups does the same checks in the same order.
        _check_nonfinite(self.nonfinite)
        total = None
        if self.clip_norm is not None:
            total = prescale * _core.total_norm(grads, self.clip_norm_type)
            self.last_grad_norm = total
            grad_scale = prescale * clip_coefficient(self.clip_norm, total)
        elif self.clip_value is not None:
            clip_value = float(self.clip_value)
        if self.nonfinite != "ignore":
            if total is None:
                total = _core.total_norm(grads, math.inf)  # NaN when any gradient has a NaN
            if not math.isfinite(total):
                if self.nonfinite == "skip":
                    self.skipped_steps += 1
                    return
                raise FloatingPointError(self._nonfinite_message(grads))
        for gi, (group, (a, b)) in enumerate(zip(self.param_groups, slices)):
            gstate = self._group_state[gi]
            options = resolve_options(group, gstate["step"])
            states, created = self._states_for(gi, options, a)
            step = gstate["step"] + 1
            sign = -1.0 if options.get("maximize", False) else 1.0
            self._run(options, group["params"], grads[a:b], states, step, gstate, sign * grad_scale,
                      clip_value, created)
            gstate["step"] = step

    def _nonfinite_message(self, grads: Sequence[np.ndarray]) -> str:
        for gi, (a, b) in enumerate(self._group_slices()):
            for i in range(a, b):
                if not np.isfinite(grads[i]).all():
                    return (f"gradient {i} (parameter group {gi}) holds a NaN or Inf; nothing was written "
                            "(nonfinite='error'; 'skip' leaves such steps out)")
        return ("the gradient norm is not finite (it overflows); nothing was written "
                "(nonfinite='error'; 'skip' leaves such steps out)")

    # -- checkpoints -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything a resumed run needs: per-parameter state arrays (keyed by
        parameter index), the groups' options, each group's step count (int64), the optimizer-wide
        options (clipping, ``nonfinite``) and ``skipped_steps``."""
        groups = []
        for (a, b), g in zip(self._group_slices(), self.param_groups):
            d = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            d["params"] = list(range(a, b))
            groups.append(d)
        return {
            "state": {i: {k: v.copy() for k, v in st.items()} for i, st in self.state.items() if st},
            "param_groups": groups,
            "group_state": [{k: (np.int64(v) if k == "step" else float(v)) for k, v in gs.items()}
                            for gs in self._group_state],
            "global": {k: getattr(self, k) for k in _GLOBAL_OPTIONS},
            "skipped_steps": self.skipped_steps,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict`. Checked whole before anything changes."""
        groups = state_dict["param_groups"]
        if "nonfinite" in state_dict.get("global", {}):
            _check_nonfinite(state_dict["global"]["nonfinite"])
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
                arr = np.asarray(arr)
                if arr.shape != p.shape or arr.dtype != p.dtype:
                    raise ValueError(f"state[{saved_idx}][{name!r}]: {arr.dtype}{arr.shape} does not match "
                                     f"parameter {mine_idx}: {p.dtype}{p.shape}")
                new_state[mine_idx][name] = np.array(arr, dtype=p.dtype, order="C", copy=True)
        new_groups = []
        for saved, mine in zip(groups, self.param_groups):
            g = {**mine, **{k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}}
            self._validate_group(resolve_options(g, 0))
            new_groups.append(g)
        group_state = [{"step": int(gs["step"]), **{k: float(v) for k, v in gs.items() if k != "step"}}
                       for gs in state_dict["group_state"]]
        self.state, self.param_groups, self._group_state = new_state, new_groups, group_state
        self._lists.clear()
        self._plan = None
        for k, v in state_dict.get("global", {}).items():
            if k in _GLOBAL_OPTIONS:
                setattr(self, k, v)
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))


def _check_nonfinite(nonfinite: Any) -> None:
    if not (isinstance(nonfinite, str) and nonfinite in NONFINITE):
        raise ValueError(f"nonfinite must be one of {', '.join(map(repr, NONFINITE))}, got {nonfinite!r}")


def clip_coefficient(max_norm: float, total_norm: float) -> float:
    """min(1, max_norm / (total_norm + 1e-6)), torch.nn.utils.clip_grad_norm_'s factor."""
    return min(1.0, max_norm / (total_norm + 1e-6))
