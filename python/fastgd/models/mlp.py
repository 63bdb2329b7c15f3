r"""Multi-layer perceptrons trained by fastgd's optimizers: :class:`MLPClassifier` and
:class:`MLPRegressor`, with scikit-learn's estimator API (as its ``MLPClassifier`` and
``MLPRegressor``).

Both minimize, over the weights :math:`W_l` and the (unpenalized) biases,

.. math:: \frac{\sum_i s_i\, \ell(f(x_i), y_i)}{\sum_i s_i} + \frac{\alpha}{2} \sum_l \|W_l\|_F^2

(:math:`s` the sample weights), the convention of fastgd's linear models. The classifier's
loss is the cross-entropy of a softmax over one logit per class, or for two classes of a
sigmoid over one logit (scikit-learn's MLP does the same: ``coefs_[-1]`` then has one
column); the regressor's is half the squared error.

**alpha and scikit-learn.** scikit-learn's MLP adds :math:`\frac{\alpha}{2 B}\sum_l
\|W_l\|^2` to the mean loss of each batch of :math:`B` samples, so its ``alpha`` corresponds
to fastgd's ``alpha / batch_size`` (``alpha / n_samples`` for its full-batch ``lbfgs``):
``sklearn.neural_network.MLPClassifier(alpha=1e-4, batch_size=200)`` regularizes as
``fastgd.models.MLPClassifier(alpha=5e-7)``. fastgd's penalty does not depend on the batch
size.

**One buffer.** All parameters (weights, biases, batch-norm scales and shifts) are views of
one flat array (float32 for float32 ``X``, else float64), as are their gradients, so each
training step is one fused optimizer kernel call; ``coefs_`` and ``intercepts_`` are views
of it (see :mod:`fastgd.models.mlp_layers`). The forward and backward passes are NumPy
(BLAS) matrix products into arrays reused across batches, with the element-wise work fused
into single passes by fastgd's kernels: bias and activation; softmax, cross-entropy, its
gradient and the output bias's gradient; the activation's derivative and the bias's
gradient. A training step allocates no arrays.

**Threads.** Training uses ``fastgd.get_num_threads()`` threads: a batch of at least 128
samples (without batch norm or dropout) runs as two halves of its rows, side by side, each
with BLAS on half the threads (one each on 2 cores; set through threadpoolctl, as BLAS's
own threads busy-wait between products and lose much time on shared cores), given back
when the fit ends or fails. The halves are summed in a fixed order, so 1 and 2 threads give bit-identical fits.

**Standardization.** With ``standardize=True`` (the default) the features are centred and
scaled by their (weighted) mean and standard deviation learned in ``fit`` (and the
regressor's target too, by its mean and standard deviation), and the network works on the
standardized values, as ``make_pipeline(StandardScaler(), model)`` (with the regressor inside
a ``TransformedTargetRegressor``): ``coefs_``/``intercepts_`` are the weights of that network,
``feature_mean_``/``feature_scale_`` and ``target_mean_``/``target_scale_`` say how inputs and
outputs are transformed. The penalty applies in that space.

**Initialization.** ``init=None`` is "xavier" (Glorot's uniform, as scikit-learn) for every
activation. Weights are drawn uniformly from ``+-sqrt(6 / (fan_in + fan_out))`` ("xavier"),
``+-sqrt(6 / fan_in)`` ("he") or ``+-sqrt(3 / fan_in)`` ("lecun"); hidden biases start at
0, the output biases at the best constant model (the log-odds of the class frequencies, the
mean target). Glorot's is the default for ReLU and GELU too because it reached a given
accuracy soonest with Adam in our comparisons: in 3 epochs on a 10-class problem (100 ->
256 -> 256 -> 10, 200,000 samples, batch 256) test accuracy 92.7% against 91.3% for He's
and 92.4% for PyTorch's ``nn.Linear`` default, ``+-1/sqrt(fan_in)`` (mean of 2 seeds), and
ahead of He's likewise on digits and on a 20-class problem after 3 and 20 epochs. He's
larger weights give larger first steps and a higher loss early on; deeper ReLU networks,
whose signal Glorot's scaling shrinks layer by layer, may still prefer "he".

**GELU** is the tanh approximation :math:`\frac{h}{2}(1 + \tanh(\sqrt{2/\pi}(h +
0.044715 h^3)))` (PyTorch's ``approximate="tanh"``).

**Dropout** (inverted) on the hidden layers, in training only, with masks drawn from the
estimator's random stream, so fits with a ``random_state`` are reproducible.

**Batch normalization** (``batch_norm=True``) normalizes each hidden layer's
pre-activation over the batch (unweighted mean and variance, epsilon 1e-5) before the
activation, then scales and shifts it by the trained ``gamma``/``beta`` (the layer has no
other bias: ``intercepts_[l]`` is its ``beta``, ``batch_norm_scales_[l]`` its ``gamma``).
Prediction uses running statistics: averages with momentum 0.1 during training, which
``fit`` replaces at the end by the exact statistics of the training data under the final
weights (``partial_fit`` keeps the running averages). A batch of one sample has no variance:
keep ``batch_size`` well above 1 with batch norm.
"""

from __future__ import annotations

import copy
import functools
import numbers
from typing import Any

import numpy as np

from fastgd import _core
from fastgd import losses as _losses
from fastgd.distributed import DistributedOptimizer
from fastgd.models._base import (
    BaseEstimator,
    check_is_fitted,
    check_n_features,
    check_sample_weight,
    check_target,
    check_training_params,
    check_X,
    check_y,
    make_rng,
)
from fastgd.models._base import is_int as _is_int
from fastgd.models._base import is_number as _is_number
from fastgd.models._data import Scaling as _Scaling
from fastgd.models._data import r2_score as _r2
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
    limit_blas,
    resume_point,
    scaled,
)
from fastgd.models.linear import LogisticRegression
from fastgd.models.mlp_layers import ACTIVATIONS, Network
from fastgd.runtime import get_num_threads

__all__ = ["MLPClassifier", "MLPRegressor"]

_INITS = ("he", "xavier", "lecun")


class _BaseMLP(BaseEstimator):
    """fit/partial_fit/prediction shared by the classifier and the regressor."""

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", init=None, optimizer="adam", lr=1e-3,
                 batch_size=200, max_epochs=200, alpha=1e-4, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, standardize=True, dropout=0.0, batch_norm=False,
                 clip_norm=None, clip_value=None, optimizer_options=None, warm_start=False, random_state=None,
                 verbose=False, callbacks=()):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.alpha = alpha
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.standardize = standardize
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.optimizer_options = optimizer_options
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks

    # -- hooks -----------------------------------------------------------------------

    def _encode(self, y, sw, classes, partial, continuing) -> dict[str, Any]:
        raise NotImplementedError

    def _loss(self, z: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def _loss_grad(self, z: np.ndarray, y: np.ndarray, w: np.ndarray | None, d: np.ndarray,
                   gb: np.ndarray, n: int) -> tuple[float, bool]:
        """The loss summed over these rows, weighted by ``w``; writes into ``d`` the
        gradient of ``sum_i w_i loss_i / n`` w.r.t. the logits ``z`` (n: the rows of the
        whole batch, of which these may be a part). Returns (loss sum, whether the output
        bias's gradient ``gb`` was written too)."""
        value, dz = self._loss(z, y, w)
        wsum = float(w.sum()) if w is not None else float(len(y))
        np.multiply(dz.reshape(d.shape), wsum / n, out=d)
        return value * wsum, False

    def _init_output_bias(self, ys: np.ndarray, sw: np.ndarray, K: int) -> np.ndarray:
        raise NotImplementedError

    def _metric(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        raise NotImplementedError

    # -- parameters ------------------------------------------------------------------

    def _hidden(self) -> list[int]:
        h = self.hidden_layer_sizes
        sizes = [h] if isinstance(h, numbers.Integral) else list(h) if h is not None else None
        if sizes is None or not all(_is_int(s) and s >= 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be a sequence of positive integers (or one), got {h!r}")
        return [int(s) for s in sizes]

    def _check_params(self) -> None:
        self._hidden()
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.init is not None and self.init not in _INITS:
            raise ValueError(f"init must be None or one of {_INITS}, got {self.init!r}")
        if not (_is_number(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        check_training_params(self)

    def _init_scheme(self) -> str:
        if self.init is not None:
            return self.init
        return "xavier"

    # -- fitting ---------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, checkpoint: Any = None, resume: bool = False,
            checkpoint_every: int = 1, comm: Any = None):
        """Fit on ``(X, y)``: at most ``max_epochs`` epochs, stopping earlier by
        ``tol``/``n_iter_no_change`` or ``early_stopping``. With ``warm_start``, a fitted
        network of the same shape starts from its current parameters (and standardization)
        with a new optimizer. Returns self.

        Data larger than memory: ``X`` may be a memmap (``np.load(path, mmap_mode="r")``),
        read in blocks of rows and never copied whole, or chunks (a :class:`fastgd.ChunkStream`,
        a list of ``(X, y)`` or ``(X, y, sample_weight)`` tuples, or a callable returning a
        fresh iterator of them, with ``y=None``), streamed through a shuffle buffer (see
        :mod:`fastgd.streaming`). One pass first learns the standardization (weighted moments
        merged chunk by chunk), the classes or the target's scaling; each epoch then reads the
        data once more. Streams need ``batch_size``. With ``early_stopping`` a memmap is read
        into memory; chunks hold out a random ``validation_fraction`` of their samples (at most
        a buffer's worth), left out of every epoch. Batch norm keeps its running statistics (no exact pass at
        the end).

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
        was changed since (see ``fastgd.models._fitting.resume_point``).

        ``comm``: an MPI communicator (mpi4py) for a data-parallel fit, as the linear models'
        ``fit(..., comm=)``: every rank passes its own shard and ends with the same network;
        the standardization is the whole data's, the classes the union of the ranks', the
        starting point rank 0's, the history global; only rank 0 writes the ``checkpoint``
        (every rank loads it to resume). Not with ``batch_norm`` (its statistics would be the
        shard's; ValueError)."""
        return self._fit(X, y, sample_weight, partial=False, classes=None, checkpoint=checkpoint, resume=resume,
                         checkpoint_every=checkpoint_every, comm=comm)

    def _fit(self, X, y, sample_weight, *, partial: bool, classes: Any, checkpoint: Any = None, resume: bool = False,
             checkpoint_every: int = 1, comm: Any = None):
        self._check_params()
        every = check_checkpoint(checkpoint, checkpoint_every)
        if comm is not None and self.batch_norm:
            raise ValueError("fit(comm=...) does not support batch_norm (the running statistics would be each "
                             "rank's own)")
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
        if inputs.stream is not None and self.batch_size is None:
            raise ValueError("batch_size=None (the whole data set in one step) needs the data in memory; give a "
                             "batch_size to stream chunks or a memmap")
        regression = self._estimator_type == "regressor"
        moments = _weighted_moments if comm is None else functools.partial(global_weighted_moments, comm)
        sizes = [d] + self._hidden() + [K]
        warm = self.warm_start and fitted and not partial and not resume
        if continuing or warm:
            self._check_same_network(sizes, enc, "partial_fit" if continuing else "warm_start")

        if continuing or warm:
            scaling = self._scaling  # the parameters live in the space of the first fit's scaling
        elif self.standardize:
            mean, scale = inputs.feature_scaling() if inputs.stream is not None else moments(X, sw)
            scaling = _Scaling(mean, scale)
            if regression and inputs.stream is not None:
                scaling.y_mean, scaling.y_scale = inputs.target_scaling()
            elif regression:
                ym, ys_ = moments(enc["y"][:, None], sw)
                scaling.y_mean, scaling.y_scale = float(ym[0]), float(ys_[0])
        else:
            scaling = _Scaling(np.zeros(d), np.ones(d), standardized=False)
        Xs, ys, w = scaled(inputs, scaling, regression)
        if comm is not None and inputs.stream is None:  # (a stream's weights: its transform's)
            w = (inputs.sw / global_weight_mean(comm, inputs.sw)).astype(dtype)

        optimizer = None
        if continuing:
            # Copies, so that a failing call leaves the estimator as it was (deepcopy of the
            # pair keeps the optimizer working on the copied buffer; the random stream too).
            theta, optimizer, net, rng = copy.deepcopy((self._theta, self._optimizer, self._net, self._rng))
            net.dropout = float(self.dropout)  # may have been changed between calls
        else:
            rng = make_rng(self.random_state)
            net = Network(sizes, self.activation, float(self.dropout), bool(self.batch_norm), dtype)
            theta = np.zeros(net.size, dtype=dtype)
            if warm:
                theta[...] = self._theta
                old = self._net
                for stats, old_stats in ((net.running_mean, old.running_mean), (net.running_var, old.running_var)):
                    for i, v in old_stats.items():
                        stats[i][...] = v
            else:
                net.init(theta, self._init_scheme(), rng)
                # Streamed: enc["y"] sums the targets up (per class, or their mean) for it.
                init_y = ys if inputs.stream is None else \
                    (enc["y"] - scaling.y_mean) / scaling.y_scale if regression else enc["y"]
                init_w = sw
                if comm is not None and inputs.stream is None:
                    # The whole data's, not rank 0's shard's (a stream's sums are global already).
                    init_y, init_w = _global_output_targets(comm, init_y, sw, K, regression)
                net.views(theta, cache=False)[1][-1][...] = self._init_output_bias(init_y, init_w, K)

        threads = get_num_threads()
        loss_and_grad, value = self._objective(net, rng, threads=threads)
        if optimizer is None:
            optimizer = build_optimizer(self, theta)
        # Data-parallel: theta broadcast from rank 0, every step on the ranks' mean gradient.
        dist = None if comm is None else DistributedOptimizer(optimizer, comm)
        partial_more = partial and continuing
        old_curve = list(self.loss_curve_) if partial_more else []

        # The fitted attributes, set on self at the end (a failed fit leaves the estimator as
        # it was) and on the copies that checkpoints write.
        def finish(target, theta, net, history, n_iter, train_state):
            for name, value in enc["attrs"].items():
                setattr(target, name, value)
            target.n_features_in_ = d
            target.n_iter_ = n_iter
            target.history_ = history
            target.loss_curve_ = old_curve + [float(r["train_loss"]) for r in history]
            target.n_layers_ = len(sizes)
            target.n_outputs_ = K
            target.out_activation_ = ("logistic" if K == 1 else "softmax") if not regression else "identity"
            target.feature_mean_ = scaling.mean.astype(dtype)
            target.feature_scale_ = scaling.scale.astype(dtype)
            if regression:
                target.target_mean_, target.target_scale_ = scaling.y_mean, scaling.y_scale
            target._theta, target._optimizer, target._net, target._scaling = theta, optimizer, net, scaling
            target._dtype, target._rng, target._train_state = dtype, rng, train_state
            target._set_views()

        # The live buffer, not a copy: the snapshot is written before training goes on.
        def snapshot(target, history, train_state):
            finish(target, theta, net, history, len(history), train_state)

        writer = None
        if checkpoint is not None and (comm is None or comm.Get_rank() == 0):
            writer = CheckpointWriter(self, checkpoint, snapshot, every)
        if point is not None and point.get("live_stats") is not None:
            # Early stopping restored the best weights and their exact statistics at the end
            # of the run: go on from the last epoch's running averages.
            for name in ("running_mean", "running_var"):
                for i, v in point["live_stats"][name].items():
                    getattr(net, name)[i][...] = v

        try:
            # Each of a batch's two halves runs on a thread of its own (Network.train_batch), so
            # BLAS gets threads // 2 (at least 1): its default of one per core would
            # oversubscribe them, and its threads poll between products (fits were up to 50x
            # slower when other processes shared the cores). Set only for the training loop,
            # and always given back (a limit taken earlier leaked when the set-up failed).
            with limit_blas(max(1, threads // 2)):
                history, trained, X_trained, train_state = first_order_fit(
                    self, loss_and_grad, theta, dist if dist is not None else optimizer, rng, Xs, ys, w, enc,
                    partial, value=value, outputs=lambda th, Xv: net.forward(th, Xv), resume=point,
                    on_epoch=writer, comm=comm)
        finally:
            net.drop_workspaces()  # also ends the worker thread
        optimizer = dist.detach() if dist is not None else trained
        if not partial:
            if "live_theta" in train_state and net.running_mean:
                train_state["live_stats"] = {name: {i: v.copy() for i, v in getattr(net, name).items()}
                                             for name in ("running_mean", "running_var")}
            # The running averages trail the weights (and early stopping may have restored
            # older ones): take the exact statistics of the final network.
            # (Streamed data keeps the running averages: the exact statistics would need
            # another pass.)
            if inputs.stream is None:
                net.set_exact_stats(theta, X_trained)
        n_iter = len(history) + (self.n_iter_ if partial_more else 0)
        finish(self, theta, net, history, n_iter, None if partial else train_state)
        if writer is not None:
            writer.finish(self)
        return self

    # Views of _theta and of the network's statistics that __setstate__ rebuilds: a file
    # need not hold them twice (fastgd.persistence).
    _derived_attributes = ("coefs_", "intercepts_", "batch_norm_scales_", "batch_norm_means_", "batch_norm_vars_")

    def _set_views(self) -> None:
        W, b, g = self._net.views(self._theta, cache=False)
        self.coefs_, self.intercepts_ = W, b
        if g:
            hidden = range(len(W) - 1)
            self.batch_norm_scales_ = [g.get(i) for i in hidden]
            self.batch_norm_means_ = [self._net.running_mean.get(i) for i in hidden]
            self.batch_norm_vars_ = [self._net.running_var.get(i) for i in hidden]

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "_theta" in state:
            self._set_views()  # pickling copies views; make them views of the buffer again

    def _check_same_network(self, sizes: list[int], enc: dict, who: str) -> None:
        if sizes[0] != self.n_features_in_:
            raise ValueError(f"{who}: X has {sizes[0]} features, but {type(self).__name__} was fitted with "
                             f"{self.n_features_in_}" + ("; set warm_start=False to fit a new model"
                                                         if who == "warm_start" else ""))
        # The classes first: a different number of them also changes the output layer.
        if "classes_" in enc["attrs"] and not np.array_equal(enc["attrs"]["classes_"], self.classes_):
            raise ValueError(f"{who}: the classes {enc['attrs']['classes_'].tolist()} differ from the fitted "
                             f"{self.classes_.tolist()}" + ("; set warm_start=False to fit a new model"
                                                           if who == "warm_start" else ""))
        old = self._net
        if old.sizes != sizes or any(old.bn) != (bool(self.batch_norm) and len(sizes) > 2) \
                or old.activation != self.activation:
            raise ValueError(f"{who}: the network (layer sizes {sizes}, activation={self.activation!r}, "
                             f"batch_norm={self.batch_norm}) differs from the fitted one (layer sizes {old.sizes}, "
                             f"activation={old.activation!r}, batch_norm={any(old.bn)})"
                             + ("; set warm_start=False to fit a new model" if who == "warm_start" else ""))

    def _objective(self, net: Network, rng: np.random.Generator, threads: int = 1):
        """``loss_and_grad`` for :func:`fastgd.train` over ``[theta]`` (training mode), and
        the objective's value in inference mode (for validation)."""
        alpha = float(self.alpha)
        nW = net.n_weights

        def penalty(theta: np.ndarray) -> float:
            Wf = theta[:nW]
            return 0.5 * alpha * float(Wf @ Wf) if alpha else 0.0

        decay = np.empty(nW, dtype=net.dtype) if alpha else None  # alpha * W, without a temporary per step

        def loss_and_grad(params, Xb, yb, wb):
            theta = params[0]
            # A diverging run overflows here; fastgd.train detects the non-finite loss,
            # restores the last good parameters and says so.
            with np.errstate(over="ignore", invalid="ignore"):
                total, grad = net.train_batch(theta, Xb, yb, wb, self._loss_grad, rng=rng, threads=threads)
                wsum = float(wb.sum()) if wb is not None else float(len(yb))
                value = total / wsum if wsum > 0 else 0.0
                if alpha:
                    np.multiply(theta[:nW], alpha, out=decay)
                    grad[:nW] += decay
                return value + penalty(theta), [grad]

        def value(theta, Xv, yv, wv):
            with np.errstate(over="ignore", invalid="ignore"):
                return self._loss(net.forward(theta, Xv), yv, wv)[0] + penalty(theta)

        return loss_and_grad, value

    # -- prediction ------------------------------------------------------------------

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = check_X(X, dtype=self._dtype)
        check_n_features(self, X)
        s = self._scaling
        Xs = ((X - s.mean) / s.scale).astype(self._dtype, copy=False) if s.standardized else X
        return self._net.forward(self._theta, Xs)


_PARAMS = """
    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(100,)
        Units of each hidden layer.
    activation : {"relu", "tanh", "sigmoid", "gelu"}, default="relu"
        Of the hidden layers ("gelu": the tanh approximation).
    init : {"he", "xavier", "lecun"} or None, default=None
        Weight initialization (module docstring); None: "xavier" (Glorot's uniform), which
        reached accuracy soonest in our comparisons, ReLU included.
    optimizer : str or Optimizer class, default="adam"
        A name of :func:`fastgd.optim.get_optimizer` or an Optimizer subclass.
    lr : float or schedule, default=1e-3
        Learning rate, or a schedule of the step (:mod:`fastgd.schedules`).
    batch_size : int or None, default=200
        Mini-batch size (at most the number of samples); None: full batches.
    max_epochs : int, default=200
        At most this many epochs.
    alpha : float, default=1e-4
        L2 penalty ``alpha/2 * sum ||W_l||^2`` on the weights (not the biases, nor batch
        norm's scales and shifts), added to the mean loss. scikit-learn's MLP ``alpha`` is
        this times ``batch_size`` (module docstring).
    tol : float or None, default=1e-4
        Stop when the epoch's training loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs in a row; None: run ``max_epochs``. With
        ``early_stopping``, the improvement needed on the validation loss.
    n_iter_no_change : int, default=10
        Patience of the two stopping rules.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for the classifier), stop
        when the objective on it stops improving, and keep the best epoch's parameters. Not
        used by ``partial_fit``.
    validation_fraction : float, default=0.1
    shuffle : bool, default=True
        Reshuffle the samples every epoch.
    standardize : bool, default=True
        Standardize the features (and the regressor's target) with statistics learned in
        ``fit`` or the first ``partial_fit`` (module docstring).
    dropout : float, default=0.0
        Probability of dropping each hidden unit in training (inverted dropout).
    batch_norm : bool, default=False
        Batch normalization of every hidden layer, before its activation.
    clip_norm, clip_value : float or None, default=None
        Gradient clipping, fused into the optimizer step.
    optimizer_options : dict or None, default=None
        More options for the optimizer (``{"betas": (0.9, 0.99)}``, ``{"weight_decay": ...}``).
    warm_start : bool, default=False
        ``fit`` starts from the fitted parameters (same layer sizes and classes) with a new
        optimizer state.
    random_state : int, numpy Generator/RandomState or None, default=None
        Seeds the initialization, the shuffling, dropout and the validation split: equal
        seeds give bit-identical fits.
    verbose : bool, default=False
        A progress bar over epochs.
    callbacks : sequence of callables, default=()
        ``cb(history, params)`` after each epoch (``params``: ``[theta]``, the flat parameter
        buffer); returning True stops training.
"""

_ATTRS = """
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape (units in, units out), views of the one parameter buffer.
    intercepts_ : list of ndarray
        Biases of each layer (batch norm's shifts for normalized layers), views too.
    batch_norm_scales_, batch_norm_means_, batch_norm_vars_ : list of ndarray or None
        With ``batch_norm``: per hidden layer, gamma and the running mean and variance.
    feature_mean_, feature_scale_ : ndarray of shape (n_features,)
        The standardization of the inputs (0 and 1 without it).
    n_features_in_ : int
    n_iter_ : int
        Epochs run, summed over ``partial_fit`` calls.
    n_layers_, n_outputs_ : int
    out_activation_ : str
    loss_curve_ : list of float
        Training objective per epoch (summed over ``partial_fit`` calls).
    history_ : fastgd.History
        The records of the last ``fit``/``partial_fit`` call.
"""


def _global_output_targets(comm: Any, ys: np.ndarray, sw: np.ndarray, K: int,
                           regression: bool) -> tuple[np.ndarray, np.ndarray]:
    """Targets and weights that stand for every rank's in ``_init_output_bias``: per class
    its total weight over the ranks, or the global weighted mean target (sums in rank order,
    the same bits on every rank)."""
    from fastgd.distributed import rank_sum

    if regression:
        total, weight = rank_sum(comm, [float(sw @ ys), float(sw.sum())])
        return np.array([total / weight]), np.ones(1)
    counts = rank_sum(comm, np.bincount(ys.astype(np.intp), weights=sw, minlength=max(K, 2)))
    return np.arange(len(counts), dtype=np.float64), counts


class MLPClassifier(_BaseMLP):
    __doc__ = """A multi-layer perceptron classifier trained by fastgd's optimizers, with
    scikit-learn's API: softmax cross-entropy over one logit per class (a sigmoid over one
    logit for two classes). See :mod:`fastgd.models.mlp`.
""" + _PARAMS + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
""" + _ATTRS

    _estimator_type = "classifier"

    # Class labels exactly as LogisticRegression encodes them: one 0/1 target for two
    # classes, integer indices for more.
    _encode = LogisticRegression._encode

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> MLPClassifier:
        """One epoch over ``(X, y)`` continuing from the current parameters and optimizer
        state. ``classes`` (all the labels there will be) is required on the first call,
        which also learns the standardization. Returns self.

        ``X`` may also be a memmap (or a slice of one) or chunks, as in ``fit``: one epoch
        through the shuffle buffer. Once the model is fitted, a one-shot iterator of chunks
        (a generator object) is accepted too; it is checked as it is read, and its weights
        are taken as given (not divided by their mean, which would need a pass first)."""
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    def _loss(self, z, y, w):
        if z.shape[1] == 1:
            return _losses.log_loss(z[:, 0], y, w)
        return _losses.softmax_cross_entropy(z, y, w)

    def _loss_grad(self, z, y, w, d, gb, n):
        if z.shape[1] == 1 or y.dtype != np.int64:
            return super()._loss_grad(z, y, w, d, gb, n)
        # Softmax, loss, gradient and the output bias's gradient in one pass.
        return _core.softmax_cross_entropy_grad_(z, y, d, w=w, gb=gb, scale=1.0 / n), True

    def _init_output_bias(self, ys, sw, K):
        counts = np.bincount(ys.astype(np.intp), weights=sw, minlength=max(K, 2))
        logp = np.log(np.clip(counts / counts.sum(), 1e-6, None))
        return np.array([logp[1] - logp[0]]) if K == 1 else logp - logp.mean()

    def _metric(self, z, y, w):
        pred = (z[:, 0] > 0).astype(np.intp) if z.shape[1] == 1 else np.argmax(z, axis=1)
        return float(w @ (pred == y) / w.sum())

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        z = self._logits(X)
        idx = (z[:, 0] > 0).astype(np.intp) if z.shape[1] == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        z = self._logits(X)
        if z.shape[1] == 1:
            p = _losses.sigmoid(z[:, 0])
            return np.column_stack([1.0 - p, p])
        return _losses.softmax(z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed without underflow."""
        z = self._logits(X)
        if z.shape[1] == 1:
            z = np.column_stack([np.zeros_like(z[:, 0]), z[:, 0]])
        m = z.max(axis=1, keepdims=True)
        return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (sample-weighted)."""
        pred = self.predict(X)
        y = check_y(y, len(pred), type(self).__name__)
        w = check_sample_weight(sample_weight, len(y))
        return float(w @ (pred == y) / w.sum())


class MLPRegressor(_BaseMLP):
    __doc__ = """A multi-layer perceptron regressor (one target, half squared error) trained by
    fastgd's optimizers, with scikit-learn's API. See :mod:`fastgd.models.mlp`.
""" + _PARAMS + """
    Attributes
    ----------
    target_mean_, target_scale_ : float
        The standardization of the target (0 and 1 without it).
""" + _ATTRS

    _estimator_type = "regressor"

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over ``(X, y)`` continuing from the current parameters and optimizer
        state; the first call learns the standardization. Returns self.

        ``X`` may also be a memmap (or a slice of one) or chunks, as in ``fit``: one epoch
        through the shuffle buffer. Once the model is fitted, a one-shot iterator of chunks
        (a generator object) is accepted too; it is checked as it is read, and its weights
        are taken as given (not divided by their mean, which would need a pass first)."""
        return self._fit(X, y, sample_weight, partial=True, classes=None)

    def _encode(self, y, sw, classes, partial, continuing):
        return {"y": check_target(y, np.float64), "K": 1, "attrs": {}}

    def _loss(self, z, y, w):
        return _losses.squared_error(z[:, 0], y, w)

    def _init_output_bias(self, ys, sw, K):
        return np.full(K, np.average(ys, weights=sw))

    def _metric(self, z, y, w):
        return _r2(y, z[:, 0], w)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,)."""
        z = self._logits(X)[:, 0]
        s = self._scaling
        return z * s.y_scale + s.y_mean if s.standardized else z

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R^2, the coefficient of determination."""
        pred = self.predict(X)
        y = check_target(check_y(y, len(pred), type(self).__name__), np.float64)
        w = check_sample_weight(sample_weight, len(y))
        return _r2(y, pred, w)
