"""Optimizers by name: ``get_optimizer("adam", params, lr=1e-3)``.

Training loops and estimators take ``optimizer=`` as a name, a class or a ready instance;
this module turns any of the three into an :class:`Optimizer` over ``params``. The names are
those of the rule classes in lower case, in the order of the rule table
(:func:`fastgd.optim.rule_classes`), and a few presets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastgd.optim._base import Optimizer, rule_classes

__all__ = ["OPTIMIZERS", "PRESETS", "get_optimizer"]

# A name for a rule's class with options preset (options given to get_optimizer win).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "momentum": ("sgd", {"momentum": 0.9}),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
}


def _names() -> dict[str, tuple[type[Optimizer], dict[str, Any]]]:
    names: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {}
    for cls in rule_classes():
        name = cls.__name__.lower()
        names[name] = (cls, {})
        names.update({preset: (cls, dict(options)) for preset, (of, options) in PRESETS.items() if of == name})
    return names


# name -> (class, preset options).
OPTIMIZERS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = _names()


def _param_list(params: Any) -> list[np.ndarray]:
    return [params] if isinstance(params, np.ndarray) else list(params)


def get_optimizer(optimizer: str | type[Optimizer] | Optimizer, params: Sequence[np.ndarray] | np.ndarray,
                  lr: Any = None, **kwargs: Any) -> Optimizer:
    """An :class:`Optimizer` over ``params``.

    Args:
        optimizer: a name from :data:`OPTIMIZERS` (case-insensitive): a rule's class name
            in lower case (``"sgd"``, ``"adam"``, ``"adamw"``, ...), ``"momentum"`` (SGD,
            momentum 0.9) or ``"nesterov"`` (SGD, Nesterov momentum 0.9); or an
            :class:`Optimizer` subclass; or an instance, returned as is (it keeps its state
            and its own lr).
        params: the arrays to optimize (for an instance: exactly its parameters, same order).
        lr: learning rate, a float or a schedule; ``None`` for the rule's default.
            Ignored for an instance.
        **kwargs: options for the rule (``momentum=``, ``clip_norm=``...). Not allowed with
            an instance, whose options are already set.
    """
    params = _param_list(params)
    if isinstance(optimizer, Optimizer):
        if kwargs:
            raise ValueError(f"optimizer options {sorted(kwargs)} cannot be applied to an optimizer instance; "
                             "set them when you build it, or pass its name or class instead")
        own = [p for g in optimizer.param_groups for p in g["params"]]
        # Identity, not equality: the optimizer must update the caller's arrays in place.
        if len(own) != len(params) or any(a is not b for a, b in zip(own, params)):
            raise ValueError(f"the {type(optimizer).__name__} instance optimizes other arrays than `params` "
                             f"({len(own)} arrays vs {len(params)}); build it on the same arrays, in order")
        return optimizer
    if lr is not None:
        kwargs["lr"] = lr
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer(params, **kwargs)
    if isinstance(optimizer, str):
        entry = OPTIMIZERS.get(optimizer.lower())
        if entry is not None:
            cls, presets = entry
            return cls(params, **{**presets, **kwargs})
    raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}, "
                     "an Optimizer subclass or an Optimizer instance")
