"""The parts of ``fit`` that every gradient-trained estimator shares: checking and encoding
the inputs, moving them into the standardized space, and first-order training through
:func:`fastgd.train` with the estimator's optimizer, clipping and stopping parameters."""

from __future__ import annotations

import contextlib
import copy
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fastgd.models._base import (
    ConvergenceWarning,
    check_labels,
    check_n_features,
    check_sample_weight,
    check_X,
    check_y,
    warn,
)
from fastgd.models._data import Scaling, stratified_split
from fastgd.optim.registry import get_optimizer
from fastgd.stopping import EarlyStopping, LossTolerance
from fastgd.training import train


@dataclass
class FitInputs:
    X: np.ndarray
    sw: np.ndarray
    enc: dict[str, Any]  # the estimator's encoding of y: "y", "K", "attrs" (set after the fit)
    fitted: bool         # the estimator was fitted before this call
    continuing: bool     # partial_fit on a fitted estimator


def fit_inputs(est: Any, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any) -> FitInputs:
    """Check X, y and sample_weight and encode y (``est._encode``). A partial_fit that
    continues keeps the first fit's dtype and number of features."""
    fitted = est.__sklearn_is_fitted__()
    continuing = partial and fitted
    X = check_X(X, dtype=est._dtype if continuing else None)
    if continuing:
        check_n_features(est, X)
    n = X.shape[0]
    y = check_y(y, n, type(est).__name__)
    sw = check_sample_weight(sample_weight, n)
    return FitInputs(X, sw, est._encode(y, sw, classes, partial, continuing), fitted, continuing)


def scaled(inputs: FitInputs, scaling: Scaling, regression: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Xs, ys, w): inputs (and for regression the target) in the space of ``scaling``, and
    the sample weights rescaled to mean 1, so that a batch's mean loss times its share of the
    weight is an unbiased estimate of the full weighted mean (exactly it for a full batch)."""
    X, dtype = inputs.X, inputs.X.dtype
    Xs = ((X - scaling.mean) / scaling.scale).astype(dtype, copy=False) if scaling.standardized else X
    ys = inputs.enc["y"]
    if regression:
        ys = ((ys - scaling.y_mean) / scaling.y_scale).astype(dtype, copy=False)
    return Xs, ys, (inputs.sw / inputs.sw.mean()).astype(dtype)


def _shuffle(value: Any) -> bool | str:
    # "batches" as it is; any other value by its truth, as before (train() checks the mode).
    return value if isinstance(value, str) and value == "batches" else bool(value)


def build_optimizer(est: Any, theta: np.ndarray) -> Any:
    """A new optimizer over ``theta`` from the estimator's ``optimizer``, ``lr``,
    ``optimizer_options``, ``clip_norm`` and ``clip_value``."""
    options = dict(est.optimizer_options or {})
    if est.clip_norm is not None:
        options["clip_norm"] = est.clip_norm
    if est.clip_value is not None:
        options["clip_value"] = est.clip_value
    return get_optimizer(est.optimizer, [theta], est.lr, **options)


def resume_point(est: Any) -> dict[str, Any] | None:
    """What ``fit(..., resume=True)`` continues from: the training state of the estimator's
    last ``fit`` (or of the checkpoint it was loaded from), or None when that run is over.

    A run is over when its history holds ``max_epochs`` epochs or more, or when it stopped
    for another reason than reaching its ``max_epochs`` (converged by ``tol`` or by
    ``early_stopping``, diverged, stopped by a callback): resuming it is then a no-op. An
    estimator that is not fitted, or has no training state (Newton's solver, ``partial_fit``,
    a file saved without its optimizer), cannot be resumed (ValueError), nor can a run whose
    ``early_stopping`` setting has been changed since (its validation split and best weights
    belong to the run)."""
    name = type(est).__name__
    if not est.__sklearn_is_fitted__():
        raise ValueError(f"resume=True: this {name} is not fitted, there is nothing to resume; call fit without "
                         "resume (or load a checkpoint) first")
    state = getattr(est, "_train_state", None)
    if state is None or getattr(est, "_optimizer", None) is None:
        raise ValueError(f"resume=True: this {name} has no training state to continue (it was fitted by Newton's "
                         "solver or partial_fit, or loaded from a file without its optimizer); call fit without "
                         "resume")
    if ("early_stopping" in state) != bool(est.early_stopping):
        was = "with" if "early_stopping" in state else "without"
        raise ValueError(f"resume=True: the run was trained {was} early_stopping, but early_stopping="
                         f"{est.early_stopping!r} now; set it back to resume, or call fit without resume")
    history = est.history_
    reason = history.stop_reason
    if len(history) >= int(est.max_epochs) or (reason is not None and not reason.startswith("reached max_epochs")):
        return None
    return {"history": history, **state}


def check_checkpoint(checkpoint: Any, checkpoint_every: Any) -> int:
    """``checkpoint_every`` checked: a positive integer, other than 1 only with a
    ``checkpoint`` path."""
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Integral) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer (a number of epochs), got "
                         f"{checkpoint_every!r}")
    if checkpoint is None and checkpoint_every != 1:
        raise ValueError(f"checkpoint_every={checkpoint_every!r} needs checkpoint=path (where to write)")
    return int(checkpoint_every)


class CheckpointWriter:
    """Writes the estimator to ``path`` (atomically, see fastgd.persistence) during and at
    the end of a fit.

    Called after each epoch (``writer(history, state)``, ``state()`` the training state), it writes
    the estimator as it stands after every ``every``-th epoch, counted over the whole run (a
    resumed one included): ``snapshot(target, history, state)`` sets the fitted attributes
    on a shallow copy of ``est``. :meth:`finish` writes the fitted estimator when the fit
    ends, whatever stopped it, so that the file always holds the last epoch and why the run
    stopped (a snapshot does not know; resuming a run that is over is a no-op). The snapshot
    of the ``max_epochs``-th epoch is left to :meth:`finish`, which follows it at once."""

    def __init__(self, est: Any, path: Any, snapshot: Callable, every: int = 1) -> None:
        self.est, self.path, self.snapshot, self.every = est, os.fspath(path), snapshot, int(every)
        self.max_epochs = int(est.max_epochs)

    def _save(self, model: Any) -> None:
        from fastgd.persistence import save

        with warnings.catch_warnings():
            # Callbacks (and other training hooks) have no file representation; save lists
            # them in load_info(path)["dropped_params"]; once per write would be noise.
            warnings.filterwarnings("ignore", message="save: parameter", category=UserWarning)
            save(model, self.path)

    def __call__(self, history: Any, state: Callable[[], dict[str, Any]]) -> None:
        from fastgd.history import History

        epoch = len(history)
        if epoch % self.every or epoch >= self.max_epochs:
            return
        target = copy.copy(self.est)
        self.snapshot(target, History(history.records), state())
        self._save(target)

    def finish(self, model: Any) -> None:
        """Write the fitted ``model``."""
        self._save(model)


class _FitEarlyStopping(EarlyStopping):
    """The estimators' EarlyStopping: it starts from a saved state (a resumed run; train
    resets its criteria first) and keeps the last epoch's parameters when it restores the
    best ones, for the training state."""

    def __init__(self, *args: Any, initial: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._initial = initial
        self.last_params: list[np.ndarray] | None = None
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        super().reset()
        if getattr(self, "_initial", None) is not None:
            self.load_state_dict(self._initial)

    def on_train_end(self, params: Any) -> None:
        self.last_params = [np.array(p, copy=True) for p in params]
        super().on_train_end(params)


def limit_blas(threads: int | None) -> Any:
    """A context in which NumPy's BLAS runs on at most ``threads`` threads (threadpoolctl), or
    nothing for None. After a multi-threaded product OpenBLAS's workers poll for more work for
    ~0.1 s (2^28 cycles) before they sleep, and a lower limit set later does not stop them:
    a product per epoch (a validation set's outputs) keeps a worker polling through the next
    epoch, on the core fastgd's 2-thread kernels need. A product on one thread leaves the
    workers asleep."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def first_order_fit(est: Any, loss_and_grad: Callable, theta: np.ndarray, optimizer: Any,
                    rng: np.random.Generator, Xs: np.ndarray, ys: np.ndarray, w: np.ndarray,
                    enc: dict[str, Any], partial: bool, *, value: Callable, outputs: Callable,
                    post_step: Callable | None = None, rows: bool = False, resume: dict[str, Any] | None = None,
                    on_epoch: Callable | None = None, comm: Any = None,
                    blas_threads: int | None = None) -> tuple[Any, Any, np.ndarray, dict[str, Any]]:
    """Train ``theta`` in place with :func:`fastgd.train`; returns (History, optimizer, the
    inputs trained on, i.e. without the early-stopping validation split, the training state
    that a resumed fit continues from: train's random generator, ``first_gnorm`` and the
    number of samples, checked on resuming).

    ``resume``: :func:`resume_point`'s state, to continue that run (with the estimator's
    kept optimizer and ``rng``). ``on_epoch(history, state)``: after every epoch (checkpoints),
    ``state()`` making the training state as it stands.

    With ``early_stopping``, the training state also holds the generator that drew the
    validation split (``split_rng``, as it was before the split), the criterion's state
    (``early_stopping``: best value, wait, best weights) and, once the run has ended and the
    best weights are back in ``theta``, the last epoch's parameters (``live_theta``): a
    resumed run splits the same way, goes on from the last epoch's parameters and stops and
    restores as the uninterrupted run would.

    ``optimizer``: None builds one from the estimator's ``optimizer``, ``lr``,
    ``optimizer_options``, ``clip_norm`` and ``clip_value``; partial_fit passes the kept one.
    ``value(theta, X, y, w)``: the objective's value, ``outputs(theta, X)``: the raw outputs,
    both for the validation set of ``early_stopping``; otherwise ``tol`` and
    ``n_iter_no_change`` stop on the training loss, as scikit-learn's SGD estimators.
    ``blas_threads``: BLAS's threads during training (:func:`limit_blas`; None: unchanged).
    ``rows``: ``loss_and_grad`` reads each batch's rows in place (``train(gather=False)``);
    weights that are all 1 then go down as None, so that it need not read them.
    ``comm``: data-parallel training (``train(comm=)``; ``optimizer`` may be a
    DistributedOptimizer), each rank with its own shard in ``Xs``, ``ys``, ``w``.
    """
    if optimizer is None:
        optimizer = build_optimizer(est, theta)
    validation = val_loss = metric = None
    stopping: list[Any] = []
    early = est.early_stopping and not partial
    # Under comm, every rank's number of rows (a resumed run must see the same shards).
    n_given = len(ys) if comm is None else tuple(comm.allgather(len(ys)))
    if resume is not None and resume.get("n_samples") not in (None, n_given):
        raise ValueError(f"resume=True: X has {n_given} rows, but the run to resume was trained on "
                         f"{resume['n_samples']}; resume it on the same data")
    split_rng = None
    if early:
        strata = enc["y"] if est._estimator_type == "classifier" else None
        # The split's generator is kept (as it was before the split): a resumed run draws
        # the same split from it and leaves the estimator's rng where it is.
        split_rng = copy.deepcopy(resume["split_rng"] if resume is not None else rng)
        if resume is None:
            tr, va = stratified_split(len(ys), float(est.validation_fraction), rng, strata)
        else:
            tr, va = stratified_split(len(ys), float(est.validation_fraction), copy.deepcopy(split_rng), strata)
        wv = w[va]
        validation = (Xs[va], ys[va])

        def val_loss(params, Xv, yv):
            return value(params[0], Xv, yv, wv)

        def metric(params, Xv, yv):
            return est._metric(outputs(params[0], Xv), yv, wv)

        Xs, ys, w = Xs[tr], ys[tr], w[tr]
        es = _FitEarlyStopping(patience=int(est.n_iter_no_change), min_delta=float(est.tol or 0.0),
                               monitor="val_loss", restore_best_weights=True,
                               initial=None if resume is None else resume["early_stopping"])
        stopping.append(es)
        if resume is not None and resume.get("live_theta") is not None:
            theta[...] = resume["live_theta"]  # the last epoch's parameters, not the best ones
    elif est.tol is not None and not partial:
        stopping.append(LossTolerance(float(est.tol), int(est.n_iter_no_change)))
    w_train = None if rows and np.all(w == 1) else w
    # train's own random stream, kept (with first_gnorm) so that a resumed fit goes on with it.
    if resume is not None:
        gen = copy.deepcopy(resume["rng"])
        state: dict[str, Any] = {"history": resume["history"], "first_gnorm": resume["first_gnorm"]}
    else:
        gen = np.random.default_rng(int(rng.integers(2**63 - 1)))
        state = {"first_gnorm": None}
    def train_state() -> dict[str, Any]:
        out = {"rng": gen, "first_gnorm": state["first_gnorm"], "n_samples": n_given}
        if early:
            out.update(split_rng=split_rng, early_stopping=es.state_dict())
        return out

    callbacks = list(est.callbacks or ())
    if on_epoch is not None:
        def checkpoint(history, params):
            on_epoch(history, train_state)

        callbacks.append(checkpoint)
    with limit_blas(blas_threads):
        history = train(loss_and_grad, [theta], Xs, ys, optimizer=optimizer, batch_size=est.batch_size,
                        max_epochs=1 if partial else int(est.max_epochs), shuffle=_shuffle(est.shuffle),
                        random_state=gen, sample_weight=w_train, validation_data=validation,
                        loss_fn=val_loss, metric=metric, stopping=stopping, callbacks=callbacks,
                        post_step=post_step, verbose=bool(est.verbose), gather=not rows, state=state,
                        comm=comm)
    if stopping and history.stop_reason.startswith("reached max_epochs"):
        # stacklevel: warn < first_order_fit < _fit < fit/partial_fit < the user's call
        warn(f"{type(est).__name__} reached max_epochs={est.max_epochs} before the "
             f"{'validation' if early else 'training'} loss stopped improving by tol={est.tol}; consider "
             "increasing max_epochs or lr.", ConvergenceWarning, stacklevel=4)
    final_state = train_state()
    if early and es.last_params is not None:
        final_state["live_theta"] = es.last_params[0]
    return history, optimizer, Xs, final_state


# -- data-parallel fits (fit(..., comm=)) --------------------------------------------------

def distributed_fit_inputs(est: Any, X: Any, y: Any, sample_weight: Any, comm: Any, *,
                           resume: bool = False) -> FitInputs:
    """:func:`fit_inputs` for a data-parallel ``fit``: each rank checks its own shard, and all
    ranks agree (an error on one is an error on all, never a hang); classifiers encode ``y``
    by the union of the ranks' classes (by the fitted ones when resuming); the ranks must
    agree on the number of features and the dtype. The sample weights are rescaled later, by
    their global mean."""
    from fastgd.distributed import agree_on_errors

    name = type(est).__name__
    fitted = est.__sklearn_is_fitted__()
    continuing = resume and fitted
    labels = None
    with agree_on_errors(comm, f"{name}.fit"):
        X = check_X(X, dtype=est._dtype if continuing else None)
        if continuing:
            check_n_features(est, X)
        n = X.shape[0]
        y = check_y(y, n, name)
        sw = check_sample_weight(sample_weight, n)
        if est._estimator_type == "classifier" and not continuing:
            labels = check_labels(y)[0]
    everyone = comm.allgather((X.shape[1], X.dtype.str, labels))
    for r, (d, dt, _) in enumerate(everyone):
        if (d, dt) != everyone[0][:2]:
            raise ValueError(f"{name}.fit(comm=...): rank 0's X has {everyone[0][0]} features of dtype "
                             f"{np.dtype(everyone[0][1]).name}, rank {r}'s {d} of {np.dtype(dt).name}; every rank "
                             "must pass the same features")
    classes = None
    if labels is not None:
        classes = check_labels(np.concatenate([lab for _, _, lab in everyone]))[0]
    with agree_on_errors(comm, f"{name}.fit"):
        # partial=True: a shard may hold a single class; the union (or the fit's) has them all.
        enc = est._encode(y, sw, classes, classes is not None or continuing, continuing)
    return FitInputs(X, sw, enc, fitted, continuing)


def global_weighted_moments(comm: Any, a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fastgd.models._data.weighted_moments` over every rank's rows: the weighted mean
    and standard deviation from the ranks' weighted sums (two passes, in float64, the same
    bits on every rank)."""
    from fastgd.distributed import rank_sum

    a64 = a.astype(np.float64, copy=False)
    d = a64.shape[1]
    sums = rank_sum(comm, np.concatenate([w @ a64, [w.sum()]]))
    mean = sums[:d] / sums[d]
    var = rank_sum(comm, w @ (a64 - mean) ** 2) / sums[d]
    std = np.sqrt(np.maximum(var, 0.0))
    constant = std <= 100 * np.finfo(a.dtype).eps * np.maximum(np.abs(mean), 1e-300)
    return mean, np.where(constant, 1.0, std)


def global_weight_mean(comm: Any, sw: np.ndarray) -> float:
    """The mean sample weight over every rank's samples."""
    from fastgd.distributed import rank_sum

    total, count = rank_sum(comm, [sw.sum(), len(sw)])
    return float(total / count)
