"""Adam and AdamW: bias-corrected first and second moment estimates."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015), AMSGrad (Reddi et al. 2018), as torch.optim.Adam.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t \\
        \theta &\leftarrow \theta_{t-1}(1 - \gamma\lambda) \text{ if decoupled\_weight\_decay,
            else } g \leftarrow g + \lambda\,\theta_{t-1} \quad (\lambda \ne 0) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad else } v_t \\
        \theta_t &= \theta - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False.
    State per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (amsgrad).
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    _kernel = "adam"
    _state_order = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def _state_spec(self, group):
        spec = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if group["amsgrad"]:
            spec["max_exp_avg_sq"] = 0.0
        return spec

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        beta1, beta2 = group["betas"]
        _core.adam(params, grads, states["exp_avg"], states["exp_avg_sq"], states.get("max_exp_avg_sq"),
                   step=step, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                   weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
                   decoupled_weight_decay=group["decoupled_weight_decay"], grad_scale=grad_scale,
                   clip_value=clip_value)


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as torch.optim.AdamW.

    The update is :class:`Adam`'s with ``decoupled_weight_decay=True``:
    :math:`\theta \leftarrow \theta_{t-1}(1 - \gamma\lambda)` before the Adam step, instead
    of adding :math:`\lambda\theta` to the gradient.

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)
