"""fastgd.io's CSV reader on wide files: linear in the number of columns, with the same
one-line errors (column and line named) as on narrow ones."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from fastgd import io


def _write_wide(path, n_cols, rows, target="y"):
    """A CSV file of ``n_cols`` feature columns f0, f1, ... then the target; cell (i, j) is
    i + j / 8 (exact in binary), the target i."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{j}" for j in range(n_cols)] + [target])
        for i in range(rows):
            w.writerow([repr(i + j / 8) for j in range(n_cols)] + [i])
    return path


def _expected(n_cols, rows):
    return np.arange(rows)[:, None] + np.arange(n_cols)[None, :] / 8


def test_100k_columns_load(tmp_path):
    n = 100_000
    path = str(_write_wide(tmp_path / "wide.csv", n, 3))
    table = io.read_table(path, None, "y", train=True)
    np.testing.assert_array_equal(table.X, _expected(n, 3))
    np.testing.assert_array_equal(table.y, [0, 1, 2])
    assert table.feature_names == [f"f{j}" for j in range(n)]
    # Predict time: the model's columns in another order, looked up by name.
    names = table.feature_names[::-1]
    table = io.read_table(path, None, None, train=False, info={"features": names})
    np.testing.assert_array_equal(table.X, _expected(n, 3)[:, ::-1])


class _CountingName(str):
    """A column name that counts the comparisons and hashes made with it and fails once they
    pass a budget: a reader that searched the header once per column makes ~n^2/2 of them."""

    count = 0
    budget = 0

    @classmethod
    def _tick(cls):
        cls.count += 1
        if cls.count > cls.budget:
            raise AssertionError(f"more than {cls.budget} comparisons of column names")

    def __eq__(self, other):
        self._tick()
        return str.__eq__(self, other)

    def __ne__(self, other):
        self._tick()
        return str.__ne__(self, other)

    def __hash__(self):
        self._tick()
        return str.__hash__(self)

    def strip(self, chars=None):
        return _CountingName(str.strip(self, chars))


@pytest.mark.parametrize("train", [True, False])
def test_column_lookup_is_linear(tmp_path, monkeypatch, train):
    n = 20_000
    path = str(_write_wide(tmp_path / "wide.csv", n, 2))
    real_reader = csv.reader

    def reader(f, *args, **kwargs):
        for i, row in enumerate(real_reader(f, *args, **kwargs)):
            yield [_CountingName(c) for c in row] if i == 0 else row

    monkeypatch.setattr(io.csv, "reader", reader)
    monkeypatch.setattr(_CountingName, "count", 0)
    monkeypatch.setattr(_CountingName, "budget", 10 * n)
    features = None if train else [_CountingName(f"f{j}") for j in reversed(range(n))]
    table = io.read_csv(path, _CountingName("y"), features=features, target_required=train)
    assert table.X.shape == (2, n)
    # At least one operation per column (the hook saw the names), at most a few.
    assert n <= _CountingName.count <= 10 * n


@pytest.mark.parametrize("value, what", [("NA", "the non-numeric value 'NA'"), ("?", "the non-numeric value '?'"),
                                         ("", "an empty value (missing values are not supported)")])
def test_wide_file_errors_name_the_first_bad_column_and_line(tmp_path, value, what):
    n = 30_000
    path = tmp_path / "bad.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{j}" for j in range(n)] + ["y"])
        for i in range(3):
            row = ["1.5"] * n + [i]
            if i == 1:  # line 3 of the file
                row[12_345] = value
            if i == 2:  # a later column too: the first in the features' order is named
                row[23_456] = value
            w.writerow(row)
    with pytest.raises(io.DataFileError, match=re.escape(f"column 'f12345' has {what} on line 3; features must be")):
        io.read_csv(str(path), "y")
    reordered = [f"f{j}" for j in reversed(range(n))]
    with pytest.raises(io.DataFileError, match=re.escape(f"column 'f23456' has {what} on line 4; features must be")):
        io.read_csv(str(path), "y", features=reordered, target_required=False)


def test_tall_file_error_names_the_line(tmp_path):
    rows = 2**16 + 10  # more rows than one block of cells: a column per conversion
    path = tmp_path / "tall.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "y"])
        w.writerows([[i, i / 4, i % 2] for i in range(rows - 1)])
        w.writerow([1, "x", 0])
    with pytest.raises(io.DataFileError, match=f"column 'b' has the non-numeric value 'x' on line {rows + 1};"):
        io.read_csv(str(path), "y")
    (tmp_path / "tall_ok.csv").write_text(path.read_text().replace(",x,", ",0.5,"))
    table = io.read_csv(str(tmp_path / "tall_ok.csv"), "y")
    np.testing.assert_array_equal(table.X[:-1], np.c_[np.arange(rows - 1), np.arange(rows - 1) / 4])
    assert table.X[-1].tolist() == [1.0, 0.5]
