r"""Newton's method for a linear model's smooth convex objective (``solver="newton"``).

The objective over the weights :math:`W` (K × d, one row per output) and intercepts
:math:`b` (K) is

.. math:: F(W, b) = L(X W^\top + b) + \tfrac{\lambda}{2} \|W\|_F^2

with :math:`L` a sample-weighted mean loss of :mod:`fastgd.losses` that has second
derivatives (squared error, log loss, softmax cross-entropy). With :math:`A = [X, 1]` and
:math:`V = [W, b]`, each iteration builds the gradient :math:`G = \partial L^\top A +
\lambda [W, 0]` and the Hessian, block :math:`(k, l)` of which is
:math:`A^\top \operatorname{diag}(h_{\cdot k l}) A + \lambda\,[k = l]\,\operatorname{diag}(1, \dots, 1, 0)`,
solves :math:`(H + \epsilon I)\,\Delta = -G` (a tiny ridge :math:`\epsilon` keeps singular
Hessians solvable) and steps :math:`V \leftarrow V + t\Delta` with the largest
:math:`t \in \{1, \frac12, \frac14, \dots\}` that passes Armijo's test
:math:`F(V + t\Delta) \le F(V) + 10^{-4}\, t\, \langle G, \Delta\rangle` (up to a few units of
rounding of :math:`F`).

It stops when :math:`\|G\|_\infty \le` ``gtol`` (the exact optimum, to rounding), when no
step can decrease :math:`F` in floating point any more, or after ``max_iter`` iterations.
The Hessian has :math:`(K(d+1))^2` entries: this is for small and medium ``d``.

Softmax logits are unchanged by adding one constant to every class, so the Hessian is
singular along that shift (of the intercepts, and of the weights without a penalty); the
step is kept free of it, so the returned intercepts (and unpenalized weights) sum to zero
over the classes. Without a penalty, linearly separable classes have no minimizer (the
weights would grow without bound): the solver stops as soon as its model separates the
training data, with a :class:`ConvergenceWarning`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastgd.history import History
from fastgd.models._base import ConvergenceWarning, warn

__all__ = ["newton", "NewtonResult"]

_ARMIJO = 1e-4
_MAX_HALVINGS = 60


@dataclass
class NewtonResult:
    """``W`` (K, d) and ``b`` (K,) in float64, iterations taken, whether the gradient
    tolerance was met, and the per-iteration :class:`History`."""

    W: np.ndarray
    b: np.ndarray
    n_iter: int
    converged: bool
    history: History


def _hessian(Xa: np.ndarray, h: np.ndarray, K: int) -> np.ndarray:
    """A^T diag(h) A for one output, or the (K(d+1))^2 matrix of blocks for softmax."""
    if K == 1:
        return (Xa * h[:, None]).T @ Xa
    m = Xa.shape[1]
    H = np.empty((K * m, K * m))
    for k in range(K):
        for j in range(k, K):
            block = (Xa * h[:, k, j, None]).T @ Xa
            H[k * m:(k + 1) * m, j * m:(j + 1) * m] = block
            if j != k:
                H[j * m:(j + 1) * m, k * m:(k + 1) * m] = block.T
    return H


def _separated(z: np.ndarray, y: np.ndarray, w: np.ndarray, K: int) -> bool:
    """Whether the model classifies every weighted training sample right, with a margin."""
    live = w > 0
    if K == 1:
        return bool(np.all(((2.0 * y - 1.0) * z)[live] > 0))
    rows = np.arange(z.shape[0])
    own = z[rows, y]
    other = z.copy()
    other[rows, y] = -np.inf
    return bool(np.all((own - other.max(axis=1))[live] > 0))


def _direction(H: np.ndarray, G: np.ndarray, free: np.ndarray | None) -> tuple[np.ndarray, float]:
    """The Newton step ``D`` solving ``(H + ridge) D = -G`` (changed in place: ``H``), kept
    free of the softmax shifts (``free``: their columns, None for one output), and its slope
    ``<G, D>``; the gradient step where the Hessian gives no descent direction."""
    # The tiny ridge makes singular Hessians (collinear features, softmax shifts, separable
    # data) solvable; it is far below any curvature that matters.
    ridge = 1e-12 * max(1.0, float(np.max(np.abs(np.diag(H)))))
    H[np.diag_indices_from(H)] += ridge
    g = G.ravel()
    try:
        step = np.linalg.solve(H, -g)
    except np.linalg.LinAlgError:
        step = np.linalg.lstsq(H, -g, rcond=None)[0]
    D = step.reshape(G.shape)
    if free is not None:
        D[:, free] -= D[:, free].mean(axis=0)
    slope = float(np.sum(G * D))
    if not slope < 0:  # not a descent direction: the Hessian is numerically useless
        D, slope = -G, -float(np.sum(G * G))
    return D, slope


def _line_search(V: np.ndarray, D: np.ndarray, F: float, slope: float, outputs: Callable,
                 objective: Callable) -> tuple[float, np.ndarray, np.ndarray, float] | None:
    """Backtracking from the full step: the largest ``t`` in 1, 1/2, 1/4, ... that passes
    Armijo's test, with ``(t, V + t D, its outputs, its objective)``; None when none does."""
    # Near the optimum the decrease falls below F's rounding: a few ulps of slack let the
    # full step (quadratic convergence) through instead of random tiny ones.
    slack = 8 * np.finfo(np.float64).eps * abs(F)
    t = 1.0
    for _ in range(_MAX_HALVINGS):
        V_new = V + t * D
        z_new = outputs(V_new)
        F_new = objective(V_new, z_new)
        if F_new <= F + _ARMIJO * t * slope + slack:
            return t, V_new, z_new, F_new
        t *= 0.5
    return None


def newton(loss: Callable, hessian: Callable, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray,
           W0: np.ndarray, b0: np.ndarray, *, l2: float = 0.0, max_iter: int = 100, gtol: float = 1e-10,
           classification: bool = False) -> NewtonResult:
    """Minimize ``loss(X W^T + b, y, w) + l2/2 ||W||^2`` from ``(W0, b0)``.

    ``loss(z, y, w) -> (value, dz)`` and ``hessian(z, y, w)`` are of :mod:`fastgd.losses`
    (z is (n,) for K = 1, else (n, K)). ``classification``: y are labels (0/1 for K = 1), so
    that separable data without a penalty can be told apart from slow convergence.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    n, d = X.shape
    K = W0.shape[0]
    m = d + 1
    Xa = np.empty((n, m))
    Xa[:, :d] = X
    Xa[:, d] = 1.0
    V = np.empty((K, m))
    V[:, :d] = W0
    V[:, d] = b0
    # The directions that do not change a softmax: a shift of every class's intercept, and
    # of every class's weights when they are not penalized.
    free = np.zeros(m, dtype=bool)
    free[d] = True
    if l2 == 0:
        free[:] = True
    softmax = K > 1
    if softmax:
        V[:, free] -= V[:, free].mean(axis=0)
    penalty_mask = np.ones(m)
    penalty_mask[d] = 0.0

    def outputs(V: np.ndarray) -> np.ndarray:
        z = Xa @ V.T
        return z[:, 0] if K == 1 else z

    def objective(V: np.ndarray, z: np.ndarray) -> float:
        return loss(z, y, w)[0] + 0.5 * l2 * float(np.sum(V[:, :d] ** 2))

    history = History()
    t0 = time.perf_counter()
    z = outputs(V)
    F = objective(V, z)
    converged, reason, it = False, None, 0
    while True:
        _, dz = loss(z, y, w)
        dz = dz.reshape(n, K)
        G = dz.T @ Xa + l2 * V * penalty_mask
        gmax = float(np.max(np.abs(G)))
        if gmax <= gtol:
            converged, reason = True, f"converged: gradient inf-norm {gmax:.3g} <= {gtol:g}"
            break
        if classification and l2 == 0 and _separated(z, y, w, K):
            reason = "the classes are linearly separable"
            warn(f"Newton stopped after {it} iterations: the training data are linearly separable, so without "
                 "a penalty the loss has no minimizer (the coefficients would grow without bound). Use "
                 "penalty='l2' with alpha > 0 for a finite solution.", ConvergenceWarning)
            break
        if it >= max_iter:
            reason = f"reached max_iter={max_iter}"
            warn(f"Newton did not converge in {max_iter} iterations (gradient inf-norm {gmax:.3g} > {gtol:g}); "
                 "increase max_epochs.", ConvergenceWarning)
            break
        H = _hessian(Xa, hessian(z, y, w), K)
        H[np.diag_indices_from(H)] += l2 * np.tile(penalty_mask, K)
        D, slope = _direction(H, G, free if softmax else None)
        found = _line_search(V, D, F, slope, outputs, objective)
        if found is None:
            # No representable decrease: at the optimum to rounding if the predicted
            # decrease is below F's precision.
            converged = -0.5 * slope <= 1e3 * np.finfo(np.float64).eps * max(1.0, abs(F))
            reason = "no further decrease in floating point"
            if not converged:
                warn(f"Newton's line search failed after {it} iterations (gradient inf-norm {gmax:.3g}); "
                     "the problem may be badly conditioned.", ConvergenceWarning)
            break
        it += 1
        t, V, z, F = found
        history.append({"epoch": it, "step": it, "train_loss": F, "lr": t,
                        "grad_norm": float(np.linalg.norm(G)), "time": time.perf_counter() - t0})
    history.stop_reason = reason
    if not math.isfinite(F):  # cannot happen from a finite start, but never return garbage silently
        raise FloatingPointError("Newton's method produced a non-finite objective")
    return NewtonResult(W=np.ascontiguousarray(V[:, :d]), b=V[:, d].copy(), n_iter=it, converged=converged,
                        history=history)
