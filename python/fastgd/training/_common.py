"""What :func:`fastgd.train`, :func:`fastgd.minimize` and :func:`fastgd.lr_find` share: the
checks of their arguments, the gradients a loss returns, and what they say when a run
diverges."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, overload

import numpy as np

from fastgd.optim._base import resolve_options

__all__ = ["DivergenceWarning", "LossAndGrad", "param_list", "as_data", "n_rows", "grad_list", "lr_of",
           "positive_int", "divergence_advice"]

LossAndGrad = Callable[[list, Any, Any, Any], tuple]


class DivergenceWarning(RuntimeWarning):
    """Training stopped early because a loss or a gradient became NaN or infinite."""


def param_list(params: Any) -> list[np.ndarray]:
    ps = [params] if isinstance(params, np.ndarray) else list(params)
    if not ps:
        raise ValueError("params is empty: pass the list of arrays to optimize")
    return ps


def as_data(a: Any) -> Any:
    # Arrays and scipy.sparse matrices index by rows as they are; lists become arrays.
    return a if hasattr(a, "shape") and hasattr(a, "__getitem__") else np.asarray(a)


def n_rows(a: Any, name: str) -> int:
    shape = getattr(a, "shape", ())
    if not shape:
        raise ValueError(f"{name} must have a first axis of samples, got a scalar")
    return int(shape[0])


def grad_list(grads: Any, params: list[np.ndarray]) -> list[np.ndarray]:
    gs = [grads] if isinstance(grads, np.ndarray) else list(grads)
    if len(gs) != len(params):
        raise ValueError(f"loss_and_grad returned {len(gs)} gradients for {len(params)} parameters; "
                         "return one gradient per parameter, in the order of params")
    # The kernels take C-contiguous gradients of the parameter's dtype. A float64 gradient
    # for float32 parameters (float64 data) is a common slip: convert rather than fail.
    return [g if isinstance(g, np.ndarray) and g.dtype == p.dtype and g.flags.c_contiguous
            else np.ascontiguousarray(g, dtype=p.dtype) for g, p in zip(gs, params)]


def lr_of(opt: Any, k: int) -> float:
    """Group 0's learning rate at its k-th step (from 0), a schedule evaluated (``opt`` an
    Optimizer or a wrapper with its ``param_groups``)."""
    return float(resolve_options(opt.param_groups[0], max(k, 0))["lr"])


@overload
def positive_int(name: str, value: Any) -> int: ...
@overload
def positive_int(name: str, value: Any, allow_none: bool) -> int | None: ...
def positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def divergence_advice(lr: float, clipping: str = "optimizer_options={'clip_norm': 1.0}",
                      scaling: str = "standardizing the inputs") -> str:
    return (f"Try a smaller learning rate (lr={lr:g} now; e.g. {lr / 10:g}), gradient clipping ({clipping}), "
            f"or {scaling}.")
