r"""Losses of a model's raw outputs: value and gradient, and the second derivatives Newton needs.

Every loss is ``loss(z, y, sample_weight=None) -> (value, dz)``: the sample-weighted mean

.. math::

    L(z) = \frac{\sum_i w_i\, \ell(z_i, y_i)}{\sum_i w_i}, \qquad
    \frac{\partial L}{\partial z_i} = \frac{w_i}{\sum_j w_j}\, \ell'(z_i, y_i)

(plain mean without weights), ``value`` a float and ``dz`` an array shaped as ``z``. The
gradient with respect to a linear model's weights is then ``dz.T @ X``. A batch whose
weights are all zero has no mean; it is taken as ``(0.0, zeros)``, so it changes nothing.

``*_hessian(z, y, sample_weight=None)`` gives the second derivatives with the same weighting:
one number per sample for a scalar output, a ``(K, K)`` block per sample for softmax.

Nothing here overflows: the logistic and softmax losses go through log-sum-exp, so logits of
any finite size give finite values without warnings.

:data:`LOSSES` maps each name to a :class:`Loss` (the function, its Hessian if any, and
which estimators take it): the one table of losses. The estimators' ``loss=`` choices
(:func:`estimator_losses`), the loss a classifier trains with for several classes
(:func:`training_loss`), the command line's ``--loss`` and the fused C++ objective's names all
follow it; a new loss is its function here, its entry in :data:`LOSSES` and, for the fused
linear objective, its case in the C++ kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "squared_error", "squared_error_hessian", "huber", "log_loss", "log_loss_hessian",
    "softmax_cross_entropy", "softmax_cross_entropy_hessian", "hinge", "hinge_ovr", "sigmoid", "softmax", "Loss",
    "LOSSES", "get_loss", "estimator_losses", "training_loss",
]


def _weights(z: np.ndarray, y: np.ndarray, sample_weight: ArrayLike | None) -> np.ndarray | None:
    """The per-sample factors w_i / sum(w) (None: 1/n each), after checking the shapes."""
    n = z.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"z has {n} samples but y has {y.shape[0]}")
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=z.dtype if z.dtype.kind == "f" else np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({n},)")
    total = w.sum()
    # All-zero weights: the batch counts for nothing (see the module docstring).
    return w / total if total != 0 else np.zeros_like(w)


def _mean(values: np.ndarray, w: np.ndarray | None) -> float:
    if values.shape[0] == 0:
        return 0.0
    return float(values.mean() if w is None else values @ w)


def _scale(d: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Per-sample derivatives times w_i / sum(w) (or 1/n), along the first axis."""
    if w is None:
        return d / max(d.shape[0], 1)
    return d * (w if d.ndim == 1 else w.reshape((-1,) + (1,) * (d.ndim - 1)))


def _float(z: ArrayLike) -> np.ndarray:
    z = np.asarray(z)
    return z if z.dtype.kind == "f" else z.astype(np.float64)


def squared_error(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> tuple[float, np.ndarray]:
    r"""Half the squared error, as scikit-learn's ``SGDRegressor(loss="squared_error")``.

    .. math:: \ell(z, y) = \tfrac12 (z - y)^2, \qquad \ell' = z - y, \qquad \ell'' = 1

    Several targets (``z`` and ``y`` of shape (n, K)): a sample's loss is the sum of its K
    outputs', so that each output's derivative is that of its column alone.
    """
    z = _float(z)
    y = np.asarray(y, dtype=z.dtype)
    w = _weights(z, y, sample_weight)
    r = z - y
    per_sample = 0.5 * r * r
    if per_sample.ndim == 2:
        per_sample = per_sample.sum(axis=1)
    return _mean(per_sample, w), _scale(r, w)


def squared_error_hessian(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> np.ndarray:
    """Second derivatives of :func:`squared_error`: w_i / sum(w) (1/n without weights)."""
    z = _float(z)
    w = _weights(z, np.asarray(y), sample_weight)
    return _scale(np.ones_like(z), w)


def huber(z: ArrayLike, y: ArrayLike,
          sample_weight: ArrayLike | None = None, delta: float = 1.0) -> tuple[float, np.ndarray]:
    r"""Huber loss: quadratic for residuals up to ``delta``, linear beyond (robust to outliers).

    .. math::

        \ell(z, y) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
            \delta\,(|r| - \tfrac12 \delta) & |r| > \delta \end{cases}, \quad r = z - y,
        \qquad \ell' = \operatorname{clip}(r, -\delta, \delta)

    scikit-learn's ``SGDRegressor(loss="huber", epsilon=delta)``.
    """
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    z = _float(z)
    y = np.asarray(y, dtype=z.dtype)
    w = _weights(z, y, sample_weight)
    r = z - y
    a = np.abs(r)
    values = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return _mean(values, w), _scale(np.clip(r, -delta, delta), w)


def _softplus(z: np.ndarray) -> np.ndarray:
    """``log(1 + exp(z))`` without overflow: ``max(z, 0) + log1p(exp(-|z|))``."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def sigmoid(z: ArrayLike) -> np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow: exp is only taken of ``-|z|``."""
    z = _float(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_loss(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> tuple[float, np.ndarray]:
    r"""Binary cross-entropy from logits, targets ``y`` in {0, 1} (or probabilities in [0, 1]).

    .. math::

        \ell(z, y) = \log(1 + e^{z}) - y\,z
            = -y \log\sigma(z) - (1 - y)\log(1 - \sigma(z)),
        \qquad \ell' = \sigma(z) - y, \qquad \ell'' = \sigma(z)\,(1 - \sigma(z))

    with :math:`\sigma(z) = 1 / (1 + e^{-z})`; :math:`\log(1 + e^z)` is computed as
    :math:`\max(z, 0) + \log(1 + e^{-|z|})`, so no logit overflows.
    """
    z = _float(z)
    y = np.asarray(y, dtype=z.dtype)
    w = _weights(z, y, sample_weight)
    return _mean(_softplus(z) - y * z, w), _scale(sigmoid(z) - y, w)


def log_loss_hessian(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> np.ndarray:
    r"""Second derivatives of :func:`log_loss`: :math:`\sigma(z_i)(1 - \sigma(z_i))\, w_i / \sum w`."""
    z = _float(z)
    w = _weights(z, np.asarray(y), sample_weight)
    p = sigmoid(z)
    return _scale(p * (1.0 - p), w)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def softmax(z: ArrayLike) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so that exp never overflows."""
    return np.exp(_log_softmax(_float(z)))


def _labels(y: ArrayLike, n_classes: int, who: str = "softmax_cross_entropy") -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise ValueError(f"{who} needs integer class labels 0..K-1")
    y = y.astype(np.intp)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    return y


def softmax_cross_entropy(z: ArrayLike, y: ArrayLike,
                          sample_weight: ArrayLike | None = None) -> tuple[float, np.ndarray]:
    r"""Multinomial cross-entropy from logits ``z`` of shape (n, K), integer labels ``y`` in [0, K).

    .. math::

        \ell(z, y) = \log \sum_k e^{z_k} - z_y, \qquad
        \frac{\partial \ell}{\partial z_k} = p_k - [k = y], \qquad
        \frac{\partial^2 \ell}{\partial z_k \partial z_l} = p_k [k = l] - p_k p_l

    with :math:`p = \operatorname{softmax}(z)`; the log-sum-exp is taken after subtracting
    the row maximum.
    """
    z = _float(z)
    if z.ndim != 2:
        raise ValueError(f"softmax_cross_entropy needs logits of shape (n, K), got {z.shape}")
    y = _labels(y, z.shape[1])
    w = _weights(z, y, sample_weight)
    logp = _log_softmax(z)
    rows = np.arange(z.shape[0])
    dz = np.exp(logp)
    dz[rows, y] -= 1.0
    return _mean(-logp[rows, y], w), _scale(dz, w)


def softmax_cross_entropy_hessian(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> np.ndarray:
    r"""Second derivatives of :func:`softmax_cross_entropy`: per sample the (K, K) block
    :math:`(\operatorname{diag}(p_i) - p_i p_i^\top)\, w_i / \sum w`; shape (n, K, K)."""
    z = _float(z)
    w = _weights(z, np.asarray(y), sample_weight)
    p = softmax(z)
    h = -p[:, :, None] * p[:, None, :]
    k = np.arange(z.shape[1])
    h[:, k, k] += p
    return _scale(h, w)


def hinge(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> tuple[float, np.ndarray]:
    r"""Hinge loss of a linear SVM, labels ``y`` in {-1, +1} (0 is read as -1).

    .. math:: \ell(z, y) = \max(0,\ 1 - y z), \qquad \ell' = -y\,[y z < 1]

    (the subgradient 0 at the kink :math:`y z = 1`, as scikit-learn's SGD). Not twice
    differentiable, so there is no Hessian and no probability.
    """
    z = _float(z)
    y = np.asarray(y)
    s = np.where(y > 0, 1.0, -1.0).astype(z.dtype)
    w = _weights(z, s, sample_weight)
    margin = 1.0 - s * z
    active = margin > 0
    return _mean(np.where(active, margin, 0.0), w), _scale(np.where(active, -s, 0.0).astype(z.dtype), w)


def hinge_ovr(z: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> tuple[float, np.ndarray]:
    r"""One-vs-rest hinge loss of a K-class linear SVM: logits ``z`` of shape (n, K), integer
    labels ``y`` in [0, K).

    .. math::

        \ell(z, y) = \sum_k \max(0,\ 1 - s_k z_k), \qquad
        \frac{\partial \ell}{\partial z_k} = -s_k\,[s_k z_k < 1]
        \qquad (s_k = +1 \text{ for } k = y, \text{ else } -1)

    the :func:`hinge` loss of each class against the rest, summed over the classes (what
    :class:`~fastgd.models.LogisticRegression` trains with ``loss="hinge"`` and more than two
    classes). No Hessian, no probability.
    """
    z = _float(z)
    if z.ndim != 2:
        raise ValueError(f"hinge_ovr needs logits of shape (n, K), got {z.shape}")
    y = _labels(y, z.shape[1], "hinge_ovr")
    w = _weights(z, y, sample_weight)
    s = np.where(y[:, None] == np.arange(z.shape[1]), 1.0, -1.0).astype(z.dtype)
    margin = 1.0 - s * z
    active = margin > 0
    return _mean(np.where(active, margin, 0.0).sum(axis=1), w), _scale(np.where(active, -s, 0.0).astype(z.dtype), w)


@dataclass(frozen=True)
class Loss:
    """A named loss: ``fn(z, y, sample_weight) -> (value, dz)`` and, for the smooth ones,
    ``hessian(z, y, sample_weight)``; ``multiclass``: z is (n, K) with integer labels.

    ``estimator`` is the kind of estimator whose ``loss=`` takes the name (``"regressor"`` or
    ``"classifier"``; None for a loss that is only a classifier's form for several classes),
    and ``multiclass_form`` the loss such a classifier trains with when there are more than two
    classes."""

    name: str
    fn: Callable[..., tuple[float, np.ndarray]]
    hessian: Callable[..., np.ndarray] | None = None
    multiclass: bool = False
    estimator: str | None = None
    multiclass_form: str | None = None


LOSSES: dict[str, Loss] = {
    "squared_error": Loss("squared_error", squared_error, squared_error_hessian, estimator="regressor"),
    "huber": Loss("huber", huber, estimator="regressor"),
    "log_loss": Loss("log_loss", log_loss, log_loss_hessian, estimator="classifier",
                     multiclass_form="softmax_cross_entropy"),
    "softmax_cross_entropy": Loss("softmax_cross_entropy", softmax_cross_entropy,
                                  softmax_cross_entropy_hessian, multiclass=True),
    "hinge": Loss("hinge", hinge, estimator="classifier", multiclass_form="hinge_ovr"),
    "hinge_ovr": Loss("hinge_ovr", hinge_ovr, multiclass=True),
}

_ESTIMATORS = ("regressor", "classifier")


def get_loss(name: str) -> Loss:
    """The :class:`Loss` called ``name`` (a key of :data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None


def estimator_losses(estimator: str, *, newton: bool = False) -> tuple[str, ...]:
    """The names an estimator of the kind ``estimator`` (``"regressor"`` or ``"classifier"``)
    takes as ``loss=``, in :data:`LOSSES`'s order; with ``newton``, only those that have second
    derivatives (in their multiclass form too), which Newton's method needs."""
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, _ESTIMATORS))}, got {estimator!r}")

    def smooth(loss: Loss) -> bool:
        forms = [loss] if loss.multiclass_form is None else [loss, LOSSES[loss.multiclass_form]]
        return all(f.hessian is not None for f in forms)

    return tuple(name for name, loss in LOSSES.items()
                 if loss.estimator == estimator and (not newton or smooth(loss)))


def training_loss(name: str, n_outputs: int) -> Loss:
    """The loss a model with ``n_outputs`` output columns trains for ``loss=name``: the
    multiclass form of a classifier's loss for more than one output (``log_loss`` ->
    ``softmax_cross_entropy``, ``hinge`` -> ``hinge_ovr``), else the loss itself."""
    loss = get_loss(name)
    if n_outputs > 1 and loss.multiclass_form is not None:
        return LOSSES[loss.multiclass_form]
    return loss
