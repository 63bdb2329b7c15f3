"""Sparse (scipy.sparse CSR) input: its checks and its scale-only standardization."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["is_sparse", "check_csr", "sparse_feature_scale"]


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy.sparse matrix or array (without importing scipy)."""
    return "scipy.sparse" in sys.modules and type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


def check_csr(X: Any, *, dtype: Any = None, name: str = "X", warn_copy: bool = True, finite: bool = True) -> Any:
    import scipy.sparse as sp

    if not sp.issparse(X) or X.format != "csr":
        X = sp.csr_matrix(X)
    if dtype is None:
        dtype = np.float32 if X.dtype == np.float32 else np.float64
    if X.dtype != dtype:
        X = X.astype(dtype)
    if X.indices.dtype != X.indptr.dtype:
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    if finite and not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name} contains NaN or infinity")
    return X


def sparse_feature_scale(X: Any, sw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = X.shape[1]
    w = np.broadcast_to(sw, (X.shape[0],)).astype(np.float64)
    wsum = w.sum()
    rw = np.repeat(w, np.diff(X.indptr))
    s1 = np.bincount(X.indices, weights=rw * X.data, minlength=d)
    s2 = np.bincount(X.indices, weights=rw * X.data.astype(np.float64) ** 2, minlength=d)
    mean = s1 / wsum
    var = np.maximum(s2 / wsum - mean**2, 0.0)
    scale = np.sqrt(var)
    scale[scale == 0] = 1.0
    return np.zeros(d), scale
