"""Whether an object is a scipy.sparse matrix, without importing scipy: the one test that the
estimators, their input checks and the chunk streams share."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["is_sparse"]


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy.sparse matrix or array (of any format). Never imports scipy:
    if ``scipy.sparse`` is not loaded, nothing can be one of its matrices."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and bool(sp.issparse(X))
