"""Adagrad: per-coordinate step sizes from the accumulated squared gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class Adagrad(Optimizer, rule="adagrad"):
    r"""Adagrad (Duchi et al. 2011), as torch.optim.Adagrad.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t;\quad
            g \leftarrow g + \lambda\,\theta_{t-1} \ (\lambda \ne 0) \\
        \tilde\gamma &= \gamma / (1 + (t - 1)\,\eta) \quad (\eta = \text{lr\_decay}) \\
        s_t &= s_{t-1} + g^2 \quad (s_0 = \text{initial\_accumulator\_value}) \\
        \theta_t &= \theta_{t-1} - \tilde\gamma\, g / (\sqrt{s_t} + \epsilon)

    Defaults: lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10.
    """

    def __init__(self, params: Any, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False,
                 **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
