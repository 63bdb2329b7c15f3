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
from csv_files import write_csv

import fastgd
from fastgd import datasets


def fastgd_cli(*argv, cwd=None, umask=None, **kwargs):
    """``python -m fastgd ARGV`` in a new process; returns the CompletedProcess (text)."""
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([sys.executable, "-m", "fastgd", *map(str, argv)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, preexec_fn=preexec, **kwargs)


@pytest.fixture
def clf_csv(tmp_path):
    X, y = datasets.make_classification(n_samples=200, n_features=3, n_classes=2, random_state=4)
    path = tmp_path / "clf.csv"
    write_csv(path, ["a", "b", "c", "label"], [[*map(float, x), int(t)] for x, t in zip(X, y)])
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


# -- item 6: the defaults train ---------------------------------------------------------------

def _export(tmp_path, name):
    """scikit-learn's bundled data set ``name`` as a CSV file with a ``target`` column."""
    from sklearn import datasets as sk_datasets

    X, y = getattr(sk_datasets, f"load_{name}")(return_X_y=True)
    path = tmp_path / f"{name}.csv"
    write_csv(path, [f"x{j}" for j in range(X.shape[1])] + ["target"],
               [[*map(float, x), t.item()] for x, t in zip(X, y)])
    return path, X, y


def _reference_score(model, X, y, seed=0, fraction=0.2):
    """scikit-learn's held-out score on the rows ``fastgd train`` holds out by default."""
    from sklearn.linear_model import LinearRegression
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastgd.cli import holdout

    train, test = holdout(len(X), fraction, seed)
    ref = LinearRegression() if model == "linear" else \
        make_pipeline(StandardScaler(), SkLogisticRegression(max_iter=10_000))
    return ref.fit(X[train], y[train]).score(X[test], y[test])


@pytest.mark.parametrize("name, model", [("breast_cancer", "logistic"), ("digits", "logistic"), ("wine", "logistic"),
                                         ("iris", "logistic"), ("diabetes", "linear")])
def test_defaults_reach_scikit_learns_score(tmp_path, name, model):
    path, X, y = _export(tmp_path, name)
    proc = fastgd_cli("train", path, "--target", "target", "--model", model)
    assert proc.returncode == 0, proc.stderr
    score_line = [ln for ln in proc.stdout.splitlines() if ln.startswith("test ")][-1]
    score = float(score_line.rsplit(":", 1)[1])
    assert score >= _reference_score(model, X, y) - 0.02, proc.stdout


@pytest.mark.parametrize("model, classes", [("linear", ["LinearRegression"]), ("logistic", ["LogisticRegression"]),
                                            ("mlp", ["MLPClassifier", "MLPRegressor"])])
def test_training_options_default_to_the_estimators_defaults(tmp_path, clf_csv, model, classes):
    # Nothing given: the saved model has every parameter the class has by default (but the
    # seed of --seed), and the help shows those defaults.
    proc = fastgd_cli("train", clf_csv, "--target", "label", "--model", model, "--save", tmp_path / "m.npz",
                      "--test-fraction", "0")
    assert proc.returncode == 0, proc.stderr
    saved = fastgd.load(tmp_path / "m.npz")
    assert type(saved).__name__ in classes
    defaults = type(saved)().get_params()
    params = saved.get_params()
    assert {k: v for k, v in params.items() if k not in ("random_state", "callbacks")} == \
        {k: v for k, v in defaults.items() if k not in ("random_state", "callbacks")}
    help_text = " ".join(fastgd_cli("train", "--help").stdout.split())
    for name in ("max_epochs", "lr", "batch_size", "tol"):
        assert f"{defaults[name]} for {model}" in help_text or f"{defaults[name]} for linear, logistic" in help_text


def test_epochs_and_lr_given_override_the_defaults(tmp_path, clf_csv):
    proc = fastgd_cli("train", clf_csv, "--target", "label", "--model", "mlp", "--hidden", "5", "--epochs", "3",
                      "--lr", "0.05", "--batch-size", "0", "--tol", "0", "--save", tmp_path / "m.npz")
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout
    p = fastgd.load(tmp_path / "m.npz").get_params()
    assert (p["max_epochs"], p["lr"], p["batch_size"], p["tol"], p["hidden_layer_sizes"]) == (3, 0.05, None, 0, (5,))


# -- item 7: a pandas index column ------------------------------------------------------------

@pytest.fixture
def indexed_csv(tmp_path):
    """A CSV file as ``DataFrame.to_csv`` writes it, its rows sorted by class: an unnamed first
    column holding the row index, which predicts the label perfectly."""
    X, y = datasets.make_classification(n_samples=200, n_features=2, n_classes=2, random_state=5)
    order = np.argsort(y, kind="stable")
    path = tmp_path / "indexed.csv"
    write_csv(path, ["", "a", "b", "label"], [[i, *map(float, X[r]), int(y[r])] for i, r in enumerate(order)])
    return path


def _trained_features(model_path):
    return fastgd.persistence.load_info(model_path)["info"]["features"]


def test_unnamed_first_column_is_dropped_with_a_notice(tmp_path, indexed_csv):
    proc = fastgd_cli("train", indexed_csv, "--target", "label", "--model", "logistic", "--save", tmp_path / "m.npz")
    assert proc.returncode == 0, proc.stderr
    assert "x 2 features" in proc.stdout
    notes = [ln for ln in proc.stderr.splitlines() if "first column" in ln]
    assert len(notes) == 1 and "no name" in notes[0] and "--index-col" in notes[0] and "--no-index-col" in notes[0]
    assert _trained_features(tmp_path / "m.npz") == ["a", "b"]
    # predict picks the trained columns by name: the index column is ignored, silently.
    proc = fastgd_cli("predict", tmp_path / "m.npz", indexed_csv)
    assert proc.returncode == 0 and len(proc.stdout.split()) == 200 and "first column" not in proc.stderr

    # pandas' name for it after a round trip through read_csv and to_csv
    text = indexed_csv.read_text().replace(",a,b,label", "Unnamed: 0,a,b,label", 1)
    (tmp_path / "again.csv").write_text(text)
    proc = fastgd_cli("train", tmp_path / "again.csv", "--target", "label", "--model", "logistic")
    assert proc.returncode == 0 and "x 2 features" in proc.stdout and "first column" in proc.stderr


def test_index_col_names_the_column_and_no_index_col_keeps_it(tmp_path, indexed_csv):
    proc = fastgd_cli("train", indexed_csv, "--target", "label", "--model", "logistic", "--no-index-col",
                      "--save", tmp_path / "kept.npz")
    assert proc.returncode == 0 and "x 3 features" in proc.stdout and "first column" not in proc.stderr
    assert _trained_features(tmp_path / "kept.npz") == ["", "a", "b"]

    text = indexed_csv.read_text().replace(",a,b,label", "id,a,b,label", 1)
    (tmp_path / "id.csv").write_text(text)
    for col in ("id", "0"):  # by name, or by position
        proc = fastgd_cli("train", tmp_path / "id.csv", "--target", "label", "--model", "logistic", "--index-col", col,
                          "--save", tmp_path / "id.npz")
        assert proc.returncode == 0 and "x 2 features" in proc.stdout and proc.stderr == "", proc.stderr
        assert _trained_features(tmp_path / "id.npz") == ["a", "b"]
    proc = fastgd_cli("train", tmp_path / "id.csv", "--target", "label", "--model", "logistic")  # a named column stays
    assert proc.returncode == 0 and "x 3 features" in proc.stdout
    _one_error_line(fastgd_cli("train", tmp_path / "id.csv", "--target", "label", "--model", "logistic",
                               "--index-col", "nope"), "--index-col 'nope': no such column")
    _one_error_line(fastgd_cli("train", tmp_path / "id.csv", "--target", "label", "--model", "logistic",
                               "--index-col", "label"), "--index-col 'label' is the target column")


def test_dataframe_to_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.to_csv(tmp_path / "iris.csv")
    proc = fastgd_cli("train", tmp_path / "iris.csv", "--target", "target", "--model", "logistic")
    assert proc.returncode == 0 and "x 4 features" in proc.stdout and "first column" in proc.stderr
    assert isinstance(frame, pd.DataFrame)


# -- item 8: nan and inf cells ----------------------------------------------------------------

@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
def test_non_finite_cells_name_column_and_line(tmp_path, cell):
    rows = [["1", "2", "0"], ["2", "3", "1"], ["3", cell, "0"], ["4", "5", "1"]]
    write_csv(tmp_path / "x.csv", ["a", "b", "y"], rows)
    _one_error_line(fastgd_cli("train", tmp_path / "x.csv", "--target", "y", "--model", "logistic"),
                    f"column 'b' has the non-finite value {cell!r} on line 4")
    rows = [["1", "2", "0.5"], ["2", "3", cell], ["3", "4", "0.25"]]
    write_csv(tmp_path / "t.csv", ["a", "b", "y"], rows)
    _one_error_line(fastgd_cli("train", tmp_path / "t.csv", "--target", "y", "--model", "linear"),
                    f"column 'y' has the non-finite value {cell!r} on line 3")


# -- item 9: output paths checked before training ---------------------------------------------

def _train_to(clf_csv, *extra):
    return fastgd_cli("train", clf_csv, "--target", "label", "--model", "logistic", "--epochs", "2", *extra)


@pytest.mark.parametrize("option, name, match", [
    ("--save", "missing/m.npz", "no such directory"),
    ("--save", "m.pkl", "must end in .npz"),
    ("--save", "m", "must end in .npz"),
    ("--save", "adir.npz", "is a directory"),
    ("--plot", "missing/loss.png", "no such directory"),
    ("--plot", "loss", "must end in"),
    ("--plot", "loss.nope", "must end in"),
])
def test_output_paths_are_checked_before_training(tmp_path, clf_csv, option, name, match):
    if option == "--plot":
        pytest.importorskip("matplotlib")  # without it, no plot is written (nor checked)
    (tmp_path / "adir.npz").mkdir()
    proc = _train_to(clf_csv, option, tmp_path / name)
    _one_error_line(proc, match)
    assert proc.stdout == ""  # nothing trained
    assert ".tmp" not in proc.stderr and "fastgd-" not in proc.stderr.split("error:", 1)[1]


def test_a_failing_plot_does_not_prevent_the_save(tmp_path, clf_csv):
    pytest.importorskip("matplotlib")
    # The plot fails as it is written (a full disk, say), after the checks passed.
    script = ("import sys, fastgd.history as h\n"
              "def plot(self, path=None, ax=None):\n    raise OSError(28, 'No space left on device')\n"
              "h.History.plot = plot\n"
              "from fastgd.cli import main\nraise SystemExit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", script, "train", str(clf_csv), "--target", "label", "--model",
                           "logistic", "--epochs", "2", "--save", str(tmp_path / "m.npz"), "--plot",
                           str(tmp_path / "loss.png")], capture_output=True, text=True, timeout=120)
    _one_error_line(proc, "cannot write the plot")
    assert "No space left on device" in proc.stderr
    assert "model saved to" in proc.stdout and fastgd.load(tmp_path / "m.npz").n_features_in_ == 3


def test_save_errors_name_the_file_not_its_temporary(tmp_path):
    target = str(tmp_path / "gone" / "m.npz")
    script = ("import numpy as np, fastgd\n"
              "from fastgd.models import LinearRegression\n"
              "m = LinearRegression(max_epochs=1).fit(np.eye(3), np.arange(3.0))\n"
              f"try:\n    m.save({target!r})\nexcept OSError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == f"[Errno 2] No such file or directory: {target!r}"


# -- item 10: a closed pipe -------------------------------------------------------------------

def test_predict_into_a_closed_pipe_exits_quietly(tmp_path):
    X, y = datasets.make_regression(n_samples=20_000, n_features=2, random_state=0)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert fastgd_cli("train", tmp_path / "d.npz", "--model", "linear", "--epochs", "1",
                      "--save", tmp_path / "m.npz").returncode == 0
    # `fastgd predict ... | head -1`: the reader goes away while ~400 KB are still to come.
    proc = subprocess.Popen([sys.executable, "-m", "fastgd", "predict", str(tmp_path / "m.npz"),
                             str(tmp_path / "d.npz")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 0, err
    assert float(first)
    assert err.startswith("R^2 on") and len(err.splitlines()) == 1  # the score, on stderr; no error


def test_train_into_a_closed_pipe_still_saves(tmp_path, clf_csv):
    # `fastgd train ... | head -1`: the epoch lines go nowhere, the model is still saved.
    proc = subprocess.Popen([sys.executable, "-m", "fastgd", "train", str(clf_csv), "--target", "label", "--model",
                             "mlp", "--hidden", "2", "--epochs", "3000", "--tol", "0", "--save",
                             str(tmp_path / "m.npz")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 0, err
    assert first.startswith("training MLPClassifier") and err == ""
    assert fastgd.load(tmp_path / "m.npz").n_iter_ == 3000


# -- item 11: --version, delimiters, --alpha, --solver, options that do not apply ------------

def test_version():
    proc = fastgd_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"fastgd {fastgd.__version__}"


def test_tsv_files_and_delimiter(tmp_path, clf_csv):
    rows = list(csv.reader(open(clf_csv, newline="")))
    (tmp_path / "clf.tsv").write_text("".join("\t".join(r) + "\n" for r in rows))
    proc = fastgd_cli("train", tmp_path / "clf.tsv", "--target", "label", "--model", "logistic", "--epochs", "2",
                      "--save", tmp_path / "m.npz")
    assert proc.returncode == 0 and "x 3 features" in proc.stdout, proc.stderr
    proc = fastgd_cli("predict", tmp_path / "m.npz", tmp_path / "clf.tsv")
    assert proc.returncode == 0 and len(proc.stdout.split()) == 200 and "accuracy on" in proc.stderr

    (tmp_path / "semi.csv").write_text("".join(";".join(r) + "\n" for r in rows))
    _one_error_line(fastgd_cli("train", tmp_path / "semi.csv", "--target", "label", "--model", "logistic"),
                    "--delimiter")  # a hint: one column whose name holds ';'
    for delimiter in (";", "semicolon"):
        proc = fastgd_cli("train", tmp_path / "semi.csv", "--target", "label", "--model", "logistic", "--epochs", "2",
                          "--delimiter", delimiter)
        assert proc.returncode == 0 and "x 3 features" in proc.stdout, proc.stderr
    proc = fastgd_cli("predict", tmp_path / "m.npz", tmp_path / "semi.csv", "--delimiter", ";")
    assert proc.returncode == 0 and len(proc.stdout.split()) == 200
    (tmp_path / "tabs.txt").write_text((tmp_path / "clf.tsv").read_text())
    proc = fastgd_cli("train", tmp_path / "tabs.txt", "--format", "tsv", "--target", "label", "--model", "logistic",
                      "--epochs", "2")
    assert proc.returncode == 0, proc.stderr
    _one_error_line(fastgd_cli("train", tmp_path / "semi.csv", "--target", "label", "--model", "logistic",
                               "--delimiter", ";;"), "--delimiter")


def test_alpha_and_solver(tmp_path, clf_csv):
    proc = fastgd_cli("train", clf_csv, "--target", "label", "--model", "logistic", "--alpha", "0.5", "--solver",
                      "newton", "--save", tmp_path / "m.npz")
    assert proc.returncode == 0, proc.stderr
    params = fastgd.load(tmp_path / "m.npz").get_params()
    assert (params["alpha"], params["solver"]) == (0.5, "newton")
    _one_error_line(fastgd_cli("train", clf_csv, "--target", "label", "--model", "logistic", "--solver", "lbfgs"),
                    "solver must be")
    help_text = " ".join(fastgd_cli("train", "--help").stdout.split())
    assert "--alpha X" in help_text and "--solver NAME" in help_text and "gd for linear, logistic" in help_text


@pytest.mark.parametrize("model, option", [("logistic", ["--hidden", "8"]), ("mlp", ["--solver", "newton"]),
                                           ("mlp", ["--loss", "log_loss"])])
def test_an_option_that_does_not_apply_is_a_warning(tmp_path, clf_csv, model, option):
    proc = fastgd_cli("train", clf_csv, "--target", "label", "--model", model, "--epochs", "1", *option)
    assert proc.returncode == 0, proc.stderr
    assert f"fastgd: warning: {option[0]} does not apply to --model {model}; ignored" in proc.stderr.splitlines()
