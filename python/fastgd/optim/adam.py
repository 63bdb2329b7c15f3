"""Adam and AdamW: bias-corrected first and second moment estimates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class Adam(Optimizer, rule="adam"):
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
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False,
                 **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)


class AdamW(Adam, rule="adam"):
    r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as torch.optim.AdamW.

    The update is :class:`Adam`'s with ``decoupled_weight_decay=True``:
    :math:`\theta \leftarrow \theta_{t-1}(1 - \gamma\lambda)` before the Adam step, instead
    of adding :math:`\lambda\theta` to the gradient.

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, **step_options)
