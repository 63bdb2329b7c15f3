"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer, resolve_options

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class SGD(Optimizer, rule="sgd"):
    r"""Stochastic gradient descent (torch.optim.SGD: same names, defaults and trajectory).

    For each step :math:`t` with gradient :math:`g_t` (clipped first if asked):

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t \\
        g &\leftarrow g + \lambda\,\theta_{t-1} \quad (\lambda = \text{weight\_decay} \ne 0) \\
        b_t &\leftarrow g \text{ if } t = 1 \text{ else } \mu\, b_{t-1} + (1 - \tau)\, g
            \quad (\mu = \text{momentum} \ne 0,\ \tau = \text{dampening}) \\
        g &\leftarrow g + \mu\, b_t \text{ if nesterov else } b_t \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma\, g \quad (\gamma = \text{lr})

    As torch's, a momentum buffer starts as the gradient whenever it is new (the first step,
    momentum switched on, or the parameter's ``state`` emptied); one assigned through
    ``state`` is used as given.

    Args:
        params: arrays (updated in place) or parameter-group dicts.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: maximize the objective instead of minimizing it.
    """

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)

    def _validate_group(self, group: Mapping[str, Any], index: int) -> None:
        super()._validate_group(group, index)
        group = resolve_options(group, 0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
