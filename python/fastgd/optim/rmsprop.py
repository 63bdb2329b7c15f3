"""RMSprop: steps scaled by a running mean of squared gradients."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, lecture 6e; centered variant from Graves 2013), as torch.optim.RMSprop.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g^2 \\
        \bar g_t &= \alpha\, \bar g_{t-1} + (1 - \alpha)\, g \quad \text{(centered)} \\
        d &= \sqrt{v_t - \bar g_t^2} + \epsilon \text{ if centered else } \sqrt{v_t} + \epsilon \\
        b_t &= \mu\, b_{t-1} + g / d,\quad \theta_t = \theta_{t-1} - \gamma\, b_t \quad (\mu > 0) \\
        \theta_t &= \theta_{t-1} - \gamma\, g / d \quad (\mu = 0)

    Defaults: lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False.
    State per parameter: ``square_avg``, ``grad_avg`` (centered), ``momentum_buffer`` (momentum > 0).
    """

    def __init__(self, params: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False, clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    def _validate_group(self, group):
        super()._validate_group(group)
        if not group["momentum"] >= 0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if not group["alpha"] >= 0:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")

    _kernel = "rmsprop"
    _state_order = ("square_avg", "grad_avg", "momentum_buffer")

    def _state_spec(self, group):
        spec = {"square_avg": 0.0}
        if group["centered"]:
            spec["grad_avg"] = 0.0
        if group["momentum"] > 0:
            spec["momentum_buffer"] = 0.0
        return spec

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        _core.rmsprop(params, grads, states["square_avg"], states.get("grad_avg"), states.get("momentum_buffer"),
                      step=step, lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                      weight_decay=group["weight_decay"], momentum=group["momentum"],
                      centered=group["centered"], grad_scale=grad_scale, clip_value=clip_value)
