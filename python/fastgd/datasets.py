"""Small synthetic data sets (pure NumPy, a fixed default seed): for the demo, examples and
tests.

::

    from fastgd import datasets
    X, y = datasets.make_classification(n_samples=2000, n_features=10, n_classes=3)
    X, y = datasets.make_regression(n_samples=500, n_features=5, noise=0.5)

Features are correlated Gaussians with columns of different scales and offsets (so that
standardization matters), and the targets follow a linear model of them: class labels drawn
from a softmax (logistic for two classes) of linear scores, or a linear function plus
Gaussian noise. The same arguments always give the same arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["make_classification", "make_regression"]


def _check(n_samples: int, n_features: int) -> None:
    for name, v in (("n_samples", n_samples), ("n_features", n_features)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def _features(rng: np.random.Generator, n: int, d: int,
              dtype: npt.DTypeLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Correlated standard normals (a random mixing with unit-norm rows), then per-column
    # scales spanning two orders of magnitude and offsets.
    mix = rng.standard_normal((d, d)) * 0.3 + np.eye(d)
    mix /= np.linalg.norm(mix, axis=1, keepdims=True)
    Z = rng.standard_normal((n, d)) @ mix.T
    scales = 10.0 ** rng.uniform(-1, 1, d)
    offsets = rng.normal(0, 3, d)
    return (Z * scales + offsets).astype(dtype), scales, offsets


def make_classification(n_samples: int = 1000, n_features: int = 20, n_classes: int = 2, *, class_sep: float = 1.5,
                        random_state: int | None = 0,
                        dtype: npt.DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: X of shape (n_samples, n_features), y integer labels ``0..n_classes-1``.

    The labels are drawn from ``softmax(class_sep * Z @ W)`` of the standardized features
    ``Z`` and random unit directions ``W`` (a logistic model for two classes), so a linear
    classifier is the right model and its best accuracy is below 1 (a larger ``class_sep``
    separates the classes more).
    """
    _check(n_samples, n_features)
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    rng = np.random.default_rng(random_state)
    X, scales, offsets = _features(rng, n_samples, n_features, np.float64)
    Z = (X - offsets) / scales
    W = rng.standard_normal((n_features, n_classes))
    W /= np.linalg.norm(W, axis=0, keepdims=True)
    logits = 2.0 * class_sep * (Z @ W)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n_samples)[:, None]
    y = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), n_classes - 1).astype(np.int64)
    return X.astype(dtype), y


def make_regression(n_samples: int = 1000, n_features: int = 10, *, noise: float = 0.1, bias: float = 1.0,
                    random_state: int | None = 0, dtype: npt.DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` with ``y = X @ coef + bias + noise * N(0, 1)``, ``coef`` drawn so that each
    feature contributes on the same order (whatever its scale)."""
    _check(n_samples, n_features)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.default_rng(random_state)
    X, scales, offsets = _features(rng, n_samples, n_features, np.float64)
    coef = rng.standard_normal(n_features) / scales
    y = X @ coef + bias + noise * rng.standard_normal(n_samples)
    return X.astype(dtype), y.astype(dtype)
