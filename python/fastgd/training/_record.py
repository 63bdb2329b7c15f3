"""The record of :func:`fastgd.train`: what an epoch adds up to (``train_loss``, the last
step's learning rate and gradient norm), its History record with the validation scores, and
what is decided on it (the stopping criteria, the callbacks), shown by the progress bar."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fastgd.history import History
from fastgd.training._common import n_rows

__all__ = ["Progress", "Record", "Validation", "resume_point"]


class Progress:
    """A tqdm bar over epochs with the losses as postfix; plain prints without tqdm."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, unit="epoch")

    def update(self, rec: dict[str, Any]) -> None:
        shown = {k: f"{rec[k]:.4g}" for k in ("train_loss", "val_loss", "val_metric") if rec.get(k) is not None}
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update()
        else:
            of = f"/{self.total}" if self.total else ""
            print(f"epoch {rec['epoch']}{of}: " + "  ".join(f"{k}={v}" for k, v in shown.items()), flush=True)

    def close(self, reason: str | None) -> None:
        if self.bar is not None:
            self.bar.close()
        if reason:
            print(f"stopped: {reason}", flush=True)


class Validation:
    """The validation scores of an epoch: ``loss_fn`` (by default the training loss's value)
    and ``metric`` on ``(X_val, y_val)``; under MPI the ranks' means, weighted by their
    validation shards' sizes."""

    def __init__(self, validation_data: Any, loss_fn: Callable | None, metric: Callable | None,
                 loss_and_grad: Callable, gather: bool) -> None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        self.X, self.y = validation_data
        if loss_fn is None:
            def loss_fn(p: list[np.ndarray], Xv: Any, yv: Any) -> float:
                if not gather:
                    return loss_and_grad(p, Xv, yv, None, slice(0, n_rows(Xv, "X_val")))[0]
                return loss_and_grad(p, Xv, yv, None)[0]
        self.loss_fn, self.metric = loss_fn, metric

    def scores(self, params: list[np.ndarray], dist: Any) -> tuple[float | None, float | None]:
        val_loss: float | None = float(self.loss_fn(params, self.X, self.y))
        val_metric = None if self.metric is None else float(self.metric(params, self.X, self.y))
        if dist is not None:
            val_loss, val_metric = dist.global_means((val_loss, val_metric), n_rows(self.X, "X_val"))
        return val_loss, val_metric


def resume_point(state: dict[str, Any] | None) -> tuple[History, int, int, float | None]:
    """``(history, epochs, steps, first gradient norm)`` of the run ``state`` continues (see
    train's ``state``), or of a new run."""
    if state is None or state.get("history") is None:
        return History(), 0, 0, None
    history = History([dict(r) for r in state["history"].records])
    epoch = len(history)
    return history, epoch, int(history.records[-1]["step"]) if epoch else 0, state.get("first_gnorm")


class Record:
    """The run's record: its steps so far, the running sums of the epoch under way, and at
    its end the History record and the decisions taken on it."""

    def __init__(self, params: list[np.ndarray], history: History, step: int, criteria: Any,
                 callbacks: list[Callable], validation: Validation | None, dist: Any,
                 state: dict[str, Any] | None, progress: Progress | None) -> None:
        self.params, self.history, self.step, self.criteria = params, history, step, criteria
        self.callbacks, self.validation, self.dist, self.state = callbacks, validation, dist, state
        self.progress = progress
        self.t0 = time.perf_counter()
        self.start_epoch()

    def start_epoch(self) -> None:
        # Sums of the epoch's batch losses: weighted by the batches' total sample weight (or
        # size), and plain, for when all weights are 0.
        self.sums = (0.0, 0.0, 0.0)
        self.batches = 0
        self.lr = self.gnorm = math.nan  # of the epoch's last step

    def add(self, loss: float, weight: float) -> None:
        """One step kept: its batch's loss and total weight."""
        loss_sum, weight_sum, plain_sum = self.sums
        self.sums = (loss_sum + loss * weight, weight_sum + weight, plain_sum + loss)
        self.batches += 1

    def end_epoch(self, epoch: int, reason: str | None, first_gnorm: float | None) -> str | None:
        """Records the epoch and returns the reason to stop: ``reason`` (a criterion that
        stopped a step), else the criteria's, else a callback's, else None. Every callback runs
        every epoch, also when a criterion stops here."""
        loss_sum, weight_sum, plain_sum = self.sums
        rec: dict[str, Any] = {
            "epoch": epoch, "step": self.step,
            # All-zero weights fall back to the plain mean rather than 0/0.
            "train_loss": loss_sum / weight_sum if weight_sum > 0 else plain_sum / max(self.batches, 1),
            "val_loss": None, "val_metric": None, "lr": self.lr, "grad_norm": self.gnorm,
        }
        if self.validation is not None:
            rec["val_loss"], rec["val_metric"] = self.validation.scores(self.params, self.dist)
        rec["time"] = time.perf_counter() - self.t0
        self.history.append(rec)
        self.criteria.on_epoch_end(self.history, self.params)
        reason = reason or self.criteria.check(self.history)
        if self.state is not None:
            self.state["first_gnorm"] = first_gnorm
        stop = [bool(cb(self.history, self.params)) for cb in self.callbacks]
        if self.dist is not None:
            stop = [self.dist.any_rank(any(stop))]
        if reason is None and any(stop):
            reason = "stopped by callback"
        if self.progress is not None:
            self.progress.update(rec)
        return reason

    def close(self, reason: str | None) -> None:
        if self.progress is not None:
            self.progress.close(reason)
