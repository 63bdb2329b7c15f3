"""svmlight files written for the reader's and the command line's tests (one writer for
every test module)."""

from __future__ import annotations

import numpy as np


def write_svmlight(path, rows, labels):
    """``path`` as ``label index:value ...`` lines, one per row: ``rows`` holds each row's
    pairs as a list of (index, value), written in the order given."""
    with open(path, "w") as f:
        for label, pairs in zip(labels, rows):
            f.write(" ".join([str(label)] + [f"{i}:{v!r}" for i, v in pairs]) + "\n")
    return path


def random_sparse_rows(n_rows, n_features, nnz, seed=0, informative=50):
    """``n_rows`` rows of ``nnz`` distinct sorted 1-based indices in 1..``n_features``: a
    quarter of them from the first ``informative`` indices, whose fixed weights set the 0/1
    label (the sign of the product), the rest anywhere; the last row has index ``n_features``,
    so that the file's width is ``n_features``. Values are normal draws rounded to 1/8 (exact
    in binary, short to write). Returns the rows (lists of (index, value)) and labels."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(informative + 1)
    k = max(1, nnz // 4)
    rows, labels = [], []
    for r in range(n_rows):
        idx = set(rng.choice(np.arange(1, informative + 1), k, replace=False).tolist())
        while len(idx) < nnz:
            idx.add(int(rng.integers(informative + 1, n_features + 1)))
        if r == n_rows - 1 and n_features not in idx:
            idx.discard(max(idx))
            idx.add(n_features)
        pairs = [(i, float(np.round(rng.standard_normal() * 8) / 8)) for i in sorted(idx)]
        rows.append(pairs)
        labels.append(int(sum(v * weights[i] for i, v in pairs if i <= informative) > 0))
    return rows, labels
