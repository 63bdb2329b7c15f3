"""Small synthetic data sets (pure NumPy, a fixed default seed): for the demo, examples and
tests.

::

    from fastgd import datasets
    X, y = datasets.make_classification(n_samples=2000, n_features=10, n_classes=3)
    X, y = datasets.make_regression(n_samples=500, n_features=5, noise=0.5)
    X, y = datasets.make_sparse_classification(n_samples=10_000)   # scipy.sparse CSR

Dense features are correlated Gaussians with columns of different scales and offsets (so that
standardization matters), and the targets follow a linear model of them: class labels drawn
from a softmax (logistic for two classes) of linear scores, or a linear function plus
Gaussian noise. The sparse set is shaped like text (TF-IDF rows of a Zipf vocabulary, as the
RCV1 corpus), with labels from a sparse linear model (:func:`make_sparse_classification`; it
needs scipy). The same arguments always give the same arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["make_classification", "make_regression", "make_sparse_classification"]


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


def _zipf_cdf(x: np.ndarray, s: float, d: int) -> np.ndarray:
    """CDF of the density proportional to ``x ** -s`` on ``[1, d + 1)``."""
    a = 1.0 - s
    if a == 0.0:
        return np.log(x) / np.log(d + 1.0)
    return (x ** a - 1.0) / ((d + 1.0) ** a - 1.0)


def _zipf_ranks(rng: np.random.Generator, count: int, s: float, d: int) -> np.ndarray:
    """``count`` ranks in ``0..d-1``: ``floor(x) - 1`` with x drawn from the density of
    :func:`_zipf_cdf` by inverting the CDF, in place in float32 (the hot loop of the
    generator: a float64 power of tens of millions of draws costs seconds)."""
    a = 1.0 - s
    u = rng.random(count, dtype=np.float32)
    if a == 0.0:
        u *= np.float32(np.log(d + 1.0))
    else:
        u *= np.float32((d + 1.0) ** a - 1.0)
        np.log1p(u, out=u)
        u *= np.float32(1.0 / a)
    np.exp(u, out=u)
    ranks = u.astype(np.int32)
    del u
    np.clip(ranks, 1, d, out=ranks)  # float32 rounding may land on d + 1
    ranks -= 1
    return ranks


def _tokens_for_terms(terms: np.ndarray, s: float, d: int) -> np.ndarray:
    """Tokens to draw per row so that the expected number of distinct features among them is
    ``terms``: the inverse of ``U(T) = sum_k 1 - (1 - p_k) ** T`` (p_k the probability of
    rank k), interpolated from a geometric grid of T."""
    p = np.diff(_zipf_cdf(np.arange(1, d + 2, dtype=np.float64), s, d))
    log_miss = np.log1p(-np.minimum(p, 1.0 - 1e-12))
    grid = np.unique(np.geomspace(1, 64.0 * d, 128).astype(np.int64))
    distinct = np.array([-np.expm1(t * log_miss).sum() for t in grid])
    return np.maximum(1, np.rint(np.interp(terms, distinct, grid))).astype(np.int64)


def make_sparse_classification(n_samples: int = 400_000, n_features: int = 47_236, *, nnz_per_row: float = 53,
                               zipf: float = 1.1, noise: float = 0.1, random_state: int | None = 0,
                               dtype: npt.DTypeLike = np.float32) -> tuple[Any, np.ndarray]:
    """``(X, y)``: X a ``scipy.sparse.csr_matrix`` of shape (n_samples, n_features) shaped
    like a TF-IDF text corpus (RCV1: 47,236 features, some 50-80 distinct terms per
    document), y labels 0/1 of a sparse linear model. Needs scipy.

    The generator, exactly:

    1. **Vocabulary.** Feature ranks follow a Zipf-like law: rank ``floor(x)`` with x drawn
       from the density proportional to ``x ** -zipf`` on ``[1, n_features + 1)``; rank r is
       column ``perm[r - 1]`` of a random permutation (frequent features are spread over the
       columns).
    2. **Row lengths.** Row i has ``L_i = clip(round(nnz_per_row * exp(0.5 * Z_i - 0.125)),
       1, n_features)`` target distinct features, Z_i standard normal (a lognormal of mean
       ``nnz_per_row`` and a long right tail, as documents' lengths).
    3. **Terms.** Row i draws ``T_i`` tokens from the vocabulary (with replacement), T_i the
       count whose expected number of distinct features is L_i; a feature's term frequency
       tf is the number of its tokens. So frequent features appear in most rows, and
       ``nnz_per_row`` is the mean number of nonzeros per row up to a small sampling error.
    4. **Values.** ``(1 + log tf) * idf`` with ``idf = log((1 + n_samples) / (1 + df)) + 1``
       (df: the rows holding the feature; scikit-learn's smoothed idf), each row then
       divided by its L2 norm. All values are positive and every row has norm 1.
    5. **Labels.** A true weight vector w with 10% of its entries standard normal, the rest
       0: the features drawn without replacement with probabilities proportional to their df
       (topic words are frequent enough to be learned); scores ``z = X @ w`` centred at
       their median and divided by their standard deviation; ``y = 1`` where
       ``z + noise * e > 0``, e standard logistic. ``noise=0`` gives linearly separable
       classes. With the defaults the classes are balanced, and a
       logistic regression fitted to 80% of the rows (scikit-learn's saga) classifies about
       91% of the rest correctly.

    X is canonical CSR (column indices sorted within each row, no duplicates, int32
    indices), ``dtype`` float32 (default) or float64. The same arguments give the same
    arrays. A million rows of 2**20 features take some seconds, and memory at the peak about
    2.5 times that of the matrix returned.
    """
    _check(n_samples, n_features)
    if isinstance(nnz_per_row, bool) or not isinstance(nnz_per_row, (int, float, np.integer, np.floating)) \
            or not 1 <= nnz_per_row <= n_features:
        raise ValueError(f"nnz_per_row must be a number in [1, n_features={n_features}], got {nnz_per_row!r}")
    for name, v in (("zipf", zipf), ("noise", noise)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) \
                or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    import scipy.sparse as sp

    rng = np.random.default_rng(random_state)
    n, d, s = int(n_samples), int(n_features), float(zipf)
    terms = np.clip(np.rint(nnz_per_row * np.exp(0.5 * rng.standard_normal(n) - 0.125)), 1, d)
    tokens = _tokens_for_terms(terms, s, d)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(tokens, out=indptr[1:])
    perm = rng.permutation(d).astype(np.int32)
    columns = perm[_zipf_ranks(rng, int(indptr[-1]), s, d)]
    # scipy sorts each row's indices and sums duplicates in C++: the counts are the tf.
    X = sp.csr_matrix((np.ones(len(columns), dtype), columns, indptr), shape=(n, d))
    del columns
    X.sum_duplicates()
    df = np.bincount(X.indices, minlength=d)
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(dtype)
    v = X.data
    np.log(v, out=v)
    v += dtype.type(1)
    v *= idf[X.indices]
    lengths = np.diff(X.indptr)
    norms = np.sqrt(np.add.reduceat(np.square(v, dtype=np.float64), X.indptr[:-1]))
    v /= np.repeat(norms.astype(dtype), lengths)
    if X.indptr.dtype != np.int32 and X.nnz < 2**31:  # as scipy would build it from scratch
        X.indptr = X.indptr.astype(np.int32)

    # The informative features: a weighted sample without replacement, weights df
    # (Efraimidis-Spirakis: the largest log(u) / df). Chosen uniformly, most would be rare
    # features whose weights no model learns from their few rows, and the best accuracy
    # would be far below that of the true model.
    keys = np.full(d, -np.inf)  # a feature in no row is never drawn
    np.divide(np.log(rng.random(d)), df, out=keys, where=df > 0)
    k = max(1, round(0.1 * d))
    informative = np.sort(np.argpartition(keys, d - k)[d - k:])
    w = np.zeros(d)
    w[informative] = rng.standard_normal(k)
    z = X @ w
    z -= np.median(z)
    z /= max(float(z.std()), np.finfo(np.float64).tiny)
    y = (z + noise * rng.logistic(size=n) > 0).astype(np.int64)
    return X, y
