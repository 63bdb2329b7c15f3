"""``class_weight``, scikit-learn's: a weight per class that multiplies the sample weights of
its samples, so that a fit with ``class_weight`` is the fit with the equivalent
``sample_weight`` (bit for bit).

* None: every class weighs 1 (the sample weights are left as they are);
* a dict ``{label: weight}``: the classes it names get their weight, the others 1 (a dict
  that names labels which are not classes while leaving classes out is an error, as
  scikit-learn's ``compute_class_weight``);
* "balanced": ``sum(w) / (n_classes * W_c)``, ``W_c`` the total sample weight of class
  ``c`` (its count without weights): scikit-learn's ``compute_class_weight("balanced", ...,
  sample_weight=w)``, as its LogisticRegression computes them. It needs the whole training
  set's counts, so not with ``partial_fit`` on its first call (scikit-learn's SGDClassifier's
  rule) nor with streamed chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastgd.models._params import Param, is_number

__all__ = ["CLASS_WEIGHT", "class_weight_vector", "label_weights", "partial_fit_refusal"]


def _check(name: str, value: Any, est: Any) -> None:
    if value is None or (isinstance(value, str) and value == "balanced"):
        return
    if isinstance(value, dict):
        bad = {k: v for k, v in value.items() if not (is_number(v) and v >= 0)}
        if bad:
            raise ValueError(f"{name} must map labels to numbers >= 0, got {bad!r}")
        return
    raise ValueError(f"{name} must be None, 'balanced' or a dict {{label: weight}}, got {value!r}")


CLASS_WEIGHT = Param('dict, "balanced" or None', """
    Weights of the classes, multiplying the sample weights of their samples (scikit-learn's
    rule: a fit with ``class_weight`` is the fit with ``sample_weight`` times the weight of
    each sample's class). None: all 1. A dict ``{label: weight}``: the classes it leaves out
    weigh 1. "balanced": ``sum(sample_weight) / (n_classes * total sample_weight of the
    class)``, i.e. ``n_samples / (n_classes * np.bincount(y))`` without weights
    (scikit-learn's ``compute_class_weight``). "balanced" is refused by a first
    ``partial_fit`` (a batch does not give the classes' frequencies: compute the weights
    with ``sklearn.utils.class_weight.compute_class_weight`` on a large enough sample of the
    targets and pass the dict) and with streamed chunks.""", _check)


def partial_fit_refusal(class_weight: Any) -> str | None:
    """scikit-learn's SGDClassifier's message when a first ``partial_fit`` is given
    "balanced", else None."""
    if isinstance(class_weight, str) and class_weight == "balanced":
        return ("class_weight 'balanced' is not supported for partial_fit. In order to use 'balanced' weights, use "
                "compute_class_weight('balanced', classes=classes, y=y). In place of y you can use a large enough "
                "sample of the full training set target to properly estimate the class frequency distributions. "
                "Pass the resulting weights as the class_weight parameter.")
    return None


def class_weight_vector(class_weight: Any, classes: np.ndarray, idx: np.ndarray, sw: np.ndarray,
                        counts: np.ndarray | None = None) -> np.ndarray | None:
    """The weight of each class (None for ``class_weight=None``), for samples of class
    indices ``idx`` and weights ``sw``; ``counts``: the classes' total weights when given
    (a data-parallel fit's, over every rank)."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):  # "balanced" (the parameter's check)
        if counts is None:
            counts = np.bincount(idx, weights=sw, minlength=len(classes))
        with np.errstate(divide="ignore"):
            weights = counts.sum() / (len(classes) * counts)
        # A class without weight has no sample to weigh (and sklearn's inf would make 0 * inf).
        weights[counts == 0] = 0.0
        return weights
    weights = np.ones(len(classes))
    missing = []
    for i, c in enumerate(classes.tolist()):
        if c in class_weight:
            weights[i] = class_weight[c]
        else:
            missing.append(c)
    if missing and len(classes) - len(missing) != len(class_weight):
        raise ValueError(f"The classes, {missing}, are not in class_weight")
    return weights


def label_weights(class_weight: Any, y: np.ndarray) -> np.ndarray:
    """The class weight of each label of ``y`` for a dict ``class_weight`` (1 for a label it
    does not name; a chunk of streamed data, before the classes are known)."""
    if isinstance(class_weight, str):
        raise ValueError("class_weight='balanced' needs the classes' counts before training, which streamed chunks "
                         "do not give; compute the weights (sklearn.utils.class_weight.compute_class_weight) and pass "
                         "them as a dict, or pass arrays")
    labels, inverse = np.unique(y, return_inverse=True)
    return np.array([float(class_weight.get(c, 1.0)) for c in labels.tolist()])[inverse.reshape(-1)]
