"""Adadelta: step sizes from running means of squared gradients and squared updates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class Adadelta(Optimizer, rule="adadelta"):
    r"""Adadelta (Zeiler 2012), as torch.optim.Adadelta.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        v_t &= \rho\, v_{t-1} + (1 - \rho)\, g^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g \\
        u_t &= \rho\, u_{t-1} + (1 - \rho)\, \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma\, \Delta_t

    Defaults: lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.
    """

    def __init__(self, params: Any, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False, **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
