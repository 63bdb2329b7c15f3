"""RAdam: Adam with the variance of the adaptive step rectified."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class RAdam(Optimizer, rule="radam"):
    r"""RAdam (Liu et al. 2020), as torch.optim.RAdam.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t \\
        \theta &\leftarrow \theta_{t-1}(1 - \gamma\lambda) \text{ if decoupled\_weight\_decay,
            else } g \leftarrow g + \lambda\,\theta_{t-1} \quad (\lambda \ne 0) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g,\quad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g^2,
            \quad \hat m_t = m_t / (1 - \beta_1^t) \\
        \rho_\infty &= 2 / (1 - \beta_2) - 1,\quad
            \rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t) \\
        \text{if } \rho_t > 5:&\quad r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
            {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}},\quad
            \theta_t = \theta - \gamma\, \hat m_t\, r_t \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon} \\
        \text{else}:&\quad \theta_t = \theta - \gamma\, \hat m_t

    Defaults: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False, **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
