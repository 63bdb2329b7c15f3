"""The data set the MPI scripts share: made whole on every rank from one seed, then split
into contiguous shards of unequal size (1001 rows: 501 and 500 on 2 ranks), so that the
padding of a short shard is exercised."""

from __future__ import annotations

import numpy as np


def toy_data():
    """(rng, n, d, X, w_true, logits, y_bin, y_reg); ``rng`` as left after these draws, for
    a script's further draws."""
    rng = np.random.default_rng(0)
    n, d = 1001, 8
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 3.0, d) + np.linspace(-2.0, 2.0, d)
    w_true = rng.standard_normal(d)
    logits = X @ w_true - X[:, 0] * 0.3
    y_bin = (logits + 0.5 * rng.standard_normal(n) > np.median(logits)).astype(np.int64)
    y_reg = X @ w_true + 0.1 * rng.standard_normal(n)
    return rng, n, d, X, w_true, logits, y_bin, y_reg


def shard(n: int, rank: int, size: int) -> tuple[np.ndarray, slice]:
    """The ranks' row bounds and this rank's contiguous slice."""
    bounds = np.linspace(0, n, size + 1).astype(int)
    return bounds, slice(bounds[rank], bounds[rank + 1])
