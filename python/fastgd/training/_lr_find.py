"""lr_find: the learning-rate range test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastgd._plotting import axes_for
from fastgd.clip import total_norm
from fastgd.optim.registry import get_optimizer
from fastgd.shuffling import permutation
from fastgd.training._common import LossAndGrad, as_data, grad_list, n_rows, param_list, positive_int

__all__ = ["lr_find", "LRFinderResult"]



@dataclass
class LRFinderResult:
    """What :func:`lr_find` saw: ``lrs`` and the smoothed ``losses`` at them (and the
    ``raw_losses``), and ``suggestion``, the lr where the smoothed loss falls fastest
    (``None`` if too few steps were taken)."""

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float | None
    raw_losses: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def __repr__(self) -> str:
        """One line (a notebook shows this, never the arrays): the steps, the range of lr,
        the suggestion and the lowest smoothed loss."""
        parts = [f"{len(self.lrs)} steps"]
        if len(self.lrs):
            parts.append(f"lr {self.lrs[0]:.3g} to {self.lrs[-1]:.3g}")
        parts.append("suggestion=None" if self.suggestion is None else f"suggestion={self.suggestion:.3g}")
        finite = np.flatnonzero(np.isfinite(self.losses))
        if len(finite):
            best = finite[np.argmin(self.losses[finite])]
            parts.append(f"lowest loss {self.losses[best]:.4g} at lr {self.lrs[best]:.3g}")
        return f"LRFinderResult({', '.join(parts)})"

    def plot(self, path: Any = None, ax: Any = None) -> Any:
        """Smoothed loss against lr (log x-axis), the suggestion marked. With ``path``, saves
        the figure. Returns the figure. Needs matplotlib."""
        fig, ax = axes_for(ax, path, "LRFinderResult.plot")
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed)")
        if self.suggestion is not None:
            i = int(np.argmin(np.abs(np.log(self.lrs) - math.log(self.suggestion))))
            ax.plot([self.lrs[i]], [self.losses[i]], "o", color="tab:red",
                    label=f"suggestion: {self.suggestion:.2g}")
            ax.legend()
        if path is not None:
            fig.savefig(path)
        return fig


def lr_find(loss_and_grad: LossAndGrad, params: Sequence[np.ndarray] | np.ndarray, X: Any, y: Any, *,
            optimizer: Any = "adam", min_lr: float = 1e-7, max_lr: float = 10.0, num_steps: int = 100,
            batch_size: int | None = 32, beta: float = 0.98, diverge_factor: float = 4.0,
            random_state: Any = None) -> LRFinderResult:
    r"""The learning-rate range test (Smith 2017, as fastai's ``lr_find``).

    Step :math:`k = 0, \dots, \text{num\_steps} - 1` trains on one mini-batch (drawn
    without replacement, reshuffled when used up) with
    :math:`\eta_k = \text{min\_lr}\,(\text{max\_lr}/\text{min\_lr})^{k/(\text{num\_steps}-1)}`
    and records the smoothed loss
    :math:`\bar\ell_k = a_k / (1 - \beta^{k+1})`, :math:`a_k = \beta a_{k-1} + (1-\beta)\ell_k`.
    It stops early when :math:`\bar\ell_k > \text{diverge\_factor}\cdot\min_{j<k}\bar\ell_j`
    (for a positive best loss) or a loss is not finite. The suggestion is the lr where
    :math:`d\bar\ell / d\log\eta` is lowest, leaving out the first tenth and the last 5
    points, as fastai, when enough remain. ``params`` (and an optimizer instance's state) are
    restored afterwards, so the test leaves no trace.
    """
    params = param_list(params)
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if positive_int("num_steps", num_steps) < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor}")
    X = as_data(X)
    n = n_rows(X, "X")
    if n == 0:
        raise ValueError("X has no samples")
    y = None if y is None else as_data(y)
    bs = n if batch_size is None else min(positive_int("batch_size", batch_size), n)

    opt = get_optimizer(optimizer, params, min_lr)
    saved_state = opt.state_dict() if opt is optimizer else None
    initial = [np.array(p, copy=True) for p in params]
    rng = np.random.default_rng(random_state)
    order, pos = np.arange(0), n  # drawn on the first mini-batch
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    avg, best = 0.0, math.inf
    try:
        for k in range(num_steps):
            lr_k = min_lr * (max_lr / min_lr) ** (k / (num_steps - 1))
            if bs == n:
                Xb, yb = X, y
            else:
                # Whole batches only: a short one would be noisier than the rest.
                if pos + bs > n:
                    order, pos = permutation(rng, n), 0
                idx = order[pos:pos + bs]
                pos += bs
                Xb, yb = X[idx], None if y is None else y[idx]
            loss, grads = loss_and_grad(params, Xb, yb, None)
            loss = float(loss)
            grads = grad_list(grads, params)
            if not math.isfinite(loss):
                break
            avg = beta * avg + (1 - beta) * loss
            smooth = avg / (1 - beta ** (k + 1))
            lrs.append(lr_k)
            losses.append(smooth)
            raw.append(loss)
            if best > 0 and smooth > diverge_factor * best:
                break
            best = min(best, smooth)
            if not math.isfinite(total_norm(grads)):
                break
            # Set for every group: the test drives the lr itself, whatever the optimizer's step.
            for group in opt.param_groups:
                group["lr"] = lr_k
            opt.step(grads)
    finally:
        for p, p0 in zip(params, initial):
            np.copyto(p, p0)
        if saved_state is not None:
            opt.load_state_dict(saved_state)
    lrs_a, losses_a = np.array(lrs), np.array(losses)
    return LRFinderResult(lrs_a, losses_a, _steepest(lrs_a, losses_a), np.array(raw))


def _steepest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The lr at the most negative slope of the loss against log(lr)."""
    lo, hi = len(lrs) // 10, len(lrs) - 5
    if hi - lo < 3:  # too short to trim: use every point
        lo, hi = 0, len(lrs)
    if hi - lo < 2:
        return None
    slope = np.gradient(losses[lo:hi], np.log(lrs[lo:hi]))
    return float(lrs[lo + int(np.argmin(slope))])
