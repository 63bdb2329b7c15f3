"""The orders in which a training epoch visits the samples: the one table of ``shuffle`` modes.

:func:`fastgd.train`, the estimators' ``shuffle=`` and the streamed data's shuffle buffer all
take one of these values, checked by :func:`check_shuffle`; the estimators' docstrings name
them through :func:`shuffle_choices`.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np

__all__ = ["SHUFFLE_MODES", "ShuffleMode", "check_shuffle", "shuffle_choices"]

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
