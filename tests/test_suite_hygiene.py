"""The test suite's own rules (pyproject.toml): an expected failure that passes fails the run,
and so does a fastgd warning that a test neither asserts nor silences."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fastgd

ROOT = Path(__file__).resolve().parent.parent

_TESTS = '''
import numpy as np
import pytest
import fastgd as fg

@pytest.mark.xfail(reason="expected to fail, but passes")
def test_xpass():
    pass

def _short_fit():
    X = np.random.default_rng(0).standard_normal((50, 2))
    return fg.LinearRegression(max_epochs=1, tol=1e-12, early_stopping=False).fit(X, X[:, 0])

def test_unexpected_convergence_warning():
    _short_fit()

def test_asserted_convergence_warning():
    with pytest.warns(fg.models.ConvergenceWarning):
        _short_fit()

def test_strided_x():
    X = np.random.default_rng(0).standard_normal((50, 4))[:, :2]
    fg.LinearRegression(solver="newton").fit(X, X[:, 0])
'''


def test_the_suite_fails_on_xpass_and_on_unasserted_fastgd_warnings(tmp_path):
    (tmp_path / "test_rules.py").write_text(_TESTS)
    # The fastgd this process imported (the source tree's or the installed one), not a guess.
    here = str(Path(fastgd.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                          str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path / "test_rules.py")],
                         capture_output=True, text=True, env=env, timeout=300)
    out = run.stdout
    failed = {line.rsplit("::", 1)[-1].split()[0] for line in out.splitlines() if line.startswith("FAILED")}
    assert failed == {"test_xpass", "test_unexpected_convergence_warning", "test_strided_x"}, out
    assert "XPASS(strict)" in out and "ConvergenceWarning: LinearRegression reached max_epochs=1" in out, out
    assert "DataConversionWarning: X is not contiguous" in out and "3 failed, 1 passed" in out, out
