"""NAdam: Adam with Nesterov momentum."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class NAdam(Optimizer, rule="nadam"):
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
    """

    def __init__(self, params: Any, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False,
                 **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
