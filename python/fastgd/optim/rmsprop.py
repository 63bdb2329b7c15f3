"""RMSprop: steps scaled by a running mean of squared gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class RMSprop(Optimizer, rule="rmsprop"):
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
    """

    def __init__(self, params: Any, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False, **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
