"""NAdam: Adam with Nesterov momentum."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class NAdam(Optimizer):
    r"""NAdam (Dozat 2016), as torch.optim.NAdam.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t \\
        \theta &\leftarrow \theta_{t-1}(1 - \gamma\lambda) \text{ if decoupled\_weight\_decay,
            else } g \leftarrow g + \lambda\,\theta_{t-1} \quad (\lambda \ne 0) \\
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t\psi}\right),\quad
            \mu_{t+1} = \beta_1 \left(1 - \tfrac12\, 0.96^{(t+1)\psi}\right)
            \quad (\psi = \text{momentum\_decay}) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g,\quad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g^2 \\
        d &= \sqrt{v_t / (1 - \beta_2^t)} + \epsilon \\
        \theta_t &= \theta - \gamma \frac{1 - \mu_t}{1 - \prod_{i \le t} \mu_i} \frac{g}{d}
            - \gamma \frac{\mu_{t+1}}{1 - \prod_{i \le t+1} \mu_i} \frac{m_t}{d}

    Defaults: lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3.
    State per parameter: ``exp_avg``, ``exp_avg_sq``; per group: ``mu_product`` (float64).
    """

    _group_scalars = {"mu_product": 1.0}

    def __init__(self, params: Any, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    def _validate_group(self, group):
        super()._validate_group(group)
        if not group["momentum_decay"] >= 0:
            raise ValueError(f"Invalid momentum_decay value: {group['momentum_decay']}")

    _kernel = "nadam"
    _state_order = ("exp_avg", "exp_avg_sq")

    def _state_spec(self, group):
        return {"exp_avg": 0.0, "exp_avg_sq": 0.0}

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        beta1, beta2 = group["betas"]
        gstate["mu_product"] = _core.nadam(
            params, grads, states["exp_avg"], states["exp_avg_sq"], step=step, mu_product=gstate["mu_product"],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"], decoupled_weight_decay=group["decoupled_weight_decay"],
            grad_scale=grad_scale, clip_value=clip_value)
