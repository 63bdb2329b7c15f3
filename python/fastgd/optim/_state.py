"""An optimizer's per-parameter state (``Optimizer.state``), as a mapping that is the truth.

``opt.state[i]`` maps state names to the arrays the next step reads and writes: assigning an
array copies it into the state the step uses (in place when the state exists), emptying an
entry (``opt.state[i] = {}``, ``del opt.state[i]``, ``del opt.state[i][name]``) makes the
next step create it afresh, as a new optimizer's first step does, and ``state_dict()`` shows
exactly this. Every change is checked first (the rule's state names, the parameter's shape
and dtype) and then made whole, under the optimizer's step lock.

A state array made by a step is a view of one buffer per state name and dtype shared by the
parameters whose state was made in that step, so that the kernel streams through adjacent
memory as for one array.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

__all__ = ["OptimizerState", "ParamState", "check_state_array"]


def check_state_array(where: str, value: Any, param: np.ndarray, index: int) -> np.ndarray:
    """``value`` as an array for the state of parameter ``index``: ValueError unless it has
    the parameter's shape and dtype (``where`` names it in the message)."""
    arr = np.asarray(value)
    if arr.shape != param.shape or arr.dtype != param.dtype:
        raise ValueError(f"{where}: {arr.dtype}{arr.shape} does not match parameter {index}: "
                         f"{param.dtype}{param.shape}")
    return arr


class _Optimizer(Protocol):
    """What the state needs of its optimizer (see Optimizer)."""

    @property
    def step_lock(self) -> AbstractContextManager[Any]: ...

    def invalidate_plan(self) -> None: ...


class ParamState(MutableMapping[str, np.ndarray]):
    """One parameter's state: its arrays by name, as the next step uses them."""

    def __init__(self, states: OptimizerState, index: int) -> None:
        self._states, self._index = states, index

    def __getitem__(self, name: str) -> np.ndarray:
        return self._states.arrays(self._index)[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._states.change(self._index, {name: value})

    def __delitem__(self, name: str) -> None:
        if name not in self._states.arrays(self._index):
            raise KeyError(name)
        self._states.change(self._index, {}, drop=(name,))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._states.arrays(self._index)))

    def __len__(self) -> int:
        return len(self._states.arrays(self._index))

    def __repr__(self) -> str:
        return repr(dict(self._states.arrays(self._index)))


class OptimizerState(MutableMapping[int, ParamState]):
    """Every parameter's state by parameter index (in group order): ``opt.state``.

    Every index has an entry, empty until a step makes the parameter's states. Assigning a
    mapping to an index replaces that parameter's state (``{}`` empties it); ``del`` empties it
    too, and the index stays."""

    def __init__(self, optimizer: _Optimizer, kind: str, names: Sequence[str]) -> None:
        """``kind``: the optimizer's class name, for messages; ``names``: its rule's state
        names. Every change holds ``optimizer.step_lock``, and one that makes or drops an
        array calls ``optimizer.invalidate_plan()`` (the step then fetches its arrays again)."""
        self._optimizer, self._kind, self._names = optimizer, kind, tuple(names)
        self._params: list[np.ndarray] = []
        self._arrays: list[dict[str, np.ndarray]] = []

    # -- the mapping ----------------------------------------------------------------------

    def __getitem__(self, index: int) -> ParamState:
        return ParamState(self, self._checked_index(index))

    def __setitem__(self, index: int, state: Mapping[str, Any]) -> None:
        i = self._checked_index(index)
        if not isinstance(state, Mapping):
            raise TypeError(f"state[{i}]: a parameter's state is a mapping of arrays by name, "
                            f"got {type(state).__name__}")
        self.change(i, state, replace=True)

    def __delitem__(self, index: int) -> None:
        self.change(self._checked_index(index), {}, replace=True)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._arrays)))

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return repr(dict(enumerate(self._arrays)))

    def _checked_index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self._arrays):
            raise KeyError(f"no parameter {index!r}: the state is keyed by parameter index, 0 to "
                           f"{len(self._arrays) - 1}")
        return int(index)

    # -- for the optimizer --------------------------------------------------------------

    def arrays(self, index: int) -> Mapping[str, np.ndarray]:
        """Parameter ``index``'s arrays by name (not to be changed through this)."""
        return self._arrays[index]

    def add(self, params: Sequence[np.ndarray]) -> None:
        """Entries for new parameters (a new group), each empty."""
        self._params.extend(params)
        self._arrays.extend({} for _ in params)

    def checked(self, index: int, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``state`` for parameter ``index``, every entry checked (its name is one of the
        rule's states, its array has the parameter's shape and dtype), as private copies."""
        out = {}
        p = self._params[index]
        for name, value in state.items():
            if name not in self._names:
                raise ValueError(f"state[{index}][{name!r}]: {self._kind} keeps no state of that name "
                                 f"(its states: {', '.join(self._names)})")
            arr = check_state_array(f"state[{index}][{name!r}]", value, p, index)
            out[name] = np.array(arr, dtype=p.dtype, order="C", copy=True)
        return out

    def change(self, index: int, state: Mapping[str, Any], drop: Sequence[str] = (), replace: bool = False) -> None:
        """Parameter ``index``'s arrays named in ``state`` take its values, checked whole
        first (an array that exists is overwritten in place: the step keeps reading it; a new
        one is kept), then those named in ``drop`` (with ``replace``: all others) are dropped."""
        new = self.checked(index, state)
        with self._optimizer.step_lock:
            arrays = self._arrays[index]
            if replace:
                drop = [name for name in arrays if name not in new]
            made = [name for name in new if name not in arrays] + [name for name in drop if name in arrays]
            for name, arr in new.items():
                if name in arrays:
                    arrays[name][...] = arr
                else:
                    arrays[name] = arr
            for name in drop:
                arrays.pop(name, None)
            if made:
                self._optimizer.invalidate_plan()

    def checked_all(self, states: Mapping[int, Mapping[str, Any]]) -> list[dict[str, np.ndarray]]:
        """Every parameter's state (empty where ``states`` has no entry), checked: for
        :meth:`install`."""
        for index in states:
            self._checked_index(index)
        return [self.checked(i, states.get(i, {})) for i in range(len(self._arrays))]

    def install(self, arrays: list[dict[str, np.ndarray]]) -> None:
        """Every parameter's state at once, from :meth:`checked_all`."""
        with self._optimizer.step_lock:
            self._arrays = arrays
            self._optimizer.invalidate_plan()

    def allocate(self, name: str, initial: float, indices: Sequence[int]) -> None:
        """State ``name`` for the parameters ``indices``, starting at ``initial``: one buffer
        per dtype, each parameter's array a view of it. For the step, which holds the lock."""
        params = [(i, self._params[i]) for i in indices]
        for dtype in dict.fromkeys(p.dtype for _, p in params):
            members = [(i, p) for i, p in params if p.dtype == dtype]
            buf = np.full(sum(p.size for _, p in members), initial, dtype=dtype)
            offset = 0
            for i, p in members:
                self._arrays[i][name] = buf[offset:offset + p.size].reshape(p.shape)
                offset += p.size

    def snapshot(self) -> dict[int, dict[str, np.ndarray]]:
        """A copy of every non-empty entry (for ``state_dict``)."""
        return {i: {k: v.copy() for k, v in st.items()} for i, st in enumerate(self._arrays) if st}
