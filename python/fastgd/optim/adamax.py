"""Adamax: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class Adamax(Optimizer, rule="adamax"):
    r"""Adamax (Kingma & Ba 2015, section 7), as torch.optim.Adamax.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g \\
        u_t &= \max(\beta_2 u_{t-1},\ |g| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\, \frac{m_t}{u_t}

    Defaults: lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.
    """

    def __init__(self, params: Any, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False,
                 **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
