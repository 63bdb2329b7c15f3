"""What every fastgd estimator shares: scikit-learn's estimator protocol without scikit-learn.

``get_params``/``set_params`` read the ``__init__`` signature, as scikit-learn's
``BaseEstimator``, so ``clone``, ``GridSearchCV`` and pipelines work. scikit-learn stays
optional: fastgd imports it only to show an estimator in a notebook (its HTML diagram) and to
check feature names where they are in play (:mod:`fastgd._feature_names`), with a plain
fallback for both when it is not installed. The few hooks only scikit-learn calls
(``__sklearn_tags__``) take its classes from the modules it has already loaded, and the
errors and warnings below also derive from scikit-learn's classes of the same name when it
is loaded, so ``except sklearn.exceptions.NotFittedError`` catches ours too.

Input checks follow ``sklearn.utils.check_array`` (and its messages, which users and
scikit-learn's estimator checks recognize).
"""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import numbers
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastgd import _core, persistence
from fastgd._keywords import unexpected_keyword
from fastgd._sparse_check import is_sparse
from fastgd.models._params import Param, check_params, document

__all__ = ["BaseEstimator", "NotFittedError", "ConvergenceWarning", "DataConversionWarning"]


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (scikit-learn's class of the same name)."""


class ConvergenceWarning(UserWarning):
    """A solver stopped before it converged."""


class DataConversionWarning(UserWarning):
    """Input data was converted, e.g. a column vector ``y`` raveled."""


def _loaded(module: str) -> Any:
    """scikit-learn's ``module`` if it is loaded, else None. Never imports anything: whoever
    would catch scikit-learn's classes has loaded them."""
    return sys.modules.get(module)


_COMBINED: dict[tuple[type, type], type] = {}


def interop(cls: type) -> type:
    """``cls``, or a subclass of it and of scikit-learn's class of the same name when
    scikit-learn is loaded (then both ``except`` clauses and warning filters match)."""
    skl = getattr(_loaded("sklearn.exceptions"), cls.__name__, None)
    if skl is None:
        return cls
    key = (cls, skl)
    if key not in _COMBINED:
        _COMBINED[key] = type(cls.__name__, (cls, skl), {"__module__": cls.__module__, "__doc__": cls.__doc__})
    return _COMBINED[key]


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """warnings.warn with :func:`interop`'s category, attributed to the first caller outside
    fastgd (the user's ``fit``, however deep in fastgd the warning was raised)."""
    frame, level = inspect.currentframe(), 1  # level 1: warn itself
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, interop(category), stacklevel=level)


# -- parameters --------------------------------------------------------------------------

class BaseEstimator:
    """``get_params``/``set_params``/``repr`` from the ``__init__`` signature, and the
    scikit-learn tags of a classifier or a regressor (``_estimator_type``).

    A subclass declares its hyperparameters in ``_hyperparameters`` (see
    :mod:`fastgd.models._params`): a ``{parameters}`` line in its docstring becomes their
    documentation, and :meth:`_check_params` checks their values."""

    _estimator_type: str | None = None
    _hyperparameters: dict[str, Param] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        document(cls, cls._hyperparameters)
        if "__init__" in vars(cls):
            cls.__init__ = _naming_unknown_keywords(vars(cls)["__init__"])  # type: ignore[method-assign]

    def _store_params(self, values: dict[str, Any]) -> None:
        """The body of ``__init__``: each of its parameters stored, unchanged, under its own
        name (``values``: ``__init__``'s ``locals()``, read first thing, which holds its
        parameters only); scikit-learn's rule, no other logic in ``__init__``. (A subclass's
        ``__init__`` that calls this one's sets its own parameters.)"""
        for name, value in values.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _check_params(self) -> None:
        """Check the hyperparameters' values (ValueError naming the first bad one)."""
        check_params(self, self._hyperparameters)

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        names = []
        for p in sig.parameters.values():
            if p.name == "self":
                continue
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(f"{cls.__name__}.__init__ must not take *args (its parameters are its API)")
            if p.kind != p.VAR_KEYWORD:
                names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` parameters and their values; with ``deep``, also those of nested
        estimators as ``name__param``."""
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> BaseEstimator:
        """Set parameters (``name__param`` for nested estimators); returns self. Values are
        stored as given and checked by ``fit``."""
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                                 f"Valid parameters are: {valid!r}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name, None)
            default = defaults.get(name, inspect.Parameter.empty)
            if not _same(value, default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def _repr_html_(self) -> str:
        """The notebook's view: scikit-learn's HTML diagram of an estimator (its own
        ``estimator_html_repr``: the changed parameters, whether it is fitted, a link to the
        class's documentation), as for its estimators; without scikit-learn, the repr."""
        try:
            from sklearn.utils import estimator_html_repr
        except ImportError:
            return f"<pre>{html.escape(repr(self))}</pre>"
        out: str = estimator_html_repr(self)
        return out

    def save(self, path: Any) -> None:
        """Save the fitted estimator to ``path`` (an ``.npz`` file, no pickle), atomically;
        ``fastgd.load(path)`` reads it back. See :mod:`fastgd.persistence`."""
        persistence.save(self, path)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    def __sklearn_tags__(self) -> Any:
        # Called by scikit-learn only, so its tag classes are loaded.
        t = _loaded("sklearn.utils._tags")
        if t is None:
            raise RuntimeError("__sklearn_tags__ is scikit-learn's hook; import scikit-learn to use it")
        # (multi_output: a regressor that takes a 2-D y, see check_y.)
        tags = t.Tags(estimator_type=self._estimator_type,
                      target_tags=t.TargetTags(required=True,
                                               multi_output=getattr(self, "_multi_output", None) is not None))
        tags.input_tags.sparse = bool(getattr(self, "_accepts_sparse", False))
        if self._estimator_type == "classifier":
            tags.classifier_tags = t.ClassifierTags()
        elif self._estimator_type == "regressor":
            tags.regressor_tags = t.RegressorTags()
        return tags


def _naming_unknown_keywords(init: Any) -> Any:
    """``init`` (an estimator's ``__init__``), whose unknown keyword is a TypeError that names
    the estimator, lists its parameters and suggests the one meant (``max_iter``:
    ``max_epochs``), instead of Python's bare message. The signature stays ``init``'s (through
    ``__wrapped__``), which ``get_params`` and scikit-learn read."""
    names = [p.name for p in inspect.signature(init).parameters.values() if p.name != "self"]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for key in kwargs:
            if key not in names:
                raise unexpected_keyword(f"{type(self).__name__}()", key, names, whose="its parameters")
        init(self, *args, **kwargs)

    return __init__


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # arrays and other objects without a plain ==
        return False


def check_is_fitted(est: BaseEstimator) -> None:
    if not est.__sklearn_is_fitted__():
        raise interop(NotFittedError)(
            f"This {type(est).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
            "before using this estimator.")


# -- input checks ------------------------------------------------------------------------

# Rows per block of the finite check of an array the kernel cannot read (not C-contiguous, or
# not float32/float64): as many as fit in this many bytes, so that its mask stays small.
_CHECK_BLOCK_BYTES = 1 << 20


def first_nonfinite(a: np.ndarray) -> tuple[int, int]:
    """The flat (C-order) indices of the first NaN and of the first infinity of a float
    array, -1 if none: one read, no array of ``a``'s size allocated (fastgd's kernel for a
    C-contiguous float32/float64 array, on every thread; else blocks of rows)."""
    if a.dtype in (np.float32, np.float64) and a.flags.c_contiguous:
        nan, inf = _core.find_nonfinite(a)
        return int(nan), int(inf)
    flat = a.reshape(1, -1) if a.ndim < 2 else a.reshape(a.shape[0], -1)  # a view where it can be
    row = max(1, flat.shape[1])
    step = max(1, _CHECK_BLOCK_BYTES // (row * a.dtype.itemsize))
    found = [-1, -1]
    for start in range(0, flat.shape[0], step):
        block = flat[start:start + step]
        for k, test in enumerate((np.isnan, np.isinf)):
            if found[k] < 0:
                hits = np.flatnonzero(test(block))
                if len(hits):
                    found[k] = start * row + int(hits[0])
        if min(found) >= 0:
            break
    return found[0], found[1]


def position_of(a: np.ndarray, index: int) -> str:
    """Where the flat index ``index`` of ``a`` is, for a message: "row i, column j" of a
    matrix, "sample i" of a vector."""
    if a.ndim == 2:
        return f"row {index // a.shape[1]}, column {index % a.shape[1]}"
    if a.ndim == 1:
        return f"sample {index}"
    return f"index {np.unravel_index(index, a.shape)}"


def raise_nonfinite(a: np.ndarray, name: str, first_nan: int, first_inf: int) -> None:
    """The error for a NaN (first) or an infinity of ``a`` at these flat indices (-1: none),
    scikit-learn's message with the position of the first one."""
    if first_nan >= 0:
        raise ValueError(f"Input {name} contains NaN ({position_of(a, first_nan)}).")
    if first_inf >= 0:
        raise ValueError(f"Input {name} contains infinity or a value too large for dtype({a.dtype.name!r}) "
                         f"({position_of(a, first_inf)}).")


def _check_finite(a: np.ndarray, name: str) -> None:
    if a.dtype.kind == "f" and a.size:
        raise_nonfinite(a, name, *first_nonfinite(a))


def check_X_values(X: Any) -> None:
    """The finite check that ``check_X(X, finite=False)`` (or ``check_csr``'s) left out (its
    error is theirs)."""
    if is_sparse(X):
        check_csr_values(X)
        return
    _check_finite(X, "X")


def check_csr_values(X: Any, name: str = "X") -> None:
    """The finite check of a CSR matrix's values that ``check_csr(X, finite=False)`` left out
    (the same error, at "row i, column j"): one read of ``X.data`` by fastgd's kernel,
    nothing allocated."""
    first_nan, first_inf = first_nonfinite(X.data)
    if first_nan >= 0 or first_inf >= 0:
        raise_nonfinite(X, name, _csr_flat_position(X, first_nan), _csr_flat_position(X, first_inf))


def csr_row_of(indptr: np.ndarray, k: int) -> int:
    """The row of a CSR matrix's ``k``-th stored value."""
    return int(np.searchsorted(indptr, indptr.dtype.type(k), side="right")) - 1


def _csr_flat_position(X: Any, k: int) -> int:
    """The dense flat index (row * n_cols + column) of the ``k``-th stored value, -1 for -1:
    what :func:`raise_nonfinite` names as "row i, column j"."""
    if k < 0:
        return -1
    return csr_row_of(X.indptr, k) * X.shape[1] + int(X.indices[k])


@contextlib.contextmanager
def reporting_X_first(X: np.ndarray, unchecked: bool) -> Iterator[None]:
    """Checks of the other inputs (y, the sample weights) made before X's values are (when
    ``unchecked``: ``check_X(X, finite=False)``, X to be checked by the read that takes its
    moments): an error among them is reported as X's non-finite value if X has one, as
    scikit-learn reports X first. Only such an error reads X again."""
    try:
        yield
    except (ValueError, TypeError):
        if unchecked:
            try:
                check_X_values(X)
            except ValueError as e:
                raise e from None
        raise


def _numeric(a: Any, name: str) -> np.ndarray:
    if is_sparse(a):
        raise TypeError(f"sparse input is not supported for {name}: pass a dense array (e.g. {name}.toarray())")
    a = np.asarray(a)
    if a.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {a.dtype}")
    if a.dtype.kind == "O":
        # float() of a non-number raises "float() argument must be a string or a real number".
        a = a.astype(np.float64)
    return a


def warn_copy_once(what: str, into: str, nbytes: int, fix: str) -> None:
    """The DataConversionWarning of an input that fit copies once into the layout its kernels
    read (never silently): ``what`` it is, ``into`` what, the copy's size and the ``fix``
    that makes (and keeps) the copy in the user's hands."""
    warn(f"{what}: fit copies it once into {into} of {nbytes / 2**20:.1f} MiB, whose rows the training kernels "
         f"read; {fix}", DataConversionWarning)


def check_not_empty(shape: tuple[int, ...], name: str = "X") -> None:
    """scikit-learn's error for a 2-D input with no rows or no columns."""
    if shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required: "
                         f"{name} has no rows.")
    if shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is required: "
                         f"{name} has no columns.")


def check_X(X: Any, *, dtype: Any = None, finite: bool = True, warn_copy: bool = False) -> np.ndarray:
    """X as a C-contiguous 2-D float array (float32 kept, anything else float64), non-empty
    and (unless ``finite`` is False: a caller whose next read of X checks it, as
    ``weighted_moments(..., check="X")`` does, in the same read as the moments) finite. A
    C-contiguous array of that dtype (a memmap too) is returned as it is.

    A scipy.sparse matrix is a TypeError (callers that read sparse rows take it through
    :func:`fastgd.models._sparse.check_X_or_csr`).

    ``warn_copy`` (fit): a float array that must be copied for its layout (Fortran-ordered, or
    a strided view) is copied once, with a DataConversionWarning giving the copy's size,
    never silently."""
    if X is None:
        raise ValueError("Expected a 2D array for X, got None")
    # Only a user's own array is copied for its layout "silently"; a DataFrame is converted
    # anyway (its columns are often Fortran-ordered blocks), as scikit-learn does, quietly.
    warn_copy = warn_copy and isinstance(X, np.ndarray)
    X = _numeric(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got {X.ndim}D array instead: X with shape {X.shape}. Reshape your "
                         "data either using array.reshape(-1, 1) if your data has a single feature or "
                         "array.reshape(1, -1) if it contains a single sample.")
    if dtype is None:
        dtype = np.float32 if X.dtype == np.float32 else np.float64
    if warn_copy and X.dtype == dtype and not X.flags.c_contiguous and X.size:
        layout = "Fortran-ordered" if X.flags.f_contiguous else "not contiguous (a strided view)"
        warn_copy_once(f"X is {layout}", "a C-contiguous array", X.size * X.itemsize,
                       "pass np.ascontiguousarray(X) to make (and keep) that copy yourself")
    X = np.ascontiguousarray(X, dtype=dtype)
    check_not_empty(X.shape)
    if finite:
        _check_finite(X, "X")
    return X


def check_y(y: Any, n_samples: int, who: str, multi_output: str | None = None) -> np.ndarray:
    """y as a 1-D array of n_samples (a column vector is raveled with a warning), or, for a
    multi-output regressor, also 2-D (n_samples, n_targets): ``multi_output="2d"`` keeps any
    2-D y (one column included, as scikit-learn's LinearRegression), ``"columns"`` keeps
    two columns or more and ravels one with the warning (as its MLPRegressor)."""
    if y is None:
        raise ValueError(f"{who} requires y to be passed, but the target y is None")
    if is_sparse(y):
        raise TypeError("sparse input is not supported for y: pass a dense array")
    y = np.asarray(y)
    if multi_output is not None and y.ndim == 2 and (y.shape[1] > 1 or multi_output == "2d"):
        if y.shape[1] == 0:
            raise ValueError(f"y has no target columns (shape {y.shape}); {who} needs at least one")
    elif y.ndim == 2 and y.shape[1] == 1:
        warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
             "(n_samples,), for example using ravel().", DataConversionWarning)
        y = y[:, 0]
    elif y.ndim != 1:
        raise ValueError(f"y should be a {'1d or 2d' if multi_output else '1d'} array, got an array of shape "
                         f"{y.shape} instead.")
    if y.shape[0] != n_samples:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: [{n_samples}, {y.shape[0]}] "
                         f"(X has {n_samples} rows, y has {y.shape[0]} values)")
    return y


def check_target(y: np.ndarray, dtype: Any) -> np.ndarray:
    """A regression target: finite floats."""
    y = np.ascontiguousarray(_numeric(y, "y"), dtype=dtype)
    _check_finite(y, "y")
    return y


def check_labels(y: np.ndarray, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Class labels: ``(classes, index of each sample's class)``. Integers, booleans and
    strings are labels; floats only when they are whole numbers (else 'continuous').
    ``name``: the argument the labels came from, for the messages."""
    kind = y.dtype.kind
    if kind == "f":
        _check_finite(y, name)
        if np.any(y != np.round(y)):
            raise ValueError(f"Unknown label type: continuous ({name}). Classification needs discrete labels; "
                             "for a continuous target use a regressor.")
    elif kind == "c":
        raise ValueError(f"Complex data not supported for {name}")
    elif kind == "O":
        if not all(isinstance(v, str) for v in y.ravel()):
            raise ValueError(f"Unknown label type: unknown ({name}). Labels of dtype object must be strings; "
                             "pass numbers as a numeric array.")
    elif kind not in "biuUS":
        raise ValueError(f"Unknown label type: labels of dtype {y.dtype} are not supported ({name})")
    if kind == "b" and y.ndim == 1 and y.size:
        # Booleans: the classes present among False, True, counted (no sort).
        counts = np.bincount(y.view(np.uint8), minlength=2)
        present = np.flatnonzero(counts)
        idx = y.view(np.uint8).astype(np.intp)
        if present[0] == 1:  # only True
            idx[:] = 0
        return present.astype(bool), idx
    if (kind == "i" or (kind == "u" and y.dtype.itemsize < 8)) and y.ndim == 1 and y.size:
        # Integer labels over a range not much wider than the data: counting (two passes and
        # a lookup) instead of np.unique's sort, which is O(n log n); the same result.
        lo, hi = int(y.min()), int(y.max())
        if hi - lo < max(y.size, 1024):
            shifted = y.astype(np.intp, copy=False)
            if lo:
                shifted = shifted - lo
            present = np.flatnonzero(np.bincount(shifted, minlength=hi - lo + 1))
            if len(present) == hi - lo + 1 and lo == 0:
                # Labels 0..K-1, all present: each is its own index (no lookup pass over the
                # samples). Read-only, as it may be the caller's y itself.
                own = shifted.view()
                own.flags.writeable = False
                return present.astype(y.dtype), own
            lookup = np.zeros(hi - lo + 1, np.intp)
            lookup[present] = np.arange(len(present))
            return (present + lo).astype(y.dtype), lookup[shifted]
    try:
        classes, idx = np.unique(y, return_inverse=True)
    except TypeError as e:
        raise ValueError(f"Mix of label input types in {name}: {e}") from None
    return classes, idx.reshape(-1)


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    """float64 weights, one per sample, finite, >= 0 and not all zero (a scalar is broadcast)."""
    if sample_weight is None:
        return np.ones(n_samples)
    w = _numeric(sample_weight, "sample_weight").astype(np.float64)
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n_samples,)}!")
    _check_finite(w, "sample_weight")
    if np.any(w < 0):
        raise ValueError("Negative values in sample_weight are not allowed.")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: no sample would count.")
    return w


def check_n_features(est: Any, X: np.ndarray) -> None:
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input.")


def make_rng(random_state: Any) -> np.random.Generator:
    """A Generator from None, an int, a Generator or a legacy RandomState (which is consumed,
    as in scikit-learn)."""
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        # Any: default_rng takes any numbers.Integral (np.int64...), which numpy's stub does not name.
        seed: Any = random_state
        return np.random.default_rng(seed)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState, got {random_state!r}")
