"""bench/compare_sparse.py runs end to end on small sizes (``--quick``, the RCV1-shaped set
only) and writes the JSON it promises: every variant either measured or reported as not
available, with a reason (the floor's bare C++ loops too), and a target line for each; and its
hashed-text data (bench/sparse_data.py) are deterministic, canonical float32 CSR with unit rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_quick_run_writes_results(tmp_path):
    pytest.importorskip("scipy")
    pytest.importorskip("sklearn")
    out = tmp_path / "compare_sparse.json"
    done = subprocess.run([sys.executable, str(BENCH / "compare_sparse.py"), "--quick", "--only", "rcv1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    res = json.loads(out.read_text())
    part = res["rcv1"]
    assert part["n_train"] + part["n_test"] == 40_000 and part["n_features"] == 47_236
    assert abs(part["properties"]["nnz_per_row"] - 53) < 3
    peers = {r["peer"] for r in part["results"]}
    assert {"sklearn SGDClassifier(log_loss)", "sklearn LogisticRegression(solver='saga')"} <= peers
    floor = ("bare per-row SGD loop (C++, 1 thread)", "bare mini-batch Adam loop (C++, 1 thread)")
    for name in ("fastgd LogisticRegression, defaults (lazy)", "fastgd, sparse_update='exact'", *floor):
        assert (name in peers) != (name in part["not_available"])
    for r in part["results"]:
        assert r["samples_per_s"] > 0 and 0.5 < r["accuracy"] <= 1.0
    assert len(res["targets"]) == 4
    assert all(t["holds"] in (True, False, None) for t in res["targets"])


def test_hashed_text_is_deterministic_canonical_float32():
    pytest.importorskip("sklearn")
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        import sparse_data
    finally:
        sys.path.remove(str(BENCH))
    X, y = sparse_data.make_hashed_text(500)
    X2, y2 = sparse_data.make_hashed_text(500)
    assert X.shape == (500, 2**20) and X.dtype == np.float32 and X.has_canonical_format
    for a in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(X, a), getattr(X2, a))
    np.testing.assert_array_equal(y, y2)
    assert set(np.unique(y)) == {0, 1}
    np.testing.assert_allclose(np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel()), 1.0, rtol=1e-5)
    # 100-200 words per document, some repeated: fewer distinct hashed features than words.
    lengths = np.diff(X.indptr)
    assert lengths.min() >= 20 and lengths.max() <= 200
