"""minimize: a first-order optimizer on a function of one array, in the style of
``scipy.optimize.minimize``."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fastgd.optim._base import Optimizer
from fastgd.optim.registry import check_options, get_optimizer
from fastgd.training._common import DivergenceWarning, divergence_advice, lr_of

__all__ = ["minimize", "OptimizeResult"]


class OptimizeResult(dict):
    """The result of :func:`minimize`, a dict with attribute access (as scipy's):
    ``x``, ``fun``, ``jac``, ``nit`` (steps taken), ``nfev`` (evaluations), ``success``,
    ``status`` (0 converged, 1 max_iter, 2 diverged, 3 stopped by callback), ``message``,
    ``history`` (f at every evaluated point, in order)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(map(len, self)) + 1
        return "\n".join(f"{k.rjust(width)}: {v!r}" for k, v in self.items())


def minimize(fun: Callable, x0: Any, jac: bool | Callable = True, *, optimizer: Any = "adam", lr: Any = 1e-3,
             max_iter: int = 1000, tol: float = 1e-6, callback: Callable | None = None,
             **optimizer_options: Any) -> OptimizeResult:
    r"""Minimize ``fun`` from ``x0`` with a first-order optimizer, in the style of
    ``scipy.optimize.minimize``.

    Iterates :math:`x_{k+1} = \text{step}(x_k, \nabla f(x_k))` until
    :math:`\|\nabla f(x_k)\|_\infty \le \text{tol}` (``success``), ``max_iter`` steps, or a NaN
    or infinite value (then ``x`` is the last iterate where ``f`` and its gradient were finite,
    and a :class:`DivergenceWarning` is issued).

    Args:
        fun: ``fun(x) -> (f, grad)`` when ``jac=True``, else ``fun(x) -> f``. ``x`` is a
            read-only view of the iterate: copy it to keep it.
        x0: the starting point, copied (float32 stays float32, anything else is float64).
        jac: ``True``, or a callable ``jac(x) -> grad``.
        optimizer: a name or an Optimizer class (see :func:`fastgd.optim.get_optimizer`).
        lr: learning rate, a float or a schedule.
        max_iter: at most this many optimizer steps.
        tol: gradient tolerance, on the largest absolute component.
        callback: ``callback(xk)`` after each step with a copy of the iterate; returning True
            (or raising StopIteration) stops.
        **optimizer_options: passed to the optimizer (``momentum=``, ``clip_norm=``...).
    """
    if isinstance(optimizer, Optimizer):
        raise TypeError("minimize builds its own optimizer on a copy of x0: pass a name or an Optimizer class")
    # A keyword that is neither minimize's nor the optimizer's: minimize's error, not the optimizer's.
    check_options(optimizer, optimizer_options, "minimize()", _OWN_KEYWORDS)
    if jac is not True and not callable(jac):
        raise ValueError("minimize needs the gradient: jac=True (fun returns (f, grad)) or a callable jac(x)")
    max_iter = int(max_iter)
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    x0 = np.asarray(x0)
    x = np.array(np.atleast_1d(x0), dtype=np.float32 if x0.dtype == np.float32 else np.float64, order="C")
    view = x.view()
    view.flags.writeable = False
    opt = get_optimizer(optimizer, [x], lr, **optimizer_options)

    def evaluate() -> tuple[float, np.ndarray]:
        if jac is True:
            f, g = fun(view)
        else:
            f, g = fun(view), jac(view)
        g = np.asarray(g, dtype=x.dtype)
        if g.size != x.size:
            raise ValueError(f"the gradient has {g.size} elements, x has {x.size}")
        return float(f), np.ascontiguousarray(g.reshape(x.shape))

    f, g = evaluate()
    history = [f]
    nit, stop_requested = 0, False
    x_good, f_good, g_good = x.copy(), f, g
    while True:
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            what = f"f is {f}" if not math.isfinite(f) else "the gradient is not finite"
            if nit == 0:
                status, message = 2, f"diverged: {what} at x0"
            else:
                np.copyto(x, x_good)
                f, g = f_good, g_good
                status, message = 2, f"diverged at iteration {nit}: {what}; x is the last finite iterate"
            advice = divergence_advice(lr_of(opt, max(nit - 1, 0)), "clip_norm=1.0", "rescaling the variables")
            warnings.warn(f"minimize {message}. {advice}", DivergenceWarning, stacklevel=2)
            break
        gmax = float(np.max(np.abs(g))) if g.size else 0.0
        if gmax <= tol:
            status, message = 0, f"converged: gradient inf-norm {gmax:.3g} <= tol={tol:g}"
            break
        if nit >= max_iter:
            status, message = 1, f"reached max_iter={max_iter} (gradient inf-norm {gmax:.3g} > tol={tol:g})"
            break
        if stop_requested:
            status, message = 3, "stopped by callback"
            break
        x_good[...] = x
        f_good, g_good = f, g
        opt.step([g])
        nit += 1
        f, g = evaluate()
        history.append(f)
        if callback is not None:
            try:
                stop_requested = bool(callback(x.copy()))
            except StopIteration:
                stop_requested = True
    return OptimizeResult(x=x, fun=f, jac=g, nit=nit, nfev=len(history), success=status == 0, status=status,
                          message=message, history=history)


# minimize's own keywords, read from its signature (listed first when a keyword is wrong).
_OWN_KEYWORDS = tuple(p.name for p in inspect.signature(minimize).parameters.values()
                      if p.kind is not p.VAR_KEYWORD and p.name not in ("fun", "x0"))
