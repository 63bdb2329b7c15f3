"""When to stop training: criteria checked by :func:`fastgd.train` after every epoch.

A criterion's ``check(history)`` returns ``None`` to go on, or the reason to stop, a string
that ends up in ``history.stop_reason``. Criteria that count (:class:`LossTolerance`,
:class:`EarlyStopping`) read each record once, so calling ``check`` twice on the same history
counts nothing twice; ``reset()`` forgets everything (``train`` calls it at the start).

::

    from fastgd import stopping
    train(f, params, X, y, stopping=[stopping.EarlyStopping(patience=10),
                                      stopping.TimeLimit(60)])

The hooks the training loop calls, each a no-op in :class:`StoppingCriterion`:

- ``reset()`` when training starts;
- ``check_step(step)`` after every optimizer step (:class:`MaxSteps`, :class:`TimeLimit`);
- ``on_epoch_end(history, params)`` after each epoch's record, before ``check``
  (:class:`EarlyStopping` copies the best parameters here);
- ``on_train_end(params)`` when training ends, for whatever reason
  (:class:`EarlyStopping` puts the best parameters back here).
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastgd.history import History

__all__ = ["StoppingCriterion", "MaxEpochs", "MaxSteps", "LossTolerance", "GradNormBelow", "TargetLoss",
           "TimeLimit", "EarlyStopping", "AnyOf"]

_HINTS = {"val_loss": " (pass validation_data to train)",
          "val_metric": " (pass validation_data and metric to train)"}


def _count(who: str, name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _number(who: str, name: str, value: Any, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{who}: {name} must be a number, got {value!r}")
    if low is not None and value < low:  # (not NaN: checked above)
        raise ValueError(f"{who}: {name} must be >= {low}, got {value!r}")
    return float(value)


def _value(record: dict, monitor: str, who: str) -> float:
    v = record.get(monitor)
    if v is None:
        raise ValueError(f"{who} monitors {monitor!r}, which this run does not record{_HINTS.get(monitor, '')}")
    return float(v)


class StoppingCriterion:
    """Base class: every hook is a no-op and ``check`` never stops.

    ``restored_epoch``: the epoch whose parameters :meth:`on_train_end` put back, or ``None``
    (``fastgd.train`` copies it to ``history.restored_epoch``)."""

    restored_epoch: int | None = None

    def reset(self) -> None:
        """Forget any state: a new run starts."""

    def check(self, history: History) -> str | None:
        """After each epoch: the reason to stop, or ``None``."""
        return None

    def check_step(self, step: int) -> str | None:
        """After each optimizer step (``step`` counts the run's steps from 1)."""
        return None

    def on_epoch_end(self, history: History, params: Sequence[np.ndarray]) -> None:
        """After each epoch's record, before :meth:`check`; ``params`` are the live arrays."""

    def on_train_end(self, params: Sequence[np.ndarray]) -> None:
        """Once, when training ends, for any reason."""

    def __repr__(self) -> str:
        # The constructor's arguments only, not the state (EarlyStopping's saved arrays).
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in names if hasattr(self, n))
        return f"{type(self).__name__}({args})"


class MaxEpochs(StoppingCriterion):
    """Stop after ``n`` epochs."""

    def __init__(self, n: int) -> None:
        self.n = _count("MaxEpochs", "n", n, 1)

    def check(self, history):
        if history.records and (history.records[-1].get("epoch") or len(history)) >= self.n:
            return f"reached max_epochs={self.n}"
        return None


class MaxSteps(StoppingCriterion):
    """Stop after ``n`` optimizer steps, also in the middle of an epoch (the epoch is then
    recorded over the batches it did)."""

    def __init__(self, n: int) -> None:
        self.n = _count("MaxSteps", "n", n, 1)

    def check_step(self, step):
        return f"reached max_steps={self.n}" if step >= self.n else None

    def check(self, history):
        step = history.records[-1].get("step") if history.records else None
        return None if step is None else self.check_step(step)


class LossTolerance(StoppingCriterion):
    r"""Stop when the loss stops improving, as scikit-learn's SGD estimators (``tol``,
    ``n_iter_no_change``).

    With :math:`L_e` the monitored loss at epoch :math:`e` and :math:`B_{e-1}` the best before
    it (:math:`B_0 = \infty`), epoch :math:`e` counts as *no change* when
    :math:`L_e > B_{e-1} - \text{tol}`; stop after ``n_iter_no_change`` such epochs in a row.
    A NaN loss counts as no change.
    """

    def __init__(self, tol: float = 1e-3, n_iter_no_change: int = 5, monitor: str = "train_loss") -> None:
        self.tol = _number("LossTolerance", "tol", tol)
        self.n_iter_no_change = _count("LossTolerance", "n_iter_no_change", n_iter_no_change, 1)
        self.monitor = monitor
        self.reset()

    def reset(self):
        self.best = math.inf
        self.no_change = 0
        self._seen = 0

    def _update(self, history: History) -> None:
        if len(history) < self._seen:  # another run's history
            self.reset()
        for r in history.records[self._seen:]:
            v = _value(r, self.monitor, "LossTolerance")
            # "not <=" rather than ">": a NaN loss is no improvement.
            self.no_change = 0 if v <= self.best - self.tol else self.no_change + 1
            if v < self.best:
                self.best = v
        self._seen = len(history)

    def check(self, history):
        self._update(history)
        if self.no_change >= self.n_iter_no_change:
            return (f"{self.monitor} did not improve by more than {self.tol:g} "
                    f"for {self.no_change} epochs")
        return None


class GradNormBelow(StoppingCriterion):
    """Stop when the gradient norm of the epoch's last batch is below ``threshold``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = _number("GradNormBelow", "threshold", threshold, 0.0)

    def check(self, history):
        g = _value(history.records[-1], "grad_norm", "GradNormBelow") if history.records else math.inf
        return f"gradient norm {g:.3g} fell below {self.threshold:g}" if g < self.threshold else None


class TargetLoss(StoppingCriterion):
    """Stop when the monitored loss is at or below ``value``."""

    def __init__(self, value: float, monitor: str = "train_loss") -> None:
        self.value = _number("TargetLoss", "value", value)
        self.monitor = monitor

    def check(self, history):
        if not history.records:
            return None
        v = _value(history.records[-1], self.monitor, "TargetLoss")
        return f"{self.monitor} {v:.6g} reached the target {self.value:g}" if v <= self.value else None


class TimeLimit(StoppingCriterion):
    """Stop once ``seconds`` have passed since the start: checked after every step and every
    epoch (from the history's ``time`` column, or the criterion's own clock started by
    ``reset()`` or at construction)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = _number("TimeLimit", "seconds", seconds, 0.0)
        self.reset()

    def reset(self):
        self._start = time.perf_counter()

    def _reason(self, elapsed: float) -> str | None:
        return f"reached the time limit of {self.seconds:g} s" if elapsed >= self.seconds else None

    def check_step(self, step):
        return self._reason(time.perf_counter() - self._start)

    def check(self, history):
        t = history.records[-1].get("time") if history.records else None
        return self._reason(time.perf_counter() - self._start if t is None else t)


class EarlyStopping(StoppingCriterion):
    """Stop when the monitored value has not improved for ``patience`` epochs (Keras).

    An epoch improves on the best so far when its value is below ``best - min_delta``
    (``mode="min"``) or above ``best + min_delta`` (``mode="max"``, e.g. an accuracy in
    ``val_metric``); a NaN never improves. With ``restore_best_weights``, the parameters of
    the best epoch are copied when it ends and written back, in place, when training ends,
    whatever ended it (as Keras 3). ``best``, ``best_epoch`` and ``wait`` show the state.
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, monitor: str = "val_loss", mode: str = "min",
                 restore_best_weights: bool = True) -> None:
        self.patience = _count("EarlyStopping", "patience", patience, 0)
        self.min_delta = abs(_number("EarlyStopping", "min_delta", min_delta))
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self.restore_best_weights = bool(restore_best_weights)
        self.reset()

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.restored_epoch = None
        self.wait = 0
        self.best_weights: list[np.ndarray] | None = None
        self._best_index = -1   # record index of the best epoch
        self._saved_index = -1  # record index whose parameters best_weights holds
        self._seen = 0

    def _improves(self, v: float) -> bool:
        if self.mode == "min":
            return v + self.min_delta < self.best
        return v - self.min_delta > self.best

    def _update(self, history: History) -> None:
        if len(history) < self._seen:
            self.reset()
        for i in range(self._seen, len(history)):
            r = history.records[i]
            v = _value(r, self.monitor, "EarlyStopping")
            if self._improves(v):
                self.best, self.best_epoch, self._best_index, self.wait = v, r.get("epoch") or i + 1, i, 0
            else:
                self.wait += 1
        self._seen = len(history)

    def on_epoch_end(self, history, params):
        self._update(history)
        # Only the live parameters of the epoch that just ended can be copied.
        if self.restore_best_weights and self._best_index == len(history) - 1 != self._saved_index:
            if self.best_weights is None or len(self.best_weights) != len(params):
                self.best_weights = [np.array(p, copy=True) for p in params]
            else:
                for b, p in zip(self.best_weights, params):
                    np.copyto(b, p)
            self._saved_index = self._best_index

    def check(self, history):
        self._update(history)
        if self.wait > 0 and self.wait >= self.patience:
            return (f"{self.monitor} did not improve for {self.wait} epochs "
                    f"(best {self.best:.6g} at epoch {self.best_epoch})")
        return None

    def restore(self, params: Sequence[np.ndarray]) -> bool:
        """Copy the best epoch's parameters into ``params`` in place; False if none were saved."""
        if self.best_weights is None:
            return False
        if len(params) != len(self.best_weights):
            raise ValueError(f"restore: {len(params)} arrays given, {len(self.best_weights)} were saved")
        for p, b in zip(params, self.best_weights):
            np.copyto(p, b)
        return True

    def on_train_end(self, params):
        if self.restore_best_weights and self.restore(params):
            self.restored_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        """The criterion's state (copies): the best value, its epoch, ``wait``, the best
        weights and which records were seen, so that a resumed run stops where the
        uninterrupted one would have (checkpoints)."""
        return {"best": float(self.best), "best_epoch": self.best_epoch, "wait": int(self.wait),
                "best_index": int(self._best_index), "saved_index": int(self._saved_index), "seen": int(self._seen),
                "best_weights": None if self.best_weights is None else [np.array(w, copy=True)
                                                                        for w in self.best_weights]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s ``state`` (copied)."""
        weights = state["best_weights"]
        self.best = float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.wait = int(state["wait"])
        self._best_index, self._saved_index = int(state["best_index"]), int(state["saved_index"])
        self._seen = int(state["seen"])
        self.best_weights = None if weights is None else [np.array(w, copy=True) for w in weights]


class AnyOf(StoppingCriterion):
    """Stop when any of the criteria says so (the first one's reason). Every criterion sees
    every hook, so each keeps its state whichever stops."""

    criteria: list[Any]

    def __init__(self, *criteria: StoppingCriterion) -> None:
        flat: list[Any] = []
        for c in criteria:
            flat += c.criteria if isinstance(c, AnyOf) else [c]
        for c in flat:
            if not callable(getattr(c, "check", None)):
                raise TypeError(f"{c!r} is not a stopping criterion (it has no check(history) method)")
        self.criteria = flat

    def _each(self, hook: str, *args: Any) -> str | None:
        # Any object with check(history) is a criterion: the other hooks are optional.
        reasons = [getattr(c, hook)(*args) for c in self.criteria if hasattr(c, hook)]
        return next((r for r in reasons if r), None)

    def reset(self):
        self._each("reset")

    def check(self, history):
        return self._each("check", history)

    def check_step(self, step):
        return self._each("check_step", step)

    def on_epoch_end(self, history, params):
        self._each("on_epoch_end", history, params)

    def on_train_end(self, params):
        self._each("on_train_end", params)

    @property
    def restored_epoch(self) -> int | None:  # type: ignore[override]
        """The first criterion's that restored parameters."""
        return next((e for c in self.criteria if (e := getattr(c, "restored_epoch", None)) is not None), None)
