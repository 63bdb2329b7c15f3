"""The estimators' hyperparameters, declared once: each one's type, description and check.

An estimator's ``__init__`` lists its parameters explicitly (scikit-learn's ``get_params``
and ``clone`` read the signature, and its defaults are the ones there). Its class names its
table in ``_hyperparameters``, a dict of :class:`Param` by parameter name; from it

* the ``{parameters}`` line of the class docstring becomes the numpydoc ``Parameters``
  section, with each default read from the signature (:func:`parameters_section`), and a
  parameter of the signature without an entry, or an entry without a parameter, is a
  TypeError when the class is defined;
* ``fit`` checks the parameters, in the table's order (:func:`check_params`).

:data:`TRAINING` holds what every gradient-trained estimator shares (the optimizer, its
step options, batches, epochs, stopping and the random stream); a family's table adds its
own parameters and may give a shared one another description.
"""

from __future__ import annotations

import inspect
import math
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fastgd.optim import Optimizer
from fastgd.shuffling import check_shuffle, shuffle_choices

__all__ = ["Param", "TRAINING", "check_params", "is_int", "is_number", "must", "one_of", "parameters_section"]

# (name, value, estimator) -> None, or a ValueError that says what the value must be.
Check = Callable[[str, Any, Any], None]

PLACEHOLDER = "{parameters}"


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its numpydoc type, its description, and its check (None: any
    value; the optimizer checks its own step options)."""

    type: str
    doc: str = ""  # dedented: it may be written as an indented triple-quoted string
    check: Check | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "doc", textwrap.dedent(self.doc).strip())

    def described(self, doc: str) -> Param:
        """The same parameter with another description (an estimator family's)."""
        return replace(self, doc=doc)


def is_number(v: Any) -> bool:
    """A finite real number (bools excluded)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v: Any) -> bool:
    """An integer (bools excluded)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def must(ok: Callable[[Any], bool], expect: str) -> Check:
    """A check: ``ok(value)``, else "``name`` must be ``expect``, got ``value``"."""

    def check(name: str, value: Any, est: Any) -> None:
        if not ok(value):
            raise ValueError(f"{name} must be {expect}, got {value!r}")

    return check


def one_of(choices: tuple[Any, ...]) -> Check:
    """A check: one of ``choices``."""
    return must(lambda v: v in choices, f"one of {choices}")


def _not_an_instance(name: str, value: Any, est: Any) -> None:
    if isinstance(value, Optimizer):
        raise ValueError(f"{name} must be a name or an Optimizer class, not an instance: the estimator builds it "
                         "over its own parameters (and keeps it for partial_fit)")


def _shuffle(name: str, value: Any, est: Any) -> None:
    check_shuffle(value, name)


# Shared by the four estimators. The checks run in this order (the doc follows the signature).
TRAINING: dict[str, Param] = {
    "alpha": Param("float", "Strength of the penalty.", must(lambda v: is_number(v) and v >= 0, "a number >= 0")),
    "max_epochs": Param("int", "At most this many epochs.", must(lambda v: is_int(v) and v >= 1, "an integer >= 1")),
    "batch_size": Param("int or None", "Mini-batch size (at most the number of samples); None takes the whole training "
                        "set in each step.",
                        must(lambda v: v is None or (is_int(v) and v >= 1), "None or an integer >= 1")),
    "tol": Param("float or None", """
        Stop when the epoch's training loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs in a row (scikit-learn's SGD rule); None: run
        ``max_epochs``. With ``early_stopping``, the improvement needed on the validation
        loss.""", must(lambda v: v is None or (is_number(v) and v >= 0), "None or a number >= 0")),
    "n_iter_no_change": Param("int", "Patience of the two stopping rules above.",
                              must(lambda v: is_int(v) and v >= 1, "an integer >= 1")),
    "validation_fraction": Param("float", "Share of the data held out for ``early_stopping``.",
                                 must(lambda v: is_number(v) and 0 < v < 1, "in (0, 1)")),
    "optimizer": Param("str or Optimizer class", """
        A name of :func:`fastgd.optim.get_optimizer` ("sgd", "momentum", "adam", ...) or an
        Optimizer subclass.""", _not_an_instance),
    "lr": Param("float or schedule", "Learning rate, or a schedule of the step (:mod:`fastgd.schedules`).",
                must(lambda v: callable(v) or (is_number(v) and v > 0), "a number > 0 or a schedule")),
    "shuffle": Param(shuffle_choices(), """
        The order of each epoch's mini-batches. True: a new permutation of the samples every
        epoch, so every batch is a fresh random sample; its rows are read from all over ``X``
        (a cache miss each). ``"batches"``: the contiguous batches
        ``X[k*batch_size:(k+1)*batch_size]`` in a new random order every epoch, each read in
        order at the speed of memory (several times faster on large data); a batch keeps its
        rows from epoch to epoch, which is fine when the rows are in no particular order and
        biased when they are sorted (by class, time, source): use True then, or shuffle the
        rows once before ``fit``. False: the batches in order, every epoch.""", _shuffle),
    "early_stopping": Param("bool", """
        Hold out ``validation_fraction`` of the data (stratified for classifiers), stop when
        the objective on it (``val_loss`` in ``history_``, with the penalty, as Keras; the
        accuracy or R^2 is ``val_metric``) stops improving, and keep the best epoch's
        parameters. Not used by ``partial_fit``."""),
    "standardize": Param("bool", "Centre and scale the features (weighted mean and standard deviation, learned in "
                         "``fit``, or in the first ``partial_fit``)."),
    "clip_norm": Param("float or None", "Clip the gradient to this global L2 norm, fused into the optimizer step."),
    "clip_value": Param("float or None", "Clip each gradient element to ``[-clip_value, clip_value]``, fused into "
                        "the optimizer step."),
    "optimizer_options": Param("dict or None", """
        More options for the optimizer (``{"momentum": 0.9}``, ``{"betas": (0.9, 0.99)}``,
        ``{"weight_decay": ...}``)."""),
    "warm_start": Param("bool", "``fit`` starts from the fitted parameters (with a new optimizer state)."),
    "random_state": Param("int, numpy Generator/RandomState or None",
                          "Seeds the shuffling and the validation split: equal seeds give bit-identical fits."),
    "verbose": Param("bool", "A progress bar over epochs."),
    "callbacks": Param("sequence of callables", """
        ``cb(history, params)`` after each epoch (``params``: ``[theta]``, the flat parameter
        buffer, in the standardized space); returning True stops training."""),
}


def _default(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def parameters_section(cls: type[Any], table: Mapping[str, Param]) -> str:
    """The numpydoc ``Parameters`` section of ``cls``: its ``__init__`` parameters in order,
    each with its type, its default and its description from ``table``."""
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    names = {p.name for p in params}
    missing, unused = sorted(names - set(table)), sorted(set(table) - names)
    if missing or unused:
        raise TypeError(f"{cls.__name__}: the hyperparameter table and __init__ disagree: not in the table "
                        f"{missing}, not in __init__ {unused}")
    lines = ["Parameters", "----------"]
    for p in params:
        entry = table[p.name]
        lines.append(f"{p.name} : {entry.type}, default={_default(p.default)}")
        lines += textwrap.wrap(entry.doc, width=84, initial_indent="    ", subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


def document(cls: type, table: Mapping[str, Param]) -> None:
    """Replace the ``{parameters}`` line of ``cls``'s docstring by its parameters section
    (indented as that line is)."""
    doc = cls.__doc__ or ""
    for line in doc.splitlines():
        if line.strip() == PLACEHOLDER:
            indent = line[:len(line) - len(line.lstrip())]
            section = textwrap.indent(parameters_section(cls, table), indent)
            cls.__doc__ = doc.replace(line, section, 1)
            return


def check_params(est: Any, table: Mapping[str, Param]) -> None:
    """Check each of ``est``'s parameters that ``table`` gives a check, in the table's order
    (ValueError naming the first bad one)."""
    for name, entry in table.items():
        if entry.check is not None:
            entry.check(name, getattr(est, name), est)
