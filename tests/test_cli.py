"""The fastgd command line: demo, train and predict end to end, the input formats, and the
one-line errors (exit status 2)."""

from __future__ import annotations

import csv
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from csv_files import write_csv

import fastgd
from fastgd import cli, datasets, io, persistence


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


#: The plots need matplotlib (the "plot" extra); without it the commands say so and go on.
HAVE_MATPLOTLIB = _have_matplotlib()


def _assert_plot(path, out):
    """The loss plot was written to ``path``, or, without matplotlib, ``out`` says why not."""
    if HAVE_MATPLOTLIB:
        assert path.stat().st_size > 0
        assert f"loss plot written to {path}" in out or f"loss plot written to {os.path.realpath(path)}" in out
    else:
        assert "matplotlib is not installed: no loss plot (pip install matplotlib)" in out
        assert not path.exists()


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clf_csv(tmp_path):
    X, y = datasets.make_classification(n_samples=300, n_features=4, n_classes=3, random_state=1)
    labels = np.array(["ant", "bee", "cow"])[y]
    path = tmp_path / "clf.csv"
    # The target in the middle, to check that columns are picked by name.
    write_csv(path, ["a", "b", "label", "c", "d"],
               [[x[0], x[1], lab, x[2], x[3]] for x, lab in zip(X, labels)])
    return path


@pytest.fixture
def reg_npz(tmp_path):
    X, y = datasets.make_regression(n_samples=200, n_features=3, random_state=1)
    path = tmp_path / "reg.npz"
    np.savez(path, X=X, y=y)
    return path


def _read_predictions(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["prediction"]
    return [r[0] for r in rows[1:]]


def test_train_save_predict_csv(tmp_path, capsys, clf_csv):
    model_path = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", clf_csv, "--target", "label", "--model", "logistic", "--epochs", "3",
                         "--save", model_path, "--plot", tmp_path / "loss.png")
    assert code == 0, err
    assert "epoch 1/3" in out and "epoch 3/3" in out and "test accuracy:" in out
    assert model_path.exists()
    _assert_plot(tmp_path / "loss.png", out)
    info = persistence.load_info(model_path)["info"]
    assert info["features"] == ["a", "b", "c", "d"] and info["target"] == "label"

    pred_path = tmp_path / "pred.csv"
    code, out, err = run(capsys, "predict", model_path, clf_csv, "--output", pred_path)
    assert code == 0, err
    assert "accuracy on" in out
    model = fastgd.load(model_path)
    with open(clf_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    X = np.array([[float(r[c]) for c in "abcd"] for r in rows])
    assert _read_predictions(pred_path) == [str(v) for v in model.predict(X)]
    assert model.score(X, [r["label"] for r in rows]) > 0.5

    # Printed predictions: stdout holds only them, the score goes to stderr.
    code, out, err = run(capsys, "predict", model_path, clf_csv)
    assert code == 0
    assert out.split() == [str(v) for v in model.predict(X)]
    assert "accuracy on" in err

    # A file without the target column: predictions, no score.
    write_csv(tmp_path / "new.csv", ["d", "c", "b", "a"], [[r[c] for c in "dcba"] for r in rows[:5]])
    code, out, err = run(capsys, "predict", model_path, tmp_path / "new.csv")
    assert code == 0 and out.split() == [str(v) for v in model.predict(X[:5])] and "accuracy" not in err


def test_train_with_schedule_and_full_batch(tmp_path, capsys, reg_npz):
    code, out, err = run(capsys, "train", reg_npz, "--model", "linear", "--epochs", "4", "--batch-size", "0",
                         "--optimizer", "sgd", "--lr", "0.1", "--schedule", "step_decay:step_size=2,gamma=0.5",
                         "--test-fraction", "0.25", "--save", tmp_path / "r.npz")
    assert code == 0, err
    assert "test R^2:" in out and "160 rows" not in out and "150 rows x 3 features" in out
    lr = fastgd.load(tmp_path / "r.npz").lr
    assert lr.get_config() == {"name": "step_decay", "lr": 0.1, "step_size": 2, "gamma": 0.5}


def test_npz_and_npy_inputs(tmp_path, capsys, reg_npz):
    code, _, err = run(capsys, "train", reg_npz, "--model", "linear", "--epochs", "2", "--save", tmp_path / "a.npz")
    assert code == 0, err
    code, out, err = run(capsys, "predict", tmp_path / "a.npz", reg_npz)
    assert code == 0 and len(out.split()) == 200 and "R^2 on" in err

    with np.load(reg_npz) as d:
        X, y = d["X"], d["y"]
    np.save(tmp_path / "t.npy", np.column_stack([X[:, :1], y, X[:, 1:]]))
    code, _, err = run(capsys, "train", tmp_path / "t.npy", "--target", "1", "--model", "linear", "--epochs", "2",
                       "--save", tmp_path / "b.npz")
    assert code == 0, err
    model = fastgd.load(tmp_path / "b.npz")
    code, out, err = run(capsys, "predict", tmp_path / "b.npz", tmp_path / "t.npy")  # with the target column
    assert code == 0 and "R^2 on" in err
    assert [float(v) for v in out.split()] == model.predict(X).tolist()
    np.save(tmp_path / "x.npy", X)  # features only
    code, out, err = run(capsys, "predict", tmp_path / "b.npz", tmp_path / "x.npy")
    assert code == 0 and [float(v) for v in out.split()] == model.predict(X).tolist() and "R^2" not in err


def test_svmlight_input(tmp_path, capsys):
    X, y = datasets.make_classification(n_samples=200, n_features=5, random_state=2)
    lines = ["# a comment line"]
    for x, label in zip(X, y):
        feats = " ".join(f"{j + 1}:{float(v)!r}" for j, v in enumerate(x) if j != 2)  # feature 3 is sparse (zero)
        lines.append(f"{2 * label - 1} qid:1 {feats}  # trailing comment")
    (tmp_path / "d.svm").write_text("\n".join(lines) + "\n\n")
    table = io.read_svmlight(str(tmp_path / "d.svm"))
    assert table.X.format == "csr" and table.X.shape == (200, 5) and table.X[:, 2].nnz == 0
    assert np.array_equal(table.X.toarray()[:, [0, 1, 3, 4]], X[:, [0, 1, 3, 4]])
    assert set(table.y.tolist()) == {-1, 1} and table.y.dtype == np.int64

    # The MLPs take dense input: they train on a dense copy, with a note giving its size.
    # (--model linear and logistic train on the sparse matrix: tests/test_cli_sparse.py.)
    code, out, err = run(capsys, "train", tmp_path / "d.svm", "--model", "mlp", "--hidden", "4", "--epochs", "2",
                         "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "MLPClassifier takes dense input: the 200 x 5 sparse matrix" in err and "(0.0 MiB)" in err
    code, out, err = run(capsys, "train", tmp_path / "d.svm", "--model", "logistic", "--solver", "newton")
    assert code == 0 and "LogisticRegression with --solver newton takes dense input" in err, err
    code, out, err = run(capsys, "train", tmp_path / "d.svm", "--model", "logistic", "--epochs", "2")
    assert code == 0 and "takes dense input" not in err and "5 features (sparse: 640 values stored)" in out, out
    # Fewer features in the file than the model has: the rest are zeros.
    (tmp_path / "few.libsvm").write_text("1 1:0.5 2:1.0\n-1 4:2.0\n")
    code, out, err = run(capsys, "predict", tmp_path / "m.npz", tmp_path / "few.libsvm")
    assert code == 0 and len(out.split()) == 2 and "accuracy on" in err
    (tmp_path / "many.svm").write_text("1 9:0.5\n")
    code, out, err = run(capsys, "predict", tmp_path / "m.npz", tmp_path / "many.svm")
    assert code == 2 and "feature indices up to 9" in err


def test_mlp_model(tmp_path, capsys, clf_csv, reg_npz):
    code, out, err = run(capsys, "train", clf_csv, "--target", "label", "--model", "mlp", "--hidden", "6",
                         "--epochs", "2", "--save", tmp_path / "c.npz")
    assert code == 0, err
    assert "MLPClassifier" in out and type(fastgd.load(tmp_path / "c.npz")).__name__ == "MLPClassifier"
    code, out, err = run(capsys, "train", reg_npz, "--model", "mlp", "--epochs", "2")
    assert code == 0 and "MLPRegressor" in out and "test R^2" in out


def test_demo(tmp_path, capsys):
    plot = tmp_path / "demo.png"
    code, out, err = run(capsys, "demo", "--epochs", "2", "--plot", plot)
    assert code == 0, err
    assert "epoch 1/2" in out and "epoch 2/2" in out and "val_loss" in out
    assert "newton (exact optimum)" in out and "test accuracy" in out
    _assert_plot(plot, out)


def test_demo_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "demo", "--epochs", "1", "--plot", tmp_path / "demo.png")
    assert code == 0 and "matplotlib is not installed" in out
    assert not (tmp_path / "demo.png").exists()


def test_python_m_fastgd_demo(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fastgd", "demo", "--epochs", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    _assert_plot(tmp_path / "fastgd-demo-loss.png", proc.stdout)


def test_schedule_specs():
    s = cli.parse_schedule("cosine", 0.1, 300)
    assert s.get_config() == {"name": "cosine", "lr": 0.1, "T_max": 300, "eta_min": 0.0}
    s = cli.parse_schedule("multistep:milestones=[10, 20],gamma=0.5", 0.2, 50)
    assert s.get_config() == {"name": "multistep", "lr": 0.2, "milestones": [10, 20], "gamma": 0.5}
    s = cli.parse_schedule("one_cycle", 0.3, 40)
    assert s.get_config()["max_lr"] == 0.3 and s.get_config()["total_steps"] == 40
    s = cli.parse_schedule("cosine:T_max=7", 0.1, 300)
    assert s.get_config()["T_max"] == 7
    for spec, match in [("nope", "unknown schedule"), ("step_decay", "needs step_size"),
                        ("cosine:foo=1", "no argument 'foo'"), ("cosine:5", "expected name:key=value"),
                        ("step_decay:step_size=0", "step_size must be")]:
        with pytest.raises(cli.CLIError, match=match):
            cli.parse_schedule(spec, 0.1, 10)


def test_schedule_names_come_from_the_table(capsys):
    # Every schedule whose first argument is the learning rate is a --schedule name (the
    # horizon and lr filled in); the ones built from other schedules or two rates are not.
    from fastgd.schedules import SCHEDULES

    takes_lr = [n for n, fn in SCHEDULES.items() if next(iter(inspect.signature(fn).parameters)) in ("lr", "max_lr")]
    assert set(takes_lr) == set(SCHEDULES) - {"cyclic", "warmup", "join"}
    for name in takes_lr:
        try:
            assert cli.parse_schedule(name, 0.1, 10).name == name
        except cli.CLIError as e:
            assert f"{name} needs" in str(e)
    for name in ("cyclic", "warmup", "join"):
        with pytest.raises(cli.CLIError, match=f"unknown schedule '{name}'; choose one of {', '.join(takes_lr)}$"):
            cli.parse_schedule(name, 0.1, 10)
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and all(n in " ".join(out.split()) for n in takes_lr)


def test_loss_option(tmp_path, capsys, clf_csv, reg_npz):
    code, out, err = run(capsys, "train", reg_npz, "--model", "linear", "--loss", "huber", "--epochs", "2",
                         "--save", tmp_path / "r.npz")
    assert code == 0, err
    assert fastgd.load(tmp_path / "r.npz").loss == "huber"
    code, out, err = run(capsys, "train", clf_csv, "--target", "label", "--model", "logistic", "--loss", "hinge",
                         "--epochs", "2", "--save", tmp_path / "c.npz")
    assert code == 0 and "test accuracy" in out, err
    assert fastgd.load(tmp_path / "c.npz").loss == "hinge"
    code, out, err = run(capsys, "train", reg_npz, "--model", "linear", "--loss", "hinge")
    _assert_error(code, out, err, "--model linear takes --loss squared_error or huber, not 'hinge'")
    code, out, err = run(capsys, "train", clf_csv, "--target", "label", "--model", "mlp", "--loss", "log_loss",
                         "--epochs", "1")
    assert code == 0 and "fastgd: warning: --loss does not apply to --model mlp; ignored" in err
    code, out, err = run(capsys, "train", reg_npz, "--model", "linear", "--loss", "softmax_cross_entropy")
    assert code == 2 and "invalid choice" in err
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "squared_error, huber for --model linear; log_loss, hinge for --model logistic" in \
        " ".join(out.split())


# -- errors ---------------------------------------------------------------------------------

def _assert_error(code, out, err, match):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastgd: error: ") and match in lines[0], lines[0]
    assert "Traceback" not in err + out


def test_data_errors(tmp_path, capsys, clf_csv):
    def train(path, *extra):
        return run(capsys, "train", path, "--model", "logistic", "--epochs", "1", *extra)

    _assert_error(*train(tmp_path / "missing.csv", "--target", "y"), "no such file")
    _assert_error(*train(clf_csv, "--target", "nope"), "has no column 'nope'")
    _assert_error(*train(clf_csv), "needs --target")
    (tmp_path / "data.txt").write_text("1,2\n")
    _assert_error(*train(tmp_path / "data.txt", "--target", "y"), "cannot tell the format")
    write_csv(tmp_path / "text.csv", ["a", "b", "y"], [["1", "x", "0"], ["2", "3", "1"], ["3", "4", "0"]])
    _assert_error(*train(tmp_path / "text.csv", "--target", "y"), "column 'b' has the non-numeric value 'x' on line 2")
    write_csv(tmp_path / "gap.csv", ["a", "y"], [["1", "0"], ["", "1"], ["2", "1"]])
    _assert_error(*train(tmp_path / "gap.csv", "--target", "y"), "empty value")
    (tmp_path / "ragged.csv").write_text("a,b,y\n1,2,0\n1,1\n")
    _assert_error(*train(tmp_path / "ragged.csv", "--target", "y"), "line 3 has 2 fields")
    (tmp_path / "empty.csv").write_text("")
    _assert_error(*train(tmp_path / "empty.csv", "--target", "y"), "is empty")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    _assert_error(*train(tmp_path / "bad.npy", "--target", "0"), "cannot read")
    np.save(tmp_path / "one.npy", np.zeros(5))
    _assert_error(*train(tmp_path / "one.npy", "--target", "0"), "must be a 2-D array")
    np.save(tmp_path / "two.npy", np.zeros((5, 3)))
    _assert_error(*train(tmp_path / "two.npy", "--target", "7"), "out of range")
    _assert_error(*train(tmp_path / "two.npy", "--target", "y"), "column index")
    np.savez(tmp_path / "noX.npz", A=np.zeros((3, 2)))
    _assert_error(*train(tmp_path / "noX.npz"), "has no array 'X'")
    (tmp_path / "bad.svm").write_text("1 1:0.5 oops\n")
    _assert_error(*train(tmp_path / "bad.svm"), "line 1: 'oops' is not index:value")
    write_csv(tmp_path / "one_class.csv", ["a", "y"], [["1", "0"], ["2", "0"], ["3", "0"]])
    _assert_error(*train(tmp_path / "one_class.csv", "--target", "y", "--test-fraction", "0"), "only one class")
    _assert_error(*train(clf_csv, "--target", "label", "--optimizer", "bogus"), "unknown optimizer 'bogus'")
    _assert_error(*train(clf_csv, "--target", "label", "--test-fraction", "1.5"), "--test-fraction")
    _assert_error(*run(capsys, "train", clf_csv, "--target", "label", "--model", "linear"), "numeric target")


def test_predict_errors(tmp_path, capsys, clf_csv, reg_npz):
    model = tmp_path / "m.npz"
    assert run(capsys, "train", clf_csv, "--target", "label", "--model", "logistic", "--epochs", "1",
               "--save", model)[0] == 0
    _assert_error(*run(capsys, "predict", tmp_path / "nope.npz", clf_csv), "no such file")
    _assert_error(*run(capsys, "predict", clf_csv, clf_csv), "not a fastgd model file")
    _assert_error(*run(capsys, "predict", reg_npz, clf_csv), "without fastgd's metadata")
    _assert_error(*run(capsys, "predict", model, reg_npz), "has 3 feature columns, but the model was trained on 4")
    write_csv(tmp_path / "short.csv", ["a", "b", "c"], [["1", "2", "3"]])
    _assert_error(*run(capsys, "predict", model, tmp_path / "short.csv"), "lacks the feature column(s)")
    raw = model.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    _assert_error(*run(capsys, "predict", tmp_path / "cut.npz", clf_csv), "")
    _assert_error(*run(capsys, "predict", model, clf_csv, "--output", tmp_path / "no" / "dir.csv"), "cannot write")


def test_usage_errors(capsys):
    code, out, err = run(capsys)
    assert code == 2 and "usage" in err
    code, out, err = run(capsys, "train", "x.csv")  # --model is required
    assert code == 2 and "--model" in err
    code, out, err = run(capsys, "--help")
    assert code == 0 and "demo" in out


def test_console_script_entry_point():
    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")) as f:
        text = f.read()
    assert 'fastgd = "fastgd.cli:main"' in text
