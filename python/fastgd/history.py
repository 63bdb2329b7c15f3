"""What a training run did, epoch by epoch: :class:`History`."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from fastgd._plotting import axes_for, integer_ticks, rate_axis, title

__all__ = ["History", "KEYS"]

# The columns every record has, in this order (None where a value does not apply).
KEYS = ("epoch", "step", "train_loss", "val_loss", "val_metric", "lr", "grad_norm", "time")


def _plain(value: Any) -> Any:
    # NumPy scalars become Python numbers, so that records compare, print and dump to JSON.
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _short(value: Any) -> str:
    """A number in 4 significant digits, for a one-line summary."""
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else repr(value)


class History:
    """Per-epoch records of a run, and why it stopped.

    ``records`` is a list of dicts with the keys ``epoch`` (1-based), ``step`` (optimizer
    steps so far), ``train_loss``, ``val_loss``, ``val_metric``, ``lr``, ``grad_norm`` and
    ``time`` (seconds since the start); a value that does not apply is ``None``. Records may
    carry extra keys. ``history["train_loss"]`` is a column (a list), ``history[-1]`` a
    record; ``stop_reason`` says why training stopped, and ``restored_epoch`` which epoch's
    parameters early stopping put back at the end (``None``: the last epoch's were kept).
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = (), stop_reason: str | None = None,
                 restored_epoch: int | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.stop_reason = stop_reason
        self.restored_epoch = restored_epoch
        for r in records:
            self.append(r)

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one epoch's record; missing standard keys are filled with ``None``."""
        if not isinstance(record, Mapping):
            raise TypeError(f"a record is a dict, got {type(record).__name__}")
        row = {k: _plain(record.get(k)) for k in KEYS}
        row.update({k: _plain(v) for k, v in record.items() if k not in row})
        self.records.append(row)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, key: str | int | slice) -> Any:
        """``history["val_loss"]``: that column as a list (``None`` where absent);
        ``history[i]``: the i-th record."""
        if isinstance(key, (int, slice)):
            return self.records[key]
        if key not in KEYS and not any(key in r for r in self.records):
            raise KeyError(f"no column {key!r}; the columns are {self.columns}")
        return [r.get(key) for r in self.records]

    @property
    def columns(self) -> list[str]:
        """The standard keys, then any extra keys in order of first appearance."""
        cols = list(KEYS)
        for r in self.records:
            cols += [k for k in r if k not in cols]
        return cols

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest ``val_loss``, or the lowest ``train_loss`` when there is
        no validation loss; ``None`` when no epoch has a finite loss (the first one on ties)."""
        for key in ("val_loss", "train_loss"):
            scored = [(r[key], r["epoch"]) for r in self.records if _finite(r.get(key))]
            if scored:
                return min(scored, key=lambda t: t[0])[1]
        return None

    def __repr__(self) -> str:
        """One line: the number of epochs, the last epoch's losses, the best epoch and why
        training stopped (a notebook shows this, never the records)."""
        parts = [f"{len(self)} epochs"]
        last = self.records[-1] if self.records else {}
        parts += [f"{key}={_short(last[key])}" for key in ("train_loss", "val_loss") if last.get(key) is not None]
        best = self.best_epoch
        if best is not None:
            key = "val_loss" if any(_finite(r.get("val_loss")) for r in self.records) else "train_loss"
            value = next(r[key] for r in self.records if r["epoch"] == best)
            parts.append(f"best {key}={_short(value)} at epoch {best}")
        if self.stop_reason is not None:
            parts.append(f"stop_reason={self.stop_reason!r}")
        return f"History({', '.join(parts)})"

    # -- files -----------------------------------------------------------------------

    def to_csv(self, path: str | os.PathLike) -> None:
        """One row per epoch, a header of :attr:`columns`; ``None`` is an empty field.
        (``stop_reason`` is not a column: use :meth:`to_json` to keep it.)"""
        cols = self.columns
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.records:
                # repr: the shortest text that reads back as the same float.
                w.writerow(["" if r.get(k) is None else (repr(r[k]) if isinstance(r[k], float) else r[k])
                            for k in cols])

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        """Read :meth:`to_csv`'s file: numbers back as int/float, empty fields as ``None``."""
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        # An extra column's empty field means the record did not have that key.
        return cls([{k: v for k, v in ((k, _parse(t)) for k, t in row.items()) if k in KEYS or v is not None}
                    for row in rows])

    def to_json(self, path: str | os.PathLike) -> None:
        """``{"records": [...], "stop_reason": ...}``. A non-finite loss is written as
        ``NaN``/``Infinity`` (as Python's json module does), so it reads back unchanged."""
        with open(path, "w") as f:
            json.dump({"records": self.records, "stop_reason": self.stop_reason,
                       "restored_epoch": self.restored_epoch}, f, indent=1)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        """Read :meth:`to_json`'s file."""
        with open(path) as f:
            data = json.load(f)
        return cls(data["records"], data.get("stop_reason"), data.get("restored_epoch"))

    # -- plot ------------------------------------------------------------------------

    def plot(self, path: str | os.PathLike | None = None, ax: Any = None) -> Any:
        """Train and validation loss per epoch, the learning rate on a twin y-axis (labelled;
        a constant rate shown as one value), and the epoch whose parameters early stopping
        restored (:attr:`restored_epoch`) marked by a dotted vertical line.

        Draws on ``ax`` if given, else on a new figure. With ``path``, saves the figure there.
        Returns the figure. Needs matplotlib.
        """
        fig, ax = axes_for(ax, path, "History.plot")
        epochs = self["epoch"]
        for key, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
            col = self[key]
            if any(v is not None for v in col):
                ax.plot(epochs, [math.nan if v is None else v for v in col], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        integer_ticks(ax.xaxis)
        markers = []
        if self.restored_epoch is not None:
            markers.append(ax.axvline(self.restored_epoch, color="tab:green", linestyle=":",
                                      label=f"epoch {self.restored_epoch}: best, restored"))
        lines = [ln for ln in ax.get_lines() if ln not in markers] + markers
        lrs = [math.nan if v is None else v for v in self["lr"]]
        if any(not math.isnan(v) for v in lrs):
            ax2 = ax.twinx()
            ax2.plot(epochs, lrs, color="tab:gray", linestyle="--", label="learning rate")
            ax2.set_ylabel("learning rate")
            rate_axis(ax2, lrs)
            lines += ax2.get_lines()
        if lines:
            ax.legend(lines, [ln.get_label() for ln in lines], loc="upper right")
        if self.stop_reason:
            ax.set_title(title(self.stop_reason), fontsize="small")
        if path is not None:
            fig.savefig(path)
        return fig


def _parse(text: str | None) -> Any:
    if text is None or text == "":
        return None
    # Floats are written with repr, which always has a '.', 'e', 'inf' or 'nan': an int
    # reads back as an int and a float as the same float.
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
