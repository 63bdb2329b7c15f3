"""The command line as a new user meets it, run as a separate process (``python -m fastgd``):
defaults that train, pandas-written CSV files, non-finite cells, output paths checked before
training, pipes, the options' help, and the mode of the files it writes."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import fastgd
from fastgd import datasets, persistence
from fastgd.models import LogisticRegression


def fastgd_cli(*argv, cwd=None, umask=None, **kwargs):
    """``python -m fastgd ARGV`` in a new process; returns the CompletedProcess (text)."""
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([sys.executable, "-m", "fastgd", *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, preexec_fn=preexec, **kwargs)


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def clf_csv(tmp_path):
    X, y = datasets.make_classification(n_samples=200, n_features=3, n_classes=2, random_state=4)
    path = tmp_path / "clf.csv"
    _write_csv(path, ["a", "b", "c", "label"], [[*map(float, x), int(t)] for x, t in zip(X, y)])
    return path


def _one_error_line(proc, match):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastgd: error: ") and match in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# -- item 12: file modes ----------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_have_the_mode_the_umask_gives(tmp_path, clf_csv, umask):
    model = tmp_path / "m.npz"
    proc = fastgd_cli("train", clf_csv, "--target", "label", "--model", "logistic", "--epochs", "2",
                      "--save", model, umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(model.stat().st_mode) == 0o666 & ~umask
    # A checkpoint written by fit goes through the same atomic write.
    script = ("import numpy as np; from fastgd.models import LogisticRegression as L; "
              "X = np.random.default_rng(0).normal(size=(40, 2)); "
              f"L(max_epochs=2, tol=None).fit(X, X[:, 0] > 0, checkpoint={str(tmp_path / 'ck.npz')!r})")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "ck.npz").stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "clf.csv", "m.npz"]  # no temporary left
