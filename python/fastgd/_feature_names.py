"""Feature names, as scikit-learn's ``validate_data`` handles them, in one place for every
estimator and every way data reaches it (arrays, DataFrames, chunks of either).

A fit on data whose columns have string names (a pandas or polars DataFrame) learns them
as ``feature_names_in_``; later calls (``predict``, ``score``, a ``partial_fit`` that
continues) must give the same names in the same order (ValueError), and scikit-learn's
warnings say when a model fitted with names is given none, or the reverse.

scikit-learn's own ``sklearn.utils.validation.validate_data`` does the work (its feature
name part only: ``skip_check_array=True``, no ``y``, no feature count), so that the names,
the errors and the warnings are exactly its own. fastgd does not require scikit-learn, and
imports it only when names are in play (data with named columns, or a model fitted on such
data); without it (or before its 1.6, which has no ``validate_data``), the string column
names of an object with ``columns`` are learned and checked the same way, with the same
messages.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["check_feature_names", "check_same_names", "feature_names", "learn_feature_names"]


def _validate_data() -> Any:
    """scikit-learn's ``validate_data`` (1.6 and later), or None."""
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:
        return None
    return validate_data


class _StandIn:
    """What ``validate_data(reset=True)`` sets the names on, for a fit to read them."""

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags  # (called by scikit-learn: it is loaded)

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))


def _names_only(validate_data: Any, est: Any, X: Any, reset: bool) -> None:
    """``validate_data``'s feature-name part: learn (``reset``) or check X's names on ``est``."""
    validate_data(est, X, y="no_validation", reset=reset, skip_check_array=True, ensure_2d=False)


def _may_have_names(X: Any) -> bool:
    """Whether ``X`` can carry column names at all (a cheap test, so that plain arrays never
    import scikit-learn): a DataFrame of any library has ``columns`` or the interchange
    protocol."""
    return not isinstance(X, (np.ndarray, list, tuple)) and (hasattr(X, "columns") or hasattr(X, "__dataframe__"))


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of ``X`` as an object array when they are all strings, else None
    (as scikit-learn learns them: a TypeError for a mix of strings and others)."""
    if not _may_have_names(X):
        return None
    validate_data = _validate_data()
    if validate_data is not None:
        # Learned on a stand-in: a fit sets its attributes only once it has succeeded.
        stand_in = _StandIn()
        _names_only(validate_data, stand_in, X, reset=True)
        names: np.ndarray | None = getattr(stand_in, "feature_names_in_", None)
        return names
    columns = getattr(X, "columns", None)
    if columns is None or len(columns) == 0 or not all(isinstance(c, str) for c in columns):
        return None
    return np.asarray(list(columns), dtype=object)


def learn_feature_names(est: Any, names: np.ndarray | None) -> None:
    """Set ``est.feature_names_in_`` to the names a fit learned (:func:`feature_names`), or
    delete it for data without names (scikit-learn's ``reset=True``; done by the fit with
    its other fitted attributes, so that a failed fit leaves the estimator as it was)."""
    if names is not None:
        est.feature_names_in_ = names
    elif hasattr(est, "feature_names_in_"):
        del est.feature_names_in_


def check_feature_names(est: Any, X: Any) -> None:
    """That ``X``'s column names are those ``est`` was fitted with (scikit-learn's
    ``_check_feature_names(est, X, reset=False)``): a ValueError when they differ or are in
    another order, a UserWarning when only one of the two has names."""
    fitted = getattr(est, "feature_names_in_", None)
    if fitted is None and not _may_have_names(X):
        return
    validate_data = _validate_data()
    if validate_data is not None:
        _names_only(validate_data, est, X, reset=False)
        return
    given = feature_names(X)
    name = type(est).__name__
    if given is not None and fitted is None:
        warnings.warn(f"X has feature names, but {name} was fitted without feature names", UserWarning,
                      stacklevel=3)
    elif given is None and fitted is not None:
        warnings.warn(f"X does not have valid feature names, but {name} was fitted with feature names",
                      UserWarning, stacklevel=3)
    elif given is not None and fitted is not None and (len(given) != len(fitted) or np.any(given != fitted)):
        raise ValueError("The feature names should match those that were passed during fit.\n"
                         f"Fitted with: {list(fitted)}\nGiven: {list(given)}\n")


def check_same_names(names: np.ndarray | None, first: np.ndarray | None, what: str) -> None:
    """That a chunk's column names (``names``) are the first chunk's (``first``): both
    without names, or the same names in the same order (ValueError naming ``what``)."""
    if names is None and first is None:
        return
    if names is None or first is None or len(names) != len(first) or np.any(names != first):
        raise ValueError(f"{what}: X has feature names {None if names is None else list(names)}, but the first "
                         f"chunk's are {None if first is None else list(first)}; give every chunk the same columns "
                         "in the same order")
