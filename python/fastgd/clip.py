"""Gradient clipping, with torch.nn.utils' semantics, in place on NumPy arrays."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fastgd import _core
from fastgd.optim._base import clip_coefficient

__all__ = ["clip_grad_norm_", "clip_grad_value_", "total_norm", "NonFiniteNormError"]


class NonFiniteNormError(FloatingPointError, RuntimeError):
    """The total gradient norm is NaN or Inf (torch raises RuntimeError here)."""


def _as_list(grads: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    return [grads] if isinstance(grads, np.ndarray) else list(grads)


def total_norm(grads: Sequence[np.ndarray] | np.ndarray, norm_type: float = 2.0) -> float:
    r"""The p-norm of all arrays taken as one vector: :math:`(\sum_i \sum_j |g_{ij}|^p)^{1/p}`,
    or :math:`\max |g_{ij}|` for ``norm_type=inf``. Summed in double in fixed-order blocks,
    so the result is the same for any thread count."""
    return _core.total_norm(_as_list(grads), float(norm_type))


def clip_grad_norm_(grads: Sequence[np.ndarray] | np.ndarray, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    r"""Scale the gradients in place so that their total norm is at most ``max_norm``.

    :math:`n = \|g\|_p` over all arrays; every array is multiplied by
    :math:`\min(1, \text{max\_norm} / (n + 10^{-6}))`. Returns :math:`n` (before clipping).
    With ``error_if_nonfinite``, a NaN or Inf norm raises :class:`NonFiniteNormError` and
    nothing is written. Arrays that share memory (the same array twice, overlapping views)
    raise :class:`ValueError`, nothing written: they would be scaled twice.
    """
    grads = _as_list(grads)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    n = _core.total_norm(grads, float(norm_type))
    if error_if_nonfinite and not math.isfinite(n):
        raise NonFiniteNormError(
            f"The total norm of order {norm_type} for gradients is non-finite, so it cannot be clipped. "
            "To disable this error and scale the gradients by the non-finite norm anyway, set "
            "error_if_nonfinite=False")
    _core.scale_(grads, clip_coefficient(max_norm, n))
    return n


def clip_grad_value_(grads: Sequence[np.ndarray] | np.ndarray, clip_value: float) -> None:
    """Clamp every gradient element in place to ``[-clip_value, clip_value]`` (NaN stays NaN).
    Arrays that share memory raise :class:`ValueError`, nothing written."""
    _core.clamp_(_as_list(grads), float(clip_value))
