"""The orders in which a training epoch visits the samples: the one table of ``shuffle`` modes,
and the permutation that ``shuffle=True`` draws.

:func:`fastgd.train`, the estimators' ``shuffle=`` and the streamed data's shuffle buffer all
take one of these values, checked by :func:`check_shuffle`; the estimators' docstrings name
them through :func:`shuffle_choices`. Every permutation of samples they draw comes from
:func:`permutation`.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

from fastgd import _core

__all__ = ["SHUFFLE_MODES", "ShuffleMode", "check_shuffle", "permutation", "shuffle_choices"]

ShuffleMode = Union[bool, str]

# value -> what an epoch does with it.
SHUFFLE_MODES: dict[ShuffleMode, str] = {
    True: "samples: a new random order of the samples every epoch",
    "batches": "contiguous batches in a random order (cheaper reads, a biased order on sorted data)",
    False: "the samples in their stored order",
}


def shuffle_choices() -> str:
    """The modes as a docstring's type line gives them: ``{True, "batches", False}``."""
    return "{" + ", ".join(f'"{m}"' if isinstance(m, str) else repr(m) for m in SHUFFLE_MODES) + "}"


def check_shuffle(value: Any, name: str = "shuffle") -> ShuffleMode:
    """``value`` as a mode of :data:`SHUFFLE_MODES` (NumPy booleans too); else a ValueError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value in SHUFFLE_MODES:
        return value
    raise ValueError(f"{name} must be True (samples), 'batches' (contiguous batches in a random order) or False, "
                     f"got {value!r}")


def permutation(rng: np.random.Generator, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """A uniformly random permutation of ``0..n-1`` (int64), into ``out`` (an int64 array of
    ``n`` elements, rewritten; None: a new one), determined by one draw from ``rng``: its seed
    for fastgd's compiled shuffle (``fastgd._core.permutation_``: xoshiro256++, Lemire's
    unbiased bounded draws, Fisher-Yates), several times faster than ``rng.permutation(n)``
    and the same bits on every CPU. So ``rng``'s state still fixes every permutation, and
    advances by one draw per permutation whatever ``n`` is."""
    seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    if out is None:
        out = np.empty(n, np.int64)
    elif out.shape != (n,) or out.dtype != np.int64:
        raise ValueError(f"out must be an int64 array of shape ({n},), got {out.dtype} of shape {out.shape}")
    _core.permutation_(seed, out)
    return out
