"""Optimizers by name: ``get_optimizer("adam", params, lr=1e-3)``.

Training loops and estimators take ``optimizer=`` as a name, a class or a ready instance;
this module turns any of the three into an :class:`Optimizer` over ``params``. The names are
those of the rule classes in lower case, in the order of the rule table
(:func:`fastgd.optim.rule_classes`), and a few presets.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastgd._keywords import unexpected_keyword
from fastgd.optim._base import STEP_OPTIONS, Optimizer, rule_classes

__all__ = ["OPTIMIZERS", "PRESETS", "check_options", "get_optimizer", "option_names"]

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


def option_names(optimizer: Any) -> tuple[str, list[str]] | None:
    """The class name of the optimizer that ``optimizer`` (a name or an Optimizer class)
    builds and the options it takes (its ``__init__``'s, then the step options); None for
    what :func:`get_optimizer` would refuse or an instance."""
    cls = optimizer if isinstance(optimizer, type) and issubclass(optimizer, Optimizer) else None
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        cls = OPTIMIZERS[optimizer.lower()][0]
    if cls is None:
        return None
    own = [p.name for p in inspect.signature(cls.__init__).parameters.values()
           if p.name not in ("self", "params") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return cls.__name__, own + [o for o in STEP_OPTIONS if o not in own]


def check_options(optimizer: Any, options: Mapping[str, Any], function: str, keywords: Sequence[str] = (),
                  what: str = "keyword argument") -> None:
    """That ``options`` are options of ``optimizer``: else the TypeError of
    :func:`fastgd._keywords.unexpected_keyword` for ``function`` (whose own ``keywords``
    are listed first), naming the optimizer and its options."""
    found = option_names(optimizer)
    if found is None:
        return  # get_optimizer says what is wrong with the optimizer itself
    name, valid = found
    unknown = [k for k in options if k not in valid]
    if unknown and keywords:
        raise unexpected_keyword(function, unknown[0], keywords, passed_on=valid, to=f"the optimizer ({name})",
                                 what=what)
    if unknown:
        raise unexpected_keyword(function, unknown[0], valid, what=what, whose=f"{name}'s options")


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
