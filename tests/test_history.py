"""History: columns, best epoch, CSV/JSON round trips, and the plot."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import fastgd as fg
from fastgd.history import KEYS, History


def _history():
    h = History(stop_reason="reached max_epochs=3")
    h.append({"epoch": 1, "step": 4, "train_loss": 1.5, "val_loss": 2.25, "lr": 0.1, "grad_norm": 3.0,
              "time": 0.01})
    h.append({"epoch": 2, "step": 8, "train_loss": 0.1 + 0.2, "val_loss": 1.0 / 3.0, "lr": 0.05,
              "grad_norm": 1e-300, "time": 0.02, "extra": 7})
    h.append({"epoch": 3, "step": 12, "train_loss": np.float64(0.25), "val_loss": 0.5, "val_metric": 0.9,
              "lr": 0.025, "grad_norm": 0.5, "time": 0.03})
    return h


def test_append_fills_missing_keys_with_none_and_keeps_extras():
    h = _history()
    assert len(h) == 3
    assert list(h[0]) == list(KEYS)
    assert h[0]["val_metric"] is None
    assert h["val_metric"] == [None, None, 0.9]
    assert h["extra"] == [None, 7, None]
    assert h.columns == [*KEYS, "extra"]


def test_columns_and_records():
    h = _history()
    assert h["epoch"] == [1, 2, 3]
    assert h["train_loss"] == [1.5, 0.1 + 0.2, 0.25]
    assert h[-1]["step"] == 12
    assert h.records[1]["lr"] == 0.05
    # NumPy scalars are stored as Python numbers (so the JSON dump works).
    assert type(h[-1]["train_loss"]) is float
    with pytest.raises(KeyError, match="no column 'nope'"):
        h["nope"]


def test_best_epoch_prefers_val_loss_then_train_loss():
    h = _history()
    assert h.best_epoch == 2  # val_loss 1/3 is the lowest; train_loss is lowest at epoch 3
    h2 = History([{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 1.0},
                  {"epoch": 3, "train_loss": math.nan}, {"epoch": 4, "train_loss": 2.0}])
    assert h2.best_epoch == 2
    assert History().best_epoch is None


def test_csv_round_trip(tmp_path):
    h = _history()
    path = tmp_path / "h.csv"
    h.to_csv(path)
    header = path.read_text().splitlines()[0]
    assert header == ",".join([*KEYS, "extra"])
    back = History.from_csv(path)
    # Bit-exact floats, ints stay ints, empty fields are None.
    assert back.records == h.records
    assert type(back[0]["epoch"]) is int
    assert back[1]["train_loss"] == 0.1 + 0.2


def test_json_round_trip_keeps_stop_reason_and_non_finite(tmp_path):
    h = _history()
    h.append({"epoch": 4, "step": 16, "train_loss": math.inf, "val_loss": math.nan})
    path = tmp_path / "h.json"
    h.to_json(path)
    back = History.from_json(path)
    assert back.stop_reason == "reached max_epochs=3"
    assert back.records[:3] == h.records[:3]
    assert back[-1]["train_loss"] == math.inf
    assert math.isnan(back[-1]["val_loss"])


def test_history_of_a_run_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 2)), rng.standard_normal(30)

    def lg(params, Xb, yb, wb):
        r = Xb @ params[0] - yb
        return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]

    h = fg.train(lg, [np.zeros(2)], X, y, optimizer="sgd", lr=0.1, max_epochs=4, validation_data=(X, y))
    h.to_json(tmp_path / "run.json")
    back = History.from_json(tmp_path / "run.json")
    assert back.records == h.records and back.stop_reason == h.stop_reason == "reached max_epochs=4"


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    h = _history()
    path = tmp_path / "h.png"
    fig = h.plot(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    # Loss axis with train and val lines, and the lr on a twin axis.
    assert len(fig.axes) == 2
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["train loss", "validation loss"]
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_ydata(), [0.1, 0.05, 0.025])


def test_plot_on_given_axes_without_lr():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    h = History([{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0}])
    assert h.plot(ax=ax) is fig
    assert len(fig.axes) == 1  # no lr column: no twin axis
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [2.0, 1.0])


def test_plot_without_path_uses_pyplot():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    plt.switch_backend("Agg")
    fig = _history().plot()
    try:
        assert plt.fignum_exists(fig.number) and len(fig.axes) == 2
    finally:
        plt.close(fig)


def test_plot_without_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        _history().plot()
