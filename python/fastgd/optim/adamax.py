"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba 2015, section 7), as torch.optim.Adamax.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g \\
        u_t &= \max(\beta_2 u_{t-1},\ |g| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\, \frac{m_t}{u_t}

    Defaults: lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.
    State per parameter: ``exp_avg`` (m), ``exp_inf`` (u).
    """

    def __init__(self, params: Any, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    _kernel = "adamax"
    _state_order = ("exp_avg", "exp_inf")

    def _state_spec(self, group):
        return {"exp_avg": 0.0, "exp_inf": 0.0}

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        beta1, beta2 = group["betas"]
        _core.adamax(params, grads, states["exp_avg"], states["exp_inf"], step=step, lr=group["lr"],
                     beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     grad_scale=grad_scale, clip_value=clip_value)
