"""The one ``fit`` of fastgd's estimators: :class:`GradientEstimator`, a template whose
stages every estimator runs and whose hooks say what differs.

``fit`` and ``partial_fit`` go through these stages, in order:

1. check the hyperparameters (``_check_params``) and the call (``_check_fit_call``);
   ``resume=True``: find the run to continue (a no-op when it is over);
2. check and encode the inputs (:mod:`fastgd.models._inputs`, ``y`` by
   ``_encode_target``): arrays in memory, a stream (chunks, a memmap) or, with ``comm``,
   this rank's shard; a stream must suit the estimator (``_check_streamable``); a call that
   continues a fitted model, or a warm start, must fit it (``_check_start``);
3. the standardization: the fitted one for a call that continues (and for a warm start
   when ``_warm_start_keeps_scaling``), else the features' weighted moments and, for a
   regressor, the target's (``_target_scaling``); the data moved into that space;
4. the starting point: a copy of the kept parameters, optimizer and random stream when the
   call continues (``_resume_params``), else new parameters (``_init_params``);
5. training (``_train``): by default first-order, :func:`fastgd.train` over the
   estimator's ``_objective`` with its optimizer (data-parallel under ``comm``), early
   stopping, tolerance, callbacks and checkpoints, then ``_after_training``;
6. the fitted attributes, set only now, so that a failed call leaves the estimator as it
   was (``_finish`` sets the estimator's own); with ``checkpoint``, the final write.

Stages 2 to 6 run with NumPy's BLAS on ``_blas_threads()`` threads (:func:`limit_blas`).

A new estimator subclasses a mixin of :mod:`fastgd.models._targets` (which gives
``_encode_target``, ``_metric``, ``partial_fit``, ``score``...) and this class, declares
its ``_hyperparameters`` (:mod:`fastgd.models._params`) and gives ``__init__``,
``_init_params``, ``_objective``, ``_finish`` and ``_outputs`` (its raw outputs, for
predictions).

The fitted state that every estimator keeps, beyond its public attributes: ``_theta``
(the one flat parameter buffer, in the standardized space), ``_optimizer``, ``_scaling``,
``_dtype`` (float32 or float64, X's), ``_rng`` (the random stream that ``partial_fit``
continues) and ``_train_state`` (what ``resume=True`` continues from).
"""

from __future__ import annotations

import contextlib
import copy
import numbers
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastgd import persistence
from fastgd._feature_names import learn_feature_names
from fastgd.distributed import DistributedOptimizer, agree_on_errors, ending_job_if_uncaught
from fastgd.history import History
from fastgd.models._base import BaseEstimator, ConvergenceWarning, make_rng, warn
from fastgd.models._data import Scaling, stratified_split, weighted_moments
from fastgd.models._inputs import FitInputs, InputStage, global_weight_mean, global_weighted_moments, is_unit_weights
from fastgd.models._sparse import is_sparse
from fastgd.optim.registry import check_options, get_optimizer
from fastgd.stopping import EarlyStopping, LossTolerance
from fastgd.streaming import DEFAULT_BUFFER_BYTES, ChunkStream
from fastgd.training import train

__all__ = ["CheckpointWriter", "FitRun", "GradientEstimator", "Objective", "check_checkpoint", "limit_blas",
           "nonfinite_attributes"]


@dataclass
class Objective:
    """What first-order training calls, from the estimator's ``_objective``.

    ``loss_and_grad(params, X, y, w)``: :func:`fastgd.train`'s, over ``[theta]``;
    ``value(theta, X, y, w)``: the objective's value and ``outputs(theta, X)``: the raw
    outputs, both on the validation set of ``early_stopping``; ``post_step``: train's;
    ``close()``: after training, whatever happened (frees per-fit resources).

    ``value_at_rows(theta, X, y, w, rows)`` and ``outputs_at_rows(theta, X, rows)``, when
    given: the same on the rows ``rows`` (int64) of the whole arrays, read in place with the
    bits of a copy of them (``w`` None: weights of 1): ``early_stopping``'s validation rows
    are then never copied.

    ``state``, when given: arrays of the objective's own that training updates and a resumed
    fit continues from (a lazy sparse fit's L1 penalty state), by name. Their copies go into
    the training state (checkpoints included); a resumed fit writes them back in place."""

    loss_and_grad: Callable[..., Any]
    value: Callable[..., float]
    outputs: Callable[[np.ndarray, np.ndarray], np.ndarray]
    post_step: Callable[..., Any] | None = None
    close: Callable[[], None] | None = None
    value_at_rows: Callable[..., float] | None = None
    outputs_at_rows: Callable[[np.ndarray, Any, np.ndarray], np.ndarray] | None = None
    state: dict[str, np.ndarray] | None = None


@dataclass
class FitRun:
    """One call of ``fit`` or ``partial_fit``, as the stages fill it in (the hooks read it,
    and write the starting point)."""

    inputs: FitInputs
    partial: bool              # partial_fit: one epoch
    comm: Any                  # an MPI communicator (data-parallel fit), or None
    point: dict[str, Any] | None  # the run that resume=True continues
    warm: bool                 # warm_start from the fitted parameters
    regression: bool
    scaling: Scaling
    Xs: Any                    # the inputs in the standardized space (a stream: its ChunkStream);
                               # X itself, raw, when the objective standardizes rows itself
    ys: Any                    # the targets as encoded (regression: standardized); None streamed
    w: Any                     # the sample weights, of mean 1 (unweighted: a broadcast of ones); None streamed
    row_scaling: Any = None    # Xs is raw X: the standardization the objective applies to its rows
                               # (_inputs.kernel_row_scaling); None: Xs is in the standardized space
    theta: Any = None          # the starting point, trained in place
    optimizer: Any = None      # the optimizer over theta (None: the template builds one)
    rng: np.random.Generator | None = None
    model: Any = None          # the estimator's own structure over theta (an MLP's network)

    @property
    def enc(self) -> dict[str, Any]:
        return self.inputs.enc

    @property
    def K(self) -> int:
        return int(self.inputs.enc["K"])

    @property
    def d(self) -> int:
        return self.inputs.d

    @property
    def dtype(self) -> Any:
        return self.inputs.X_dtype

    @property
    def continuing(self) -> bool:
        return self.inputs.continuing

    @property
    def streamed(self) -> bool:
        return self.inputs.stream is not None


class GradientEstimator(InputStage, BaseEstimator):
    """The template of ``fit`` (see the module docstring for its stages and hooks)."""

    # The hyperparameters that the template reads (annotations: __init__ sets them).
    optimizer: Any
    lr: Any
    batch_size: int | None
    max_epochs: int
    tol: float | None
    n_iter_no_change: int
    early_stopping: bool
    validation_fraction: float
    shuffle: Any
    standardize: bool
    clip_norm: float | None
    clip_value: float | None
    optimizer_options: dict[str, Any] | None
    warm_start: bool
    random_state: Any
    verbose: bool
    callbacks: Any
    # The fitted state (see the module docstring).
    n_features_in_: int
    n_iter_: int
    history_: History
    classes_: np.ndarray
    _theta: np.ndarray
    _optimizer: Any
    _scaling: Scaling
    _dtype: Any
    _rng: np.random.Generator | None
    _train_state: dict[str, Any] | None

    # The objective reads each batch's rows in place (train(gather=False)): sample weights
    # that are all 1 then go down as None, so that it need not read them.
    _reads_rows = False
    # fit takes a scipy.sparse X (as CSR, read in place by the objective); others refuse it.
    _accepts_sparse = False
    # The objective applies ``run.row_scaling`` to the rows it reads (training batches and the
    # early-stopping validation rows alike): ``run.Xs`` is then X itself, in the raw space,
    # never a standardized copy. (Streams standardize each chunk as it enters the buffer.)
    _standardizes_rows = False
    # With _standardizes_rows: streamed chunks also enter the shuffle buffer raw, and a
    # C-contiguous memmap is trained on in place (the objective standardizes whatever it
    # reads); without it, chunks are standardized as they enter the buffer.
    _raw_streams = False
    # A regressor of several targets: y may be 2-D (check_y's multi_output: "2d" keeps a
    # one-column y 2-D, "columns" ravels it), one output per column.
    _multi_output: str | None = None
    # A warm start keeps the fitted standardization (the parameters live in its space)
    # instead of learning one from the new data.
    _warm_start_keeps_scaling = False
    # Attributes that __setstate__ rebuilds from the others (views of _theta): a model file
    # need not hold them.
    _derived_attributes: tuple[str, ...] = ()

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, checkpoint: Any = None, resume: bool = False,
            checkpoint_every: int = 1, comm: Any = None) -> Any:
        """Fit on ``(X, y)``: at most ``max_epochs`` epochs (Newton: iterations), stopping
        earlier by ``tol``/``n_iter_no_change`` or ``early_stopping``. With ``warm_start``,
        a fitted model starts from its current parameters (an MLP: of the same shape, with
        its standardization) with a new optimizer. Returns self.

        ``X`` is read in place when it is a C-contiguous float32 or float64 array (a memmap
        too): no copy of it is made (the linear models' ``solver="gd"`` standardizes the rows
        as it reads them). A Fortran-ordered or strided float array is copied once, with a
        DataConversionWarning that gives the copy's size; other dtypes are converted to float64.

        Data larger than memory: ``X`` may be a memmap (``np.load(path, mmap_mode="r")``),
        read in blocks of rows and never copied whole, or chunks (a :class:`fastgd.ChunkStream`,
        a list of ``(X, y)`` or ``(X, y, sample_weight)`` tuples, or a callable returning a
        fresh iterator of them, with ``y=None``), streamed through a shuffle buffer (see
        :mod:`fastgd.streaming`). One pass first learns the standardization (weighted moments
        merged chunk by chunk), the classes or the target's scaling; each epoch then reads the
        data once more. Streams need ``batch_size``; a linear model's ``solver="newton"`` and
        ``loss="huber"`` with ``standardize`` need the data in memory. A memmap is read into
        memory for those and for ``early_stopping``; chunks hold out a random
        ``validation_fraction`` of their samples (at most a buffer's worth), left out of every
        epoch. An MLP's batch norm keeps its running statistics (no exact pass at the end).

        ``checkpoint``: a path; after every ``checkpoint_every``-th epoch (default 1: every
        epoch; counted over the whole run, a resumed one included) the model as it stands
        (with its optimizer state, random streams, early-stopping state and history) is
        written there, atomically, as by ``save``, and the fitted model when the fit ends,
        whatever stopped it (``max_epochs``, ``tol``, ``early_stopping``, a callback, a
        divergence), so that the file ends with the last epoch and why the run stopped. An
        exception (a crash) leaves the last write in place, to be loaded and resumed. (With
        ``early_stopping``, a write during the run holds the last epoch's weights, the best
        ones in its training state; they are put back when the run ends.)
        ``checkpoint_every`` must be a positive integer, and other than 1 only with
        ``checkpoint`` (ValueError).

        ``resume=True`` continues the run that this estimator's last ``fit`` made (or that the
        checkpoint or file it was loaded from holds) on the same data, up to ``max_epochs``
        epochs in all, with the same bits as a run that was never interrupted, also with
        ``early_stopping`` (the same validation split, best value, patience count and best
        weights). It is a no-op when that run is over (``max_epochs`` reached, or stopped by
        ``tol``, ``early_stopping``, a callback or a divergence) and a ValueError for an
        estimator that is not fitted or has no training state, or whose ``early_stopping``
        was changed since (see :meth:`_resume_point`).

        ``comm``: an MPI communicator (mpi4py, e.g. ``MPI.COMM_WORLD``) for a data-parallel
        fit: every rank calls ``fit`` with the same parameters and its own shard of the data
        (``X``, ``y``, ``sample_weight``), and every rank ends with the same model. The
        standardization is that of all the ranks' rows (weighted sums over the ranks; for the
        Huber target scale the ranks' targets are gathered for the median), the classes are
        the union of the ranks' labels, the sample weights are rescaled by their global mean,
        the starting point is rank 0's (the output biases those of the whole data), and
        training is :func:`fastgd.train` with ``comm`` (every step on the mean of the ranks'
        gradients, global losses in ``history_``, the same stopping decisions everywhere;
        with ``early_stopping`` each rank holds out ``validation_fraction`` of its own
        shard). Only rank 0 writes the ``checkpoint``; to resume, every rank loads that file
        and calls ``fit(..., resume=True, comm=comm)`` on its same shard (with an integer
        ``random_state`` the ranks' random streams are the same, so the resumed run has the
        bits of an uninterrupted one). A shard may be streamed (a memmap, chunks): each rank
        streams its own through its own buffer, the ranks' first passes merged (moments,
        classes, counts). Not with a linear model's ``solver="newton"`` nor an MLP's
        ``batch_norm`` (its statistics would be the shard's; ValueError)."""
        return self._fit(X, y, sample_weight, partial=False, classes=None, checkpoint=checkpoint, resume=resume,
                         checkpoint_every=checkpoint_every, comm=comm)

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any, checkpoint: Any = None,
             resume: bool = False, checkpoint_every: int = 1, comm: Any = None) -> Any:
        # Under comm, an error on some ranks is every rank's (each stage agrees, and train's
        # exchanges carry a failure flag); then an uncaught one ends the job rather than
        # leaving a rank waiting (fastgd.distributed).
        with ending_job_if_uncaught(comm):
            with agree_on_errors(comm, f"{type(self).__name__}.fit"):
                self._check_params()
                every = check_checkpoint(checkpoint, checkpoint_every)
                self._check_fit_call(partial=partial, resume=resume, checkpoint=checkpoint, comm=comm)
                point = self._resume_point() if resume else None
            if resume and point is None:
                return self
            return self._fit_stages(X, y, sample_weight, partial=partial, classes=classes, checkpoint=checkpoint,
                                    resume=resume, every=every, comm=comm, point=point)

    def _fit_stages(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any, checkpoint: Any,
                    resume: bool, every: int, comm: Any, point: dict[str, Any] | None) -> Any:
        """Stages 2 to 6 of ``fit`` (see the module docstring)."""
        with limit_blas(self._blas_threads()):
            run = self._prepare(X, y, sample_weight, partial=partial, classes=classes, resume=resume, comm=comm,
                                point=point)
            if run.continuing:
                self._resume_params(run)
            else:
                self._init_params(run)
            writer = None
            if checkpoint is not None and (comm is None or comm.Get_rank() == 0):
                # The live buffer, not a copy: a snapshot is written before training goes on.
                writer = CheckpointWriter(self, checkpoint, lambda target, history, state: target._set_fitted(
                    run, history, len(history), state), every)
            history, n_iter, train_state = self._train(run, writer)
            self._check_finite(run, history, n_iter, train_state)
            # Attributes only now: a failed fit leaves the estimator as it was.
            self._set_fitted(run, history, n_iter, train_state)
            # Rank 0 writes; should that fail, the other ranks (done training) must know too.
            with agree_on_errors(comm, f"{type(self).__name__}.fit's last checkpoint write", error=RuntimeError):
                if writer is not None:
                    writer.finish(self)
        return self

    # -- stages ------------------------------------------------------------------------

    def _prepare(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any, resume: bool,
                 comm: Any, point: dict[str, Any] | None) -> FitRun:
        """Stages 2 and 3: the checked inputs, the standardization and the data in its space."""
        if comm is None:
            inputs = self._fit_inputs(X, y, sample_weight, partial=partial or resume, classes=classes)
        else:
            inputs = self._distributed_fit_inputs(X, y, sample_weight, comm, resume=resume)
        if inputs.stream is not None:
            self._check_streamable(inputs)
        warm = bool(self.warm_start) and inputs.fitted and not inputs.continuing
        if inputs.continuing or warm:
            self._check_start(inputs.d, inputs.enc, "partial_fit" if inputs.continuing else "warm_start")
        regression = self._estimator_type == "regressor"
        if self._keeps_scaling(inputs.fitted, inputs.continuing):
            # The scaling of the first call, even if `standardize` was changed since: the
            # parameters live in its space.
            scaling = self._scaling
        else:
            scaling = self._new_scaling(inputs, comm, regression)
            if regression:
                _check_target_range(scaling, inputs.X_dtype)
        # X's values were checked by check_X or by the moments' read; never twice, never not.
        inputs.check_X_values(comm, f"{type(self).__name__}.fit")
        Xs, ys, w, row_scaling = self._scaled(inputs, scaling, regression)
        if comm is not None and inputs.stream is None:  # (a stream's weights: its transform's)
            w = (inputs.sw / global_weight_mean(comm, inputs.sw)).astype(inputs.X_dtype)
        return FitRun(inputs, partial, comm, point, warm, regression, scaling, Xs, ys, w, row_scaling)

    def _new_scaling(self, inputs: FitInputs, comm: Any, regression: bool) -> Scaling:
        """The standardization learned from this call's data (all the ranks' under ``comm``),
        or the identity without ``standardize``."""
        d = inputs.d
        sparse = inputs.stream.is_sparse() if inputs.stream is not None else is_sparse(inputs.X)
        if not self._standardizes(sparse):
            return Scaling.identity(d)
        # (X in memory: the moments' read also checks its values, if check_X left them.)
        mean, scale = inputs.feature_scaling(comm, f"{type(self).__name__}.fit")
        scaling = Scaling(mean, scale)
        if regression and inputs.stream is not None:
            scaling.y_mean, scaling.y_scale = inputs.target_scaling()
        elif regression:
            scaling.y_mean, scaling.y_scale = self._target_scaling(inputs.enc["y"], inputs.sw, comm)
        return scaling

    def _train(self, run: FitRun, writer: CheckpointWriter | None) -> tuple[History, int, dict[str, Any] | None]:
        """Stage 5, first-order: trains ``run.theta`` in place; returns the history, the
        number of epochs (summed over ``partial_fit`` calls) and the training state that
        ``resume`` continues (None after ``partial_fit``)."""
        if run.rng is None:
            run.rng = make_rng(self.random_state)
        if run.optimizer is None:
            run.optimizer = self._new_optimizer(run.theta)
        # Data-parallel: theta broadcast from rank 0, every step on the ranks' mean gradient.
        dist = None if run.comm is None else DistributedOptimizer(run.optimizer, run.comm)
        objective = self._objective(run, dist)
        stepper = run.optimizer if dist is None else dist
        try:
            history, X_trained, train_state = self._first_order(run, objective, stepper, writer)
        finally:
            if objective.close is not None:
                objective.close()
        run.optimizer = dist.detach() if dist is not None else run.optimizer
        if not run.partial:
            self._after_training(run, X_trained, train_state)
        n_iter = len(history) + (self.n_iter_ if run.partial and run.continuing else 0)
        return history, n_iter, None if run.partial else train_state

    def _first_order(self, run: FitRun, objective: Objective, optimizer: Any,
                     writer: CheckpointWriter | None) -> tuple[History, Any, dict[str, Any]]:
        """:func:`fastgd.train` over ``run``; returns the history, the inputs trained on (without
        the early-stopping validation split) and the training state that a resumed fit
        continues from: train's random generator, ``first_gnorm``, the number of samples
        (checked on resuming) and copies of the objective's own state arrays (``Objective.state``).

        With ``early_stopping``, the training state also holds the generator that drew the
        validation split (``split_rng``, as it was before the split), the criterion's state
        (``early_stopping``: best value, wait, best weights) and, once the run has ended and
        the best weights are back in ``theta``, the last epoch's parameters (``live_theta``):
        a resumed run splits the same way, goes on from the last epoch's parameters and stops
        and restores as the uninterrupted run would. Without it, ``tol`` and
        ``n_iter_no_change`` stop on the training loss, as scikit-learn's SGD estimators."""
        resume, rng = run.point, run.rng
        assert rng is not None  # drawn by _train
        ys = None if run.ys is None else self._training_targets(run.ys, run.dtype)
        early = bool(self.early_stopping) and not run.partial
        if early and ys is None and run.Xs.n_samples is None:
            raise ValueError("early_stopping holds out a validation sample drawn by a pass over the data; a one-shot "
                             "iterator cannot give it: set early_stopping=False, or pass a list of chunks or a "
                             "callable")
        # Under comm, every rank's number of samples (a resumed run must see the same shards).
        n_given = run.Xs.n_samples if ys is None else len(ys)
        if run.comm is not None:
            n_given = tuple(run.comm.allgather(n_given))
        Xs, w, validation, es, split_rng, train_rows = run.Xs, run.w, None, None, None, None
        stopping: list[Any] = []
        # (A rank's own shard may fail the split, one rank's resume state the check.)
        with agree_on_errors(run.comm, f"{type(self).__name__}.fit"):
            if resume is not None and resume.get("n_samples") not in (None, n_given):
                raise ValueError(f"resume=True: X has {n_given} rows, but the run to resume was trained on "
                                 f"{resume['n_samples']}; resume it on the same data")
            if early:
                # The split's generator is kept (as it was before the split): a resumed run draws
                # the same split from it and leaves the estimator's rng where it is.
                split_rng = copy.deepcopy(resume["split_rng"] if resume is not None else rng)
                Xs, ys, w, validation, es, train_rows = self._held_out_split(run, objective, ys, split_rng)
                stopping.append(es)
            elif self.tol is not None and not run.partial:
                stopping.append(LossTolerance(float(self.tol), int(self.n_iter_no_change)))
        w_train = None if w is None or self._reads_rows and (is_unit_weights(w) or np.all(w == 1)) else w
        # train's own random stream, kept (with first_gnorm) so that a resumed fit goes on with it.
        if resume is not None:
            gen = copy.deepcopy(resume["rng"])
            state: dict[str, Any] = {"history": resume["history"], "first_gnorm": resume["first_gnorm"]}
            for name, saved in (resume.get("objective_state") or {}).items():
                live = (objective.state or {}).get(name)
                if live is not None and np.shape(saved) == live.shape:
                    live[...] = saved
        else:
            gen = np.random.default_rng(int(rng.integers(2**63 - 1)))
            state = {"first_gnorm": None}

        def train_state() -> dict[str, Any]:
            out = {"rng": gen, "first_gnorm": state["first_gnorm"], "n_samples": n_given}
            if objective.state:
                out["objective_state"] = {name: a.copy() for name, a in objective.state.items()}
            if es is not None:
                out.update(split_rng=split_rng, early_stopping=es.state_dict())
            return out

        callbacks = list(self.callbacks or ())
        if writer is not None:
            callbacks.append(lambda history, params: writer(history, train_state))
        history = train(objective.loss_and_grad, [run.theta], Xs, ys, optimizer=optimizer,
                        batch_size=self.batch_size, max_epochs=1 if run.partial else int(self.max_epochs),
                        shuffle=self.shuffle, random_state=gen, sample_weight=w_train,
                        validation_data=validation[:2] if validation else None,
                        loss_fn=validation[2] if validation else None,
                        metric=validation[3] if validation else None, stopping=stopping, callbacks=callbacks,
                        post_step=objective.post_step, verbose=bool(self.verbose), gather=not self._reads_rows,
                        state=state, comm=run.comm, rows=train_rows)
        if stopping and history.stop_reason.startswith("reached max_epochs"):
            warn(f"{type(self).__name__} reached max_epochs={self.max_epochs} before the "
                 f"{'validation' if early else 'training'} loss stopped improving by tol={self.tol}; consider "
                 "increasing max_epochs or lr.", ConvergenceWarning)
        final_state = train_state()
        if es is not None and es.last_params is not None:
            final_state["live_theta"] = es.last_params[0]
        return history, Xs, final_state

    def _held_out_split(self, run: FitRun, objective: Objective, ys: Any, split_rng: np.random.Generator
                        ) -> tuple[Any, Any, Any, tuple[Any, ...], _FitEarlyStopping, np.ndarray | None]:
        """``early_stopping``'s validation set: ``(Xs, ys, w)`` without it, ``(X_val, y_val,
        val_loss, metric)`` for :func:`fastgd.train`, the stopping criterion (from the
        saved state when resuming, with the last epoch's parameters back in ``theta``) and,
        for a loss that reads rows in place, the training rows: ``(Xs, ys, w)`` are then the
        whole arrays, trained on at those rows (:func:`fastgd.train`'s ``rows``: the bits of
        the copy, without it). The validation rows are copied (``validation_fraction`` of X),
        unless the objective reads them in place (``value_at_rows``, ``outputs_at_rows``):
        then the validation set handed to train is ``(rows, y_val)``, the rows of X it scores
        (its length is the set's size, which the ranks' means are weighted by)."""
        resume, fraction = run.point, float(self.validation_fraction)
        Xs, w = run.Xs, run.w
        # A new run draws the split from the estimator's stream; a resumed one redraws it.
        rng = run.rng if resume is None else copy.deepcopy(split_rng)
        assert rng is not None  # run.rng: drawn by _train
        train_rows = None
        if ys is None:
            Xs, (Xv, yv), wv = _held_out(Xs, fraction, rng)
        else:
            strata = run.enc["y"] if self._estimator_type == "classifier" else None
            tr, va = stratified_split(len(ys), fraction, rng, strata)
            wv = w[va]
            in_place = (self._reads_rows and objective.value_at_rows is not None
                        and objective.outputs_at_rows is not None)
            if in_place:
                # The validation set is its rows of Xs, read in place (X_val below is their
                # indices: the set's length, for train; the closures read Xs).
                Xv, yv = va.astype(np.int64), ys[va]
            else:
                Xv, yv = Xs[va], ys[va]
            if self._reads_rows:
                train_rows = tr
            else:
                Xs, ys, w = Xs[tr], ys[tr], w[tr]
            if in_place:
                return self._rows_validation(run, objective, Xs, ys, w, Xv, yv, wv, tr)

        def val_loss(params: list[np.ndarray], X: Any, y: Any) -> float:
            return objective.value(params[0], X, y, wv)

        def metric(params: list[np.ndarray], X: Any, y: Any) -> float:
            return self._metric(objective.outputs(params[0], X), y, wv)

        return Xs, ys, w, (Xv, yv, val_loss, metric), self._early_stopping(run), train_rows

    def _rows_validation(self, run: FitRun, objective: Objective, Xs: Any, ys: Any, w: Any, rows: np.ndarray,
                         yv: Any, wv: Any, train_rows: np.ndarray
                         ) -> tuple[Any, Any, Any, tuple[Any, ...], _FitEarlyStopping, np.ndarray]:
        """:meth:`_held_out_split`'s result for an objective that reads the validation rows of
        ``Xs`` in place (``rows``, handed to train as the set's X)."""
        assert objective.value_at_rows is not None and objective.outputs_at_rows is not None
        value_at_rows, outputs_at_rows = objective.value_at_rows, objective.outputs_at_rows
        w_rows = None if is_unit_weights(w) else w

        def val_loss(params: list[np.ndarray], X: Any, y: Any) -> float:
            return value_at_rows(params[0], Xs, ys, w_rows, rows)

        def metric(params: list[np.ndarray], X: Any, y: Any) -> float:
            return self._metric(outputs_at_rows(params[0], Xs, rows), y, wv)

        return Xs, ys, w, (rows, yv, val_loss, metric), self._early_stopping(run), train_rows

    def _early_stopping(self, run: FitRun) -> _FitEarlyStopping:
        """early_stopping's criterion (from the saved state when resuming, with the last
        epoch's parameters back in ``theta``)."""
        resume = run.point
        es = _FitEarlyStopping(patience=int(self.n_iter_no_change), min_delta=float(self.tol or 0.0),
                               monitor="val_loss", restore_best_weights=True,
                               initial=None if resume is None else resume["early_stopping"])
        if resume is not None and resume.get("live_theta") is not None:
            run.theta[...] = resume["live_theta"]  # the last epoch's parameters, not the best ones
        return es

    def _set_fitted(self, run: FitRun, history: History, n_iter: int, train_state: dict[str, Any] | None) -> None:
        """Stage 6: the fitted attributes, on the estimator at the end of the call, or on the
        copy that a checkpoint writes during it."""
        for name, value in run.enc["attrs"].items():
            setattr(self, name, value)
        if not run.continuing:  # (a call that continues keeps the names it checked)
            learn_feature_names(self, run.inputs.names)
        self.n_features_in_ = run.d
        self.n_iter_ = n_iter
        self.history_ = history
        self._theta, self._optimizer, self._scaling, self._dtype = run.theta, run.optimizer, run.scaling, run.dtype
        self._rng, self._train_state = run.rng, train_state
        self._finish(run)

    def _check_finite(self, run: FitRun, history: History, n_iter: int,
                      train_state: dict[str, Any] | None) -> None:
        """A fit never returns a non-finite model: the fitted attributes, set on a copy, must
        be finite (``FloatingPointError`` otherwise, the estimator left as it was). Training
        keeps finite parameters (a divergence restores the last finite ones); what can still
        overflow is the model in the units of X and y, in X's dtype."""
        fitted = copy.copy(self)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is what is checked for
            fitted._set_fitted(run, history, n_iter, train_state)
        bad = nonfinite_attributes(fitted)
        if not bad:
            return
        call = "partial_fit" if run.partial else "fit"
        if not np.all(np.isfinite(run.theta)):
            why = "training ended on non-finite parameters (see the DivergenceWarning)"
        else:
            dtype = np.dtype(run.dtype)
            why = (f"the trained model, in the units of X and y, overflows {dtype.name} (features or targets of a "
                   "magnitude it cannot represent: rescale them" + (", or pass float64 data)" if dtype != np.float64
                                                                    else ")"))
        raise FloatingPointError(f"{type(self).__name__}.{call}: {', '.join(bad)} would not be finite: {why}; the "
                                 "estimator is left as it was")

    def _resume_point(self) -> dict[str, Any] | None:
        """What ``fit(..., resume=True)`` continues from: the training state of the estimator's
        last ``fit`` (or of the checkpoint it was loaded from), or None when that run is over.

        A run is over when its history holds ``max_epochs`` epochs or more, or when it stopped
        for another reason than reaching its ``max_epochs`` (converged by ``tol`` or by
        ``early_stopping``, diverged, stopped by a callback): resuming it is then a no-op. An
        estimator that is not fitted, or has no training state (Newton's solver, ``partial_fit``,
        a file saved without its optimizer), cannot be resumed (ValueError), nor can a run whose
        ``early_stopping`` setting has been changed since (its validation split and best weights
        belong to the run)."""
        name = type(self).__name__
        if not self.__sklearn_is_fitted__():
            raise ValueError(f"resume=True: this {name} is not fitted, there is nothing to resume; call fit without "
                             "resume (or load a checkpoint) first")
        state = getattr(self, "_train_state", None)
        if state is None or getattr(self, "_optimizer", None) is None:
            raise ValueError(f"resume=True: this {name} has no training state to continue (it was fitted by Newton's "
                             "solver or partial_fit, or loaded from a file without its optimizer); call fit without "
                             "resume")
        if ("early_stopping" in state) != bool(self.early_stopping):
            was = "with" if "early_stopping" in state else "without"
            raise ValueError(f"resume=True: the run was trained {was} early_stopping, but early_stopping="
                             f"{self.early_stopping!r} now; set it back to resume, or call fit without resume")
        history = self.history_
        reason = history.stop_reason
        if len(history) >= int(self.max_epochs) or (reason is not None and not reason.startswith("reached max_epochs")):
            return None
        return {"history": history, **state}

    def _new_optimizer(self, theta: np.ndarray) -> Any:
        """A new optimizer over ``theta`` (through :func:`fastgd.optim.get_optimizer`) from the
        estimator's ``optimizer``, ``lr``, ``optimizer_options``, ``clip_norm`` and
        ``clip_value``."""
        options = dict(self.optimizer_options or {})
        check_options(self.optimizer, options, f"{type(self).__name__}(optimizer_options=...)",
                      what="optimizer option")
        if self.clip_norm is not None:
            options["clip_norm"] = self.clip_norm
        if self.clip_value is not None:
            options["clip_value"] = self.clip_value
        return get_optimizer(self.optimizer, [theta], self.lr, **options)

    # -- hooks -------------------------------------------------------------------------

    def _encode_target(self, y: np.ndarray, sw: np.ndarray | None, classes: Any, partial: bool,
                       continuing: bool) -> dict[str, Any]:
        """``{"y": the targets as training reads them (before any scaling), "K": the number
        of outputs, "attrs": fitted attributes to set (``classes_``)}`` (the mixins')."""
        raise NotImplementedError

    def _metric(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        """The validation metric of raw outputs ``z`` (the mixins')."""
        raise NotImplementedError

    def _global_targets(self, comm: Any, y: np.ndarray, sw: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets and weights that stand for every rank's in the best constant model (the
        mixins')."""
        raise NotImplementedError

    def _check_fit_call(self, *, partial: bool, resume: bool, checkpoint: Any, comm: Any) -> None:
        """What the parameters cannot do in this call (ValueError)."""

    def _needs_whole_data(self, partial: bool) -> bool:
        """Whether this fit needs the whole data set at once (a memmap is then read into
        memory): full batches, and the validation split of ``early_stopping``."""
        return self.batch_size is None or (bool(self.early_stopping) and not partial)

    def _check_streamable(self, inputs: FitInputs) -> None:
        """What streamed data (chunks, a memmap) cannot do here: ValueError."""
        if self.batch_size is None:
            raise ValueError("batch_size=None (the whole data set in one step) needs the data in memory; give a "
                             "batch_size to stream chunks or a memmap")

    def _check_start(self, d: int, enc: dict[str, Any], who: str) -> None:
        """That the fitted model can be continued (``who="partial_fit"``) or warm-started
        from on data of ``d`` features encoded as ``enc``: ValueError."""
        hint = "; set warm_start=False to fit a new model" if who == "warm_start" else ""
        if d != self.n_features_in_:
            raise ValueError(f"{who}: X has {d} features, but {type(self).__name__} was fitted with "
                             f"{self.n_features_in_}{hint}")
        if "classes_" in enc["attrs"] and not np.array_equal(enc["attrs"]["classes_"], self.classes_):
            raise ValueError(f"{who}: the classes {enc['attrs']['classes_'].tolist()} differ from the fitted "
                             f"{self.classes_.tolist()}{hint}")

    def _target_scaling(self, y: np.ndarray, sw: np.ndarray, comm: Any) -> tuple[Any, Any]:
        """A regression target's centre and scale: its weighted mean and standard deviation
        (over every rank's targets under ``comm``); numbers for a 1-D y, arrays of one per
        column for a 2-D one (several targets)."""
        cols = y if y.ndim == 2 else y[:, None]
        mean, std = weighted_moments(cols, sw) if comm is None else global_weighted_moments(comm, cols, sw)
        return (mean, std) if y.ndim == 2 else (float(mean[0]), float(std[0]))

    def _training_targets(self, y: np.ndarray, dtype: Any) -> np.ndarray:
        """The encoded (and scaled) targets as the objective reads them."""
        return y

    def _resume_params(self, run: FitRun) -> None:
        """Stage 4 of a call that continues: copies of the kept parameters, optimizer and
        random stream (one deepcopy keeps the optimizer on the copied buffer), so that a
        failing call leaves the estimator as it was."""
        run.theta, run.optimizer, run.rng = copy.deepcopy((self._theta, self._optimizer, self._rng))
        run.theta = run.theta.astype(run.dtype, copy=False)

    def _init_params(self, run: FitRun) -> None:
        """Stage 4 of a new fit: ``run.theta`` (and ``run.model``, ``run.rng`` if the
        estimator has them), a warm start from the fitted parameters when ``run.warm``."""
        raise NotImplementedError

    def _blas_threads(self) -> int | None:
        """NumPy's BLAS threads for the whole call (:func:`limit_blas`; None: as they are), read
        when the call starts. The whole call, not its training only: its set-up's products
        (weighted moments, starting points) also give other bits on another thread count
        with some BLAS builds and sizes, and another fit running in another thread must not
        change this one's."""
        return None

    def _objective(self, run: FitRun, dist: DistributedOptimizer | None) -> Objective:
        """What first-order training calls (``dist``: the data-parallel optimizer, whose
        gradient buffers the objective may write into)."""
        raise NotImplementedError

    def _after_training(self, run: FitRun, X_trained: Any, train_state: dict[str, Any]) -> None:
        """After a ``fit`` (not ``partial_fit``) trained: ``X_trained`` the inputs trained on;
        ``train_state`` may take more for ``resume``."""

    def _finish(self, run: FitRun) -> None:
        """The estimator's own fitted attributes (``coef_``...), from ``run.theta``."""
        raise NotImplementedError

    # -- model files (fastgd.persistence) -------------------------------------------------

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __fastgd_state__(self) -> dict[str, Any]:
        """What a model file holds besides the parameters: every other attribute except those
        that ``__setstate__`` rebuilds from the parameter buffer."""
        skip = set(self.get_params(deep=False))
        if "_theta" in vars(self):
            skip.update(self._derived_attributes)
        return {k: v for k, v in vars(self).items() if k not in skip}

    def __fastgd_restore__(self, state: dict[str, Any], optimizers: dict[str, Callable[[Any], Any]]) -> None:
        """Take the attributes of a model file (as unpickling does, through
        ``__setstate__``), then each stored optimizer: ``optimizers[name](new)`` loads its
        state into ``new``, an optimizer built over the parameter buffer as ``fit`` builds it."""
        self.__setstate__(state)
        for name, restore in optimizers.items():
            setattr(self, name, restore(self._new_optimizer(self._theta)))


def _check_target_range(scaling: Scaling, dtype: Any) -> None:
    """A regressor's coefficients and predictions are in X's dtype: a standardized target
    whose mean or deviation is beyond that dtype's range cannot be fitted in it (ValueError,
    before training rather than an overflow after it)."""
    limit = float(np.finfo(dtype).max)
    # (Several targets: the column of the largest mean's, and the largest deviation.)
    means = np.reshape(scaling.y_mean, -1)
    y_mean, y_scale = float(means[np.argmax(np.abs(means))]), float(np.max(scaling.y_scale))
    if scaling.standardized and max(abs(y_mean), y_scale) > limit:
        raise ValueError(f"y has a mean of {y_mean:.3g} and a standard deviation of {y_scale:.3g}, "
                         f"beyond the range of {np.dtype(dtype).name} ({limit:.3g}), X's dtype, in which the model is "
                         "fitted and predicts; pass X as float64, or rescale y")


def nonfinite_attributes(est: Any) -> list[str]:
    """The names of ``est``'s fitted attributes (public names ending in ``_``, and the
    parameter buffer ``_theta``) that hold a non-finite float: arrays, numbers, or lists of
    them."""
    bad = []
    for name, value in vars(est).items():
        if name != "_theta" and (name.startswith("_") or not name.endswith("_")):
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, (np.ndarray, float, np.floating)) and np.asarray(v).dtype.kind == "f"
               and not np.all(np.isfinite(v)) for v in items):
            bad.append(name)
    return bad


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

    Called after each epoch (``writer(history, state)``, ``state()`` the training state), it
    writes the estimator as it stands after every ``every``-th epoch, counted over the whole
    run (a resumed one included): ``snapshot(target, history, state)`` sets the fitted
    attributes on a shallow copy of ``est``. :meth:`finish` writes the fitted estimator when
    the fit ends, whatever stopped it, so that the file always holds the last epoch and why
    the run stopped (a snapshot does not know; resuming a run that is over is a no-op). The
    snapshot of the ``max_epochs``-th epoch is left to :meth:`finish`, which follows it at
    once."""

    def __init__(self, est: Any, path: Any, snapshot: Callable[[Any, History, dict[str, Any]], None],
                 every: int = 1) -> None:
        self.est, self.path, self.snapshot, self.every = est, os.fspath(path), snapshot, int(every)
        self.max_epochs = int(est.max_epochs)

    def _save(self, model: Any) -> None:
        with warnings.catch_warnings():
            # Callbacks (and other training hooks) have no file representation; save lists
            # them in load_info(path)["dropped_params"]; once per write would be noise.
            warnings.filterwarnings("ignore", message="save: parameter", category=UserWarning)
            persistence.save(model, self.path)

    def __call__(self, history: History, state: Callable[[], dict[str, Any]]) -> None:
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
        initial = getattr(self, "_initial", None)
        if initial is not None:
            self.load_state_dict(initial)

    def on_train_end(self, params: Any) -> None:
        self.last_params = [np.array(p, copy=True) for p in params]
        super().on_train_end(params)


class _SharedBlasLimit:
    """BLAS's thread count is one for the process, while fits may run in several Python
    threads at once: their limits are counted here. While fits overlap, BLAS runs on the
    fewest threads any of them asked for, and the count from before the first comes back
    when the last one ends. A fit that ends first must not give the others' products more
    threads: with some BLAS builds (OpenBLAS 0.3.20, as NumPy 1.23 ships it) the thread
    count changes a product's last bits, and a fit would no longer give the bits it gives
    alone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[int] = []  # the limits of the fits running now
        self._original: Any = None  # threadpoolctl's limiter that restores the count from before

    def enter(self, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        with self._lock:
            before = min(self._active, default=None)
            self._active.append(threads)
            if before is None:
                self._original = threadpool_limits(limits=threads, user_api="blas")
            elif threads < before:
                threadpool_limits(limits=threads, user_api="blas")

    def exit(self, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        with self._lock:
            self._active.remove(threads)
            if not self._active:
                self._original.restore_original_limits()
                self._original = None
            elif min(self._active) > threads:
                threadpool_limits(limits=min(self._active), user_api="blas")


_BLAS_LIMIT = _SharedBlasLimit()


@contextlib.contextmanager
def limit_blas(threads: int | None) -> Iterator[None]:
    """A context in which NumPy's BLAS runs on at most ``threads`` threads (threadpoolctl), or
    nothing for None. After a multi-threaded product OpenBLAS's workers poll for more work for
    a while (2^28 cycles) before they sleep, and a lower limit set later does not stop them:
    a product per epoch (a validation set's outputs) keeps a worker polling through the next
    epoch, on the core fastgd's 2-thread kernels need. A product on one thread leaves the
    workers asleep. Fits in other Python threads share the limit (:class:`_SharedBlasLimit`)."""
    if threads is None:
        yield
        return
    _BLAS_LIMIT.enter(threads)
    try:
        yield
    finally:
        _BLAS_LIMIT.exit(threads)


def _held_out(stream: ChunkStream, fraction: float, rng: np.random.Generator) -> tuple[ChunkStream, Any, Any]:
    """early_stopping's validation sample of a stream: ``fraction`` of its samples (at most
    as many as its shuffle buffer holds, so that memory stays bounded), drawn uniformly
    without replacement (not stratified: the labels are not kept) and read, transformed as
    training reads them, by one pass. Returns the stream without them (every pass leaves
    them out), ``(X_val, y_val)`` and the validation weights."""
    # Counted and transformed: an estimator's stream (fit's first pass, then _scaled).
    assert stream.n_samples is not None and stream.transform is not None
    transform = stream.transform
    n = int(stream.n_samples)
    d = stream.row_shape[0] if stream.row_shape else 1
    cap = stream.buffer_size or max(1, DEFAULT_BUFFER_BYTES // (8 * (d + 2)))
    k = min(int(round(fraction * n)), cap)
    if k == 0 or k == n:
        raise ValueError(f"validation_fraction={fraction} of {n} samples leaves {'no' if k == 0 else 'all'} samples "
                         "for validation; early_stopping needs both a training and a validation set")
    val = np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)
    parts: list[Any] = []
    position = 0
    for Xc, yc, wc in stream.chunks():
        m = Xc.shape[0]
        lo, hi = np.searchsorted(val, [position, position + m])
        if hi > lo:
            rows = val[lo:hi] - position
            # Copies: the transform may return views of its scratch arrays.
            parts.append([None if a is None else a.copy() if is_sparse(a) else np.array(a) for a in
                          transform(Xc[rows], yc[rows], None if wc is None else wc[rows])])
        position += m
    if is_sparse(parts[0][0]):
        import scipy.sparse as sp

        Xv = sp.vstack([p[0] for p in parts], format="csr")
    else:
        Xv = np.concatenate([p[0] for p in parts])
    yv = np.concatenate([p[1] for p in parts])
    wv = np.concatenate([np.ones(p[0].shape[0], Xv.dtype) if p[2] is None else p[2] for p in parts])
    train_stream = stream.with_transform(stream.transform)
    train_stream.exclude, train_stream.n_samples, train_stream.row_shape = val, n - k, stream.row_shape
    return train_stream, (Xv, yv), wv
