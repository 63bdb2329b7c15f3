"""Adagrad: per-coordinate step sizes from the accumulated squared gradients."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al. 2011), as torch.optim.Adagrad.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        \tilde\gamma &= \gamma / (1 + (t - 1)\,\eta) \quad (\eta = \text{lr\_decay}) \\
        s_t &= s_{t-1} + g^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta_t &= \theta_{t-1} - \tilde\gamma\, g / (\sqrt{s_t} + \epsilon)

    Defaults: lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10.
    State per parameter: ``sum``.
    """

    def __init__(self, params: Any, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False,
                 clip_norm: float | None = None, clip_value: float | None = None,
                 clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    def _validate_group(self, group):
        super()._validate_group(group)
        if not group["lr_decay"] >= 0:
            raise ValueError(f"Invalid lr_decay value: {group['lr_decay']}")
        if not group["initial_accumulator_value"] >= 0:
            raise ValueError(f"Invalid initial_accumulator_value value: {group['initial_accumulator_value']}")

    _kernel = "adagrad"
    _state_order = ("sum",)

    def _state_spec(self, group):
        return {"sum": float(group["initial_accumulator_value"])}

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        _core.adagrad(params, grads, states["sum"], step=step, lr=group["lr"], lr_decay=group["lr_decay"],
                      weight_decay=group["weight_decay"], eps=group["eps"], grad_scale=grad_scale,
                      clip_value=clip_value)
