"""Stochastic gradient descent, with momentum and Nesterov momentum."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent (torch.optim.SGD: same names, defaults and trajectory).

    For each step :math:`t` with gradient :math:`g_t` (clipped first if asked):

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t \\
        g &\leftarrow g + \lambda\,\theta_{t-1} \quad (\lambda = \text{weight\_decay} \ne 0) \\
        b_t &\leftarrow g \text{ if } t = 1 \text{ else } \mu\, b_{t-1} + (1 - \tau)\, g
            \quad (\mu = \text{momentum} \ne 0,\ \tau = \text{dampening}) \\
        g &\leftarrow g + \mu\, b_t \text{ if nesterov else } b_t \\
        \theta_t &\leftarrow \theta_{t-1} - \gamma\, g \quad (\gamma = \text{lr})

    Args:
        params: arrays (updated in place) or parameter-group dicts.
        lr: learning rate (default 1e-3).
        momentum: momentum factor (default 0).
        dampening: dampening for momentum (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: maximize the objective instead of minimizing it.
        clip_norm, clip_norm_type, clip_value: clipping fused into the step (see Optimizer).
        nonfinite: "ignore", "skip" or "error" for a step with a NaN or Inf gradient (see Optimizer).

    State per parameter: ``momentum_buffer`` (when momentum != 0).
    """

    def __init__(self, params: Any, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        if group["momentum"] < 0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    _kernel = "sgd"
    _state_order = ("momentum_buffer",)

    def _state_spec(self, group):
        return {"momentum_buffer": 0.0} if group["momentum"] != 0 else {}

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        # The buffer starts as the first gradient it sees (torch), also when momentum is
        # switched on mid-run: the kernel does that on its "step 1".
        _core.sgd(params, grads, states.get("momentum_buffer"),
                  step=1 if "momentum_buffer" in created else step, lr=group["lr"],
                  momentum=group["momentum"], dampening=group["dampening"],
                  weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                  grad_scale=grad_scale, clip_value=clip_value)
