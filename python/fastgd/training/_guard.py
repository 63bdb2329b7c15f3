"""The guard of :func:`fastgd.train`: divergence detection and the rollback to the last good
point.

The divergence rule is declared once, in C++ (``cpp/include/fastgd/divergence.hpp``): the
linear models' fused epoch applies it between batches, and train's per-step loop asks
``fastgd._core.divergence`` for the same verdict. Here only what follows from a verdict:
the first step's gradient norm the rule measures growth against, the words of the stop
reason, the copy of the last good point and the rollback to it.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from fastgd import _core
from fastgd.training._common import DivergenceWarning, divergence_advice, lr_of

__all__ = ["Guard", "Diverged"]

# The rule's verdicts (fastgd/divergence.hpp), as a stop reason says them.
_SAYS = {
    "loss": "the loss is {loss}",
    "grad_norm": "the gradient norm is {gnorm}",
    "exploded": "the gradient norm exploded to {gnorm:.3g}, over {factor:g} times the first step's {first:.3g}",
}

# How many frames up from Guard.rollback the user's call of fastgd.train is: rollback, the
# driver, the wrapper that agrees on early errors under MPI.
_CALLER = 4


class Diverged(NamedTuple):
    """What diverged (``"(step 12): the loss is nan"``) and the optimizer's step count that the
    advice's learning rate is read at (that of the step that was not kept)."""

    what: str
    opt_steps: int


class Guard:
    """Judges every step by the divergence rule and keeps the point to go back to: the
    parameters and the optimizer's state at the end of the last complete epoch (or as
    training found them), one copy per epoch, small next to an epoch's work."""

    def __init__(self, params: list[np.ndarray], opt: Any, explode_factor: float | None,
                 first_gnorm: float | None) -> None:
        self.params, self.opt, self.explode_factor = params, opt, explode_factor
        # The first step's gradient norm (None until a step is kept): growth is measured by it.
        self.first_gnorm = first_gnorm
        self._good_params = [np.array(p, copy=True) for p in params]
        self._good_state = opt.state_dict()

    def judge(self, loss: float, gnorm: float, step: int) -> str | None:
        """The rule's verdict on run step ``step`` (from 1) said as a stop reason, or None when
        the step may be kept (then a first step's norm becomes the reference)."""
        verdict = _core.divergence(loss, gnorm, self.first_gnorm, self.explode_factor)
        if verdict is None:
            if self.first_gnorm is None:
                self.first_gnorm = gnorm
            return None
        said = _SAYS[verdict].format(loss=loss, gnorm=gnorm, factor=self.explode_factor, first=self.first_gnorm)
        return f"(step {step}): {said}"

    def params_finite(self, step: int) -> Diverged | None:
        """At the end of an epoch (``step`` steps so far): whether every parameter is finite."""
        if all(np.all(np.isfinite(p)) for p in self.params):
            return None
        return Diverged(f"(step {step}): the parameters are not finite", self.opt.step_count)

    def save(self) -> None:
        """The epoch just recorded is the new point to go back to."""
        for g, p in zip(self._good_params, self.params):
            np.copyto(g, p)
        self._good_state = self.opt.state_dict()

    def rollback(self, epoch: int, diverged: Diverged) -> str:
        """Back to the last good point, with a :class:`DivergenceWarning`; returns the stop
        reason. Called by train itself (the warning names train's caller)."""
        lr_next = lr_of(self.opt, diverged.opt_steps)
        for p, g in zip(self.params, self._good_params):
            np.copyto(p, g)
        self.opt.load_state_dict(self._good_state)
        reason = f"diverged at epoch {epoch} {diverged.what}"
        where = f"the end of epoch {epoch - 1}" if epoch > 1 else "their initial values"
        # Only an epoch with finite parameters is saved, so only the initial values can be
        # non-finite: the warning says so rather than promise a usable model.
        if all(np.all(np.isfinite(g)) for g in self._good_params):
            advice = divergence_advice(lr_next)
        else:
            where += ", which are not finite"
            advice = "Start from finite parameters."
        warnings.warn(f"training {reason}; the parameters were restored to {where}. {advice}", DivergenceWarning,
                      stacklevel=_CALLER)
        return reason
