r"""Linear models trained by fastgd's optimizers: :class:`LinearRegression` and
:class:`LogisticRegression`, with scikit-learn's estimator API.

Both minimize, over the coefficients :math:`w` and the (unpenalized) intercepts,

.. math:: \frac{\sum_i s_i\, \ell(x_i^\top w + b,\ y_i)}{\sum_i s_i} + \alpha\, R(w), \qquad
          R(w) = \begin{cases} \tfrac12 \|w\|_2^2 & \text{penalty="l2"} \\
                               \|w\|_1 & \text{penalty="l1"} \\
                               \rho \|w\|_1 + (1 - \rho)\, \tfrac12 \|w\|_2^2 & \text{penalty="elasticnet"}
                 \end{cases}

(:math:`s` the sample weights, :math:`\rho` = ``l1_ratio``), scikit-learn's SGD convention.
scikit-learn's LogisticRegression minimizes :math:`C \sum_i s_i \ell_i + \tfrac12 \|w\|_2^2`
instead, which is :math:`C \sum_i s_i` times the objective above with
:math:`\alpha = 1 / (C \sum_i s_i)`: ``alpha = 1 / (C * n_samples)`` without sample weights,
the same minimizer (``LogisticRegression(C=...)`` takes that spelling).
With ``standardize=True`` (``"auto"``, the default: for dense X) the features are centred and
scaled by their (weighted) mean and standard deviation, learned in ``fit``, and the penalty applies to the
weights of the standardized features, exactly as ``make_pipeline(StandardScaler(), model)``
would; ``coef_`` and ``intercept_`` are always reported for the original features. With
``solver="gd"`` no standardized copy of X is made: the fused kernel centres each element of a
row as it reads it and scales by the feature's 1/scale (folded into the coefficients for
the outputs, applied to the gradient's row sums once per batch), so X, a memmap included, is
read where it is. ``solver="newton"`` (and columns whose mean or scale comes within 2**30 of
the dtype's largest value) trains on a standardized copy.

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

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fastgd import _core, persistence
from fastgd import losses as _losses
from fastgd._feature_names import check_feature_names
from fastgd.distributed import DistributedOptimizer
from fastgd.history import History
from fastgd.models._base import check_is_fitted, check_n_features
from fastgd.models._class_weight import CLASS_WEIGHT
from fastgd.models._data import Scaling, affine, weighted_mean
from fastgd.models._data import weighted_median as _weighted_median
from fastgd.models._fitting import FitRun, GradientEstimator, Objective
from fastgd.models._params import TRAINING, Param, is_number, must, one_of
from fastgd.models._sparse import check_X_or_csr, is_sparse
from fastgd.models._targets import ClassifierMixin, RegressorMixin
from fastgd.models.newton import newton
from fastgd.streaming import ChunkStream, pow2_scale

__all__ = ["LinearRegression", "LogisticRegression"]

_PENALTIES = ("l2", "l1", "elasticnet", None)
_FLOAT_MAX = float(np.finfo(np.float64).max)


class _Available:
    """A method that exists (for ``hasattr``) only when ``check(self)`` holds, as
    scikit-learn's ``available_if``: ``predict_proba`` of a hinge-loss classifier,
    ``partial_fit`` with Newton's solver."""

    def __init__(self, fn: Callable[..., Any], check: Callable[[Any], bool], why: Callable[[Any], str]) -> None:
        self.fn, self.check, self.why = fn, check, why
        # A descriptor, not a callable, as typeshed wants the wrapper: update_wrapper only
        # copies fn's name, docstring and __dict__ onto it.
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

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


# The linear models' parameters besides the shared ones and the loss.
_PENALTY = Param('{"l2", "l1", "elasticnet", None}', """
    The regularization term R(w) (module docstring). "l1" and "elasticnet" need
    ``solver="gd"``.""", one_of(_PENALTIES))
_SOLVER = {
    "l1_ratio": Param("float", "The elastic net mixing rho (0: pure L2, 1: pure L1).",
                      must(lambda v: is_number(v) and 0 <= v <= 1, "in [0, 1]")),
    "solver": Param('{"gd", "newton"}', """
        "gd": first-order training with ``optimizer``; "newton": Newton's method with a
        backtracking line search on the full batch, to the exact optimum (smooth losses,
        penalty "l2" or None; the Hessian is (K(d+1))^2, so for moderate d).""",
                    must(lambda v: v in ("gd", "newton"), "'gd' or 'newton'")),
    "sparse_update": Param('{"lazy", "exact"}', r"""
        How a step updates the weights when X is sparse (scipy.sparse; dense X ignores it).
        "lazy": each step updates only the features that occur in its batch, and the
        intercepts, by the optimizer's rule on those coordinates alone (their data gradient,
        their state, their share of the gradient norm); every other weight's optimizer state
        waits until a batch holds that feature (PyTorch's ``SparseAdam``, TensorFlow's
        ``LazyAdam``). The penalties still reach every weight: L2 first decays every weight,
        :math:`w \leftarrow (1 - \gamma_t \alpha) w`, in O(1) (the weights are kept as a
        scalar times a vector): exactly the whole step for plain SGD, AdamW's decoupled decay
        for the adaptive rules; L1 is the cumulative penalty of Tsuruoka et al. (2009), as in
        scikit-learn's SGD, with exact zeros. A lazy step costs what its batch's nonzeros
        cost, not the number of features, hence the default: with 2**20 hashed features an
        exact step costs hundreds of times a batch's own work. "exact": every weight steps at
        every batch, as on ``X.toarray()`` (the same updates, to rounding); data-parallel
        fits (``comm``) take exact steps. See the user guide's "Sparse data" page.""",
                           one_of(("lazy", "exact"))),
}
_LINEAR_SHARED = {
    **TRAINING,
    "alpha": TRAINING["alpha"].described("""
        Strength of the penalty R(w) added to the mean loss (module docstring). scikit-learn's
        ``C`` (LogisticRegression, LinearSVC), which multiplies a summed loss instead, is
        ``alpha = 1 / (C * n_samples)`` (``n_samples``: the total sample weight); its
        ``C=1`` on 500 samples is ``alpha=0.002``, 20 times the default here. Its SGD
        estimators' ``alpha`` is this one."""),
    "max_epochs": TRAINING["max_epochs"].described("At most this many epochs (Newton: iterations)."),
    "standardize": Param("bool or 'auto'", """
        Centre and scale the features (weighted mean and standard deviation, learned in
        ``fit``, or in the first ``partial_fit``). Coefficients are reported for the original
        features; the penalty applies to those of the standardized features. Sparse X is
        scaled only, never centred (``StandardScaler(with_mean=False)``). ``"auto"`` (the
        default): True for dense X, False for sparse X, whose features (counts, TF-IDF,
        one-hot) share a scale already: scaling each by its deviation multiplies the rare
        ones, which a few rows carry, and costs held-out accuracy (on RCV1-shaped TF-IDF rows
        89.3% scaled against 91.3% not; on hashed text 89.5% against 92.2%), as scikit-learn's
        SGD estimators, which do not scale, suggest.""", must(lambda v: isinstance(v, (bool, np.bool_)) or
                                                        (isinstance(v, str) and v == "auto"), "True, False or 'auto'")),
    "warm_start": TRAINING["warm_start"].described(
        "``fit`` starts from the fitted coefficients (with a new optimizer state)."),
    "verbose": TRAINING["verbose"].described('A progress bar over epochs (``solver="gd"``).'),
}


def _check_delta(name: str, value: Any, est: Any) -> None:
    # Only the Huber loss has a threshold.
    if est.loss == "huber":
        must(lambda v: is_number(v) and v > 0, "a number > 0")(name, value, est)


def _loss_param(estimator: str) -> Param:
    """``loss``: the names the loss table gives an estimator of this kind."""
    names = _losses.estimator_losses(estimator)
    return Param("{" + ", ".join(f'"{n}"' for n in names) + "}", check=one_of(names))


def _linear_params(loss: Param, **first: Param) -> dict[str, Param]:
    """A linear model's table, in the order of its checks: ``first``, the loss, the penalty,
    the shared parameters, the elastic net's mixing and the solver."""
    return {**first, "loss": loss, "penalty": _PENALTY, **_LINEAR_SHARED, **_SOLVER}


class _LinearModel(GradientEstimator):
    """The fit template's hooks for a linear model, regressor or classifier.

    Parameters are kept in one flat buffer ``theta = [W.ravel(), b]`` in the standardized
    space (W: K x d, one row per output). Subclasses say which loss applies
    (``_loss_name``), where the intercepts start (``_init_intercept``) and how ``coef_`` is
    shaped (``_shape_coef``).
    """

    loss: str
    penalty: str | None
    alpha: float
    l1_ratio: float
    solver: str
    sparse_update: str
    coef_: np.ndarray
    intercept_: np.ndarray
    _newton_losses: tuple[str, ...] = ()
    # The objective reads each batch's rows in place (fastgd._core.linear_objective).
    _reads_rows = True
    _raw_streams = True

    @property
    def _standardizes_rows(self) -> bool:  # type: ignore[override]
        # The fused kernel standardizes the rows it reads; Newton's solver works on a
        # standardized copy of X (its Hessian products are BLAS's).
        return self.solver == "gd"

    @property
    def _accepts_sparse(self) -> bool:  # type: ignore[override]
        # The fused kernels read CSR rows; Newton's solver needs a dense standardized copy.
        return self.solver == "gd"

    def _loss_name(self, K: int) -> str:
        # The loss table knows a classifier's multiclass form (log_loss -> softmax_cross_entropy).
        return _losses.training_loss(self.loss, K).name

    def _init_intercept(self, y: np.ndarray, sw: np.ndarray, K: int, scaling: Scaling) -> np.ndarray:
        return np.zeros(K)

    def _shape_coef(self, coef: np.ndarray, run: FitRun) -> np.ndarray:
        return coef

    def _huber_delta(self) -> float:
        return 1.0

    # -- parameters ------------------------------------------------------------------

    def _alpha(self, run: FitRun | None) -> float:
        """The penalty's strength in this fit (``run``; None: outside a fit, where only its
        sign is read)."""
        return float(self.alpha)

    def _strengths(self, run: FitRun | None = None) -> tuple[float, float]:
        """The L2 and L1 strengths of the penalty in the fit ``run``."""
        alpha = self._alpha(run) if self.penalty is not None else 0.0
        l1 = {"l2": 0.0, "l1": alpha, "elasticnet": alpha * self.l1_ratio, None: 0.0}[self.penalty]
        return alpha - l1, l1

    def _check_params(self) -> None:
        super()._check_params()
        if self.solver == "newton":
            if self._strengths()[1] > 0:
                raise ValueError(f"solver='newton' needs a smooth objective: penalty={self.penalty!r} has an L1 "
                                 "term; use penalty='l2' or None, or solver='gd'")
            if self.loss not in self._newton_losses:
                raise ValueError(f"solver='newton' supports loss in {self._newton_losses}, not {self.loss!r} "
                                 "(it is not twice differentiable); use solver='gd'")

    def _check_fit_call(self, *, partial: bool, resume: bool, checkpoint: Any, comm: Any) -> None:
        if _first_order(self):
            return
        if comm is not None:
            raise ValueError(f"fit(comm=...) needs solver='gd', got {self.solver!r}")
        if partial:
            raise ValueError(_why_not_partial(self))
        if resume or checkpoint is not None:
            raise ValueError(f"solver={self.solver!r} solves the whole problem at once; resume and checkpoint "
                             "need solver='gd'")

    def _needs_whole_data(self, partial: bool) -> bool:
        # Newton's solver, and the median that scales a Huber target.
        # (The data this decides for is an array or a memmap: dense.)
        return (self.solver != "gd" or (self.loss == "huber" and self._standardizes(sparse=False))
                or super()._needs_whole_data(partial))

    def _check_streamable(self, inputs: Any) -> None:
        if self.solver != "gd":
            raise ValueError(f"solver={self.solver!r} needs the whole data set in memory; stream chunks or a memmap "
                             "with solver='gd'")
        super()._check_streamable(inputs)
        if self.loss == "huber" and self._standardizes(inputs.stream.is_sparse()) and not inputs.continuing:
            raise ValueError("loss='huber' with standardize=True scales the target by its median, which one pass "
                             "over streamed data does not give; standardize the target yourself and pass "
                             "standardize=False, or pass arrays")

    @staticmethod
    def _training_targets(y: np.ndarray, dtype: Any) -> np.ndarray:
        # As the fused loss reads them: int64 labels for the multiclass losses, else X's dtype.
        return np.ascontiguousarray(y, dtype=np.int64 if y.dtype.kind in "iu" else dtype)

    # -- the fit template's stages ----------------------------------------------------

    def _init_params(self, run: FitRun) -> None:
        K, d = run.K, run.d
        theta = np.zeros(K * (d + 1), dtype=run.dtype)
        if run.warm:
            W, b = _to_internal(self.coef_.reshape(K, d), self.intercept_, run.scaling)
            theta[:K * d] = W.ravel()
            theta[K * d:] = b
        else:
            y0, sw0 = run.enc["y"], run.inputs.sw
            if run.comm is not None and not run.streamed:  # (a stream's sums are every rank's already)
                y0, sw0 = self._global_targets(run.comm, y0, sw0, K)
            theta[K * d:] = self._init_intercept(y0, sw0, K, run.scaling)
        run.theta = theta

    def _objective(self, run: FitRun, dist: DistributedOptimizer | None) -> Objective:
        # The objective in the standardized space. Scaling y by y_scale divides the whole
        # objective by y_scale^2 if the L1 strength and Huber's delta are divided by y_scale,
        # so the minimizer is that of the problem in y's own units. Several targets, each
        # scaled by its own y_scale: the objective separates by output, and each output's
        # strength and threshold are divided by its scale (arrays of one per output).
        l2, l1_strength = self._strengths(run)
        y_scale = run.scaling.y_scale
        delta: Any = self._huber_delta() / y_scale
        l1: Any = l1_strength / y_scale
        if np.ndim(y_scale):
            l1, delta = np.ascontiguousarray(l1, np.float64), np.ascontiguousarray(delta, np.float64)
        # Sparse X: lazy or exact steps; data-parallel fits sum the ranks' gradients whole, so
        # theirs are exact.
        sparse = None
        if is_sparse(run.Xs) or (isinstance(run.Xs, ChunkStream) and run.Xs.is_sparse()):
            sparse = "exact" if run.comm is not None else str(self.sparse_update)
        objective = _Objective(self._loss_name(run.K), run.K, run.d, l2, l1, delta, run.row_scaling, sparse=sparse)
        if dist is not None:
            # The gradient straight into the buffer that the ranks reduce.
            objective.bind(run.theta, dist.grads[0])
        post_step = None
        if np.any(l1 > 0):
            post_step = objective.lazy_l1 if objective.sparse == "lazy" else objective.prox
        return Objective(objective, lambda th, Xv, yv, wv: objective([th], Xv, yv, wv, value_only=True),
                         objective.outputs, post_step=post_step,
                         value_at_rows=lambda th, X, y, w, rows: objective([th], X, y, w, rows, value_only=True),
                         outputs_at_rows=objective.outputs,
                         state=None if objective.l1_state is None else {"l1_state": objective.l1_state})

    def _blas_threads(self) -> int | None:
        # First-order training's BLAS work is matrix-vector products (validation outputs,
        # weighted moments), bound by memory; one thread keeps BLAS's workers from polling on
        # fastgd's cores. Newton's solver spends its time in BLAS's products: all its threads.
        return None if self.solver == "newton" else 1

    def _train(self, run: FitRun, writer: Any) -> tuple[History, int, dict[str, Any] | None]:
        if self.solver != "newton":
            return super()._train(run, writer)
        K, d = run.K, run.d
        smooth = _losses.get_loss(self._loss_name(K))  # squared_error, log_loss, softmax_cross_entropy
        hessian = smooth.hessian
        assert hessian is not None  # the _newton_losses (_check_params) have one
        W, b = run.theta[:K * d].reshape(K, d), run.theta[K * d:]

        def solve(y: np.ndarray, rows: slice) -> Any:
            return newton(smooth.fn, hessian, run.Xs, y, run.w, W[rows], b[rows], l2=self._strengths(run)[0],
                          max_iter=int(self.max_epochs), classification=not run.regression)

        if run.regression and run.ys.ndim == 2:
            # Several targets: the objective separates by target, so its optimum is that of
            # each column's own problem (a K-times smaller Hessian each).
            results = [solve(np.ascontiguousarray(run.ys[:, k]), slice(k, k + 1)) for k in range(K)]
        else:
            results = [solve(run.ys, slice(0, K))]
        W[...] = np.concatenate([res.W for res in results])
        b[...] = np.concatenate([res.b for res in results])
        return _summed_history([res.history for res in results]), max(res.n_iter for res in results), None

    def _finish(self, run: FitRun) -> None:
        K, d = run.K, run.d
        coef, intercept = _from_internal(run.theta[:K * d].reshape(K, d), run.theta[K * d:], run.scaling)
        self.coef_ = self._shape_coef(coef.astype(run.dtype), run)
        self.intercept_ = intercept.astype(run.dtype)

    # -- prediction ------------------------------------------------------------------

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        check_feature_names(self, X)
        X = check_X_or_csr(X, dtype=self._dtype, sparse=True)
        check_n_features(self, X)
        if is_sparse(X):
            z = np.asarray(X @ self.coef_.reshape(-1, X.shape[1]).T) + self.intercept_
        else:
            z = affine(X, self.coef_.reshape(-1, X.shape[1]), self.intercept_)
        return z[:, 0] if z.shape[1] == 1 else z


def _summed_history(histories: list[History]) -> History:
    """The history of separate solves (one per target) as one run's: per iteration, the sum
    of their objectives (a solve that has stopped keeps its last) and the norm of their
    joint gradient; the stop reasons, different ones joined."""
    if len(histories) == 1:
        return histories[0]
    records = []
    for i in range(max(len(h) for h in histories)):
        last = [h.records[min(i, len(h) - 1)] for h in histories if len(h)]
        records.append({"epoch": i + 1, "step": i + 1, "train_loss": sum(r["train_loss"] for r in last),
                        "grad_norm": math.sqrt(sum(r["grad_norm"] ** 2 for r in last)),
                        "time": max(r["time"] for r in last)})
    reasons = list(dict.fromkeys(str(h.stop_reason) for h in histories))
    return History(records, stop_reason="; ".join(reasons))


class _Objective:
    """``loss_and_grad`` for :func:`fastgd.train` (``gather=False``) over the flat buffer
    ``theta = [W, b]``: the batch's mean loss plus the penalty, and the gradient into one
    flat buffer kept from call to call, by one fused kernel call that reads the batch's rows
    in place (``fastgd._core.linear_objective``). The optimizer then makes one fused call
    per step too, and a step allocates nothing.

    ``row_scaling`` (:func:`fastgd.models._inputs.kernel_row_scaling`): X is raw and the
    kernel standardizes each row as it reads it; ``outputs`` does the same in blocks of rows."""

    # Rows per block of ``outputs`` on raw X: a bounded temporary, whatever the number of rows.
    _OUTPUT_ROWS = 8192

    def __init__(self, loss: str, K: int, d: int, l2: float, l1: Any, delta: Any = 1.0,
                 row_scaling: np.ndarray | None = None, sparse: str | None = None) -> None:
        # l1 and delta: numbers, or float64 arrays of one per output (several targets).
        self.loss, self.K, self.d, self.l2, self.l1, self.delta = loss, K, d, l2, l1, delta
        self.row_scaling = row_scaling
        # A sparse X (CSR): "lazy" or "exact" (the estimators' sparse_update); None: dense X.
        # Its standardization is a scale only (row_scaling's mean rows are zero).
        self.sparse = sparse
        self._inv_scale = None if row_scaling is None else row_scaling[2]
        # The lazy L1 penalty's state (see lazy_l1): per weight the penalty it has had, then
        # per output the penalty every weight has been due.
        self.l1_state = np.zeros(K * d + K) if sparse == "lazy" and np.any(np.asarray(l1) > 0) else None
        self._theta: np.ndarray | None = None

    def bind(self, theta: np.ndarray, grad: np.ndarray | None = None) -> None:
        """Work on ``theta``, writing the gradient into ``grad`` (a DistributedOptimizer's
        buffer), else into a new buffer. Views of both are made once: a batch then costs one
        call."""
        K, d = self.K, self.d
        self._theta = theta
        self._W, self._b = theta[:K * d].reshape(K, d), theta[K * d:]
        self._grad = np.empty_like(theta) if grad is None else grad
        self._gW, self._gb = self._grad[:K * d].reshape(K, d), self._grad[K * d:]
        self._grads = [self._grad]

    def outputs(self, theta: np.ndarray, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The raw outputs of X's rows (``rows``: of those rows only, gathered a block at a
        time: the same bits as on ``X[rows]``, with no copy of them)."""
        K, d = self.K, self.d
        W, b = theta[:K * d].reshape(K, d), theta[K * d:]
        rs = self.row_scaling
        if self.sparse is not None:
            return self._sparse_outputs(W, b, X, rows)
        if rs is None and rows is None:
            z = X @ W.T + b
        else:
            n = len(X) if rows is None else len(rows)
            # As the kernel reads rows: each element centred, W scaled by 1 / scale.
            Wr = W.T if rs is None else (W * rs[2]).T
            z = np.empty((n, K), X.dtype)
            tmp = np.empty((min(n, self._OUTPUT_ROWS), X.shape[1]), X.dtype)  # the one temporary
            for start in range(0, n, self._OUTPUT_ROWS):
                block = slice(start, start + self._OUTPUT_ROWS)
                t = tmp[:len(z[block])]
                if rows is None:
                    np.subtract(X[block], 0 if rs is None else rs[0], out=t)
                else:
                    np.take(X, rows[block], axis=0, out=t)
                    if rs is not None:
                        t -= rs[0]
                if rs is not None:
                    t -= rs[1]
                np.matmul(t, Wr, out=z[block])
            z += b
        return z[:, 0] if K == 1 else z

    def __call__(self, params, X, y, w, rows=None, value_only: bool = False):
        theta = params[0]
        if theta is not self._theta:
            self.bind(theta)
        if rows is None or isinstance(rows, slice):
            idx, start, stop = None, 0 if rows is None else rows.start, None if rows is None else rows.stop
        else:
            idx, start, stop = rows, 0, None
        # A diverging run gives a non-finite value; fastgd.train detects it, restores the last
        # good parameters and says so (a DivergenceWarning).
        if self.sparse is not None:
            # The whole gradient, lazy or not: the steps this path takes (a fit's first, which
            # makes the optimizer's state, and a batch the fused loop leaves to train) are
            # whole ones. From zero weights and a new state, the first equals a lazy step.
            value = _core.sparse_linear_objective(self.loss, X, y, self._W, self._b, self._gW, self._gb, idx, start,
                                                  stop, w, self.l2, self.l1, self.delta, self._inv_scale)
            return value if value_only else (value, self._grads)
        value = _core.linear_objective(self.loss, X, y, self._W, self._b, self._gW, self._gb, idx, start, stop, w,
                                       self.l2, self.l1, self.delta, self.row_scaling)
        return value if value_only else (value, self._grads)

    def run_batches(self, params, X, y, w, order, batches, first, bs, optimizer, batch_weight, sums, first_gnorm,
                    explode_factor, sync=None, n_rows=None):
        """fastgd.train's loop over the batches ``batches[first:]`` in one C++ call
        (``fastgd._core.linear_batches``): the objective, the gradient norm, train's
        divergence checks and the optimizer's step through its plan, per batch, with the same
        bits as the Python loop. None (train keeps its loop) while the optimizer has no plan
        (before its first step; lazy sparse steps make it) or for a rule without a one-call
        step.

        Data-parallel, ``sync`` (a DistributedOptimizer's ``synchronize_step``) is called
        from the loop between each gradient and its step, the only Python on the way; the
        gradient must then be written into the optimizer's buffer (:meth:`bind` to it).
        The loop holds the optimizer's step lock, as its step() would."""
        with optimizer.step_lock:
            plan = optimizer.step_plan
            if plan is None and self.sparse == "lazy" and hasattr(optimizer, "prepared_step_plan"):
                # From the first batch on: the loop's step leaves a batch to train's loop only
                # when the optimizer's states are new, and a resumed fit's are not (its first
                # step is lazy, as in the run it continues).
                plan = optimizer.prepared_step_plan()
            if plan is None or len(params) != 1:
                return None
            theta = params[0]
            if theta is not self._theta:
                self.bind(theta)
            if sync is not None and self._grad is not optimizer.grads[0]:
                return None  # the gradient would not be the buffer that sync reduces
            try:
                if self.sparse is not None:
                    return _core.sparse_linear_batches(
                        self.loss, X, y, theta, self._grad, self.K, w, order, batches, first, bs, batch_weight,
                        self.l2, self.l1, self.delta, plan, self._grads, sums, first_gnorm, explode_factor, sync,
                        n_rows, self._inv_scale, self.sparse == "lazy", self.l1_state)
                return _core.linear_batches(self.loss, X, y, theta, self._grad, self.K, w, order, batches, first,
                                            bs, batch_weight, self.l2, self.l1, self.delta, plan, self._grads, sums,
                                            first_gnorm, explode_factor, sync, n_rows, self.row_scaling)
            finally:
                if sync is not None:
                    optimizer.mark_unsynced()  # its steps were taken here, not by its step()

    def lazy_l1(self, params, lr: float) -> None:
        r"""The L1 term of a lazy sparse fit, after a whole step (train's own loop): the
        cumulative penalty of Tsuruoka et al. (2009), as scikit-learn's SGD applies it, on
        every weight. With :math:`u_k` the penalty every weight of output k has been due
        (:math:`\sum_t \gamma_t \lambda_{1,k}`) and :math:`q_j` the penalty weight j has had,

        .. math::

            w_j \leftarrow \max(0, w_j - (u_k + q_j)) 	ext{ if } w_j > 0, \quad
            \min(0, w_j + (u_k - q_j)) 	ext{ if } w_j < 0, \qquad q_j \mathrel{+}= \Delta w_j.

        The fused loop (``run_batches``) applies the same rule to each batch's features only,
        after each lazy step, from the same state: a weight not in a batch has its due
        penalty applied when it next occurs. Exact zeros appear either way."""
        state = self.l1_state
        assert state is not None  # (a lazy fit with an L1 term has one)
        K, d = self.K, self.d
        q, u = state[:K * d].reshape(K, d), state[K * d:]
        u += lr * np.broadcast_to(np.asarray(self.l1, np.float64), (K,))
        W = params[0][:K * d].reshape(K, d)
        w = W.astype(np.float64)
        due = np.where(w > 0, np.maximum(0.0, w - (u[:, None] + q)),
                       np.where(w < 0, np.minimum(0.0, w + (u[:, None] - q)), w))
        q += due - w
        W[...] = due

    lazy_l1.applied_by_run_batches = True  # type: ignore[attr-defined]

    def _sparse_outputs(self, W: np.ndarray, b: np.ndarray, X: Any, rows: np.ndarray | None) -> np.ndarray:
        """outputs() of a CSR X: its rows (``rows``: those rows, a block of them at a time)
        times the weights of the raw features."""
        Wr = W if self._inv_scale is None else W * self._inv_scale
        if rows is None:
            z = np.asarray(X @ Wr.T)
        else:
            z = np.empty((len(rows), self.K), X.dtype)
            for start in range(0, len(rows), self._OUTPUT_ROWS):
                block = rows[start:start + self._OUTPUT_ROWS]
                z[start:start + len(block)] = X[block] @ Wr.T
        z = z + b
        return z[:, 0] if self.K == 1 else z

    def prox(self, params, lr: float) -> None:
        """Soft-threshold the weights by lr * l1 (intercepts are not penalized); each
        output's row by its own l1 when they differ."""
        Wf = params[0][:self.K * self.d]
        if np.ndim(self.l1):  # in W's dtype, as a number's threshold would be
            Wf = Wf.reshape(self.K, self.d)
            shrunk = np.abs(Wf) - (lr * self.l1).astype(Wf.dtype)[:, None]
        else:
            shrunk = np.abs(Wf) - lr * self.l1
        np.maximum(shrunk, 0.0, out=shrunk)
        np.copysign(shrunk, Wf, out=Wf)



# (y_scale and y_mean: numbers, or one per target; W's rows are the targets'.)
def _to_internal(coef: np.ndarray, intercept: np.ndarray, s: Scaling) -> tuple[np.ndarray, np.ndarray]:
    W = coef * s.scale / np.reshape(s.y_scale, (-1, 1))
    b = (intercept - s.y_mean + coef @ s.mean) / s.y_scale
    return W, b


def _from_internal(W: np.ndarray, b: np.ndarray, s: Scaling) -> tuple[np.ndarray, np.ndarray]:
    coef = np.reshape(s.y_scale, (-1, 1)) * W / s.scale
    intercept = s.y_mean + s.y_scale * b - coef @ s.mean
    return coef, intercept


# The attributes every linear model has, after its own in its docstring.
_ATTRIBUTES = """    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str objects, shape (n_features,)
        The column names of the DataFrame ``fit`` was given (only then), which later
        calls must give in the same order.
    n_iter_ : int
        Epochs run (Newton: iterations); summed over ``partial_fit`` calls.
    history_ : fastgd.History
        The records of the last ``fit``/``partial_fit`` call (losses of the training
        objective, in the standardized space).
"""


@persistence.register("estimator")
class LinearRegression(RegressorMixin, _LinearModel):
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

    Several targets (``y`` of shape (n_samples, n_targets)) fit one output per column, as
    scikit-learn's ``LinearRegression`` and ``Ridge`` do: a sample's loss is the sum of its
    targets' losses and the penalty is over all the coefficients, so the objective is the sum
    of the targets' own and separates by target; a multi-output fit trains each output as a
    fit on its column alone would (the same gradients; with an elementwise optimizer such as
    the default Adam and ``tol=None``, the same coefficients). With ``standardize=True`` each
    target column is centred and scaled by its own moments (Huber: its own median and
    deviation), with each output's L1 strength and ``delta`` rescaled to match. ``score`` is
    R^2 averaged uniformly over the targets. A 2-D ``y`` of one column keeps its shape in
    ``coef_`` and ``predict``, as scikit-learn's ``LinearRegression``. ``solver="newton"``
    solves each target's problem on its own (their sum is the objective; ``history_`` sums
    them per iteration). ``fit(comm=...)`` takes one target.

    {parameters}

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,), or (n_targets, n_features) for a 2-D y
    intercept_ : ndarray of shape (1,), or (n_targets,)
""" + _ATTRIBUTES

    _hyperparameters = _linear_params(
        _loss_param("regressor"),
        delta=Param("float", "Huber's threshold, in units of y.", _check_delta))
    delta: float
    _newton_losses = _losses.estimator_losses("regressor", newton=True)
    _multi_output = "2d"

    def __init__(self, *, loss="squared_error", delta=1.0, penalty="l2", alpha=1e-4, l1_ratio=0.15, solver="gd",
                 optimizer="adam", lr=1e-2, batch_size=32, max_epochs=1000, tol=1e-3, n_iter_no_change=5,
                 early_stopping=False, validation_fraction=0.1, shuffle=True, standardize="auto", clip_norm=None,
                 clip_value=None, optimizer_options=None, warm_start=False, random_state=None, verbose=False,
                 callbacks=(), sparse_update="lazy"):
        self._store_params(locals())

    partial_fit = _Available(RegressorMixin.partial_fit, _first_order, _why_not_partial)

    def _huber_delta(self) -> float:
        return float(self.delta)

    def _target_scaling(self, y, sw, comm):
        if comm is not None:  # every rank's targets (the median needs them all)
            ys, ws = zip(*comm.allgather((y, sw)))
            y, sw = np.concatenate(ys), np.concatenate(ws)
        if y.ndim == 2:  # several targets: each column by its own
            columns = [self._target_scaling(np.ascontiguousarray(y[:, k]), sw, None) for k in range(y.shape[1])]
            return np.array([c for c, _ in columns]), np.array([s for _, s in columns])
        # Huber: the median and the (normal-consistent) median absolute deviation, robust
        # to the outliers Huber is chosen for; the standard deviation would grow with them
        # and shrink the scaled threshold delta / y_scale towards a pure L1 loss.
        if self.loss == "huber":
            center = _weighted_median(y, sw)
            with np.errstate(over="ignore"):
                spread = 1.4826 * _weighted_median(np.abs(y - center), sw)
                if not math.isfinite(spread):  # deviations beyond float64: measured in units of a power of two
                    s = float(pow2_scale(np.max(np.abs(y))))
                    spread = min(1.4826 * _weighted_median(np.abs(y / s - center / s), sw) * s, _FLOAT_MAX)
            if spread > 100 * np.finfo(np.float64).eps * max(abs(center), 1e-300):
                return center, spread
        return super()._target_scaling(y, sw, None)

    def _global_targets(self, comm: Any, y: np.ndarray, sw: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
        if self.loss == "huber":  # a median: the ranks' targets gathered
            ys, ws = zip(*comm.allgather((y, sw)))
            return np.concatenate(ys), np.concatenate(ws)
        return super()._global_targets(comm, y, sw, K)

    def _init_intercept(self, y, sw, K, scaling):
        # Start at the (weighted) mean target, or median for Huber (0 when standardized):
        # adaptive optimizers move each parameter by about lr per step, so a far-off
        # intercept would take many epochs to reach.
        centre = _weighted_median if self.loss == "huber" else weighted_mean
        if y.ndim == 2:  # several targets: each column's
            center: Any = np.array([centre(np.ascontiguousarray(y[:, k]), sw) for k in range(y.shape[1])])
        else:
            center = centre(y, sw)
        return np.full(K, (center - scaling.y_mean) / scaling.y_scale)

    def _check_start(self, d: int, enc: dict[str, Any], who: str) -> None:
        super()._check_start(d, enc, who)
        shape = (enc["K"],) if enc["targets_2d"] else ()
        fitted = self.coef_.shape[:-1]
        if shape != fitted:
            what = f"{shape[0]} target column(s)" if shape else "a 1-D target"
            was = f"{fitted[0]} target column(s)" if fitted else "a 1-D target"
            raise ValueError(f"{who}: y has {what}, but LinearRegression was fitted with {was}"
                             + ("; set warm_start=False to fit a new model" if who == "warm_start" else ""))

    def _shape_coef(self, coef, run):
        # (n_features,) for a 1-D y, (n_targets, n_features) for a 2-D one.
        return coef if run.enc["targets_2d"] else coef.reshape(-1)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, shape (n_samples,) for a 1-D ``y``, else (n_samples, n_targets)."""
        z = self._outputs(X)
        return z.reshape(len(z), -1) if self.coef_.ndim == 2 else z


_C = Param("float or None", """
    scikit-learn's LogisticRegression spelling of the penalty's strength, its inverse
    times the total sample weight: ``alpha = 1 / (C * n_samples)`` (``n_samples``: the sum
    of the sample weights, times the class weights, of the training set), so that with
    ``standardize=False`` and ``solver="newton"`` the fit is scikit-learn's
    ``LogisticRegression(C=C)``'s (with ``standardize=True`` and no sample weights, that of
    ``make_pipeline(StandardScaler(), LogisticRegression(C=C))``). None: ``alpha`` is used.
    Exclusive with a non-default ``alpha`` (ValueError), and not with ``partial_fit``.""",
           must(lambda v: v is None or (is_number(v) and v > 0), "None or a number > 0"))


def _probabilistic(est) -> bool:
    return est.loss == "log_loss"


def _why_no_proba(est) -> str:
    return f"loss={est.loss!r} gives no probabilities; use loss='log_loss'"


@persistence.register("estimator")
class LogisticRegression(ClassifierMixin, _LinearModel):
    __doc__ = r"""Logistic regression (binary, or multinomial softmax) by gradient descent or
    Newton's method, with scikit-learn's classifier API.

    Binary problems have one weight vector, :math:`P(y = \text{classes\_}[1]) = \sigma(x^\top
    w + b)`; K > 2 classes have one per class, :math:`P = \operatorname{softmax}(x^\top W^\top
    + b)` (scikit-learn's multinomial convention). ``loss="hinge"`` trains a linear SVM
    instead (one-vs-rest for K > 2), which has no ``predict_proba``.

    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for 2 classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
""" + _ATTRIBUTES

    _hyperparameters = {**_linear_params(_loss_param("classifier")), "class_weight": CLASS_WEIGHT, "C": _C}
    _newton_losses = _losses.estimator_losses("classifier", newton=True)
    class_weight: Any
    C: Any

    def __init__(self, *, loss="log_loss", penalty="l2", alpha=1e-4, l1_ratio=0.15, solver="gd", optimizer="adam",
                 lr=1e-2, batch_size=32, max_epochs=1000, tol=1e-3, n_iter_no_change=5, early_stopping=False,
                 validation_fraction=0.1, shuffle=True, standardize="auto", clip_norm=None, clip_value=None,
                 optimizer_options=None, warm_start=False, random_state=None, verbose=False, callbacks=(),
                 class_weight=None, C=None, sparse_update="lazy"):
        self._store_params(locals())

    def _check_params(self) -> None:
        super()._check_params()
        default = inspect.signature(LogisticRegression.__init__).parameters["alpha"].default
        if self.C is not None and self.alpha != default:
            raise ValueError(f"C and alpha are two spellings of the penalty's strength (alpha = 1 / (C * "
                             f"n_samples)); give one of them, got C={self.C!r} and alpha={self.alpha!r}")

    def _check_fit_call(self, *, partial: bool, resume: bool, checkpoint: Any, comm: Any) -> None:
        super()._check_fit_call(partial=partial, resume=resume, checkpoint=checkpoint, comm=comm)
        if partial and not resume and self.C is not None:
            raise ValueError("C is scikit-learn's LogisticRegression's spelling for a fit on the whole training set "
                             "(alpha = 1 / (C * n_samples) needs its n_samples); partial_fit takes alpha")

    def _alpha(self, run: FitRun | None) -> float:
        if self.C is None:
            return super()._alpha(run)
        if run is None:
            return 1.0  # (> 0: the sign is all that is read outside a fit)
        total = float(np.sum(run.inputs.sw))  # every rank's for a stream (its pass summed them)
        if run.comm is not None and not run.streamed:
            from fastgd.distributed import rank_sum

            total = float(rank_sum(run.comm, [total])[0])
        return 1.0 / (float(self.C) * total)

    partial_fit = _Available(ClassifierMixin.partial_fit, _first_order, _why_not_partial)
    predict_proba = _Available(ClassifierMixin.predict_proba, _probabilistic, _why_no_proba)
    predict_log_proba = _Available(ClassifierMixin.predict_log_proba, _probabilistic, _why_no_proba)

    def _init_intercept(self, y, sw, K, scaling):
        # Log loss: the log-odds of the class frequencies, the best constant model.
        return self._constant_logits(y, sw, K) if self.loss == "log_loss" else np.zeros(K)

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: shape (n_samples,) for 2 classes (positive: ``classes_[1]``), else
        (n_samples, n_classes)."""
        return self._outputs(X)
