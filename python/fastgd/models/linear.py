r"""Linear models trained by fastgd's optimizers: :class:`LinearRegression` and
:class:`LogisticRegression`, with scikit-learn's estimator API.

Both minimize, over the coefficients :math:`w` and the (unpenalized) intercepts,

.. math:: \frac{\sum_i s_i\, \ell(x_i^\top w + b,\ y_i)}{\sum_i s_i} + \alpha\, R(w), \qquad
          R(w) = \begin{cases} \tfrac12 \|w\|_2^2 & \text{penalty="l2"} \\
                               \|w\|_1 & \text{penalty="l1"} \\
                               \rho \|w\|_1 + (1 - \rho)\, \tfrac12 \|w\|_2^2 & \text{penalty="elasticnet"}
                 \end{cases}

(:math:`s` the sample weights, :math:`\rho` = ``l1_ratio``), scikit-learn's SGD convention.
With ``standardize=True`` (the default) the features are centred and scaled by their
(weighted) mean and standard deviation, learned in ``fit``, and the penalty applies to the
weights of the standardized features, exactly as ``make_pipeline(StandardScaler(), model)``
would; ``coef_`` and ``intercept_`` are always reported for the original features.

``solver="gd"`` runs :func:`fastgd.train`: mini-batch epochs of one fused objective call
(``fastgd._core.linear_objective``: outputs, loss and gradients in one pass over the batch's
rows, read in place from the data set by index, with no copied batch) and one fused optimizer
step on one flat parameter buffer (the coefficients and intercepts are views of it). The L2 term is
part of the gradient; the L1 term is a proximal step after every optimizer step,
:math:`w \leftarrow \operatorname{sign}(w)\max(|w| - \eta\alpha\rho, 0)` with :math:`\eta` the
step's learning rate, so coefficients reach exact zeros. That is the exact proximal gradient
method for ``optimizer="sgd"``; adaptive optimizers scale their steps per coordinate but not
this threshold, so with them the L1 term gives fewer exact zeros. ``solver="newton"`` finds
the exact optimum of the smooth objectives (:mod:`fastgd.models.newton`).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import numpy as np

from fastgd import _core
from fastgd import losses as _losses
from fastgd.distributed import DistributedOptimizer
from fastgd.models._base import (
    BaseEstimator,
    check_is_fitted,
    check_labels,
    check_n_features,
    check_sample_weight,
    check_target,
    check_training_params,
    check_X,
    check_y,
    is_int,
    is_number,
    make_rng,
)
from fastgd.models._data import Scaling as _Scaling
from fastgd.models._data import r2_score as _r2
from fastgd.models._data import weighted_median as _weighted_median
from fastgd.models._data import weighted_moments as _weighted_moments
from fastgd.models._fitting import (
    CheckpointWriter,
    build_optimizer,
    check_checkpoint,
    distributed_fit_inputs,
    first_order_fit,
    fit_inputs,
    global_weight_mean,
    global_weighted_moments,
    resume_point,
    scaled,
)
from fastgd.models.newton import newton

__all__ = ["LinearRegression", "LogisticRegression"]

_PENALTIES = ("l2", "l1", "elasticnet", None)


class _Available:
    """A method that exists (for ``hasattr``) only when ``check(self)`` holds, as
    scikit-learn's ``available_if``: ``predict_proba`` of a hinge-loss classifier,
    ``partial_fit`` with Newton's solver."""

    def __init__(self, fn, check, why: str) -> None:
        self.fn, self.check, self.why = fn, check, why
        functools.update_wrapper(self, fn)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        if not self.check(obj):
            raise AttributeError(f"{type(obj).__name__}.{self.fn.__name__} is not available: {self.why(obj)}")
        return self.fn.__get__(obj, owner)


def _first_order(est) -> bool:
    return est.solver == "gd"


def _why_not_partial(est) -> str:
    return f"solver={est.solver!r} solves the whole problem at once; partial_fit needs solver='gd'"


class _LinearModel(BaseEstimator):
    """fit/partial_fit machinery shared by the regressor and the classifier.

    Parameters are kept in one flat buffer ``theta = [W.ravel(), b]`` in the standardized
    space (W: K x d, one row per output). Subclasses say how targets are encoded, which loss
    applies, and how outputs become predictions.
    """

    _losses: tuple[str, ...] = ()
    _newton_losses: tuple[str, ...] = ()

    # -- hooks -----------------------------------------------------------------------

    def _encode(self, y: np.ndarray, sw: np.ndarray, classes: Any, partial: bool,
                continuing: bool) -> dict[str, Any]:
        """{"y": targets before scaling, "K": outputs, "attrs": fitted attributes to set}."""
        raise NotImplementedError

    def _loss_name(self, K: int) -> str:
        raise NotImplementedError

    def _init_intercept(self, y: np.ndarray, sw: np.ndarray, K: int, scaling: _Scaling) -> np.ndarray:
        return np.zeros(K)

    def _metric(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        raise NotImplementedError

    # -- parameters ------------------------------------------------------------------

    def _check_params(self) -> dict[str, float]:
        """Validate the hyperparameters; returns the L2 and L1 strengths."""
        if self.loss not in self._losses:
            raise ValueError(f"loss must be one of {self._losses}, got {self.loss!r}")
        if self.penalty not in _PENALTIES:
            raise ValueError(f"penalty must be one of {_PENALTIES}, got {self.penalty!r}")
        check_training_params(self)
        if not (isinstance(self.shuffle, (bool, np.bool_)) or (isinstance(self.shuffle, str)
                                                              and self.shuffle == "batches")):
            raise ValueError(f"shuffle must be True, 'batches' or False, got {self.shuffle!r}")
        if not _is_number(self.l1_ratio) or not 0 <= self.l1_ratio <= 1:
            raise ValueError(f"l1_ratio must be in [0, 1], got {self.l1_ratio!r}")
        if self.solver not in ("gd", "newton"):
            raise ValueError(f"solver must be 'gd' or 'newton', got {self.solver!r}")
        alpha = float(self.alpha) if self.penalty is not None else 0.0
        l1 = {"l2": 0.0, "l1": alpha, "elasticnet": alpha * self.l1_ratio, None: 0.0}[self.penalty]
        l2 = alpha - l1
        if self.solver == "newton":
            if l1 > 0:
                raise ValueError(f"solver='newton' needs a smooth objective: penalty={self.penalty!r} has an L1 "
                                 "term; use penalty='l2' or None, or solver='gd'")
            if self.loss not in self._newton_losses:
                raise ValueError(f"solver='newton' supports loss in {self._newton_losses}, not {self.loss!r} "
                                 "(it is not twice differentiable); use solver='gd'")
        return {"l2": l2, "l1": l1}

    # Streamed data (fastgd.models._fitting.scaled): the targets as the fused loss reads
    # them, and no weights for unweighted chunks.
    _reads_rows = True

    @staticmethod
    def _stream_targets(y: np.ndarray, dtype: Any) -> np.ndarray:
        return np.ascontiguousarray(y, dtype=np.int64 if y.dtype.kind in "iu" else dtype)

    def _check_streamable(self, inputs: Any) -> None:
        """What streamed data (chunks, a memmap) cannot do here: ValueError."""
        if self.solver != "gd":
            raise ValueError(f"solver={self.solver!r} needs the whole data set in memory; stream chunks or a memmap "
                             "with solver='gd'")
        if self.batch_size is None:
            raise ValueError("batch_size=None (the whole data set in one step) needs the data in memory; give a "
                             "batch_size to stream chunks or a memmap")
        if getattr(self, "loss", None) == "huber" and self.standardize and not inputs.continuing:
            raise ValueError("loss='huber' with standardize=True scales the target by its median, which one pass "
                             "over streamed data does not give; standardize the target yourself and pass "
                             "standardize=False, or pass arrays")

    # -- fitting ---------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, checkpoint: Any = None,
            resume: bool = False, checkpoint_every: int = 1, comm: Any = None) -> _LinearModel:
        """Fit on ``(X, y)``: ``max_epochs`` epochs at most (or Newton iterations), stopping
        earlier by ``tol``/``n_iter_no_change`` or ``early_stopping``. With ``warm_start``,
        a fitted model starts from its current coefficients (with a new optimizer).
        Returns self.

        Data larger than memory: ``X`` may be a memmap (``np.load(path, mmap_mode="r")``),
        read in blocks of rows and never copied whole, or chunks (a :class:`fastgd.ChunkStream`,
        a list of ``(X, y)`` or ``(X, y, sample_weight)`` tuples, or a callable returning a
        fresh iterator of them, with ``y=None``), streamed through a shuffle buffer (see
        :mod:`fastgd.streaming`). One pass first learns the standardization (weighted moments
        merged chunk by chunk), the classes or the target's scaling; each epoch then reads the
        data once more. Streams need ``batch_size`` and cannot use ``solver="newton"`` or
        ``loss="huber"`` with ``standardize``; a memmap is read into memory for those and for
        ``early_stopping`` (chunks hold out a random ``validation_fraction`` of their samples,
        at most a buffer's worth, left out of every epoch).

        ``checkpoint``: a path; after every ``checkpoint_every``-th epoch (default 1: every
        epoch; counted over the whole run, a resumed one included) the model as it stands
        (with its optimizer state, random streams, early-stopping state and history) is
        written there, atomically, as by ``save``, and the fitted model when the fit ends,
        whatever stopped it (``max_epochs``, ``tol``, ``early_stopping``, a callback, a
        divergence), so that the file ends with the last epoch and why the run stopped. An
        exception (a crash) leaves the last write in place, to be loaded and resumed. (With
        ``early_stopping``, a write during the run holds the last epoch's weights, the best
        ones in its training state; they are put back when the run ends.) ``checkpoint_every`` must be a positive
        integer, and other than 1 only with ``checkpoint`` (ValueError).
        ``resume=True`` continues the run that this estimator's last ``fit`` made (or that the
        checkpoint or file it was loaded from holds) on the same data, up to ``max_epochs``
        epochs in all, with the same bits as a run that was never interrupted, also with
        ``early_stopping`` (the same validation split, best value, patience count and best
        weights). It is a no-op when that run is over (``max_epochs`` reached, or stopped by
        ``tol``, ``early_stopping``, a callback or a divergence) and a ValueError for an
        estimator that is not fitted or has no training state, or whose ``early_stopping``
        was changed since (see ``fastgd.models._fitting.resume_point``). ``solver="gd"`` only.

        ``comm``: an MPI communicator (mpi4py, e.g. ``MPI.COMM_WORLD``) for a data-parallel
        fit: every rank calls ``fit`` with the same parameters and its own shard of the data
        (``X``, ``y``, ``sample_weight``), and every rank ends with the same model. The
        standardization is that of all the ranks' rows (weighted sums over the ranks; for the
        Huber target scale the ranks' targets are gathered for the median), the classes are the
        union of the ranks' labels, the sample weights are rescaled by their global mean, the
        starting intercepts are those of the whole data, and training is :func:`fastgd.train` with ``comm`` (every
        step on the mean of the ranks' gradients, global losses in ``history_``, the same
        stopping decisions everywhere; with ``early_stopping`` each rank holds out
        ``validation_fraction`` of its own shard). Only rank 0 writes the ``checkpoint``; to
        resume, every rank loads that file and calls ``fit(..., resume=True, comm=comm)`` on
        its same shard (with an integer ``random_state`` the ranks' random streams are the
        same, so the resumed run has the bits of an uninterrupted one). ``solver="gd"``.
        A shard may be streamed (a memmap, chunks): each rank streams its own through its own
        buffer, the ranks' first passes merged (moments, classes, counts)."""
        return self._fit(X, y, sample_weight, partial=False, classes=None, checkpoint=checkpoint, resume=resume,
                         checkpoint_every=checkpoint_every, comm=comm)

    def _fit(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any, checkpoint: Any = None,
             resume: bool = False, checkpoint_every: int = 1, comm: Any = None) -> _LinearModel:
        strengths = self._check_params()
        every = check_checkpoint(checkpoint, checkpoint_every)
        if comm is not None and not _first_order(self):
            raise ValueError(f"fit(comm=...) needs solver='gd', got {self.solver!r}")
        if partial and not _first_order(self):
            raise ValueError(_why_not_partial(self))
        if (resume or checkpoint is not None) and not _first_order(self):
            raise ValueError(f"solver={self.solver!r} solves the whole problem at once; resume and checkpoint "
                             "need solver='gd'")
        point = resume_point(self) if resume else None
        if resume and point is None:
            return self
        if comm is None:
            inputs = fit_inputs(self, X, y, sample_weight, partial=partial or resume, classes=classes)
        else:
            inputs = distributed_fit_inputs(self, X, y, sample_weight, comm, resume=resume)
        X, sw, enc, fitted, continuing = inputs.X, inputs.sw, inputs.enc, inputs.fitted, inputs.continuing
        d = inputs.d
        K = enc["K"]
        dtype = inputs.X_dtype
        regression = self._estimator_type == "regressor"
        if inputs.stream is not None:
            self._check_streamable(inputs)

        if continuing:
            scaling = self._scaling
        elif self.standardize:
            if inputs.stream is not None:
                mean, scale = inputs.feature_scaling()
            else:
                mean, scale = _weighted_moments(X, sw) if comm is None else global_weighted_moments(comm, X, sw)
            scaling = _Scaling(mean, scale)
            if regression and inputs.stream is not None:
                scaling.y_mean, scaling.y_scale = inputs.target_scaling()
            elif regression and comm is None:
                scaling.y_mean, scaling.y_scale = self._target_scaling(enc["y"], sw)
            elif regression:
                ys_all, sw_all = zip(*comm.allgather((enc["y"], sw)))
                scaling.y_mean, scaling.y_scale = self._target_scaling(np.concatenate(ys_all), np.concatenate(sw_all))
        else:
            scaling = _Scaling(np.zeros(d), np.ones(d), standardized=False)
        # The scaling of the first call, even if `standardize` was changed since: the
        # parameters live in its space.
        Xs, ys, w = scaled(inputs, scaling, regression)
        if comm is not None and inputs.stream is None:  # (a stream's weights: its transform's)
            w = (inputs.sw / global_weight_mean(comm, inputs.sw)).astype(dtype)

        # The objective in the standardized space. Scaling y by y_scale divides the whole
        # objective by y_scale^2 if the L1 strength and Huber's delta are divided by y_scale,
        # so the minimizer is that of the problem in y's own units.
        l2, l1 = strengths["l2"], strengths["l1"] / scaling.y_scale
        loss_name = self._loss_name(K)

        # The fitted attributes, set on self at the end (a failed fit leaves the estimator as it
        # was) and on the copies that checkpoints write.
        def finish(target, theta, history, n_iter, optimizer, rng, train_state):
            coef, intercept = _from_internal(theta[:K * d].reshape(K, d), theta[K * d:], scaling)
            for name, value in enc["attrs"].items():
                setattr(target, name, value)
            target.coef_ = target._shape_coef(coef.astype(dtype))
            target.intercept_ = intercept.astype(dtype)
            target.n_features_in_ = d
            target.n_iter_ = n_iter
            target.history_ = history
            target._theta, target._optimizer, target._scaling, target._dtype = theta, optimizer, scaling, dtype
            target._rng, target._train_state = rng, train_state

        # Starting point.
        optimizer = None
        if continuing:
            theta, optimizer = copy.deepcopy((self._theta, self._optimizer))
            theta = theta.astype(dtype, copy=False)
        else:
            theta = np.zeros(K * (d + 1), dtype=dtype)
            if self.warm_start and fitted:
                self._check_warm_start(d, enc)
                W, b = _to_internal(self.coef_.reshape(K, d), self.intercept_, scaling)
                theta[:K * d] = W.ravel()
                theta[K * d:] = b
            else:
                # (A stream's enc["y"] and sw sum up every rank's targets already.)
                y0, sw0 = (enc["y"], sw) if comm is None or inputs.stream is not None else \
                    self._global_targets(comm, enc["y"], sw, K)
                theta[K * d:] = self._init_intercept(y0, sw0, K, scaling)

        writer = None
        if self.solver == "newton":
            smooth = _losses.get_loss(loss_name)  # squared_error, log_loss, softmax_cross_entropy
            res = newton(smooth.fn, smooth.hessian, Xs, ys, w,
                         theta[:K * d].reshape(K, d), theta[K * d:], l2=l2, max_iter=int(self.max_epochs),
                         classification=not regression)
            theta[:K * d] = res.W.ravel()
            theta[K * d:] = res.b
            history, n_iter, rng, train_state = res.history, res.n_iter, None, None
        else:
            # partial_fit continues the fit's random stream, so that successive epochs are
            # shuffled differently.
            # A copy, so that a failing call leaves the kept stream where it was.
            rng = copy.deepcopy(self._rng) if continuing and self._rng is not None else make_rng(self.random_state)
            delta = float(getattr(self, "delta", 1.0)) / scaling.y_scale
            objective = _Objective(loss_name, K, d, l2, l1, delta)
            if optimizer is None:
                optimizer = build_optimizer(self, theta)
            dist = None
            if comm is not None:
                # theta broadcast from rank 0; the objective writes its gradient straight into
                # the buffer that the ranks reduce.
                dist = DistributedOptimizer(optimizer, comm)
                objective._bind(theta, dist.grads[0])

            # The live buffer, not a copy: the snapshot is written before training goes on.
            def snapshot(target, history, train_state):
                finish(target, theta, history, len(history), optimizer, rng, train_state)

            writer = None
            if checkpoint is not None and (comm is None or comm.Get_rank() == 0):
                writer = CheckpointWriter(self, checkpoint, snapshot, every)

            history, trained, _, train_state = first_order_fit(
                self, objective, theta, dist if dist is not None else optimizer, rng, Xs,
                objective.targets(ys, dtype), w, enc, partial,
                value=lambda th, Xv, yv, wv: objective([th], Xv, yv, wv, value_only=True),
                outputs=objective.outputs, post_step=objective.prox if l1 > 0 else None, rows=True,
                resume=point, on_epoch=writer, comm=comm,
                # The training loop's BLAS work is matrix-vector products (validation outputs),
                # bound by memory; one thread keeps BLAS's workers from polling on fastgd's cores.
                blas_threads=1)
            optimizer = dist.detach() if dist is not None else trained
            n_iter = len(history)
            if partial and fitted:
                n_iter += self.n_iter_
            if partial:
                train_state = None

        # Attributes only now: a failed fit leaves the estimator as it was.
        finish(self, theta, history, n_iter, optimizer, rng, None if self.solver == "newton" else train_state)
        if writer is not None:
            writer.finish(self)
        return self

    def _global_targets(self, comm: Any, y: np.ndarray, sw: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Targets and weights that stand for every rank's in ``_init_intercept`` (so that a
        data-parallel fit starts where a fit on the whole data would): per class its total
        weight over the ranks; for squared error the global weighted mean; for Huber (a
        median) the ranks' targets gathered."""
        from fastgd.distributed import rank_sum

        if self._estimator_type == "classifier":
            counts = rank_sum(comm, np.bincount(y.astype(np.intp), weights=sw, minlength=max(K, 2)))
            return np.arange(len(counts), dtype=np.float64), counts
        if getattr(self, "loss", None) == "huber":
            ys, ws = zip(*comm.allgather((y, sw)))
            return np.concatenate(ys), np.concatenate(ws)
        total, weight = rank_sum(comm, [float(sw @ y), float(sw.sum())])
        return np.array([total / weight]), np.ones(1)

    def _check_warm_start(self, d: int, enc: dict[str, Any]) -> None:
        if d != self.n_features_in_:
            raise ValueError(f"warm_start: X has {d} features, but {type(self).__name__} was fitted with "
                             f"{self.n_features_in_}; set warm_start=False to fit a new model")

    def _shape_coef(self, coef: np.ndarray) -> np.ndarray:
        return coef

    def _target_scaling(self, y: np.ndarray, sw: np.ndarray) -> tuple[float, float]:
        return 0.0, 1.0

    # -- prediction ------------------------------------------------------------------

    def _decision(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = check_X(X, dtype=self._dtype)
        check_n_features(self, X)
        coef = self.coef_.reshape(-1, X.shape[1])
        z = X @ coef.T + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z


class _Objective:
    """``loss_and_grad`` for :func:`fastgd.train` (``gather=False``) over the flat buffer
    ``theta = [W, b]``: the batch's mean loss plus the penalty, and the gradient into one
    flat buffer kept from call to call, by one fused kernel call that reads the batch's rows
    in place (``fastgd._core.linear_objective``). The optimizer then makes one fused call
    per step too, and a step allocates nothing."""

    def __init__(self, loss: str, K: int, d: int, l2: float, l1: float, delta: float = 1.0) -> None:
        self.loss, self.K, self.d, self.l2, self.l1, self.delta = loss, K, d, l2, l1, delta
        self._theta: np.ndarray | None = None

    def _bind(self, theta: np.ndarray, grad: np.ndarray | None = None) -> None:
        # Views of theta and of the gradient buffer, made once: a batch then costs one call.
        # grad: a buffer to write the gradient into (a DistributedOptimizer's), else a new one.
        K, d = self.K, self.d
        self._theta = theta
        self._W, self._b = theta[:K * d].reshape(K, d), theta[K * d:]
        self._grad = np.empty_like(theta) if grad is None else grad
        self._gW, self._gb = self._grad[:K * d].reshape(K, d), self._grad[K * d:]
        self._grads = [self._grad]

    def targets(self, y: np.ndarray | None, dtype: Any) -> np.ndarray | None:
        """y as the kernel reads it: int64 labels for the multiclass losses, else X's dtype
        (None for streamed data, whose chunks the stream converts)."""
        return None if y is None else np.ascontiguousarray(y, dtype=np.int64 if self.K > 1 else dtype)

    def outputs(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        K, d = self.K, self.d
        z = X @ theta[:K * d].reshape(K, d).T + theta[K * d:]
        return z[:, 0] if K == 1 else z

    def __call__(self, params, X, y, w, rows=None, value_only: bool = False):
        theta = params[0]
        if theta is not self._theta:
            self._bind(theta)
        if rows is None or isinstance(rows, slice):
            idx, start, stop = None, 0 if rows is None else rows.start, None if rows is None else rows.stop
        else:
            idx, start, stop = rows, 0, None
        # A diverging run gives a non-finite value; fastgd.train detects it, restores the last
        # good parameters and says so (a DivergenceWarning).
        value = _core.linear_objective(self.loss, X, y, self._W, self._b, self._gW, self._gb, idx, start, stop, w,
                                       self.l2, self.l1, self.delta)
        return value if value_only else (value, self._grads)

    def run_batches(self, params, X, y, w, order, batches, first, bs, optimizer, batch_weight, sums, first_gnorm,
                    explode_factor, sync=None, n_rows=None):
        """fastgd.train's loop over the batches ``batches[first:]`` in one C++ call
        (``fastgd._core.linear_batches``): the objective, the gradient norm, train's
        divergence checks and the optimizer's step through its plan, per batch, with the same
        bits as the Python loop. None (train keeps its loop) while the optimizer has no plan:
        before its first step, or a rule without a one-call step.

        Data-parallel, ``sync`` (a DistributedOptimizer's ``synchronize_step``) is called
        from the loop between each gradient and its step, the only Python on the way; the
        gradient must then be written into the optimizer's buffer (``_bind`` with it)."""
        plan = optimizer.step_plan
        if plan is None or len(params) != 1:
            return None
        theta = params[0]
        if theta is not self._theta:
            self._bind(theta)
        if sync is not None and self._grad is not optimizer.grads[0]:
            return None  # the gradient would not be the buffer that sync reduces
        try:
            return _core.linear_batches(self.loss, X, y, theta, self._grad, self.K, w, order, batches, first, bs,
                                        batch_weight, self.l2, self.l1, self.delta, plan, self._grads, sums,
                                        first_gnorm, explode_factor, sync, n_rows)
        finally:
            if sync is not None:
                optimizer.mark_unsynced()  # its steps were taken here, not by its step()

    def prox(self, params, lr: float) -> None:
        """Soft-threshold the weights by lr * l1 (intercepts are not penalized)."""
        Wf = params[0][:self.K * self.d]
        shrunk = np.abs(Wf) - lr * self.l1
        np.maximum(shrunk, 0.0, out=shrunk)
        np.copysign(shrunk, Wf, out=Wf)


def _to_internal(coef: np.ndarray, intercept: np.ndarray, s: _Scaling) -> tuple[np.ndarray, np.ndarray]:
    W = coef * s.scale / s.y_scale
    b = (intercept - s.y_mean + coef @ s.mean) / s.y_scale
    return W, b


def _from_internal(W: np.ndarray, b: np.ndarray, s: _Scaling) -> tuple[np.ndarray, np.ndarray]:
    coef = s.y_scale * W / s.scale
    intercept = s.y_mean + s.y_scale * b - coef @ s.mean
    return coef, intercept


_is_number, _is_int = is_number, is_int


_COMMON_PARAMS = """
    penalty : {"l2", "l1", "elasticnet", None}, default="l2"
        The regularization term R(w) (module docstring). "l1" and "elasticnet" need
        ``solver="gd"``.
    alpha : float, default=1e-4
        Strength of the penalty.
    l1_ratio : float, default=0.15
        The elastic net mixing rho (0: pure L2, 1: pure L1).
    solver : {"gd", "newton"}, default="gd"
        "gd": first-order training with ``optimizer``; "newton": Newton's method with a
        backtracking line search on the full batch, to the exact optimum (smooth losses,
        penalty "l2" or None; the Hessian is (K(d+1))^2, so for moderate d).
    optimizer : str or Optimizer class, default="adam"
        A name of :func:`fastgd.optim.registry.get_optimizer` ("sgd", "momentum", "adam",
        ...) or an Optimizer subclass.
    lr : float or schedule, default=1e-2
        Learning rate, or a schedule of the step (:mod:`fastgd.schedules`).
    batch_size : int or None, default=32
        Mini-batch size; None takes the whole training set in each step.
    max_epochs : int, default=100
        At most this many epochs (Newton: iterations).
    tol : float or None, default=1e-3
        Stop when the epoch's training loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs in a row (scikit-learn's SGD rule); None: run
        ``max_epochs``. With ``early_stopping``, the improvement needed on the validation
        loss.
    n_iter_no_change : int, default=5
        Patience of the two stopping rules above.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for classifiers), stop when
        the objective on it (``val_loss`` in ``history_``, with the penalty, as Keras; the
        accuracy or R^2 is ``val_metric``) stops improving, and keep the best epoch's
        coefficients. Not used by ``partial_fit``.
    validation_fraction : float, default=0.1
        Share of the data held out for ``early_stopping``.
    shuffle : {True, "batches", False}, default=True
        The order of each epoch's mini-batches (``solver="gd"``). True: a new permutation of
        the samples every epoch, so every batch is a fresh random sample; its rows are read
        from all over ``X`` (a cache miss each). ``"batches"``: the contiguous batches
        ``X[k*batch_size:(k+1)*batch_size]`` in a new random order every epoch, each read in
        order at the speed of memory (several times faster on large data); a batch keeps its
        rows from epoch to epoch, which is fine when the rows are in no particular order and
        biased when they are sorted (by class, time, source): use True then, or shuffle the
        rows once before ``fit``. False: the batches in order, every epoch.
    standardize : bool, default=True
        Centre and scale the features (weighted mean and standard deviation, learned in
        ``fit``, or in the first ``partial_fit``). Coefficients are reported for the original
        features; the penalty applies to those of the standardized features.
    clip_norm, clip_value : float or None, default=None
        Gradient clipping, fused into the optimizer step.
    optimizer_options : dict or None, default=None
        More options for the optimizer (``{"momentum": 0.9}``, ``{"betas": (0.9, 0.99)}``).
    warm_start : bool, default=False
        ``fit`` starts from the fitted coefficients (with a new optimizer state).
    random_state : int, numpy Generator/RandomState or None, default=None
        Seeds the shuffling and the validation split.
    verbose : bool, default=False
        A progress bar over epochs (``solver="gd"``).
    callbacks : sequence of callables, default=()
        ``cb(history, params)`` after each epoch (``params``: the internal flat parameter
        buffer, in the standardized space); returning True stops training.
"""

_COMMON_ATTRS = """
    n_features_in_ : int
        Number of features seen in ``fit``.
    n_iter_ : int
        Epochs run (Newton: iterations); summed over ``partial_fit`` calls.
    history_ : fastgd.History
        The records of the last ``fit``/``partial_fit`` call (losses of the training
        objective, in the standardized space).
"""


class LinearRegression(_LinearModel):
    __doc__ = r"""Linear regression by gradient descent (or Newton's method), as scikit-learn's
    ``SGDRegressor`` with fastgd's optimizers.

    Minimizes the mean loss plus ``alpha * R(w)`` (see :mod:`fastgd.models.linear`) with
    ``loss="squared_error"`` (:math:`\frac12 (z - y)^2`) or ``"huber"`` (quadratic up to
    ``delta``, then linear). With ``standardize=True`` the target is also centred and scaled
    for training (by its mean and standard deviation; for Huber by its median and median
    absolute deviation, which outliers do not inflate), with the L1 strength and ``delta``
    rescaled to match, so the solution is that of the problem in y's own units; the losses in
    ``history_`` (and ``tol``) are then those of the scaled problem, the objective divided by
    the square of that scale.

    Parameters
    ----------
    loss : {"squared_error", "huber"}, default="squared_error"
    delta : float, default=1.0
        Huber's threshold, in units of y.
""" + _COMMON_PARAMS + """
    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : ndarray of shape (1,)
""" + _COMMON_ATTRS

    _estimator_type = "regressor"
    _losses = ("squared_error", "huber")
    _newton_losses = ("squared_error",)

    def __init__(self, *, loss="squared_error", delta=1.0, penalty="l2", alpha=1e-4, l1_ratio=0.15, solver="gd",
                 optimizer="adam", lr=1e-2, batch_size=32, max_epochs=100, tol=1e-3, n_iter_no_change=5,
                 early_stopping=False, validation_fraction=0.1, shuffle=True, standardize=True, clip_norm=None,
                 clip_value=None, optimizer_options=None, warm_start=False, random_state=None, verbose=False,
                 callbacks=()):
        self.loss = loss
        self.delta = delta
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.solver = solver
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.standardize = standardize
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.optimizer_options = optimizer_options
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def _check_params(self):
        if self.loss == "huber" and not (_is_number(self.delta) and self.delta > 0):
            raise ValueError(f"delta must be a number > 0, got {self.delta!r}")
        return super()._check_params()

    def _encode(self, y, sw, classes, partial, continuing):
        return {"y": check_target(y, np.float64), "K": 1, "attrs": {}}

    def _loss_name(self, K):
        return self.loss

    def _target_scaling(self, y, sw):
        # Huber: the median and the (normal-consistent) median absolute deviation, robust
        # to the outliers Huber is chosen for; the standard deviation would grow with them
        # and shrink the scaled threshold delta / y_scale towards a pure L1 loss.
        if self.loss == "huber":
            center = _weighted_median(y, sw)
            spread = 1.4826 * _weighted_median(np.abs(y - center), sw)
            if spread > 100 * np.finfo(np.float64).eps * max(abs(center), 1e-300):
                return center, spread
        mean, std = _weighted_moments(y[:, None], sw)
        return float(mean[0]), float(std[0])

    def _init_intercept(self, y, sw, K, scaling):
        # Start at the (weighted) mean target, or median for Huber (0 when standardized):
        # adaptive optimizers move each parameter by about lr per step, so a far-off
        # intercept would take many epochs to reach.
        center = _weighted_median(y, sw) if self.loss == "huber" else float(np.average(y, weights=sw))
        return np.full(K, (center - scaling.y_mean) / scaling.y_scale)

    def _shape_coef(self, coef):
        return coef.reshape(-1)

    def _metric(self, z, y, w):
        return _r2(y, z, w)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegression:
        """One epoch over ``(X, y)`` (in batches of ``batch_size``), continuing from the
        current coefficients and the optimizer's state (moments, step count, schedule).
        The first call learns the standardization from its data and keeps it. Only with
        ``solver="gd"``. Returns self.

        ``X`` may also be a memmap (or a slice of one) or chunks, as in ``fit``: one epoch
        through the shuffle buffer. Once the model is fitted, a one-shot iterator of chunks
        (a generator object) is accepted too; it is checked as it is read, and its weights
        are taken as given (not divided by their mean, which would need a pass first)."""
        return self._fit(X, y, sample_weight, partial=True, classes=None)

    partial_fit = _Available(partial_fit, _first_order, _why_not_partial)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,)."""
        return self._decision(X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2, the coefficient of determination (1 for a perfect fit, 0 for the mean)."""
        pred = self.predict(X)
        y = check_target(check_y(y, len(pred), type(self).__name__), np.float64)
        w = check_sample_weight(sample_weight, len(y))
        return _r2(y, pred, w)


def _probabilistic(est) -> bool:
    return est.loss == "log_loss"


def _why_no_proba(est) -> str:
    return f"loss={est.loss!r} gives no probabilities; use loss='log_loss'"


class LogisticRegression(_LinearModel):
    __doc__ = r"""Logistic regression (binary, or multinomial softmax) by gradient descent or
    Newton's method, with scikit-learn's classifier API.

    Binary problems have one weight vector, :math:`P(y = \text{classes\_}[1]) = \sigma(x^\top
    w + b)`; K > 2 classes have one per class, :math:`P = \operatorname{softmax}(x^\top W^\top
    + b)` (scikit-learn's multinomial convention). ``loss="hinge"`` trains a linear SVM
    instead (one-vs-rest for K > 2), which has no ``predict_proba``.

    Parameters
    ----------
    loss : {"log_loss", "hinge"}, default="log_loss"
""" + _COMMON_PARAMS + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for 2 classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
""" + _COMMON_ATTRS

    _estimator_type = "classifier"
    _losses = ("log_loss", "hinge")
    _newton_losses = ("log_loss",)

    def __init__(self, *, loss="log_loss", penalty="l2", alpha=1e-4, l1_ratio=0.15, solver="gd", optimizer="adam",
                 lr=1e-2, batch_size=32, max_epochs=100, tol=1e-3, n_iter_no_change=5, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, standardize=True, clip_norm=None, clip_value=None,
                 optimizer_options=None, warm_start=False, random_state=None, verbose=False, callbacks=()):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.solver = solver
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.standardize = standardize
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.optimizer_options = optimizer_options
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> LogisticRegression:
        """One epoch over ``(X, y)`` (in batches of ``batch_size``), continuing from the
        current coefficients and the optimizer's state (moments, step count, schedule).
        ``classes``, all the labels there will be, is required on the first call (a batch
        may not show them all); that call also learns the standardization and keeps it.
        Only with ``solver="gd"``. Returns self.

        ``X`` may also be a memmap (or a slice of one) or chunks, as in ``fit``: one epoch
        through the shuffle buffer. Once the model is fitted, a one-shot iterator of chunks
        (a generator object) is accepted too; it is checked as it is read, and its weights
        are taken as given (not divided by their mean, which would need a pass first)."""
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    partial_fit = _Available(partial_fit, _first_order, _why_not_partial)

    def _encode(self, y, sw, classes, partial, continuing):
        known = self.classes_ if continuing else None
        if classes is not None:
            given, _ = check_labels(np.asarray(classes).reshape(-1), "classes")
            if len(given) < 2:
                raise ValueError(f"classes must hold at least 2 distinct labels, got {given.tolist()}")
            if known is not None and not np.array_equal(given, known):
                raise ValueError(f"classes={given.tolist()} differs from the classes of the first call: "
                                 f"{known.tolist()}")
            known = given
        elif partial and known is None:
            raise ValueError("classes must be passed on the first call to partial_fit (all the labels there will "
                             "be: a batch may not show them all).")
        if known is None:
            classes_, idx = check_labels(y)
        else:
            labels, _ = check_labels(y)
            unknown = np.setdiff1d(labels, known)
            if len(unknown):
                raise ValueError(f"y contains labels {unknown.tolist()} that are not in classes={known.tolist()}")
            classes_, idx = known, np.searchsorted(known, y)
        if len(classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, but the data contain "
                             f"only one class: {classes_[0]!r}")
        # fit() learns from this data alone, so it needs two classes that count; a
        # partial_fit batch may well hold one.
        if not partial and np.count_nonzero(np.bincount(idx, weights=sw, minlength=len(classes_))) < 2:
            raise ValueError("only one class has a positive sample_weight; the classifier needs at least 2 classes "
                             "with weight")
        K = 1 if len(classes_) == 2 else len(classes_)
        y_enc = idx.astype(np.float64) if K == 1 else idx.astype(np.intp)
        return {"y": y_enc, "K": K, "attrs": {"classes_": classes_}}

    def _loss_name(self, K):
        if self.loss == "hinge":
            return "hinge" if K == 1 else "hinge_ovr"
        return "log_loss" if K == 1 else "softmax_cross_entropy"

    def _check_warm_start(self, d, enc):
        super()._check_warm_start(d, enc)
        if not np.array_equal(enc["attrs"]["classes_"], self.classes_):
            raise ValueError(f"warm_start: the classes {enc['attrs']['classes_'].tolist()} differ from the fitted "
                             f"{self.classes_.tolist()}; set warm_start=False to fit a new model")

    def _init_intercept(self, y, sw, K, scaling):
        if self.loss != "log_loss":
            return np.zeros(K)
        # Start at the log-odds of the class frequencies: the best constant model.
        counts = np.bincount(y.astype(np.intp), weights=sw, minlength=max(K, 2))
        logp = np.log(np.clip(counts / counts.sum(), 1e-6, None))
        return np.array([logp[1] - logp[0]]) if K == 1 else logp - logp.mean()

    def _shape_coef(self, coef):
        return coef

    def _metric(self, z, y, w):
        pred = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return float(w @ (pred == y) / w.sum())

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: shape (n_samples,) for 2 classes (positive: ``classes_[1]``), else
        (n_samples, n_classes)."""
        return self._decision(X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        z = self._decision(X)
        idx = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        z = self._decision(X)
        if z.ndim == 1:
            p = _losses.sigmoid(z)
            return np.column_stack([1.0 - p, p])
        return _losses.softmax(z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed without underflow."""
        z = self._decision(X)
        if z.ndim == 1:
            z = np.column_stack([np.zeros_like(z), z])
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))

    predict_proba = _Available(predict_proba, _probabilistic, _why_no_proba)
    predict_log_proba = _Available(predict_log_proba, _probabilistic, _why_no_proba)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (sample-weighted)."""
        pred = self.predict(X)
        y = check_y(y, len(pred), type(self).__name__)
        w = check_sample_weight(sample_weight, len(y))
        return float(w @ (pred == y) / w.sum())
