"""What classifiers and what regressors share, whatever model they train: how ``y`` is
encoded for training, the best constant model that output biases start from, the
validation metric, predictions from the raw outputs, ``partial_fit`` and ``score``.

An estimator takes one mixin and the fit template
(:class:`fastgd.models._fitting.GradientEstimator`), mixin first, and gives
``_outputs(X)``: its raw outputs on ``X``, shape (n_samples,) or (n_samples, K).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastgd import losses as _losses
from fastgd.models._base import check_labels, check_sample_weight, check_target, check_y
from fastgd.models._class_weight import class_weight_vector, label_weights, partial_fit_refusal
from fastgd.models._data import r2_score
from fastgd.streaming import pow2_scale

__all__ = ["ClassifierMixin", "RegressorMixin", "encode_labels", "label_totals"]

# Labels counted per block of this many: no temporary of the number of samples.
_COUNT_BLOCK = 1 << 16


def label_totals(idx: np.ndarray, sw: np.ndarray | None, minlength: int) -> np.ndarray:
    """``np.bincount(idx, weights=sw, minlength=minlength)`` (float64), ``idx`` class indices
    of any numeric dtype. Without weights, or with one weight for all (a broadcast of one
    value), the counts are taken per block of rows (exact integers, the same result) with no
    temporary of the data's length; real weights go to one bincount, its bits."""
    if sw is not None and not (sw.ndim == 1 and sw.strides == (0,) and len(sw)):
        return np.bincount(idx.astype(np.intp, copy=False), weights=sw, minlength=minlength)
    counts = np.zeros(minlength, np.int64)
    for start in range(0, len(idx), _COUNT_BLOCK):
        part = np.bincount(idx[start:start + _COUNT_BLOCK].astype(np.intp), minlength=minlength)
        if len(part) > len(counts):
            part[:len(counts)] += counts
            counts = part
        else:
            counts[:len(part)] += part
    return counts.astype(np.float64) * (1.0 if sw is None else float(sw[0]))


def encode_labels(y: np.ndarray, sw: np.ndarray | None, classes: Any, partial: bool, known: np.ndarray | None,
                  who: str) -> dict[str, Any]:
    """Class labels as training reads them: ``{"y": one 0/1 float target for two classes,
    else the class indices, "K": the number of outputs (1 for two classes), "attrs":
    {"classes_": the classes}}``.

    ``classes``: all the labels there will be (partial_fit's argument), ``known``: those of
    the fitted estimator that this call continues (None for a new fit), ``partial``: a call
    of partial_fit (its batch may hold a single class), ``who``: the estimator's name."""
    if classes is not None:
        given, _ = check_labels(np.asarray(classes).reshape(-1), "classes")
        if len(given) < 2:
            raise ValueError(f"classes must hold at least 2 distinct labels, got {given.tolist()}")
        if known is not None and not np.array_equal(given, known):
            raise ValueError(f"classes={given.tolist()} differs from the classes of the first call: "
                             f"{known.tolist()}")
        known = given
    elif partial and known is None:
        raise ValueError("classes must be passed on the first call to partial_fit (all the labels there will "
                         "be: a batch may not show them all).")
    if known is None:
        classes_, idx = check_labels(y)
    else:
        labels, _ = check_labels(y)
        unknown = np.setdiff1d(labels, known)
        if len(unknown):
            raise ValueError(f"y contains labels {unknown.tolist()} that are not in classes={known.tolist()}")
        classes_, idx = known, np.searchsorted(known, y)
    if len(classes_) < 2:
        raise ValueError(f"{who} needs samples of at least 2 classes, but the data contain only one class: "
                         f"{classes_[0]!r}")
    # fit() learns from this data alone, so it needs two classes that count; a partial_fit
    # batch may well hold one.
    if not partial and np.count_nonzero(label_totals(idx, sw, len(classes_))) < 2:
        raise ValueError("only one class has a positive sample_weight; the classifier needs at least 2 classes "
                         "with weight")
    K = 1 if len(classes_) == 2 else len(classes_)
    # Two classes: 0/1 in float32 (exact in any float dtype, half float64's memory a sample).
    y_enc = idx.astype(np.float32) if K == 1 else idx.astype(np.intp, copy=False)
    return {"y": y_enc, "K": K, "attrs": {"classes_": classes_}}


def _scores(z: np.ndarray) -> np.ndarray:
    """Raw outputs as one score per sample for two classes (n,), else (n, K)."""
    return z[:, 0] if z.ndim == 2 and z.shape[1] == 1 else z


def _predicted(z: np.ndarray) -> np.ndarray:
    """The index of each sample's predicted class, from its scores."""
    return (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)


class ClassifierMixin:
    """Labels in, classes out: one logit for two classes (positive: ``classes_[1]``), one
    per class for more."""

    _estimator_type: str | None = "classifier"
    # The estimator's (annotations only: a mixin comes first in the bases and must not hide them).
    _outputs: Callable[[Any], np.ndarray]
    _fit: Callable[..., Any]
    __sklearn_is_fitted__: Callable[[], bool]
    classes_: np.ndarray
    class_weight: Any

    def _encode_target(self, y: np.ndarray, sw: np.ndarray | None, classes: Any, partial: bool,
                       continuing: bool) -> dict[str, Any]:
        return encode_labels(y, sw, classes, partial, self.classes_ if continuing else None, type(self).__name__)

    def _class_weighted(self, enc: dict[str, Any], sw: np.ndarray, comm: Any = None) -> np.ndarray:
        """The sample weights times the weight of each sample's class (``class_weight``;
        ``enc`` the encoded labels; under ``comm`` "balanced" counts every rank's samples)."""
        if self.class_weight is None:
            return sw
        idx = enc["y"].astype(np.intp, copy=False)
        classes = enc["attrs"]["classes_"]
        counts = None
        if comm is not None and isinstance(self.class_weight, str):
            from fastgd.distributed import rank_sum

            counts = rank_sum(comm, np.bincount(idx, weights=sw, minlength=len(classes)))
        weights = class_weight_vector(self.class_weight, classes, idx, sw, counts)
        assert weights is not None  # (class_weight is not None)
        return sw * weights[idx]

    def _chunk_class_weighted(self, y: np.ndarray, w: np.ndarray | None) -> np.ndarray | None:
        """A streamed chunk's sample weights (None: none) times its labels' class weights."""
        if self.class_weight is None:
            return w
        weights = label_weights(self.class_weight, y)
        return weights if w is None else w * weights

    @staticmethod
    def _constant_logits(y: np.ndarray, sw: np.ndarray, K: int) -> np.ndarray:
        """The logits of the best constant model: the log-odds of the (weighted) class
        frequencies; ``y`` the encoded labels, or one value per class with its total weight."""
        counts = label_totals(y, sw, max(K, 2))
        logp = np.log(np.clip(counts / counts.sum(), 1e-6, None))
        return np.array([logp[1] - logp[0]]) if K == 1 else logp - logp.mean()

    def _global_targets(self, comm: Any, y: np.ndarray, sw: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets and weights that stand for every rank's in the best constant model: each
        class once, with its total weight over the ranks (summed in rank order, the same
        bits on every rank)."""
        from fastgd.distributed import rank_sum

        counts = rank_sum(comm, np.bincount(y.astype(np.intp), weights=sw, minlength=max(K, 2)))
        return np.arange(len(counts), dtype=np.float64), counts

    def _metric(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """Accuracy (sample-weighted) of the raw outputs ``z`` on the encoded labels ``y``."""
        return float(w @ (_predicted(_scores(z)) == y) / w.sum())

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> Any:
        """One epoch over ``(X, y)`` (in batches of ``batch_size``), continuing from the
        current parameters and the optimizer's state (moments, step count, schedule).
        ``classes``, all the labels there will be, is required on the first call (a batch
        may not show them all); that call also learns the standardization and keeps it.
        Returns self.

        ``X`` may also be a memmap (or a slice of one) or chunks, as in ``fit``: one epoch
        through the shuffle buffer. Once the model is fitted, a one-shot iterator of chunks
        (a generator object) is accepted too; it is checked as it is read, and its weights
        are taken as given (not divided by their mean, which would need a pass first).

        ``class_weight="balanced"`` is refused on the first call (a batch does not give the
        classes' frequencies), as by scikit-learn's SGDClassifier: pass the weights as a dict."""
        refusal = partial_fit_refusal(self.class_weight)
        if refusal is not None and not self.__sklearn_is_fitted__():
            raise ValueError(refusal)
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        idx = _predicted(_scores(self._outputs(X)))  # (first: an unfitted estimator has no classes_)
        return self.classes_[idx]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        z = _scores(self._outputs(X))
        if z.ndim == 1:
            p = _losses.sigmoid(z)
            return np.column_stack([1.0 - p, p])
        return _losses.softmax(z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed without underflow."""
        z = _scores(self._outputs(X))
        if z.ndim == 1:
            z = np.column_stack([np.zeros_like(z), z])
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (sample-weighted)."""
        pred = self.predict(X)
        y = check_y(y, len(pred), type(self).__name__)
        w = check_sample_weight(sample_weight, len(y))
        return float(w @ (pred == y) / w.sum())


class RegressorMixin:
    """Real targets: one per sample (y of shape (n,)), or several (y of shape (n, n_targets),
    one output per column, for the estimators whose ``_multi_output`` allows it)."""

    _estimator_type: str | None = "regressor"
    # The estimator's (annotations only: a mixin comes first in the bases and must not hide them).
    _fit: Callable[..., Any]
    _multi_output: str | None
    predict: Callable[[Any], np.ndarray]

    def _encode_target(self, y: np.ndarray, sw: np.ndarray | None, classes: Any, partial: bool,
                       continuing: bool) -> dict[str, Any]:
        y = check_target(y, np.float64)
        # "targets_2d": y is 2-D (its columns kept for predictions), remembered by the fit as
        # _target_columns (their number, None for a 1-D y).
        columns = y.shape[1] if y.ndim == 2 else None
        return {"y": y, "K": columns or 1, "targets_2d": columns is not None,
                "attrs": {"_target_columns": columns}}

    def _class_weighted(self, enc: dict[str, Any], sw: np.ndarray, comm: Any = None) -> np.ndarray:
        return sw  # (no classes)

    def _chunk_class_weighted(self, y: np.ndarray, w: np.ndarray | None) -> np.ndarray | None:
        return w

    def _global_targets(self, comm: Any, y: np.ndarray, sw: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets and weights that stand for every rank's in the best constant model: the
        global weighted mean target (sums in rank order, the same bits on every rank)."""
        from fastgd.distributed import rank_sum

        if y.ndim == 2:
            raise ValueError(f"{type(self).__name__}.fit(comm=...) takes one target per sample; a data-parallel fit "
                             f"of {y.shape[1]} targets is not supported (fit without comm)")
        with np.errstate(over="ignore", invalid="ignore"):
            total, weight = rank_sum(comm, [float(sw @ y), float(sw.sum())])
            mean = total / weight
        if not np.isfinite(mean) and np.isfinite(y).all():
            # Finite targets whose weighted sum overflows: summed in units of a power of two
            # near the largest magnitude over the ranks. (Every rank has the same total, so
            # all of them take this branch.)
            s = float(pow2_scale(max(comm.allgather(float(np.max(np.abs(y), initial=0.0))))))
            mean = float(rank_sum(comm, [float(sw @ (y / s))])[0]) / weight * s
        return np.array([mean]), np.ones(1)

    def _metric(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """R^2 of the raw outputs ``z`` on the (training-space) targets ``y`` (averaged over
        the targets of a 2-D ``y``)."""
        return r2_score(y, np.reshape(z, y.shape), w)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """One epoch over ``(X, y)`` (in batches of ``batch_size``), continuing from the
        current parameters and the optimizer's state (moments, step count, schedule). The
        first call learns the standardization from its data and keeps it. Returns self.

        ``X`` may also be a memmap (or a slice of one) or chunks, as in ``fit``: one epoch
        through the shuffle buffer. Once the model is fitted, a one-shot iterator of chunks
        (a generator object) is accepted too; it is checked as it is read, and its weights
        are taken as given (not divided by their mean, which would need a pass first)."""
        return self._fit(X, y, sample_weight, partial=True, classes=None)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2, the coefficient of determination (1 for a perfect fit, 0 for the mean);
        for several targets, the average of theirs (scikit-learn's
        ``multioutput="uniform_average"``)."""
        pred = self.predict(X)
        y = check_target(check_y(y, len(pred), type(self).__name__, self._multi_output), np.float64)
        if y.shape != pred.shape and y.size == pred.size and 1 in (y.ndim, pred.ndim):
            y = y.reshape(pred.shape)  # one target, as a column or not (scikit-learn's r2_score)
        if y.shape != pred.shape:
            raise ValueError(f"y has shape {y.shape}, but the predictions have shape {pred.shape}")
        w = check_sample_weight(sample_weight, len(y))
        return r2_score(y, pred, w)
