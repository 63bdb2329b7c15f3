"""An optimizer's ``state_dict()`` as a flat dict of arrays, which ``np.savez`` writes and
``np.load(..., allow_pickle=False)`` reads back: ``Optimizer.state_dict(flat=True)``.

Entries:

* ``"fastgd_optimizer_state"``: a 0-d string array holding JSON: the format name and version,
  the optimizer's class and rule, every group's options (a schedule as
  ``{"schedule": schedule.get_config()}``, a pair such as ``betas`` as a list) with its
  parameter indices, every group's step count and scalars, the step options and
  ``skipped_steps``. JSON writes a float as the shortest text that reads back as the same
  float, so every number comes back with the same bits.
* ``"state.<index>.<name>"``: parameter ``index``'s state array ``name`` (as ``state_dict()``'s
  ``state[index][name]``).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastgd.schedules import Schedule, from_config

__all__ = ["FORMAT", "VERSION", "META_KEY", "flatten", "unflatten", "is_flat", "check_nested"]

FORMAT = "fastgd-optimizer-state"
VERSION = 1
META_KEY = "fastgd_optimizer_state"
_STATE_PREFIX = "state."
# What state_dict() holds besides the arrays (check_nested asks for them).
_NESTED_KEYS = ("state", "param_groups", "group_state")


def _option(name: str, group: int, value: Any) -> Any:
    """A group option as JSON: a schedule by its config, a pair as a list, a number as the
    float the step reads it as (``bool`` and ``int`` as they are)."""
    if isinstance(value, Schedule):
        return {"schedule": value.get_config()}
    if value is None or isinstance(value, (bool, str)) or type(value) is int:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list)):
        return [_option(name, group, v) for v in value]
    if callable(value):
        raise TypeError(f"param_groups[{group}][{name!r}] is {value!r}, a callable that is not a "
                        "fastgd.schedules schedule: it has no flat (file) representation; build it with "
                        "fastgd.schedules, or keep the state with pickle")
    raise TypeError(f"param_groups[{group}][{name!r}] is a {type(value).__name__}, which has no flat "
                    "(file) representation")


def _loaded_option(value: Any) -> Any:
    if isinstance(value, Mapping) and set(value) == {"schedule"}:
        return from_config(value["schedule"])
    if isinstance(value, list):
        return tuple(_loaded_option(v) for v in value)
    return value


def flatten(optimizer: str, rule: str, state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``state_dict`` (an :meth:`Optimizer.state_dict` of class ``optimizer`` over rule
    ``rule``) as flat arrays (see the module docstring)."""
    groups = [{k: (list(v) if k == "params" else _option(k, i, v)) for k, v in g.items()}
              for i, g in enumerate(state_dict["param_groups"])]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "optimizer": optimizer,
        "rule": rule,
        "param_groups": groups,
        "group_state": [{k: (int(v) if k == "step" else float(v)) for k, v in gs.items()}
                        for gs in state_dict["group_state"]],
        "global": dict(state_dict["global"]),
        "skipped_steps": int(state_dict["skipped_steps"]),
    }
    out = {META_KEY: np.array(json.dumps(meta))}
    for index, arrays in state_dict["state"].items():
        for name, arr in arrays.items():
            out[f"{_STATE_PREFIX}{index}.{name}"] = arr
    return out


def is_flat(state_dict: Mapping[str, Any]) -> bool:
    """Whether ``state_dict`` is :func:`flatten`'s form (a dict, an ``np.load`` result)."""
    return META_KEY in state_dict


def unflatten(flat: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, state_dict)`` from :func:`flatten`'s arrays: ``meta`` has the class and rule
    names; ``state_dict`` is in :meth:`Optimizer.state_dict`'s nested form. ValueError for
    anything :func:`flatten` does not write."""
    try:
        meta = json.loads(str(np.asarray(flat[META_KEY])[()]))
    except ValueError as e:
        raise ValueError(f"not a fastgd state dict: its {META_KEY!r} entry is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"not a fastgd state dict: its {META_KEY!r} entry names no {FORMAT!r} format")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
        raise ValueError(f"fastgd optimizer state format version {version!r}; this fastgd reads version {VERSION} "
                         "(a newer fastgd wrote it?)")
    state: dict[int, dict[str, np.ndarray]] = {}
    for key in flat:
        if key == META_KEY:
            continue
        index, _, name = key[len(_STATE_PREFIX):].partition(".")
        if not key.startswith(_STATE_PREFIX) or not index.isdigit() or not name:
            raise ValueError(f"not a fastgd state dict: unexpected entry {key!r}")
        state.setdefault(int(index), {})[name] = np.asarray(flat[key])
    try:
        groups = [{k: (list(v) if k == "params" else _loaded_option(v)) for k, v in g.items()}
                  for g in meta["param_groups"]]
        nested = {"state": state, "param_groups": groups, "group_state": meta["group_state"],
                  "global": meta["global"], "skipped_steps": meta["skipped_steps"]}
    except (LookupError, TypeError, AttributeError) as e:
        raise ValueError(f"corrupted fastgd state dict: {type(e).__name__}: {e}") from None
    return meta, nested


def check_nested(state_dict: Any) -> None:
    """ValueError saying why, unless ``state_dict`` has the form of :meth:`Optimizer.state_dict`
    (a mapping with ``state``, ``param_groups`` and ``group_state``)."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"not a fastgd state dict: a {type(state_dict).__name__}, not a mapping")
    missing = [k for k in _NESTED_KEYS if k not in state_dict]
    if not missing:
        return
    if set(state_dict) == {"state", "param_groups"}:
        raise ValueError("not a fastgd state dict: it has 'state' and 'param_groups' only, as torch.optim's "
                         "state_dict() does; fastgd reads what a fastgd optimizer's state_dict() (or "
                         "fastgd.save_state) wrote, not torch's")
    raise ValueError(f"not a fastgd state dict: it has no {', '.join(map(repr, missing))} (its keys: "
                     f"{', '.join(map(repr, list(state_dict)[:8]))})")
