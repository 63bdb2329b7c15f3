"""Lion: the sign of an interpolated momentum."""

from __future__ import annotations

from typing import Any

from fastgd import _core
from fastgd.optim._base import Optimizer


class Lion(Optimizer):
    r"""Lion, EvoLved Sign Momentum (Chen et al. 2023, "Symbolic Discovery of Optimization
    Algorithms", Algorithm 2). torch.optim has no Lion; defaults follow the paper.

    .. math::

        g &\leftarrow -g_t \text{ if maximize else } g_t \\
        \theta &\leftarrow \theta_{t-1}(1 - \gamma\lambda) \\
        c_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g \\
        \theta_t &= \theta - \gamma\, \operatorname{sign}(c_t) \\
        m_t &= \beta_2 m_{t-1} + (1 - \beta_2)\, g

    Defaults: lr=1e-4, betas=(0.9, 0.99), weight_decay=0 (decoupled, as in the paper).
    The paper suggests a learning rate 3-10x smaller and a weight decay 3-10x larger than
    AdamW's. State per parameter: ``exp_avg`` (m). sign(0) = 0, and sign(NaN) = NaN as in
    ``np.sign`` (``torch.sign`` gives 0), so a NaN gradient or momentum reaches the parameter.
    """

    def __init__(self, params: Any, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False, clip_norm: float | None = None,
                 clip_value: float | None = None, clip_norm_type: float = 2.0, nonfinite: str = "ignore") -> None:
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, clip_norm=clip_norm, clip_value=clip_value,
                         clip_norm_type=clip_norm_type, nonfinite=nonfinite)

    _kernel = "lion"
    _state_order = ("exp_avg",)

    def _state_spec(self, group):
        return {"exp_avg": 0.0}

    def _run(self, group, params, grads, states, step, gstate, grad_scale, clip_value, created):
        beta1, beta2 = group["betas"]
        _core.lion(params, grads, states["exp_avg"], step=step, lr=group["lr"], beta1=beta1, beta2=beta2,
                   weight_decay=group["weight_decay"], grad_scale=grad_scale, clip_value=clip_value)
