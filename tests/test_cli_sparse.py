"""``fastgd train`` / ``predict`` end to end on an svmlight file of 1,000,000 features (16 GB
as a dense array): the reader gives a CSR matrix, the linear estimators train and predict on it
as it is, and the command's memory stays far below a dense copy."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from svmlight_files import random_sparse_rows, write_svmlight

import fastgd
from fastgd import cli, io

sp = pytest.importorskip("scipy.sparse")

N_ROWS, N_FEATURES, NNZ = 3000, 1_000_000, 20


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    rows, labels = random_sparse_rows(N_ROWS, N_FEATURES, NNZ, seed=3)
    path = write_svmlight(tmp_path_factory.mktemp("wide") / "wide.svm", rows, labels)
    return str(path), rows, labels


def _command(*argv, cwd):
    """Run ``python -m fastgd argv`` and return its status, stdout, stderr and peak memory
    (bytes; None where the system does not report it)."""
    out_path, err_path = os.path.join(cwd, "stdout"), os.path.join(cwd, "stderr")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "fastgd", *map(str, argv)], stdout=out, stderr=err)
        if hasattr(os, "wait4"):
            _, status, usage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            # ru_maxrss: KiB on Linux, bytes on macOS.
            peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        else:
            code, peak = proc.wait(timeout=600), None
    with open(out_path) as out, open(err_path) as err:
        return code, out.read(), err.read(), peak


def test_the_reader_gives_csr_of_the_file_width(wide):
    path, rows, labels = wide
    table = io.read_table(path, None, None, train=True)
    X = table.X
    assert sp.issparse(X) and X.format == "csr" and X.shape == (N_ROWS, N_FEATURES)
    assert X.nnz == sum(map(len, rows)) and X.indices.dtype == np.int32
    assert table.y.tolist() == labels


def test_train_predict_and_score_on_a_million_features(wide, tmp_path):
    path, rows, labels = wide
    model_path = tmp_path / "m.npz"
    code, out, err, peak = _command("train", path, "--model", "logistic", "--save", model_path, cwd=tmp_path)
    assert code == 0, err
    assert "training LogisticRegression on 2400 rows x 1000000 features (sparse: " in out
    accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.7, out  # (chance: 0.5) the labels follow 50 features every row samples
    if peak is not None:  # a dense copy of the file alone would take 24 GB
        assert peak < 2**30, f"fastgd train peaked at {peak / 2**20:.0f} MiB"

    model = fastgd.load(model_path)
    assert model.n_features_in_ == N_FEATURES
    X = io.read_svmlight(path).X
    code, out, err, peak = _command("predict", model_path, path, "--output", tmp_path / "p.csv", cwd=tmp_path)
    assert code == 0, err
    with open(tmp_path / "p.csv") as f:
        predictions = [int(r[0]) for r in list(csv.reader(f))[1:]]
    assert predictions == model.predict(X).tolist()
    assert f"accuracy on {path}: {model.score(X, np.array(labels)):.4f}" in out
    if peak is not None:
        assert peak < 2**30

    # A file whose largest index is far below the model's width is read at the model's width.
    few = write_svmlight(tmp_path / "few.svm", [[(i, v) for i, v in r if i <= 1000] for r in rows[:50]],
                         labels[:50])
    code, out, err = _in_process("predict", model_path, few)
    assert code == 0, err
    kept = sp.hstack([X[:50, :1000], sp.csr_matrix((50, N_FEATURES - 1000))]).tocsr()
    assert [int(v) for v in out.split()] == model.predict(kept).tolist()
    assert "accuracy on" in err


def _in_process(*argv):
    import contextlib
    import io as text_io
    out, err = text_io.StringIO(), text_io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_sparse_update_and_linear(wide, tmp_path):
    path, _, _ = wide
    for mode in ("lazy", "exact"):
        code, out, err = _in_process("train", path, "--model", "logistic", "--epochs", "2", "--sparse-update",
                                     mode, "--save", tmp_path / f"{mode}.npz")
        assert code == 0, err
        assert fastgd.load(tmp_path / f"{mode}.npz").get_params()["sparse_update"] == mode
    code, out, err = _in_process("train", path, "--model", "linear", "--epochs", "2")
    assert code == 0 and "test R^2" in out, err
    code, out, err = _in_process("train", path, "--model", "logistic", "--sparse-update", "sideways")
    assert code == 2 and err.count("\n") == 1 and "sideways" in err


def test_a_dense_copy_that_would_not_fit_is_refused(wide):
    """--model mlp takes dense input: 2400 x 1,000,000 is 19 GB, refused before it is asked for
    when that is more than half the machine's memory."""
    path, _, _ = wide
    memory = cli._physical_memory()
    if memory is None or 8 * N_ROWS * N_FEATURES <= memory // 2:
        pytest.skip("the machine's memory is not known, or the dense copy would fit")
    code, out, err = _in_process("train", path, "--model", "mlp", "--epochs", "1")
    assert code == 2 and err.count("\n") == 1
    assert "does not fit in memory as the dense 3000 x 1000000 array MLPClassifier takes" in err
