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
gathering (and standardizing) its own rows of ``X`` and running BLAS on half the threads
(one each on 2 cores; set through threadpoolctl, as BLAS's own threads busy-wait between
products and lose much time on shared cores), given back when the fit ends or fails. The
halves are summed in a fixed order, so 1 and 2 threads give bit-identical fits. A float32
ReLU classifier of more than two classes without batch norm or dropout takes each step in one
compiled call (the halves on this thread and a persistent worker, the products by the SGEMM
NumPy's matmul calls): the same bits, without Python between the layers (see
:meth:`fastgd.models.mlp_layers.Network.train_batch`).

**Standardization.** With ``standardize=True`` (the default) the features are centred and
scaled by their (weighted) mean and standard deviation learned in ``fit`` (and the
regressor's target too, by its mean and standard deviation), and the network works on the
standardized values, as ``make_pipeline(StandardScaler(), model)`` (with the regressor inside
a ``TransformedTargetRegressor``): ``coefs_``/``intercepts_`` are the weights of that network,
``feature_mean_``/``feature_scale_`` and ``target_mean_``/``target_scale_`` say how inputs and
outputs are transformed. The penalty applies in that space. No standardized copy of ``X`` is
made: the network standardizes the rows it reads (each batch's, each block's at inference;
see :mod:`fastgd.models.mlp_layers`), so ``fit`` and ``predict`` need O(batch) memory
besides ``X``.

**Initialization.** ``init=None`` is "xavier" (Glorot's uniform, as scikit-learn) for every
activation. Weights are drawn uniformly from ``+-sqrt(6 / (fan_in + fan_out))`` ("xavier"),
``+-sqrt(6 / fan_in)`` ("he") or ``+-sqrt(3 / fan_in)`` ("lecun"); hidden biases start at
0, the output biases at the best constant model (the log-odds of the class frequencies, the
mean target). Glorot's is the default for ReLU and GELU too because with Adam it reached a
given accuracy soonest, ahead of He's and of PyTorch's ``nn.Linear`` default
``+-1/sqrt(fan_in)`` (the comparison is in bench/README.md). He's larger weights give
larger first steps and a higher loss early on; deeper ReLU networks, whose signal Glorot's
scaling shrinks layer by layer, may still prefer "he".

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
import numbers
from typing import Any

import numpy as np

from fastgd import _core, persistence
from fastgd import losses as _losses
from fastgd._feature_names import check_feature_names
from fastgd.distributed import DistributedOptimizer
from fastgd.models._base import check_is_fitted, check_n_features, check_X, make_rng
from fastgd.models._class_weight import CLASS_WEIGHT
from fastgd.models._data import unscale, weighted_mean
from fastgd.models._fitting import FitRun, GradientEstimator, Objective
from fastgd.models._params import TRAINING, Param, is_int, is_number, must, one_of
from fastgd.models._targets import ClassifierMixin, RegressorMixin
from fastgd.models.mlp_layers import ACTIVATIONS, Network, RowScaling
from fastgd.runtime import get_num_threads

__all__ = ["MLPClassifier", "MLPRegressor"]

_INITS = ("he", "xavier", "lecun")


def _hidden_sizes(h: Any) -> list[int]:
    """``hidden_layer_sizes`` as a list of positive integers, else a ValueError."""
    sizes: list[Any] | None = [h] if isinstance(h, numbers.Integral) else list(h) if h is not None else None
    if sizes is None or not all(is_int(s) and s >= 1 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be a sequence of positive integers (or one), got {h!r}")
    return [int(s) for s in sizes]


def _check_hidden(name: str, value: Any, est: Any) -> None:
    _hidden_sizes(value)


# The MLP's parameters: its own first (checked in this order), then the shared ones.
_MLP_PARAMS = {
    "hidden_layer_sizes": Param("sequence of int", "Units of each hidden layer.", _check_hidden),
    "activation": Param('{"relu", "tanh", "sigmoid", "gelu"}',
                        'Of the hidden layers ("gelu": the tanh approximation).', one_of(ACTIVATIONS)),
    "init": Param('{"he", "xavier", "lecun"} or None',
                  'Weight initialization (module docstring); None: "xavier" (Glorot\'s uniform).',
                  must(lambda v: v is None or v in _INITS, f"None or one of {_INITS}")),
    "dropout": Param("float", "Probability of dropping each hidden unit in training (inverted dropout).",
                     must(lambda v: is_number(v) and 0 <= v < 1, "in [0, 1)")),
    "batch_norm": Param("bool", "Batch normalization of every hidden layer, before its activation."),
    **TRAINING,
    "alpha": TRAINING["alpha"].described("""
        L2 penalty ``alpha/2 * sum ||W_l||^2`` on the weights (not the biases, nor batch
        norm's scales and shifts), added to the mean loss. scikit-learn's MLP ``alpha`` is
        this times ``batch_size`` (module docstring)."""),
    "standardize": TRAINING["standardize"].described("""
        Standardize the features (and the regressor's target) with statistics learned in
        ``fit`` or the first ``partial_fit`` (module docstring)."""),
    "warm_start": TRAINING["warm_start"].described("""
        ``fit`` starts from the fitted parameters (same layer sizes and classes) with a new
        optimizer state."""),
    "random_state": TRAINING["random_state"].described("""
        Seeds the initialization, the shuffling, dropout and the validation split: equal
        seeds give bit-identical fits."""),
}


class _BaseMLP(GradientEstimator):
    """The fit template's hooks for a network, classifier or regressor; the subclasses give
    the loss (``_loss``, ``_loss_grad``) and the output biases' start (``_init_output_bias``)."""

    hidden_layer_sizes: Any
    activation: str
    init: str | None
    alpha: float
    dropout: float
    batch_norm: bool
    loss_curve_: list[float]
    _net: Network
    _hyperparameters = _MLP_PARAMS
    # The parameters live in the space of the first fit's standardization.
    _warm_start_keeps_scaling = True
    # The network gathers each batch's rows itself (its two halves each their own, side by
    # side) and standardizes them as it reads them: no standardized copy of X.
    _reads_rows = True
    _standardizes_rows = True

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", init=None, optimizer="adam", lr=1e-3,
                 batch_size=200, max_epochs=200, alpha=1e-4, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, standardize=True, dropout=0.0, batch_norm=False,
                 clip_norm=None, clip_value=None, optimizer_options=None, warm_start=False, random_state=None,
                 verbose=False, callbacks=()):
        self._store_params(locals())

    # -- hooks -----------------------------------------------------------------------

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

    def _softmax_output(self, net: Network, y: np.ndarray) -> bool:
        """Whether ``_loss_grad`` is the fused softmax cross-entropy for these targets (then the
        network may take a whole step in one compiled call: Network.train_batch)."""
        return False

    def _sizes(self, d: int, K: int) -> list[int]:
        """The layer sizes for ``d`` features and ``K`` outputs."""
        return [d] + _hidden_sizes(self.hidden_layer_sizes) + [K]

    def _init_scheme(self) -> str:
        return "xavier" if self.init is None else self.init

    # -- the fit template's stages ----------------------------------------------------

    def _check_fit_call(self, *, partial: bool, resume: bool, checkpoint: Any, comm: Any) -> None:
        if comm is not None and self.batch_norm:
            raise ValueError("fit(comm=...) does not support batch_norm (the running statistics would be each "
                             "rank's own)")

    def _check_start(self, d: int, enc: dict[str, Any], who: str) -> None:
        # The features and classes first: a different number of classes also changes the
        # output layer.
        super()._check_start(d, enc, who)
        sizes, old = self._sizes(d, enc["K"]), self._net
        if old.sizes != sizes or any(old.bn) != (bool(self.batch_norm) and len(sizes) > 2) \
                or old.activation != self.activation:
            raise ValueError(f"{who}: the network (layer sizes {sizes}, activation={self.activation!r}, "
                             f"batch_norm={self.batch_norm}) differs from the fitted one (layer sizes {old.sizes}, "
                             f"activation={old.activation!r}, batch_norm={any(old.bn)})"
                             + ("; set warm_start=False to fit a new model" if who == "warm_start" else ""))

    def _init_params(self, run: FitRun) -> None:
        run.rng = make_rng(self.random_state)
        net = Network(self._sizes(run.d, run.K), self.activation, float(self.dropout), bool(self.batch_norm),
                      run.dtype)
        theta = np.zeros(net.size, dtype=run.dtype)
        if run.warm:
            theta[...] = self._theta
            old = self._net
            for stats, old_stats in ((net.running_mean, old.running_mean), (net.running_var, old.running_var)):
                for i, v in old_stats.items():
                    stats[i][...] = v
        else:
            net.init(theta, self._init_scheme(), run.rng)
            init_y, init_w = run.ys, run.inputs.sw
            if run.streamed:  # enc["y"] sums the targets up (per class, or their mean)
                s = run.scaling
                init_y = (run.enc["y"] - s.y_mean) / s.y_scale if run.regression else run.enc["y"]
            elif run.comm is not None:
                # The whole data's, not rank 0's shard's (a stream's sums are global already).
                init_y, init_w = self._global_targets(run.comm, init_y, init_w, run.K)
            net.views(theta, cache=False)[1][-1][...] = self._init_output_bias(init_y, init_w, run.K)
        run.theta, run.model = theta, net

    def _resume_params(self, run: FitRun) -> None:
        # Copies, so that a failing call leaves the estimator as it was (one deepcopy keeps
        # the optimizer on the copied buffer, the network's views too).
        run.theta, run.optimizer, run.model, run.rng = copy.deepcopy((self._theta, self._optimizer, self._net,
                                                                      self._rng))
        run.model.dropout = float(self.dropout)  # may have been changed between calls
        if run.point is not None and run.point.get("live_stats") is not None:
            # Early stopping restored the best weights and their exact statistics at the end
            # of the run: go on from the last epoch's running averages.
            for name in ("running_mean", "running_var"):
                for i, v in run.point["live_stats"][name].items():
                    getattr(run.model, name)[i][...] = v

    @staticmethod
    def _row_scaling(run: FitRun) -> RowScaling | None:
        """How the network standardizes the rows it reads in this run: X in memory is raw
        (``_standardizes_rows``); a stream's chunks are standardized as they enter its buffer."""
        s = run.scaling
        # (X itself unless columns beyond the kernels' range made the template standardize a copy.)
        raw = s.standardized and not run.streamed and _BaseMLP._standardizes_rows and run.row_scaling is not None
        return RowScaling(s.mean, s.scale) if raw else None

    def _objective(self, run: FitRun, dist: DistributedOptimizer | None) -> Objective:
        threads = get_num_threads()
        net = run.model
        scaling = self._row_scaling(run)
        loss_and_grad, value = self._network_objective(net, run.rng, threads=threads, scaling=scaling)
        # The network's worker thread and per-batch arrays go when training ends, however it ends.
        return Objective(loss_and_grad, value, lambda theta, Xv: net.outputs(theta, Xv, scaling),
                         close=net.drop_workspaces)

    def _blas_threads(self) -> int | None:
        # Each of a batch's two halves runs on a thread of its own (Network.train_batch), so
        # BLAS gets threads // 2 (at least 1): its default of one per core would
        # oversubscribe them, and its threads poll between products.
        return max(1, get_num_threads() // 2)

    def _after_training(self, run: FitRun, X_trained: Any, train_state: dict[str, Any]) -> None:
        net = run.model
        if "live_theta" in train_state and net.running_mean:
            train_state["live_stats"] = {name: {i: v.copy() for i, v in getattr(net, name).items()}
                                         for name in ("running_mean", "running_var")}
        # The running averages trail the weights (and early stopping may have restored
        # older ones): take the exact statistics of the final network. (Streamed data keeps
        # the running averages: the exact statistics would need another pass.)
        if not run.streamed:
            net.set_exact_stats(run.theta, X_trained, self._row_scaling(run))

    def _finish(self, run: FitRun) -> None:
        old_curve = list(self.loss_curve_) if run.partial and run.continuing else []
        self.loss_curve_ = old_curve + [float(r["train_loss"]) for r in self.history_]
        self.n_layers_ = len(run.model.sizes)
        self.n_outputs_ = run.K
        self.out_activation_ = ("logistic" if run.K == 1 else "softmax") if not run.regression else "identity"
        self.feature_mean_ = run.scaling.mean.astype(run.dtype)
        self.feature_scale_ = run.scaling.scale.astype(run.dtype)
        if run.regression:
            self.target_mean_, self.target_scale_ = run.scaling.y_mean, run.scaling.y_scale
        self._net = run.model
        self._set_views()

    # Views of _theta and of the network's statistics that __setstate__ rebuilds: a file
    # need not hold them twice (fastgd.persistence).
    _derived_attributes = ("coefs_", "intercepts_", "batch_norm_scales_", "batch_norm_means_", "batch_norm_vars_")

    def _set_views(self) -> None:
        theta, net = self._theta, self._net
        if not isinstance(theta, np.ndarray) or theta.shape != (net.size,) or theta.dtype != net.dtype:
            # Only a damaged or crafted model file gets here.
            raise ValueError(f"the parameter buffer ({getattr(theta, 'dtype', type(theta).__name__)}"
                             f"{getattr(theta, 'shape', '')}) does not fit the network ({net.size} parameters of "
                             f"{net.dtype})")
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

    def _network_objective(self, net: Network, rng: np.random.Generator | None, threads: int = 1,
                           scaling: RowScaling | None = None) -> tuple[Any, Any]:
        """``loss_and_grad`` for :func:`fastgd.train` over ``[theta]`` (training mode; the
        batch given as ``rows`` of the data, ``gather=False``, or as arrays), and the
        objective's value in inference mode (for validation); ``scaling``: X's rows are raw,
        standardized as the network reads them."""
        alpha = float(self.alpha)
        nW = net.n_weights

        def penalty(theta: np.ndarray) -> float:
            Wf = theta[:nW]
            return 0.5 * alpha * float(Wf @ Wf) if alpha else 0.0

        decay = np.empty(nW, dtype=net.dtype) if alpha else None  # alpha * W, without a temporary per step

        def loss_and_grad(params, X, y, w, rows=None):
            theta = params[0]
            # A diverging run overflows here; fastgd.train detects the non-finite loss,
            # restores the last good parameters and says so.
            yb, wb = (y, w) if rows is None else (y[rows], None if w is None else w[rows])
            with np.errstate(over="ignore", invalid="ignore"):
                total, grad = net.train_batch(theta, X, yb, wb, self._loss_grad, rng=rng, threads=threads, rows=rows,
                                              scaling=scaling, softmax_output=self._softmax_output(net, yb))
                wsum = float(wb.sum()) if wb is not None else float(len(yb))
                value = total / wsum if wsum > 0 else 0.0
                if alpha:
                    np.multiply(theta[:nW], alpha, out=decay)
                    grad[:nW] += decay
                return value + penalty(theta), [grad]

        def value(theta, Xv, yv, wv):
            with np.errstate(over="ignore", invalid="ignore"):
                return self._loss(net.outputs(theta, Xv, scaling), yv, wv)[0] + penalty(theta)

        return loss_and_grad, value

    # -- prediction ------------------------------------------------------------------

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        check_feature_names(self, X)
        X = check_X(X, dtype=self._dtype)
        check_n_features(self, X)
        s = self._scaling
        # Standardized block by block as the network reads them: no copy of X.
        return self._net.outputs(self._theta, X, RowScaling(s.mean, s.scale) if s.standardized else None)


_ATTRS = """    coefs_ : list of ndarray
        ``coefs_[l]`` of shape (units in, units out), views of the one parameter buffer.
    intercepts_ : list of ndarray
        Biases of each layer (batch norm's shifts for normalized layers), views too.
    batch_norm_scales_, batch_norm_means_, batch_norm_vars_ : list of ndarray or None
        With ``batch_norm``: per hidden layer, gamma and the running mean and variance.
    feature_mean_, feature_scale_ : ndarray of shape (n_features,)
        The standardization of the inputs (0 and 1 without it).
    n_features_in_ : int
    feature_names_in_ : ndarray of str objects, shape (n_features,)
        The column names of the DataFrame ``fit`` was given (only then).
    n_iter_ : int
        Epochs run, summed over ``partial_fit`` calls.
    n_layers_, n_outputs_ : int
    out_activation_ : str
    loss_curve_ : list of float
        Training objective per epoch (summed over ``partial_fit`` calls).
    history_ : fastgd.History
        The records of the last ``fit``/``partial_fit`` call.
"""


@persistence.register("estimator")
class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """A multi-layer perceptron classifier trained by fastgd's optimizers, with
    scikit-learn's API: softmax cross-entropy over one logit per class (a sigmoid over one
    logit for two classes). See :mod:`fastgd.models.mlp`.

    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
""" + _ATTRS

    _hyperparameters = {**_MLP_PARAMS, "class_weight": CLASS_WEIGHT}

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", init=None, optimizer="adam", lr=1e-3,
                 batch_size=200, max_epochs=200, alpha=1e-4, tol=1e-4, n_iter_no_change=10, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, standardize=True, dropout=0.0, batch_norm=False,
                 clip_norm=None, clip_value=None, optimizer_options=None, warm_start=False, random_state=None,
                 verbose=False, callbacks=(), class_weight=None):
        self._store_params(locals())

    def _loss(self, z, y, w):
        if z.shape[1] == 1:
            return _losses.log_loss(z[:, 0], y, w)
        return _losses.softmax_cross_entropy(z, y, w)

    def _softmax_output(self, net, y):
        return net.sizes[-1] > 1 and y.dtype == np.int64

    def _loss_grad(self, z, y, w, d, gb, n):
        if z.shape[1] == 1 or y.dtype != np.int64:
            return super()._loss_grad(z, y, w, d, gb, n)
        # Softmax, loss, gradient and the output bias's gradient in one pass.
        return _core.softmax_cross_entropy_grad_(z, y, d, w=w, gb=gb, scale=1.0 / n), True

    def _init_output_bias(self, ys, sw, K):
        return self._constant_logits(ys, sw, K)


@persistence.register("estimator")
class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """A multi-layer perceptron regressor (half squared error) trained by fastgd's
    optimizers, with scikit-learn's API. See :mod:`fastgd.models.mlp`.

    Several targets (``y`` of shape (n_samples, n_targets), two columns or more) get one
    output unit each, as with scikit-learn's ``MLPRegressor``; a sample's loss is the sum of
    its outputs' half squared errors (the gradient scikit-learn's takes; its reported
    ``loss_`` averages over the outputs instead), each target column standardized by its own
    mean and deviation with ``standardize=True``. A one-column y is raveled with a warning,
    as scikit-learn's does. ``score`` is R^2 averaged uniformly over the targets.

    {parameters}

    Attributes
    ----------
    target_mean_, target_scale_ : float, or ndarray of shape (n_targets,)
        The standardization of the target (0 and 1 without it), per column for several.
""" + _ATTRS

    _multi_output = "columns"

    def _loss(self, z, y, w):
        return _losses.squared_error(z if y.ndim == 2 else z[:, 0], y, w)

    def _init_output_bias(self, ys, sw, K):
        if ys.ndim == 2:  # several targets: each column's weighted mean
            return np.array([weighted_mean(np.ascontiguousarray(ys[:, k]), sw) for k in range(K)])
        return np.full(K, weighted_mean(ys, sw))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,), or (n_samples, n_targets) for several."""
        z = self._outputs(X)
        if z.shape[1] == 1:
            z = z[:, 0]
        s = self._scaling
        return unscale(z, s.y_scale, s.y_mean) if s.standardized else z
