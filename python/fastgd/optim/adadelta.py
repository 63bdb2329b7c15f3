"""Adadelta: step sizes from running means of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler 2012), as torch.optim.Adadelta.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        v_t &= \rho\, v_{t-1} + (1 - \rho)\, g^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g \\
        u_t &= \rho\, u_{t-1} + (1 - \rho)\, \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma\, \Delta_t

    Defaults: lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.
    State per parameter: ``square_avg`` (v), ``acc_delta`` (u).
    """

    def __init__(self, params: Any, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False, clip_norm: float | None = None,
                 clip_value: float | None = None, clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    def _validate_group(self, group):
        super()._validate_group(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")

    _kernel = "adadelta"
    _state_order = ("square_avg", "acc_delta")

    def _state_spec(self, group):
        return {"square_avg": 0.0, "acc_delta": 0.0}

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        _core.adadelta(params, grads, states["square_avg"], states["acc_delta"], step=step, lr=group["lr"],
                       rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
                       grad_scale=grad_scale, clip_value=clip_value)
