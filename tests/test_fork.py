"""A process forked after the parent ran kernels on several threads trains without hanging.

GNU OpenMP's thread team does not survive fork(): a child's first parallel region could wait
forever on threads that exist only in the parent. fastgd runs such a child serially (see
fastgd.runtime), which gives the same bits as the parent's threaded run. (Without that
fallback, a child that asks for 2 threads here does hang in its first parallel region.)
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import numpy as np
import pytest

import fastgd as fg
from fastgd import _core

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
                       reason="needs the fork start method"),
    pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning"),
]

TIMEOUT = 120  # seconds; a hung child would never answer


def _data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, 40))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] + 0.3 * rng.standard_normal(2000) > 0).astype(int)
    return X, y


def _workload():
    """A logistic regression, an MLP and Adam steps, all above the (lowered) parallel threshold."""
    X, y = _data()
    logreg = fg.LogisticRegression(solver="gd", max_epochs=4, batch_size=1024, random_state=0).fit(X, y)
    mlp = fg.MLPClassifier(hidden_layer_sizes=(64,), max_epochs=3, batch_size=500, random_state=0).fit(X, y)
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(200_003).astype(np.float32), rng.standard_normal(70_001)]
    opt = fg.Adam(params, lr=1e-2)
    for _ in range(3):
        opt.step([rng.standard_normal(p.shape).astype(p.dtype) for p in params])
    return {"logreg": logreg.coef_.copy(), "mlp": [w.copy() for w in mlp.coefs_], "adam": params}


def _in_child():
    serial = (_core.forked_serial(), fg.get_num_threads())
    result = _workload()
    # Leaving a `with num_threads(1)` block must not bring back the parent's count.
    with fg.num_threads(1):
        pass
    fg.set_num_threads(0)
    return serial, (_core.forked_serial(), fg.get_num_threads()), result


@pytest.fixture
def parallel_parent():
    """The parent runs every call above 1,000 elements on 2 threads, so its team exists."""
    threshold = _core.get_parallel_threshold()
    _core.set_parallel_threshold(1000)
    try:
        with fg.num_threads(2):
            yield
    finally:
        _core.set_parallel_threshold(threshold)


def _assert_same(a, b):
    np.testing.assert_array_equal(a["logreg"], b["logreg"])
    for key in ("mlp", "adam"):
        assert len(a[key]) == len(b[key]), key
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP has no team to lose")
def test_forked_child_runs_serially_with_the_parents_bits(parallel_parent):
    parent = _workload()  # starts the parent's OpenMP team
    assert not _core.forked_serial()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        before, after, child = pool.apply_async(_in_child).get(timeout=TIMEOUT)
    assert before == (True, 1)
    assert after == (True, 1)
    _assert_same(parent, child)
    # The parent itself is untouched.
    assert fg.get_num_threads() == 2 and not _core.forked_serial()


def _explicit_threads_in_child():
    fg.set_num_threads(2)
    return _core.forked_serial(), fg.get_num_threads()


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP has no team to lose")
def test_explicit_count_in_child_lifts_the_fallback(parallel_parent):
    _workload()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:  # no kernel runs in the child: only the settings are read
        assert pool.apply_async(_explicit_threads_in_child).get(timeout=TIMEOUT) == (False, 2)


def test_child_of_a_serial_parent_keeps_its_threads():
    """Forking before any parallel region is safe, and the child keeps OpenMP's setting."""
    code = ("import multiprocessing, fastgd\n"
            "from fastgd import _core\n"
            "def f():\n    return _core.forked_serial()\n"
            "if __name__ == '__main__':\n"
            "    with multiprocessing.get_context('fork').Pool(1) as p:\n"
            "        print(p.apply_async(f).get(timeout=60))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
