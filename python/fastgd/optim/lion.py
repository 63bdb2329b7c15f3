"""Lion: the sign of an interpolated momentum."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgd.optim._base import Optimizer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fastgd.optim._base import StepOptions


class Lion(Optimizer, rule="lion"):
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
    AdamW's. sign(0) = 0, and sign(NaN) = NaN as in ``np.sign`` (``torch.sign`` gives 0), so a
    NaN gradient or momentum reaches the parameter.
    """

    def __init__(self, params: Any, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0, *, maximize: bool = False, **step_options: Unpack[StepOptions]) -> None:
        super().__init__(params, locals(), **step_options)
