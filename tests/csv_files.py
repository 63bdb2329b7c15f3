"""CSV files written for the command line's tests (one writer for every test module)."""

from __future__ import annotations

import csv


def write_csv(path, header, rows):
    """``path`` as a CSV file: the ``header`` row, then ``rows``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
