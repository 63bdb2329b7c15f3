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


# -- what the loss plot shows (read from the Figure, not its pixels) --------------------------

def _constant_lr_run(epochs=12, restored=None):
    rng = np.random.default_rng(0)
    records = [{"epoch": e, "train_loss": 1.0 / e + 0.01 * rng.random(), "val_loss": 1.0 / e + (e / 50) ** 2,
                "lr": 0.01} for e in range(1, epochs + 1)]
    h = History(records, "validation loss did not improve")
    if restored is not None:
        h.restored_epoch = restored
    return h


def _visible_ticks(axis):
    low, high = sorted(axis.get_view_interval())
    return [t for t in axis.get_majorticklocs() if low - 1e-9 <= t <= high + 1e-9]


def test_plot_labels_the_rate_axis_and_keeps_it_inside_the_figure():
    pytest.importorskip("matplotlib")
    fig = _saved_figure(_constant_lr_run())
    loss_ax, lr_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert lr_ax.get_ylabel() == "learning rate"
    fig.draw_without_rendering()
    label = lr_ax.yaxis.label.get_window_extent()
    assert fig.bbox.x0 <= label.x0 and label.x1 <= fig.bbox.x1  # not cut at the figure's edge


def _saved_figure(history):
    """The figure as History.plot makes it for a file (no GUI backend)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return history.plot(f"{d}/loss.png")


def test_plot_ticks_epochs_at_whole_numbers():
    pytest.importorskip("matplotlib")
    for epochs in (3, 7, 12, 150):
        fig = _saved_figure(_constant_lr_run(epochs))
        ticks = _visible_ticks(fig.axes[0].xaxis)
        assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)


def test_plot_shows_a_constant_rate_as_one_value():
    pytest.importorskip("matplotlib")
    fig = _saved_figure(_constant_lr_run())
    lr_ax = fig.axes[1]
    assert _visible_ticks(lr_ax.yaxis) == [0.01]
    assert [t.get_text() for t in lr_ax.get_yticklabels()] == ["0.01"]
    assert lr_ax.yaxis.get_offset_text().get_text() == ""
    low, high = lr_ax.get_ylim()
    assert low <= 0.0 and high >= 0.02  # the line is not stretched over the whole axis


def test_plot_writes_a_schedule_plainly_from_zero():
    pytest.importorskip("matplotlib")
    h = History([{"epoch": e, "train_loss": 1.0 / e, "lr": 1e-3 * 0.5 ** e} for e in range(1, 9)])
    lr_ax = _saved_figure(h).axes[1]
    assert lr_ax.get_ylim()[0] == 0.0
    texts = [t.get_text() for t in lr_ax.get_yticklabels()]
    assert texts and all("e" not in t for t in texts[1:]) and lr_ax.yaxis.get_offset_text().get_text() == ""


def test_plot_marks_the_epoch_early_stopping_restored():
    pytest.importorskip("matplotlib")
    fig = _saved_figure(_constant_lr_run(restored=5))
    marks = [ln for ln in fig.axes[0].get_lines() if "restored" in ln.get_label()]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [5, 5]
    assert any("restored" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    unmarked = _saved_figure(_constant_lr_run())
    assert not [ln for ln in unmarked.axes[0].get_lines() if "restored" in ln.get_label()]


def test_train_records_which_epoch_early_stopping_restored(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 8))
    y = X @ rng.standard_normal(8) + rng.standard_normal(60)
    Xv, yv = rng.standard_normal((30, 8)), rng.standard_normal(30)  # unrelated: overfitting shows

    def lg(params, Xb, yb, wb):
        r = Xb @ params[0] - yb
        return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]

    def val_loss(params, Xb, yb):
        return 0.5 * float(np.mean((Xb @ params[0] - yb) ** 2))

    es = fg.stopping.EarlyStopping(patience=3)
    h = fg.train(lg, [np.zeros(8)], X, y, optimizer="sgd", lr=0.05, max_epochs=200, validation_data=(Xv, yv),
                 loss_fn=val_loss, stopping=es)
    assert h.restored_epoch == es.best_epoch and h.restored_epoch < len(h)
    h.to_json(tmp_path / "h.json")
    assert History.from_json(tmp_path / "h.json").restored_epoch == h.restored_epoch
    no_restore = fg.train(lg, [np.zeros(8)], X, y, optimizer="sgd", lr=0.05, max_epochs=200,
                          validation_data=(Xv, yv), loss_fn=val_loss,
                          stopping=fg.stopping.EarlyStopping(patience=3, restore_best_weights=False))
    assert no_restore.restored_epoch is None


def test_an_estimator_with_early_stopping_marks_its_kept_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X[:, 0] + 0.8 * rng.standard_normal(300) > 0).astype(int)
    clf = fg.LogisticRegression(early_stopping=True, max_epochs=300, random_state=0).fit(X, y)
    h = clf.history_
    assert h.restored_epoch is not None and 1 <= h.restored_epoch <= len(h)
    clf.save(tmp_path / "clf.npz")
    assert fg.load(tmp_path / "clf.npz").history_.restored_epoch == h.restored_epoch
    fig = h.plot(tmp_path / "loss.png")
    (mark,) = [ln for ln in fig.axes[0].get_lines() if "restored" in ln.get_label()]
    assert list(mark.get_xdata()) == [h.restored_epoch] * 2
