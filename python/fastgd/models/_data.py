"""Data preparation and scores the estimators share: standardization, weighted moments,
the validation split for early stopping, and weighted R^2."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastgd import persistence
from fastgd.models._base import first_nonfinite, raise_nonfinite
from fastgd.streaming import DEFAULT_CHUNK_BYTES, RunningMoments, pow2_scale


@persistence.register("dataclass")  # an estimator's private state, stored in model files
@dataclass
class Scaling:
    """x_std = (x - mean) / scale; for regression also y_std = (y - y_mean) / y_scale."""

    mean: np.ndarray
    scale: np.ndarray
    y_mean: float = 0.0
    y_scale: float = 1.0
    standardized: bool = True  # False: the identity (mean 0, scale 1), nothing to compute

    @classmethod
    def identity(cls, d: int) -> Scaling:
        """No standardization of d features: mean 0 and scale 1 as read-only broadcasts of one
        value (two float64 arrays of d values would cost 16 bytes a feature: 16 MiB at 2**20)."""
        return cls(np.broadcast_to(np.float64(0.0), (d,)), np.broadcast_to(np.float64(1.0), (d,)),
                   standardized=False)


# A mean or deviation beyond this comes from moments taken in units of a power of two (the
# column's squares overflow float64; RunningMoments), and X - mean may overflow as well.
_HUGE = 2.0**1000


def centre_and_scale(a: np.ndarray, mean: Any, scale: Any, t64: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``(a - mean) / scale`` into ``out`` (cast "same_kind"), through the float64 scratch
    ``t64`` of ``a``'s shape (which may be ``out``): the standardization of rows of features
    (``mean`` and ``scale`` per column) or of targets (numbers). A column whose mean or scale
    is beyond 2**1000 is computed from ``a``, ``mean`` and ``scale`` divided by a power of two
    near the larger of them, so that ``a - mean`` cannot overflow for values near the float64
    limit; the others (all columns of ordinary data) keep the plain formula, bit for bit."""
    huge = np.maximum(np.abs(mean), scale) > _HUGE
    if not np.any(huge):
        np.subtract(a, mean, out=t64)
        return np.divide(t64, scale, out=out, casting="same_kind")
    with np.errstate(over="ignore", invalid="ignore"):  # the huge columns are done again below
        np.subtract(a, mean, out=t64)
        np.divide(t64, scale, out=out, casting="same_kind")
    if np.ndim(huge) == 0:  # a target
        unit = float(pow2_scale(max(abs(mean), scale)))
        np.divide(a / unit - mean / unit, scale / unit, out=out, casting="same_kind")
        return out
    cols = np.flatnonzero(huge)
    s = pow2_scale(np.maximum(np.abs(mean[cols]), scale[cols]))
    out[:, cols] = (a[:, cols] / s - mean[cols] / s) / (scale[cols] / s)
    return out


def standardized(a: np.ndarray, mean: Any, scale: Any, dtype: Any) -> np.ndarray:
    """``((a - mean) / scale).astype(dtype)``, the same bits (:func:`centre_and_scale`)."""
    t64 = np.empty(a.shape, np.float64)
    return centre_and_scale(a, mean, scale, t64, t64 if np.dtype(dtype) == np.float64 else np.empty(a.shape, dtype))


def weighted_moments(a: np.ndarray, w: np.ndarray, block_bytes: int = DEFAULT_CHUNK_BYTES, *,
                     check: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation along axis 0 (in float64), with a zero (or
    rounding-level) deviation replaced by 1, as StandardScaler does for constant features.

    Computed in one read of ``a`` (fastgd's column statistics kernel, on every thread) over
    blocks of rows of about ``block_bytes`` of ``a``, merged in order by Chan et al.'s
    formulas (:class:`fastgd.streaming.RunningMoments`): a large or memory-mapped ``a`` is
    never converted or centred as a whole, and the bits do not depend on the thread count.
    The blocks are those in which a :class:`fastgd.ChunkStream` reads a memmap of ``a`` by
    default, so both give the same bits.

    ``check``: the name of ``a`` for :func:`fastgd.models._base.check_X`'s error when it holds
    a NaN or an infinity, found in the same read (so that a fit that takes the moments of X
    need not read it once more to check it: ``check_X(X, finite=False)``)."""
    return block_moments(a, w, block_bytes, check=check).mean_std(a.dtype)


def block_moments(a: np.ndarray, w: np.ndarray, block_bytes: int = DEFAULT_CHUNK_BYTES, *,
                  check: str | None = None) -> RunningMoments:
    """The :class:`RunningMoments` of :func:`weighted_moments` (blocks of rows merged)."""
    moments = RunningMoments()
    row = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)
    if not moments.update(a, w, block_rows=max(1, block_bytes // row)) and check is not None:
        raise_nonfinite(a, check, *first_nonfinite(a))
    return moments


def weighted_mean(a: np.ndarray, w: np.ndarray) -> float:
    """``np.average(a, weights=w)``, also for finite values whose weighted sum overflows
    (then from the values divided by a power of two near their largest magnitude)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.average(a, weights=w))
    if math.isfinite(mean) or not np.isfinite(a).all():
        return mean
    s = float(pow2_scale(np.max(np.abs(a))))
    return float(np.average(a / s, weights=w)) * s


def affine(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``X @ coef.T + intercept``; rows where that overflows (the products' sum of a model
    for huge targets, say) are computed again with the model divided by a power of two near
    its largest magnitude, so that only a result beyond the dtype's range is infinite."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = X @ coef.T + intercept
    if np.isfinite(z).all() or not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        return z
    rows = ~np.isfinite(z).all(axis=1)
    s = float(pow2_scale(max(np.max(np.abs(coef), initial=0.0), np.max(np.abs(intercept), initial=0.0))))
    z[rows] = (X[rows] @ (coef / s).T + intercept / s) * s
    return z


def unscale(z: np.ndarray, scale: Any, mean: Any) -> np.ndarray:
    """``z * scale + mean``, with the same fallback as :func:`affine` where that overflows;
    ``scale`` and ``mean``: numbers, or one per column of a 2-D ``z`` (taken in z's dtype, as
    numbers are)."""
    if np.ndim(scale) or np.ndim(mean):
        scale, mean = np.asarray(scale, z.dtype), np.asarray(mean, z.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = z * scale + mean
    if np.isfinite(out).all() or not np.isfinite(z).all():
        return out
    s = float(pow2_scale(max(float(np.max(np.abs(scale))), float(np.max(np.abs(mean))))))
    return (z * (scale / s) + mean / s) * s


def stratified_split(n: int, fraction: float, rng: np.random.Generator,
                      strata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Random (per-class for classifiers) train/validation indices."""
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == c) for c in np.unique(strata)]
    val = []
    for g in groups:
        g = rng.permutation(g)
        val.append(g[:int(round(fraction * len(g)))])
    val_idx = np.sort(np.concatenate(val)).astype(np.intp)
    if len(val_idx) == 0 or len(val_idx) == n:
        raise ValueError(f"validation_fraction={fraction} of {n} samples leaves "
                         f"{'no' if len(val_idx) == 0 else 'all'} samples for validation; early_stopping needs "
                         "both a training and a validation set")
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    return train_idx, val_idx


def weighted_median(a: np.ndarray, w: np.ndarray) -> float:
    """The smallest value with at least half of the total weight at or below it."""
    order = np.argsort(a, kind="stable")
    cum = np.cumsum(w[order])
    return float(a[order][np.searchsorted(cum, 0.5 * cum[-1])])


def r2_score(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    """1 - weighted residual sum of squares / weighted total sum of squares (1 or 0 for a
    constant y, as scikit-learn's r2_score); for 2-D ``y`` and ``pred`` (several targets),
    the mean of the columns' (its ``multioutput="uniform_average"``)."""
    if np.ndim(y) == 2:
        return float(np.mean([r2_score(y[:, k], pred[:, k], w) for k in range(y.shape[1])]))
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        num = float(w @ (y - pred) ** 2)
        den = float(w @ (y - np.average(y, weights=w)) ** 2)
    if not (math.isfinite(num) and math.isfinite(den)) and np.isfinite(y).all() and np.isfinite(pred).all():
        # Finite values whose squares overflow: the ratio in units of a power of two.
        s = float(pow2_scale(max(np.max(np.abs(y), initial=0.0), np.max(np.abs(pred), initial=0.0))))
        y, pred = y / s, pred / s
        num = float(w @ (y - pred) ** 2)
        den = float(w @ (y - np.average(y, weights=w)) ** 2)
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return 1.0 - num / den


def unit_weights(n: int, dtype: Any = np.float64) -> np.ndarray:
    """The weights of an unweighted fit: ``n`` ones as a read-only broadcast of one value
    (no array of n elements)."""
    return np.broadcast_to(np.ones(1, dtype), (n,))


def is_unit_weights(w: np.ndarray) -> bool:
    """Whether ``w`` is :func:`unit_weights`' (checked without a pass over it)."""
    return w.ndim == 1 and w.strides == (0,) and len(w) > 0 and float(w[0]) == 1.0
