"""Optimizers by name: ``get_optimizer("adam", params, lr=1e-3)``.

Training loops and estimators take ``optimizer=`` as a name, a class or a ready instance;
this module turns any of the three into an :class:`Optimizer` over ``params``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastgd.optim._base import Optimizer
from fastgd.optim.adadelta import Adadelta
from fastgd.optim.adagrad import Adagrad
from fastgd.optim.adam import Adam, AdamW
from fastgd.optim.adamax import Adamax
from fastgd.optim.lion import Lion
from fastgd.optim.nadam import NAdam
from fastgd.optim.radam import RAdam
from fastgd.optim.rmsprop import RMSprop
from fastgd.optim.sgd import SGD

__all__ = ["OPTIMIZERS", "get_optimizer"]

# name -> (class, preset options). Presets are defaults: options given to get_optimizer win.
OPTIMIZERS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (Adagrad, {}),
    "rmsprop": (RMSprop, {}),
    "adadelta": (Adadelta, {}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
    "adamax": (Adamax, {}),
    "nadam": (NAdam, {}),
    "radam": (RAdam, {}),
    "lion": (Lion, {}),
}


def _param_list(params: Any) -> list[np.ndarray]:
    return [params] if isinstance(params, np.ndarray) else list(params)


def get_optimizer(optimizer: str | type[Optimizer] | Optimizer, params: Sequence[np.ndarray] | np.ndarray,
                  lr: Any = None, **kwargs: Any) -> Optimizer:
    """An :class:`Optimizer` over ``params``.

    Args:
        optimizer: a name from :data:`OPTIMIZERS` (case-insensitive): ``"sgd"``,
            ``"momentum"`` (SGD, momentum 0.9), ``"nesterov"`` (SGD, Nesterov momentum 0.9),
            ``"adagrad"``, ``"rmsprop"``, ``"adadelta"``, ``"adam"``, ``"adamw"``,
            ``"adamax"``, ``"nadam"``, ``"radam"``, ``"lion"``; or an :class:`Optimizer`
            subclass; or an instance, returned as is (it keeps its state and its own lr).
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
