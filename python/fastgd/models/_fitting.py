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
    check_target,
    check_X,
    check_y,
    warn,
)
from fastgd.models._data import Scaling, block_moments, stratified_split, weighted_moments
from fastgd.optim.registry import get_optimizer
from fastgd.stopping import EarlyStopping, LossTolerance
from fastgd.streaming import (
    DEFAULT_BUFFER_BYTES,
    ChunkStream,
    RunningMoments,
    as_stream,
    is_chunk_source,
    is_memmap,
)
from fastgd.training import train


@dataclass
class FitInputs:
    X: np.ndarray
    sw: np.ndarray
    enc: dict[str, Any]  # the estimator's encoding of y: "y", "K", "attrs" (set after the fit)
    fitted: bool         # the estimator was fitted before this call
    continuing: bool     # partial_fit on a fitted estimator
    # Streamed data (chunks, or a memmap read in blocks): X is then the ChunkStream, enc["y"]
    # and sw sum the targets up (one value per class, or the weighted mean target, with their
    # weights: enough for the initial intercepts), and the moments come from one pass.
    stream: ChunkStream | None = None
    n_samples: int | None = None
    n_features: int = 0
    dtype: Any = None
    weighted: bool = False       # the chunks carry sample weights
    mean_weight: float = 1.0     # of all samples, which the weights are divided by
    x_moments: RunningMoments | None = None
    y_moments: RunningMoments | None = None
    est: Any = None

    @property
    def d(self) -> int:
        return self.n_features if self.stream is not None else self.X.shape[1]

    @property
    def X_dtype(self) -> Any:
        return self.dtype if self.stream is not None else self.X.dtype

    def feature_scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """The features' weighted mean and standard deviation."""
        if self.stream is not None:
            return self.x_moments.mean_std(self.dtype)
        return weighted_moments(self.X, self.sw)

    def target_scaling(self) -> tuple[float, float]:
        """A streamed regression target's weighted mean and standard deviation."""
        mean, std = self.y_moments.mean_std(np.float64)
        return float(mean[0]), float(std[0])


def streamed(est: Any, X: Any, partial: bool) -> bool:
    """Whether fit streams ``X``: chunks, or a memory-mapped array (read in blocks, never
    copied whole). A memmap is read into memory, as any array, for what needs the whole data
    set at once: Newton's solver, full batches (``batch_size=None``), the validation split
    of ``early_stopping``, and the median that scales a Huber target."""
    if is_chunk_source(X):
        return True
    if not is_memmap(X):
        return False
    return (getattr(est, "solver", "gd") == "gd" and est.batch_size is not None
            and not (est.early_stopping and not partial)
            and not (getattr(est, "loss", None) == "huber" and est.standardize))


def _chunk_X(est: Any, Xc: Any, k: int, dtype: Any, d: int | None) -> np.ndarray:
    try:
        Xc = check_X(Xc, dtype=dtype)
    except ValueError as e:
        raise ValueError(f"chunk {k}: {e}") from None
    if d is not None and Xc.shape[1] != d:
        raise ValueError(f"chunk {k}: X has {Xc.shape[1]} features, but {type(est).__name__} is expecting {d} "
                         "features as input")
    return Xc


def _chunk_y(est: Any, yc: Any, k: int, m: int) -> np.ndarray:
    if yc is None:
        raise ValueError(f"chunk {k}: y is missing; {type(est).__name__} needs (X, y) or (X, y, sample_weight) "
                         "chunks")
    try:
        return check_y(yc, m, type(est).__name__)
    except ValueError as e:
        raise ValueError(f"chunk {k}: {e}") from None


def stream_inputs(est: Any, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any,
                  comm: Any = None) -> FitInputs:
    """fit_inputs for streamed data: one pass over the chunks checks them, counts the samples,
    learns the classes (and their total weights) or the target's moments, and, unless a
    partial_fit continues with the first call's standardization, the features' weighted
    moments, merged chunk by chunk. A one-shot iterator cannot be read twice: it is only
    accepted where no such pass is needed (a partial_fit that continues).

    ``comm`` (a data-parallel fit, each rank streaming its own shard): the ranks' passes are
    merged, the same bits on every rank: the moments by Chan et al.'s formulas in rank
    order, the classes' weights summed in rank order, the mean weight over all samples; an
    error in one rank's pass, or ranks with other features, is an error on every rank."""
    from fastgd.distributed import agree_on_errors

    fitted = est.__sklearn_is_fitted__()
    continuing = partial and fitted
    name = type(est).__name__
    with agree_on_errors(comm, f"{name}.fit"):
        stream = as_stream(X, y, sample_weight)
        if comm is not None and stream.one_shot:
            raise ValueError(f"{name}.fit(comm=...) reads each rank's data once before training (to merge the "
                             "ranks' standardization, classes and sample counts), but the chunk source is a one-shot "
                             "iterator (e.g. a generator object); pass a list of chunks or a callable returning a "
                             "fresh iterator")
    classifier = est._estimator_type == "classifier"
    if continuing and stream.one_shot:
        # No pass before training: the chunks are checked as they are trained on.
        K = 1 if len(est.classes_) == 2 else len(est.classes_) if classifier else 1
        attrs = {"classes_": est.classes_} if classifier else {}
        return FitInputs(stream, np.ones(0), {"y": None, "K": K, "attrs": attrs}, fitted, continuing,
                         stream=stream, n_samples=None, n_features=est.n_features_in_, dtype=est._dtype,
                         weighted=True, est=est)
    if stream.one_shot:
        raise ValueError(f"{name}.{'partial_fit' if partial else 'fit'} reads the data once before training (to "
                         "check it and learn the standardization and the targets), but the chunk source is a "
                         "one-shot iterator (e.g. a generator object); pass a list of chunks or a callable returning "
                         "a fresh iterator (e.g. the generator function itself)")
    dtype = est._dtype if continuing else None
    d = est.n_features_in_ if continuing else None
    x_mom = None if continuing or not est.standardize else RunningMoments()
    y_mom = None if classifier else RunningMoments()
    labels: dict[Any, float] = {}
    with agree_on_errors(comm, f"{name}.fit"):
        n, wsum, weighted, dtype, d = _stream_pass(est, stream, dtype, d, x_mom, y_mom, labels, classifier)
    mean_weight = wsum / n if n else 0.0
    if comm is not None:
        wsum, mean_weight = _merge_passes(comm, name, n, wsum, dtype, d, x_mom, y_mom, labels)
    if not wsum > 0:
        raise ValueError("sample_weight sums to zero: no sample would count.")
    if classifier:
        y_sum = np.array(sorted(labels))
        sw_sum = np.array([labels[c] for c in y_sum.tolist()])
    else:
        y_sum, sw_sum = np.array([float(y_mom.mean[0])]), np.ones(1)
    enc = est._encode(y_sum, sw_sum, classes, partial, continuing)
    return FitInputs(stream, sw_sum, enc, fitted, continuing, stream=stream, n_samples=n, n_features=d,
                     dtype=dtype, weighted=weighted, mean_weight=mean_weight, x_moments=x_mom, y_moments=y_mom,
                     est=est)


def _merge_passes(comm: Any, name: str, n: int, wsum: float, dtype: Any, d: int, x_mom: RunningMoments | None,
                  y_mom: RunningMoments | None, labels: dict[Any, float]) -> tuple[float, float]:
    """The ranks' first passes merged (see :func:`stream_inputs`), in rank order, so that
    every rank gets the same bits: ``x_mom``, ``y_mom`` and ``labels`` become the global ones
    (in place); returns the global total weight and mean weight."""

    def summary(m: RunningMoments | None) -> Any:
        return None if m is None else (m.weight, m.count, m.mean, m.var)

    everyone = comm.allgather((d, np.dtype(dtype).str, n, wsum, summary(x_mom), summary(y_mom), labels))
    for r, (dr, dt, *_) in enumerate(everyone):
        if (dr, dt) != everyone[0][:2]:
            raise ValueError(f"{name}.fit(comm=...): rank 0's X has {everyone[0][0]} features of dtype "
                             f"{np.dtype(everyone[0][1]).name}, rank {r}'s {dr} of {np.dtype(dt).name}; every rank "
                             "must pass the same features")
    for moments, k in ((x_mom, 4), (y_mom, 5)):
        if moments is not None:
            merged = RunningMoments()
            for theirs in everyone:
                other = RunningMoments()
                other.weight, other.count, other.mean, other.var = theirs[k]
                merged.merge(other)
            moments.weight, moments.count, moments.mean, moments.var = \
                merged.weight, merged.count, merged.mean, merged.var
    labels.clear()
    n_all, w_all = 0, 0.0
    for _, _, nr, wr, _, _, lab in everyone:
        n_all += nr
        w_all += wr
        for c, cw in lab.items():
            labels[c] = labels.get(c, 0.0) + cw
    return w_all, w_all / n_all if n_all else 0.0


def _stream_pass(est: Any, stream: ChunkStream, dtype: Any, d: int | None, x_mom: RunningMoments | None,
                 y_mom: RunningMoments | None, labels: dict[Any, float],
                 classifier: bool) -> tuple[int, float, bool, Any, int]:
    """One pass over ``stream``'s chunks: checks them and gathers the moments (into
    ``x_mom``, ``y_mom``) and the classes' weights (into ``labels``); returns the number of
    samples, their total weight, whether the chunks carry weights, X's dtype and features."""
    n, wsum, weighted = 0, 0.0, False
    for k, (Xc, yc, wc) in enumerate(stream.chunks()):
        weighted = wc is not None
        wc = np.ones(len(Xc)) if wc is None else wc
        if x_mom is not None and Xc.ndim == 2 and Xc.dtype.kind == "f" and Xc.shape[0] and Xc.shape[1] \
                and (d is None or Xc.shape[1] == d):
            # The chunk's mean is finite only if its values are (a NaN or an infinity
            # propagates into it, also at weight 0): one pass instead of two.
            Xc = np.asarray(Xc, dtype=dtype or (np.float32 if Xc.dtype == np.float32 else np.float64))
            if not x_mom.update(Xc, wc):
                _chunk_X(est, Xc, k, dtype, d)
        else:
            Xc = _chunk_X(est, Xc, k, dtype, d)
            if x_mom is not None:
                x_mom.update(Xc, wc)
        dtype, d = Xc.dtype, Xc.shape[1]
        m = len(Xc)
        yc = _chunk_y(est, yc, k, m)
        if classifier:
            try:
                cls, idx = check_labels(yc)
            except ValueError as e:
                raise ValueError(f"chunk {k}: {e}") from None
            for c, cw in zip(cls.tolist(), np.bincount(idx, weights=wc, minlength=len(cls)).tolist()):
                labels[c] = labels.get(c, 0.0) + cw
        else:
            try:
                yt = check_target(yc, np.float64)
            except ValueError as e:
                raise ValueError(f"chunk {k}: {e}") from None
            y_mom.update(yt[:, None], wc)
        n += m
        wsum += float(wc.sum())
    return n, wsum, weighted, dtype, d


def _stream_transform(est: Any, inputs: FitInputs, scaling: Scaling, regression: bool, targets: Callable | None,
                      rows: bool) -> Callable:
    """A chunk as training reads it: checked, in the space of ``scaling``, y encoded (and
    scaled for regression), the weights divided by the mean weight (None without weights
    when ``rows``: the fused loss then reads none)."""
    dtype, d = inputs.dtype, inputs.n_features
    classes = inputs.enc["attrs"].get("classes_")
    count = [0]
    checked = inputs.n_samples is not None  # by stream_inputs' pass
    scratch: list[Any] = [None, None]

    def transform(Xc, yc, wc):
        k = count[0]
        count[0] += 1
        if checked and isinstance(Xc, np.ndarray) and Xc.ndim == 2 and Xc.shape[1] == d and Xc.dtype.kind == "f":
            # The pass before training checked the values (finite); the stream re-checks
            # shapes and dtypes. Only the conversion, if any, is left.
            Xc = np.asarray(Xc, dtype=dtype)
        else:
            Xc = _chunk_X(est, Xc, k, dtype, d)
        m = len(Xc)
        yc = _chunk_y(est, yc, k, m)
        if scaling.standardized:
            # ((X - mean) / scale).astype(dtype), the same bits as scaled(), in scratch arrays
            # kept from chunk to chunk (the buffer copies the result before the next one).
            if scratch[0] is None or len(scratch[0]) < len(Xc):
                scratch[0] = np.empty(Xc.shape, np.float64)
                scratch[1] = scratch[0] if dtype == np.float64 else np.empty(Xc.shape, dtype)
            t64, out = scratch[0][:len(Xc)], scratch[1][:len(Xc)]
            np.subtract(Xc, scaling.mean, out=t64)
            Xc = np.divide(t64, scaling.scale, out=out, casting="same_kind")
        try:
            ys = est._encode(yc, None, classes, True, False)["y"]
        except ValueError as e:
            raise ValueError(f"chunk {k}: {e}") from None
        if regression:
            ys = ((ys - scaling.y_mean) / scaling.y_scale).astype(dtype, copy=False)
        if targets is not None:
            ys = targets(ys, dtype)
        if wc is None:
            w = None if rows else np.ones(m, dtype)
        else:
            w = (wc / inputs.mean_weight).astype(dtype)
        return Xc, ys, w

    return transform


def fit_inputs(est: Any, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any) -> FitInputs:
    """Check X, y and sample_weight and encode y (``est._encode``). A partial_fit that
    continues keeps the first fit's dtype and number of features. Chunks and memmaps go to
    :func:`stream_inputs`."""
    if streamed(est, X, partial):
        return stream_inputs(est, X, y, sample_weight, partial=partial, classes=classes)
    fitted = est.__sklearn_is_fitted__()
    continuing = partial and fitted
    X = check_X(X, dtype=est._dtype if continuing else None)
    if continuing:
        check_n_features(est, X)
    n = X.shape[0]
    y = check_y(y, n, type(est).__name__)
    sw = check_sample_weight(sample_weight, n)
    return FitInputs(X, sw, est._encode(y, sw, classes, partial, continuing), fitted, continuing)


def standardize(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype: Any,
                block_bytes: int = 4 << 20) -> np.ndarray:
    """``((X - mean) / scale).astype(dtype)``, the same bits, in blocks of rows of about
    ``block_bytes`` of float64: the only new array of X's size is the result (the plain
    expression makes two float64 temporaries of X's size, four times a float32 X)."""
    out = np.empty(X.shape, dtype)
    step = max(1, block_bytes // max(1, X.shape[1] * 8))
    t64 = np.empty((min(step, len(X)), X.shape[1]), np.float64)
    for start in range(0, len(X), step):
        rows = slice(start, start + step)
        t = t64[:len(out[rows])]
        np.subtract(X[rows], mean, out=t)
        np.divide(t, scale, out=out[rows], casting="same_kind")
    return out


def scaled(inputs: FitInputs, scaling: Scaling, regression: bool) -> tuple[Any, Any, Any]:
    """(Xs, ys, w): inputs (and for regression the target) in the space of ``scaling``, and
    the sample weights rescaled to mean 1, so that a batch's mean loss times its share of the
    weight is an unbiased estimate of the full weighted mean (exactly it for a full batch).

    Streamed inputs: ``(stream, None, None)``, the stream transforming each chunk so as it
    enters the shuffle buffer (with the estimator's ``_stream_targets(ys, dtype)``, if it
    has one, the targets as its loss reads them; with its ``_reads_rows``, unweighted
    chunks go without weights, as the fused loss wants them)."""
    if inputs.stream is not None:
        est = inputs.est
        stream = inputs.stream.with_transform(_stream_transform(est, inputs, scaling, regression,
                                                                getattr(est, "_stream_targets", None),
                                                                bool(getattr(est, "_reads_rows", False))))
        stream.n_samples, stream.row_shape = inputs.n_samples, (inputs.n_features,)
        return stream, None, None
    X, dtype = inputs.X, inputs.X.dtype
    Xs = standardize(X, scaling.mean, scaling.scale, dtype) if scaling.standardized else X
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
    Streamed data: ``Xs`` the ChunkStream of :func:`scaled` (its ``n_samples`` the number
    of samples, None if unknown), ``ys`` and ``w`` None.
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
    if ys is None:  # streamed
        if early and Xs.n_samples is None:
            raise ValueError("early_stopping holds out a validation sample drawn by a pass over the data; a one-shot "
                             "iterator cannot give it: set early_stopping=False, or pass a list of chunks or a "
                             "callable")
        n_given = Xs.n_samples if comm is None else tuple(comm.allgather(Xs.n_samples))
    else:
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
    if early and ys is None:
        Xs, validation, wv = _held_out(Xs, float(est.validation_fraction),
                                       rng if resume is None else copy.deepcopy(split_rng))
    elif early:
        if resume is None:
            tr, va = stratified_split(len(ys), float(est.validation_fraction), rng, strata)
        else:
            tr, va = stratified_split(len(ys), float(est.validation_fraction), copy.deepcopy(split_rng), strata)
        wv = w[va]
        validation = (Xs[va], ys[va])
        Xs, ys, w = Xs[tr], ys[tr], w[tr]
    if early:
        def val_loss(params, Xv, yv):
            return value(params[0], Xv, yv, wv)

        def metric(params, Xv, yv):
            return est._metric(outputs(params[0], Xv), yv, wv)

        es = _FitEarlyStopping(patience=int(est.n_iter_no_change), min_delta=float(est.tol or 0.0),
                               monitor="val_loss", restore_best_weights=True,
                               initial=None if resume is None else resume["early_stopping"])
        stopping.append(es)
        if resume is not None and resume.get("live_theta") is not None:
            theta[...] = resume["live_theta"]  # the last epoch's parameters, not the best ones
    elif est.tol is not None and not partial:
        stopping.append(LossTolerance(float(est.tol), int(est.n_iter_no_change)))
    w_train = None if w is None or rows and np.all(w == 1) else w
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


def _held_out(stream: ChunkStream, fraction: float, rng: np.random.Generator) -> tuple[ChunkStream, Any, Any]:
    """early_stopping's validation sample of a stream: ``fraction`` of its samples (at most
    as many as its shuffle buffer holds, so that memory stays bounded), drawn uniformly
    without replacement (not stratified: the labels are not kept) and read, transformed as
    training reads them, by one pass. Returns the stream without them (every pass leaves
    them out), ``(X_val, y_val)`` and the validation weights."""
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
        m = len(Xc)
        lo, hi = np.searchsorted(val, [position, position + m])
        if hi > lo:
            rows = val[lo:hi] - position
            # Copies: the transform may return views of its scratch arrays.
            parts.append([None if a is None else np.array(a) for a in
                          stream.transform(Xc[rows], yc[rows], None if wc is None else wc[rows])])
        position += m
    Xv = np.concatenate([p[0] for p in parts])
    yv = np.concatenate([p[1] for p in parts])
    wv = np.concatenate([np.ones(len(p[0]), Xv.dtype) if p[2] is None else p[2] for p in parts])
    train_stream = stream.with_transform(stream.transform)
    train_stream.exclude, train_stream.n_samples, train_stream.row_shape = val, n - k, stream.row_shape
    return train_stream, (Xv, yv), wv


# -- data-parallel fits (fit(..., comm=)) --------------------------------------------------

def distributed_fit_inputs(est: Any, X: Any, y: Any, sample_weight: Any, comm: Any, *,
                           resume: bool = False) -> FitInputs:
    """:func:`fit_inputs` for a data-parallel ``fit``: each rank checks its own shard (a stream:
    :func:`stream_inputs` with ``comm``), and all
    ranks agree (an error on one is an error on all, never a hang); classifiers encode ``y``
    by the union of the ranks' classes (by the fitted ones when resuming); the ranks must
    agree on the number of features and the dtype. The sample weights are rescaled later, by
    their global mean."""
    from fastgd.distributed import agree_on_errors

    name = type(est).__name__
    if streamed(est, X, resume):
        # Each rank streams its own shard (chunks, or a memmap read in blocks); the ranks'
        # first passes are merged.
        return stream_inputs(est, X, y, sample_weight, partial=resume, classes=None, comm=comm)
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
    """:func:`fastgd.models._data.weighted_moments` over every rank's rows: each rank's
    moments (over its blocks of rows) merged by Chan et al.'s formulas in rank order, the
    same bits on every rank, and those of a data-parallel fit that streams the shards."""
    return merge_moments(comm, block_moments(a, w)).mean_std(a.dtype)


def merge_moments(comm: Any, mine: RunningMoments) -> RunningMoments:
    """The ranks' moments merged in rank order (an ``allgather`` of their weights, counts,
    means and variances): the moments of all the ranks' rows, the same bits on every rank."""
    merged = RunningMoments()
    for weight, count, mean, var in comm.allgather((mine.weight, mine.count, mine.mean, mine.var)):
        other = RunningMoments()
        other.weight, other.count, other.mean, other.var = weight, count, mean, var
        merged.merge(other)
    return merged


def global_weight_mean(comm: Any, sw: np.ndarray) -> float:
    """The mean sample weight over every rank's samples."""
    from fastgd.distributed import rank_sum

    total, count = rank_sum(comm, [sw.sum(), len(sw)])
    return float(total / count)
