"""The ``fastgd`` command (also ``python -m fastgd``).

    fastgd --version
    fastgd demo [--epochs N] [--plot PATH | --no-plot]
    fastgd train DATA --target COLUMN --model {linear,logistic,mlp} [--optimizer NAME] [--lr X]
                 [--loss NAME] [--schedule SPEC] [--batch-size N] [--epochs N] [--tol X]
                 [--n-iter-no-change N] [--hidden SIZES] [--alpha X] [--solver NAME] [--sparse-update MODE]
                 [--early-stopping] [--delimiter CHAR] [--index-col COLUMN | --no-index-col]
                 [--test-fraction F] [--plot PATH] [--save PATH]
    fastgd predict MODEL DATA [--output PATH] [--delimiter CHAR]

Data files, by extension (or ``--format``):

* ``.csv``: a header row of column names; ``--target`` names the target column, every other
  column is a numeric feature (finite numbers: no missing values, NaN or infinity). A first
  column without a name, the row index that pandas' ``to_csv`` writes, is dropped with a note
  on stderr; ``--index-col COLUMN`` names the index column instead, ``--no-index-col`` keeps
  an unnamed one as a feature.
* ``.tsv``: the same with tab-separated fields. ``--delimiter`` gives another (``;``,
  ``semicolon``, ``tab``, ...) for either.
* ``.npy``: one 2-D numeric array; ``--target`` is the index of the target column.
* ``.npz``: arrays ``X`` (2-D) and ``y`` (1-D); ``--target`` is not needed.
* ``.svm``, ``.svmlight``, ``.libsvm``: ``label index:value ...`` lines (indices from 1, or
  from 0 when an index 0 appears; ``#`` starts a comment; ``qid:`` is ignored), read as a
  scipy.sparse matrix (``pip install "fastgd[sparse]"``), never a dense one: ``--model linear``
  and ``logistic`` train on it as it is (a file can have millions of features;
  ``--sparse-update`` sets how a step updates the weights), ``--model mlp`` and
  ``--solver newton`` on a dense copy (with a note on stderr giving its size). A model trained
  on more features than a file's largest index reads the file with the model's width.

``--schedule`` takes the name of a :mod:`fastgd.schedules` function whose first argument is
the learning rate, optionally with keyword arguments: ``cosine``,
``step_decay:step_size=1000,gamma=0.5``, ``multistep:milestones=[500,1000]``. ``--lr`` is
its first argument; a horizon argument left out (``T_max``, ``total_steps``,
``total_iters``) is set to the number of optimizer steps of the run, ``epochs`` times the
batches per epoch. Schedules count optimizer steps, not epochs.

``--loss`` names a loss of :data:`fastgd.losses.LOSSES` that the model's estimator takes
(``squared_error`` or ``huber`` for ``--model linear``, ``log_loss`` or ``hinge`` for
``--model logistic``); without it the estimator's default.

The training options (``--optimizer``, ``--lr``, ``--batch-size``, ``--epochs``, ``--tol``,
``--n-iter-no-change``, ``--hidden``, ``--alpha``, ``--solver``, ``--sparse-update``, ``--loss``) set the
estimator's parameter of the same meaning; one left out keeps the estimator's default
(``train --help`` lists them by ``--model``), so the command trains as
``LogisticRegression().fit(X, y)`` does, with the same stopping rule. An option that the
``--model``'s estimator does not have (``--hidden`` with ``--model logistic``) is ignored with
a warning on stderr.

``train`` holds out ``--test-fraction`` of the rows (at random, ``--seed``) and reports the
model's score on them (accuracy for classifiers, R^2 for regressors; :func:`holdout` says
which rows); ``--save`` writes the model with :func:`fastgd.persistence.save`, with the
feature and target columns, so that ``predict`` can pick the same columns out of a CSV file
and score a file that has the target.

``--save`` and ``--plot`` are checked before training (an existing, writable directory; ``.npz``
for the model, an extension matplotlib writes for the plot); the model is saved before the
plot is drawn, so that a plot that fails still leaves the model.

Errors in the input (a missing or unreadable file, an unknown column, a non-numeric value,
a feature count the model does not expect) print one line on stderr and exit with status 2.
Output into a pipe whose reader has gone (``fastgd predict ... | head``) is dropped quietly:
the command finishes (a model is still saved) and exits with status 0.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastgd.io import DELIMITER_NAMES, DELIMITERS, FORMATS, check_file, delimiter, read_table
from fastgd.losses import LOSSES, estimator_losses
from fastgd.models import (
    ConvergenceWarning,
    LinearRegression,
    LogisticRegression,
    MLPClassifier,
    MLPRegressor,
)
from fastgd.schedules import SCHEDULES

__all__ = ["holdout", "main"]

_PROG = "fastgd"
# --schedule takes the schedules whose first argument is the learning rate (one_cycle's is
# its peak, max_lr), so that --lr fills it; warmup and join take schedules, cyclic two rates.
_LR_ARGUMENTS = ("lr", "max_lr")
_SCHEDULES = tuple(name for name, fn in SCHEDULES.items()
                   if next(iter(inspect.signature(fn).parameters)) in _LR_ARGUMENTS)
_HORIZONS = ("T_max", "total_steps", "total_iters")
# --loss: the losses of the table that an estimator takes, and which --model takes which.
_LOSSES = tuple(name for name, loss in LOSSES.items() if loss.estimator is not None)
_LOSS_KINDS = {"linear": "regressor", "logistic": "classifier"}
_CLASSIFIERS = (LogisticRegression, MLPClassifier)
# --model: the estimators each name trains (mlp: a classifier for a categorical target).
_MODELS: dict[str, tuple[type, ...]] = {"linear": (LinearRegression,), "logistic": (LogisticRegression,),
                                        "mlp": (MLPClassifier, MLPRegressor)}


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(h) for h in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    return sizes


def _batch_size(text: str) -> int | None:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    return None if size == 0 else size


def _batch_shown(size: Any) -> str:
    return "0 (full batches)" if size is None else str(size)


@dataclass(frozen=True)
class _Option:
    """A ``train`` option that sets the estimator parameter ``param``. It has no default of
    its own: left out, the estimator's default applies, and the help shows those of the
    ``--model`` classes (read from their ``get_params()``), so no number is written twice."""

    flag: str
    param: str
    type: Callable[[str], Any]
    help: str
    show: Callable[[Any], str] = str
    metavar: str | None = None


_OPTIONS = (
    _Option("--optimizer", "optimizer", str, "optimizer name", metavar="NAME"),
    _Option("--lr", "lr", float, "learning rate (the first argument of --schedule)", metavar="X"),
    _Option("--batch-size", "batch_size", _batch_size, "mini-batch size, 0 for full batches", _batch_shown,
            metavar="N"),
    _Option("--epochs", "max_epochs", int, "at most this many epochs (Newton: iterations)", metavar="N"),
    _Option("--tol", "tol", float, "stop when the training loss (with --early-stopping, the validation loss) has "
            "not improved by this much for --n-iter-no-change epochs in a row", metavar="X"),
    _Option("--n-iter-no-change", "n_iter_no_change", int, "patience of the --tol rule", metavar="N"),
    _Option("--hidden", "hidden_layer_sizes", _sizes, "hidden layer sizes, e.g. 64,32",
            lambda sizes: ",".join(map(str, sizes)), metavar="SIZES"),
    _Option("--alpha", "alpha", float, "strength of the L2 penalty", metavar="X"),
    _Option("--sparse-update", "sparse_update", str, "how a step updates the weights when the data is sparse "
            "(svmlight): lazy, only the batch's features' weights, or exact, every weight", metavar="MODE"),
    _Option("--solver", "solver", str, "gd: first-order training by --optimizer; newton: Newton's method to the "
            "exact optimum (smooth losses)", metavar="NAME"),
)


def _defaults(param: str, show: Callable[[Any], str] = str) -> str:
    """``param``'s defaults by --model, e.g. "100 for linear, logistic; 200 for mlp"."""
    by_value: dict[str, list[str]] = {}
    for model, classes in _MODELS.items():
        values = {show(cls().get_params()[param]) for cls in classes if param in inspect.signature(cls).parameters}
        if values:
            by_value.setdefault("/".join(sorted(values)), []).append(model)
    return "; ".join(f"{value} for {', '.join(models)}" for value, models in by_value.items())


class CLIError(Exception):
    """A user error: reported as one line on stderr, exit status 2."""


def _say(*parts: Any, **kwargs: Any) -> None:
    """``print`` to stdout. When stdout is a pipe whose reader has gone (``fastgd train ... |
    head``), the rest of the output is discarded, but the command goes on: a model is still
    saved."""
    try:
        print(*parts, **kwargs)
    except BrokenPipeError:
        _discard_stdout()


def _discard_stdout() -> None:
    """Point stdout at the null device: the interpreter flushes stdout as it exits, and the
    rest of a buffer written to a closed pipe would be reported as an error there."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a file (stdout replaced, as by pytest)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


# -- models ------------------------------------------------------------------------------

def _looks_categorical(y: np.ndarray) -> bool:
    """String labels, or whole numbers with few distinct values."""
    if y.dtype.kind in "US":
        return True
    return y.dtype.kind in "biu" and len(np.unique(y)) <= max(2, min(20, len(y) // 5))


def _model_class(name: str, y: np.ndarray) -> type:
    if name == "linear":
        if y.dtype.kind in "US":
            raise CLIError("--model linear needs a numeric target; for class labels use --model logistic")
        return LinearRegression
    if name == "logistic":
        return LogisticRegression
    if y.dtype.kind in "US" or _looks_categorical(y):
        return MLPClassifier
    return MLPRegressor


def _loss_option(model: str, loss: str) -> str:
    """``--loss`` checked against the losses the table gives ``--model``'s estimator."""
    allowed = estimator_losses(_LOSS_KINDS[model])
    if loss not in allowed:
        raise CLIError(f"--model {model} takes --loss {' or '.join(allowed)}, not {loss!r}")
    return loss


def _applicable(cls: type, model: str, given: dict[str, Any]) -> dict[str, Any]:
    """The ``given`` estimator parameters that ``cls`` has; a warning on stderr for each
    other one (``--hidden`` with ``--model logistic``), which is ignored."""
    names = set(inspect.signature(cls).parameters)
    flags = {o.param: o.flag for o in _OPTIONS}
    for param in given:
        if param not in names:
            print(f"{_PROG}: warning: {flags.get(param, '--' + param)} does not apply to --model {model}; ignored",
                  file=sys.stderr)
    return {k: v for k, v in given.items() if k in names}


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_schedule(spec: str, lr: float, total_steps: int) -> Any:
    """``"name"`` or ``"name:key=value,..."`` as a fastgd schedule with ``lr`` as its first
    argument and ``total_steps`` as its horizon when that is left out."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in _SCHEDULES:
        raise CLIError(f"unknown schedule {name!r}; choose one of {', '.join(_SCHEDULES)}")
    fn = SCHEDULES[name]
    sig = inspect.signature(fn)
    kwargs: dict[str, Any] = {}
    for item in _split_top(rest):
        key, eq, val = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CLIError(f"--schedule {spec!r}: expected name:key=value,..., got {item!r}")
        if key not in sig.parameters:
            raise CLIError(f"--schedule: {name} has no argument {key!r} (its arguments: "
                           f"{', '.join(sig.parameters)})")
        kwargs[key] = _value(val.strip())
    first = next(iter(sig.parameters))
    kwargs.setdefault(first, lr)
    for h in _HORIZONS:
        if h in sig.parameters and h not in kwargs:
            kwargs[h] = max(int(total_steps), 1)
    try:
        sig.bind(**kwargs)
    except TypeError:
        need = [p for p, v in sig.parameters.items() if v.default is inspect.Parameter.empty and p not in kwargs]
        raise CLIError(f"--schedule: {name} needs {', '.join(need)} (e.g. {name}:{need[0]}=...)") from None
    try:
        return fn(**kwargs)
    except (TypeError, ValueError) as e:
        raise CLIError(f"--schedule {spec!r}: {e}") from None


def _epoch_printer(total: int | None) -> Callable[[Any, Any], None]:
    def show(history: Any, params: Any) -> None:
        r = history[-1]
        _say(_epoch_line(r, total), flush=True)
    return show


def _epoch_line(r: dict[str, Any], total: int | None) -> str:
    of = f"/{total}" if total else ""
    parts = [f"epoch {r['epoch']}{of}", f"train_loss {r['train_loss']:.5f}"]
    if r.get("val_loss") is not None:
        parts.append(f"val_loss {r['val_loss']:.5f}")
    if r.get("val_metric") is not None:
        parts.append(f"val_score {r['val_metric']:.4f}")
    if r.get("lr") is not None and math.isfinite(r["lr"]):
        parts.append(f"lr {r['lr']:.3g}")
    return "  ".join(parts)


def _input_for(model: Any, X: Any, path: str) -> Any:
    """``X`` as ``model`` takes it: a sparse matrix as it is when the estimator reads one
    (the linear models with ``solver='gd'``), else a dense copy, with a note on stderr giving
    its size (it can be far larger)."""
    params = model.get_params()
    solver = params.get("solver")
    # The estimators that read sparse X have a parameter for it (sparse_update); their Newton
    # solver takes a dense copy.
    if isinstance(X, np.ndarray) or ("sparse_update" in params and solver in (None, "gd")):
        return X
    n, d = X.shape
    who = type(model).__name__ + (f" with --solver {solver}" if solver else "")
    size = f"{8 * n * d / 2**20:,.1f} MiB"
    refused = CLIError(f"{path!r} does not fit in memory as the dense {n} x {d} array {who} takes ({size}); "
                       "--model linear and logistic with --solver gd train on it as it is")
    # More than half the machine's memory is refused before it is asked for: the operating
    # system may grant it (overcommit), and the estimator's own copies then exhaust it.
    memory = _physical_memory()
    if memory is not None and 8 * n * d > memory // 2:
        raise refused
    print(f"{_PROG}: note: {who} takes dense input: the {n} x {d} sparse matrix of {path} is made dense ({size})",
          file=sys.stderr)
    try:
        return X.toarray()
    except MemoryError:
        raise refused from None


def _physical_memory() -> int | None:
    """The machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _shape_text(X: Any) -> str:
    """``"D features"``, with the count of values stored in a sparse matrix."""
    stored = "" if isinstance(X, np.ndarray) else f" (sparse: {X.nnz:,} values stored)"
    return f"{X.shape[1]} features{stored}"


def _fit(model: Any, X: Any, y: np.ndarray) -> list[str]:
    """Fit; returns the ConvergenceWarnings' messages (shown as notes, not warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, y)
    notes = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return notes


# A saved model is an .npz archive (fastgd.persistence).
_MODEL_EXTENSIONS = (".npz",)


def _plot_extensions() -> tuple[str, ...] | None:
    """The file extensions matplotlib writes (None without matplotlib: no plot to check)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return None
    return tuple(f".{ext}" for ext in FigureCanvasBase.get_supported_filetypes())


def _check_output(path: str, option: str, extensions: tuple[str, ...] | None) -> None:
    """CLIError unless ``path`` looks writable: an existing, writable directory, not a
    directory itself, and one of ``extensions`` (None: any). Checked before training, so that
    a typo does not cost the run."""
    ext = os.path.splitext(path)[1].lower()
    if extensions is not None and ext not in extensions:
        endings = extensions[0] if len(extensions) == 1 else f"one of {', '.join(extensions)}"
        raise CLIError(f"{option} {path!r}: the file name must end in {endings}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{option} {path!r}: no such directory {directory!r}")
    if os.path.isdir(path):
        raise CLIError(f"{option} {path!r} is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CLIError(f"{option} {path!r}: the directory {directory!r} is not writable")


def _plot(history: Any, path: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _say("matplotlib is not installed: no loss plot (pip install matplotlib)")
        return
    try:
        history.plot(path)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot write the plot to {path!r}: {e}") from None
    _say(f"loss plot written to {os.path.abspath(path)}")


def _score_name(model: Any) -> str:
    return "accuracy" if isinstance(model, _CLASSIFIERS) else "R^2"


def holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``train`` fits on and the rows it holds out for the test score (both sorted):
    ``round(fraction * n)`` rows at random, the first of ``default_rng(seed).permutation(n)``."""
    if not 0 <= fraction < 1:
        raise CLIError(f"--test-fraction must be in [0, 1), got {fraction}")
    n_test = int(round(fraction * n))
    if n - n_test < 2:
        raise CLIError(f"{n} rows leave too few for training with --test-fraction {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


# -- commands ----------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    import fastgd as fg
    from fastgd import datasets

    if args.epochs < 1:
        raise CLIError("--epochs must be >= 1")
    if not args.no_plot:
        _check_output(args.plot, "--plot", _plot_extensions())
    n, d = 20_000, 20
    X, y = datasets.make_classification(n_samples=n, n_features=d, n_classes=2, random_state=0)
    tr, te = holdout(n, 0.2, seed=0)
    _say(f"fastgd {fg.__version__}: SIMD level {fg.simd_level()}, {fg.get_num_threads()} thread(s)")
    _say(f"logistic regression on {n} x {d} synthetic samples (2 classes, fixed seed): {len(tr)} for training "
         f"(10% of them for validation), {len(te)} for testing\n")
    _say(f"solver='gd', optimizer='adam', lr=0.01, batch_size=64, up to {args.epochs} epochs:")
    clf: Any = LogisticRegression(solver="gd", optimizer="adam", lr=1e-2, batch_size=64, max_epochs=args.epochs,
                                  early_stopping=True, n_iter_no_change=max(args.epochs, 1), random_state=0,
                                  callbacks=[_epoch_printer(args.epochs)])
    t0 = time.perf_counter()
    _fit(clf, X[tr], y[tr])
    seconds = time.perf_counter() - t0
    exact: Any = LogisticRegression(solver="newton").fit(X[tr], y[tr])
    acc, acc_exact = clf.score(X[te], y[te]), exact.score(X[te], y[te])
    loss, loss_exact = _log_loss(clf, X[tr], y[tr]), _log_loss(exact, X[tr], y[tr])
    _say(f"\n{clf.history_.stop_reason} in {seconds:.2f} s (best validation epoch "
         f"{clf.history_.best_epoch} kept)")
    _say(f"{'':24}{'test accuracy':>15}{'train log-loss':>16}")
    _say(f"{'gd + Adam':<24}{acc:>15.4f}{loss:>16.5f}")
    _say(f"{'newton (exact optimum)':<24}{acc_exact:>15.4f}{loss_exact:>16.5f}")
    if not args.no_plot:
        _plot(clf.history_, args.plot)
    return 0


def _log_loss(clf: Any, X: np.ndarray, y: np.ndarray) -> float:
    p = clf.predict_proba(X)[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    return float(-np.mean(np.log(np.clip(p, 1e-300, None))))


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The estimator parameters of the :data:`_OPTIONS` given on the command line."""
    return {o.param: getattr(args, o.param) for o in _OPTIONS if hasattr(args, o.param)}


def _check_given(given: dict[str, Any]) -> None:
    if given.get("max_epochs", 1) < 1:
        raise CLIError("--epochs must be >= 1")
    batch_size = given.get("batch_size")
    if batch_size is not None and batch_size < 0:
        raise CLIError("--batch-size must be >= 1 (or 0 for full batches)")
    lr = given.get("lr", 1.0)
    if not (math.isfinite(lr) and lr > 0):
        raise CLIError(f"--lr must be a number > 0, got {lr}")


def cmd_train(args: argparse.Namespace) -> int:
    given = _given(args)
    _check_given(given)
    if args.save:
        _check_output(args.save, "--save", _MODEL_EXTENSIONS)
    if args.plot:
        _check_output(args.plot, "--plot", _plot_extensions())
    table = read_table(args.data, args.format, args.target, train=True, index_col=args.index_col,
                       keep_unnamed=args.no_index_col, delimiter=args.delimiter and delimiter(args.delimiter))
    for note in table.notes:
        print(f"{_PROG}: note: {note}", file=sys.stderr)
    X, y = table.X, table.y
    assert y is not None  # read_table(train=True) requires the target
    cls = _model_class(args.model, y)
    tr, te = holdout(X.shape[0], args.test_fraction, args.seed)  # (a sparse matrix has no len())
    if args.loss is not None:
        given["loss"] = args.loss
    options = _applicable(cls, args.model, given)
    if "loss" in options:
        _loss_option(args.model, options["loss"])
    model = cls(**options, random_state=args.seed, early_stopping=args.early_stopping)
    X = _input_for(model, X, args.data)
    params = model.get_params(deep=False)
    epochs, batch_size = params["max_epochs"], params["batch_size"]
    if args.schedule:
        n_fit = len(tr) - (int(round(params["validation_fraction"] * len(tr))) if args.early_stopping else 0)
        steps = epochs * (1 if batch_size is None else math.ceil(n_fit / batch_size))
        model.set_params(lr=parse_schedule(args.schedule, params["lr"], steps))
    live = "callbacks" in params
    if live:
        model.set_params(callbacks=[_epoch_printer(epochs)])
    X_train = X[tr]
    _say(f"training {type(model).__name__} on {len(tr)} rows x {_shape_text(X_train)} of {args.data} "
         f"({len(te)} held out)")
    t0 = time.perf_counter()
    notes = _fit(model, X_train, y[tr])
    seconds = time.perf_counter() - t0
    history = getattr(model, "history_", None)
    if history is not None and not live:
        for r in history:
            _say(_epoch_line(r, epochs))
    if history is not None and history.stop_reason:
        _say(f"{history.stop_reason} in {seconds:.2f} s")
    for note in notes:
        _say(f"note: {note}")
    if len(te):
        _say(f"test {_score_name(model)}: {model.score(X[te], y[te]):.4f}")
    if args.save:  # before the plot, whose failure must not cost the model
        if live:
            model.set_params(callbacks=())
        info = {"features": table.feature_names, "target": table.target, "format": table.fmt, **table.extra}
        from fastgd.persistence import save
        try:
            save(model, args.save, info=info)
        except OSError as e:
            raise CLIError(f"cannot save the model to {args.save!r}: {e.strerror or e}") from None
        _say(f"model saved to {os.path.abspath(args.save)}", flush=True)
    if args.plot and history is not None:
        _plot(history, args.plot)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from fastgd.persistence import load, load_info

    check_file(args.model)
    model = load(args.model)
    info = load_info(args.model).get("info") or {}
    n_features = int(model.n_features_in_)
    target = args.target if args.target is not None else info.get("target")
    table = read_table(args.data, args.format, target, train=False, info=info, n_features=n_features,
                       delimiter=args.delimiter and delimiter(args.delimiter))
    X = table.X
    if X.shape[1] != n_features:
        raise CLIError(f"{args.data!r} has {X.shape[1]} feature columns, but the model was trained on "
                       f"{n_features}")
    X = _input_for(model, X, args.data)
    pred = model.predict(X)
    lines = [_cell(v) for v in pred]
    report = sys.stdout
    if args.output:
        try:
            with open(args.output, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["prediction"])
                w.writerows([v] for v in lines)
        except OSError as e:
            raise CLIError(f"cannot write {args.output!r}: {e}") from None
        _say(f"{len(lines)} predictions written to {os.path.abspath(args.output)}")
    else:
        _say("\n".join(lines))
        report = sys.stderr  # keep stdout to the predictions
    if table.y is not None:
        _say(f"{_score_name(model)} on {args.data}: {model.score(X, table.y):.4f}", file=report)
    return 0


def _cell(v: Any) -> str:
    v = v.item() if isinstance(v, np.generic) else v
    return repr(v) if isinstance(v, float) else str(v)


# -- entry point -------------------------------------------------------------------------

_DELIMITER_HELP = (f"field delimiter of a CSV or TSV file: a character or one of {', '.join(DELIMITER_NAMES)} "
                   f"(default: {'; '.join(f'{d!r} for .{f}' for f, d in DELIMITERS.items())})")


def _version() -> str:
    from fastgd import __version__
    return __version__


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=_PROG, description="fastgd: gradient descent with fused C++ kernels.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = ap.add_subparsers(dest="command", metavar="{demo,train,predict}")

    demo = sub.add_parser("demo", help="train a logistic regression on built-in synthetic data",
                          description="Logistic regression by Adam on built-in synthetic data (20,000 x 20, fixed "
                                      "seed), against Newton's exact optimum.")
    demo.add_argument("--epochs", type=int, default=10, help="epochs of Adam (default 10)")
    demo.add_argument("--plot", default="fastgd-demo-loss.png", metavar="PATH",
                      help="where to write the loss plot (default fastgd-demo-loss.png)")
    demo.add_argument("--no-plot", action="store_true", help="do not write the loss plot")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", help="train a model on a data file",
                           description="Train on DATA (.csv, .tsv, .npy, .npz or svmlight), report the score on a "
                                       "held-out split, optionally save the model.")
    train.add_argument("data", metavar="DATA")
    train.add_argument("--target", help="target column: a name (CSV) or an index (.npy)")
    train.add_argument("--model", required=True, choices=("linear", "logistic", "mlp"))
    for o in _OPTIONS:
        train.add_argument(o.flag, dest=o.param, type=o.type, default=argparse.SUPPRESS, metavar=o.metavar,
                           help=f"{o.help} (default: {_defaults(o.param, o.show)})".replace("%", "%%"))
    train.add_argument("--loss", choices=_LOSSES,
                       help="the loss to minimize: " + "; ".join(
                           f"{', '.join(estimator_losses(kind))} for --model {model}"
                           for model, kind in _LOSS_KINDS.items()) + f" (default: {_defaults('loss')})")
    train.add_argument("--schedule", metavar="SPEC",
                       help=f"learning-rate schedule: NAME or NAME:key=value,... with NAME one of "
                            f"{', '.join(_SCHEDULES)} (e.g. cosine, step_decay:step_size=100,gamma=0.5)")
    train.add_argument("--early-stopping", action="store_true",
                       help=f"hold out a share of the training rows ({_defaults('validation_fraction')}) and stop "
                            "when their loss stops improving; keep the best epoch".replace("%", "%%"))
    train.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of rows (default 0.2)")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the shuffling (default 0)")
    train.add_argument("--format", choices=FORMATS, help="data format (default: from the extension)")
    train.add_argument("--delimiter", metavar="CHAR", help=_DELIMITER_HELP)
    index = train.add_mutually_exclusive_group()
    index.add_argument("--index-col", metavar="COLUMN",
                       help="a CSV column that is a row index, not a feature: its name or its position from 0 "
                            "(default: a first column without a name, as pandas writes the index, is dropped "
                            "with a note)")
    index.add_argument("--no-index-col", action="store_true",
                       help="keep a first column without a name as a feature")
    train.add_argument("--plot", metavar="PATH", help="write the loss plot there")
    train.add_argument("--save", metavar="PATH", help="save the trained model there (.npz)")
    train.set_defaults(func=cmd_train)

    pred = sub.add_parser("predict", help="predict with a saved model",
                          description="Predict DATA with a model saved by train --save; scores DATA when it has "
                                      "the target.")
    pred.add_argument("model", metavar="MODEL")
    pred.add_argument("data", metavar="DATA")
    pred.add_argument("--output", metavar="PATH", help="write the predictions there as CSV (default: print them)")
    pred.add_argument("--target", help="target column of DATA, if not the one the model was trained with")
    pred.add_argument("--format", choices=FORMATS, help="data format (default: from the extension)")
    pred.add_argument("--delimiter", metavar="CHAR", help=_DELIMITER_HELP)
    pred.set_defaults(func=cmd_predict)
    return ap


def _error(message: str) -> int:
    text = " ".join(str(message).split())
    print(f"{_PROG}: error: {text}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 on an error)."""
    ap = _parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 0
    if args.command is None:
        ap.print_help(sys.stderr)
        return 2
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is reported below, not at exit
        return code
    except BrokenPipeError:  # `fastgd predict ... | head`: the reader has what it wanted
        _discard_stdout()
        return 0
    except CLIError as e:
        return _error(str(e))
    except FileNotFoundError as e:
        return _error(str(e))
    except ImportError as e:  # an optional dependency the input needs (scipy for svmlight)
        return _error(str(e))
    except (OSError, ValueError, TypeError, FloatingPointError) as e:  # (a fit that would not be finite)
        return _error(str(e) or type(e).__name__)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
