"""The first stage of ``fit``: checking ``X``, ``y`` and the sample weights, encoding ``y``
(the estimator's ``_encode_target``), and moving the data into the standardized space, for
arrays in memory, streamed data (chunks, or a memmap read in blocks) and a data-parallel
fit's shards (``comm``).

The stage is :class:`InputStage`, a base of the fit template
(:class:`fastgd.models._fitting.GradientEstimator`), so that it reads the estimator's hooks
as its own members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastgd._feature_names import check_feature_names, feature_names
from fastgd.models._base import (
    check_labels,
    check_n_features,
    check_sample_weight,
    check_target,
    check_X_values,
    check_y,
    reporting_X_first,
)
from fastgd.models._data import (
    Scaling,
    block_moments,
    centre_and_scale,
    is_unit_weights,
    standardized,
    unit_weights,
    weighted_moments,
)
from fastgd.models._sparse import check_X_or_csr, is_sparse, sparse_feature_scale, sparse_moments
from fastgd.streaming import ChunkStream, RunningMoments, as_stream, is_chunk_source, is_memmap

__all__ = ["FitInputs", "InputStage", "global_weight_mean", "global_weighted_moments", "is_unit_weights",
           "kernel_row_scaling", "merge_moments", "standardize", "unit_weights"]


@dataclass
class FitInputs:
    X: Any               # the checked array; streamed data: the ChunkStream (as ``stream``)
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
    # X (in memory) is still to be checked for NaN and infinity: by the read that takes its
    # moments (stage 3), which clears this, so that X is read once before training.
    x_unchecked: bool = False
    # X's column names (fastgd._feature_names): a new fit learns them; a call that continues
    # has checked them against the fitted ones.
    names: np.ndarray | None = None

    @property
    def d(self) -> int:
        return self.n_features if self.stream is not None else self.X.shape[1]

    @property
    def X_dtype(self) -> Any:
        return self.dtype if self.stream is not None else self.X.dtype

    def feature_scaling(self, comm: Any = None, who: str = "fit") -> tuple[np.ndarray, np.ndarray]:
        """The features' weighted mean and standard deviation (all the ranks' under ``comm``);
        their read of X in memory also checks it when it is still unchecked."""
        if self.stream is not None:
            assert self.x_moments is not None  # the first pass learns them (stream_inputs)
            return self.x_moments.mean_std(self.dtype)
        check = "X" if self.x_unchecked else None
        if is_sparse(self.X):
            # Scale only: centring would make every row dense. (The read also checks X.)
            if comm is None:
                out = sparse_feature_scale(self.X, self.sw, check=check)
            else:
                from fastgd.distributed import agree_on_errors

                with agree_on_errors(comm, who):
                    mine = sparse_moments(self.X, self.sw, check=check)
                out = np.zeros(self.X.shape[1]), merge_moments(comm, mine).mean_std(self.X.dtype)[1]
            self.x_unchecked = False
            return out
        if comm is None:
            out = weighted_moments(self.X, self.sw, check=check)
        else:
            out = global_weighted_moments(comm, self.X, self.sw, check=check, who=who)
        self.x_unchecked = False
        return out

    def check_X_values(self, comm: Any = None, who: str = "fit") -> None:
        """X's finite check, if no read has made it yet (on every rank under ``comm``)."""
        if self.x_unchecked:
            from fastgd.distributed import agree_on_errors

            with agree_on_errors(comm, who):
                check_X_values(self.X)
            self.x_unchecked = False

    def target_scaling(self) -> tuple[Any, Any]:
        """A streamed regression target's weighted mean and standard deviation (arrays of
        one per column for a 2-D target)."""
        assert self.y_moments is not None  # a streamed regressor's first pass learns them
        mean, std = self.y_moments.mean_std(np.float64)
        if self.enc.get("targets_2d"):
            return mean, std
        return float(mean[0]), float(std[0])


def _merge_passes(comm: Any, name: str, n: int, wsum: float, dtype: Any, d: int, x_mom: RunningMoments | None,
                  y_mom: RunningMoments | None, labels: dict[Any, float]) -> tuple[float, float]:
    """The ranks' first passes merged (see :func:`stream_inputs`), in rank order, so that
    every rank gets the same bits: ``x_mom``, ``y_mom`` and ``labels`` become the global ones
    (in place); returns the global total weight and mean weight."""

    everyone = comm.allgather((d, np.dtype(dtype).str, n, wsum, None if x_mom is None else x_mom.summary(),
                               None if y_mom is None else y_mom.summary(), labels))
    for r, (dr, dt, *_) in enumerate(everyone):
        if (dr, dt) != everyone[0][:2]:
            raise ValueError(f"{name}.fit(comm=...): rank 0's X has {everyone[0][0]} features of dtype "
                             f"{np.dtype(everyone[0][1]).name}, rank {r}'s {dr} of {np.dtype(dt).name}; every rank "
                             "must pass the same features")
    for moments, k in ((x_mom, 4), (y_mom, 5)):
        if moments is not None:
            merged = _merged([theirs[k] for theirs in everyone])
            moments.weight, moments.count, moments.mean, moments.var, moments.scale = merged.summary()
    labels.clear()
    n_all, w_all = 0, 0.0
    for _, _, nr, wr, _, _, lab in everyone:
        n_all += nr
        w_all += wr
        for c, cw in lab.items():
            labels[c] = labels.get(c, 0.0) + cw
    return w_all, w_all / n_all if n_all else 0.0


def standardize(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, dtype: Any,
                block_bytes: int = 4 << 20) -> np.ndarray:
    """``((X - mean) / scale).astype(dtype)``, the same bits (:func:`centre_and_scale`), in
    blocks of rows of about ``block_bytes`` of float64: the only new array of X's size is the
    result (the plain expression makes two float64 temporaries of X's size, four times a
    float32 X)."""
    out = np.empty(X.shape, dtype)
    step = max(1, block_bytes // max(1, X.shape[1] * 8))
    t64 = np.empty((min(step, len(X)), X.shape[1]), np.float64)
    for start in range(0, len(X), step):
        rows = slice(start, start + step)
        centre_and_scale(X[rows], mean, scale, t64[:len(out[rows])], out[rows])
    return out


# Standardizing rows as they are read computes x - mean in X's dtype: a column whose mean or
# scale comes within this factor of the dtype's largest value could overflow there (a float64
# one beyond 2**994, about where centre_and_scale goes to units of a power of two).
_ROW_SCALING_HEADROOM = 2.0**-30


def kernel_row_scaling(scaling: Scaling, dtype: Any) -> np.ndarray | None:
    """The standardization of ``scaling`` as the fused linear kernels apply it to the rows they
    read (``fastgd._core.linear_objective(row_scaling=)``): a ``(3, d)`` array of ``dtype``,
    the mean rounded to ``dtype``, the rest of the mean, and ``1 / scale``. None where the
    kernel cannot do it in ``dtype`` (a mean or scale within 2**30 of the dtype's limit, or a
    ``1 / scale`` that is not a normal number of the dtype): the fit then standardizes a copy."""
    finfo = np.finfo(dtype)
    mean, scale = np.asarray(scaling.mean, np.float64), np.asarray(scaling.scale, np.float64)
    if np.any(np.maximum(np.abs(mean), scale) > float(finfo.max) * _ROW_SCALING_HEADROOM):
        return None
    with np.errstate(over="ignore", divide="ignore"):
        out = np.empty((3, len(mean)), dtype)
        out[0] = mean
        out[1] = mean - out[0].astype(np.float64)
        out[2] = 1.0 / scale
    if not (np.all(np.isfinite(out[2])) and np.all(out[2] >= finfo.tiny)):
        return None
    return out


def _readable_in_place(X: Any) -> bool:
    """Whether check_X takes ``X`` as it is (no conversion, no copy): a C-contiguous 2-D
    float32 or float64 array."""
    return (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64)
            and X.dtype.isnative and bool(X.flags.c_contiguous))


# -- data-parallel fits (fit(..., comm=)) --------------------------------------------------

def global_weighted_moments(comm: Any, a: np.ndarray, w: np.ndarray, *, check: str | None = None,
                            who: str = "fit") -> tuple[np.ndarray, np.ndarray]:
    """:func:`fastgd.models._data.weighted_moments` over every rank's rows: each rank's
    moments (over its blocks of rows) merged by Chan et al.'s formulas in rank order, the
    same bits on every rank, and those of a data-parallel fit that streams the shards.
    ``check``: as weighted_moments', a non-finite value on one rank an error on all (``who``
    names the call in the others' message)."""
    if check is None:
        return merge_moments(comm, block_moments(a, w)).mean_std(a.dtype)
    from fastgd.distributed import agree_on_errors

    with agree_on_errors(comm, who):
        mine = block_moments(a, w, check=check)
    return merge_moments(comm, mine).mean_std(a.dtype)


def merge_moments(comm: Any, mine: RunningMoments) -> RunningMoments:
    """The ranks' moments merged in rank order (an ``allgather`` of their weights, counts,
    means, variances and scales): the moments of all the ranks' rows, the same bits on every rank."""
    return _merged(comm.allgather(mine.summary()))


def _merged(summaries: list[tuple[Any, ...]]) -> RunningMoments:
    """Moments given by their :meth:`RunningMoments.summary`, merged in order."""
    merged = RunningMoments()
    for summary in summaries:
        merged.merge(RunningMoments.from_summary(summary))
    return merged


def global_weight_mean(comm: Any, sw: np.ndarray) -> float:
    """The mean sample weight over every rank's samples."""
    from fastgd.distributed import rank_sum

    total, count = rank_sum(comm, [sw.sum(), len(sw)])
    return float(total / count)


class InputStage:
    """The input stage of :class:`fastgd.models._fitting.GradientEstimator`, which inherits it:
    its methods read the estimator's own hooks (``_encode_target``, ``_needs_whole_data``,
    ``_training_targets``, ``_reads_rows``) and, when a call continues a fitted model, its
    ``n_features_in_``, ``classes_`` and the dtype it was fitted in (``_dtype``)."""

    # The estimator's attributes (annotations only: a definition here would hide
    # BaseEstimator's __sklearn_is_fitted__, which comes after this class in the bases).
    _estimator_type: str | None
    _dtype: Any
    _reads_rows: bool
    _accepts_sparse: bool
    _standardizes_rows: bool
    _raw_streams: bool
    _multi_output: str | None
    standardize: bool | str
    warm_start: bool
    _warm_start_keeps_scaling: bool
    n_features_in_: int
    classes_: np.ndarray
    __sklearn_is_fitted__: Callable[[], bool]

    # The template's hooks, for the type checker: GradientEstimator, which comes first in the
    # estimators' bases, defines them (see it for what they do).

    def _encode_target(self, y: np.ndarray, sw: np.ndarray | None, classes: Any, partial: bool,
                       continuing: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _needs_whole_data(self, partial: bool) -> bool:
        raise NotImplementedError

    def _class_weighted(self, enc: dict[str, Any], sw: np.ndarray, comm: Any = None) -> np.ndarray:
        raise NotImplementedError

    def _chunk_class_weighted(self, y: np.ndarray, w: np.ndarray | None) -> np.ndarray | None:
        raise NotImplementedError

    def _training_targets(self, y: np.ndarray, dtype: Any) -> np.ndarray:
        raise NotImplementedError

    def _keeps_scaling(self, fitted: bool, continuing: bool) -> bool:
        """Whether this call keeps the fitted standardization (a call that continues, a warm
        start of an estimator whose parameters live in it) instead of learning one from X."""
        warm = bool(self.warm_start) and fitted and not continuing
        return continuing or (warm and self._warm_start_keeps_scaling)

    def _standardizes(self, sparse: bool) -> bool:
        """Whether a fit on this data learns a standardization: ``standardize``, where
        ``"auto"`` is True for dense data and False for sparse data."""
        if isinstance(self.standardize, str):  # "auto"
            return not sparse
        return bool(self.standardize)

    def _moments_check_X(self, X: Any, fitted: bool, continuing: bool) -> bool:
        """Whether the read of X that learns its standardization comes next, and checks its
        values: check_X then leaves them to it (one read of X before training, not two)."""
        return self._standardizes(is_sparse(X)) and not self._keeps_scaling(fitted, continuing)

    def _streamed(self, X: Any, partial: bool) -> bool:
        """Whether fit streams ``X``: chunks, or a memory-mapped array (read in blocks, never
        copied whole). A memmap is read into memory, as any array, when the fit needs the whole
        data set at once (the estimator's ``_needs_whole_data``: full batches, the validation
        split of ``early_stopping``, ...). A C-contiguous float memmap is not streamed for a
        loss that reads rows in place and standardizes them (``_reads_rows`` and
        ``_standardizes_rows``, the linear models' ``solver="gd"``): the kernel reads its rows
        in place, as those of an array in memory, with the same bits."""
        if is_chunk_source(X):
            return True
        if not is_memmap(X):
            return False
        # A loss that reads rows in place, standardizing them itself, trains on the memmap as
        # on any array: its rows are read where they are (the page cache), never copied.
        if self._reads_rows and self._standardizes_rows and self._raw_streams and _readable_in_place(X):
            return False
        return not self._needs_whole_data(partial)

    def _chunk_X(self, Xc: Any, k: int, dtype: Any, d: int | None) -> Any:
        try:
            Xc = check_X_or_csr(Xc, dtype=dtype, sparse=self._accepts_sparse)
        except ValueError as e:
            raise ValueError(f"chunk {k}: {e}") from None
        if d is not None and Xc.shape[1] != d:
            raise ValueError(f"chunk {k}: X has {Xc.shape[1]} features, but {type(self).__name__} is expecting {d} "
                             "features as input")
        return Xc

    def _chunk_y(self, yc: Any, k: int, m: int) -> np.ndarray:
        if yc is None:
            raise ValueError(f"chunk {k}: y is missing; {type(self).__name__} needs (X, y) or (X, y, sample_weight) "
                             "chunks")
        try:
            return check_y(yc, m, type(self).__name__, self._multi_output)
        except ValueError as e:
            raise ValueError(f"chunk {k}: {e}") from None

    def _stream_inputs(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any,
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

        fitted = self.__sklearn_is_fitted__()
        continuing = partial and fitted
        name = type(self).__name__
        with agree_on_errors(comm, f"{name}.fit"):
            stream = as_stream(X, y, sample_weight)
            if comm is not None and stream.one_shot:
                raise ValueError(f"{name}.fit(comm=...) reads each rank's data once before training (to merge "
                                 "the ranks' standardization, classes and sample counts), but the chunk source is a "
                                 "one-shot iterator (e.g. a generator object); pass a list of chunks or a callable "
                                 "returning a fresh iterator")
        classifier = self._estimator_type == "classifier"
        if continuing and stream.one_shot:
            # No pass before training: the chunks are checked as they are trained on (the first
            # one's column names before any step).
            stream.check_first = lambda X: self._input_names(X, True)
            columns = None if classifier else getattr(self, "_target_columns", None)  # a 2-D target's
            K = (1 if len(self.classes_) == 2 else len(self.classes_)) if classifier else columns or 1
            attrs = {"classes_": self.classes_} if classifier else {"_target_columns": columns}
            enc = {"y": None, "K": K, "targets_2d": columns is not None, "attrs": attrs}
            return FitInputs(stream, np.ones(0), enc, fitted, continuing,
                             stream=stream, n_samples=None, n_features=self.n_features_in_, dtype=self._dtype,
                             weighted=True)
        if stream.one_shot:
            raise ValueError(f"{name}.{'partial_fit' if partial else 'fit'} reads the data once before training "
                             "(to check it and learn the standardization and the targets), but the chunk source is a "
                             "one-shot iterator (e.g. a generator object); pass a list of chunks or a callable "
                             "returning a fresh iterator (e.g. the generator function itself)")
        dtype = self._dtype if continuing else None
        d = self.n_features_in_ if continuing else None
        x_mom = None if continuing or not self._standardizes(stream.is_sparse()) else RunningMoments()
        y_mom = None if classifier else RunningMoments()
        labels: dict[Any, float] = {}
        with agree_on_errors(comm, f"{name}.fit"):
            n, wsum, weighted, dtype, d, y_ndim = self._stream_pass(stream, dtype, d, x_mom, y_mom, labels,
                                                                    classifier)
            names = self._input_names(stream.first_X, continuing)
        mean_weight = wsum / n if n else 0.0
        if comm is not None:
            wsum, mean_weight = _merge_passes(comm, name, n, wsum, dtype, d, x_mom, y_mom, labels)
        if not wsum > 0:
            raise ValueError("sample_weight sums to zero: no sample would count.")
        if classifier:
            y_sum = np.array(sorted(labels))
            sw_sum = np.array([labels[c] for c in y_sum.tolist()])
        else:
            # A regressor's moments, of a positive total weight (checked above): a mean.
            assert y_mom is not None and y_mom.mean is not None
            y_sum, sw_sum = np.array([float(y_mom.mean[0])]), np.ones(1)
            if y_ndim == 2:  # several targets: their means, as one 2-D sample
                y_sum = np.array(y_mom.mean, np.float64)[None, :]
        enc = self._encode_target(y_sum, sw_sum, classes, partial, continuing)
        return FitInputs(stream, sw_sum, enc, fitted, continuing, stream=stream, n_samples=n, n_features=d,
                         dtype=dtype, weighted=weighted, mean_weight=mean_weight, x_moments=x_mom, y_moments=y_mom,
                         names=names)

    def _input_names(self, X: Any, continuing: bool) -> np.ndarray | None:
        """X's column names: checked against the fitted ones by a call that continues (which
        keeps those), else learned (scikit-learn's ``validate_data(reset=...)``)."""
        if continuing:
            check_feature_names(self, X)
            return getattr(self, "feature_names_in_", None)
        return feature_names(X)

    def _stream_pass(self, stream: ChunkStream, dtype: Any, d: int | None, x_mom: RunningMoments | None,
                     y_mom: RunningMoments | None, labels: dict[Any, float],
                     classifier: bool) -> tuple[int, float, bool, Any, int, int]:
        """One pass over ``stream``'s chunks: checks them and gathers the moments (into
        ``x_mom``, ``y_mom``) and the classes' weights (into ``labels``); returns the number of
        samples, their total weight, whether the chunks carry weights, X's dtype and features, and
        y's number of dimensions (2: several targets, the same number in every chunk)."""
        n, wsum, weighted, y_ndim = 0, 0.0, False, 1
        for k, (Xc, yc, wc) in enumerate(stream.chunks()):
            if classifier:  # (the labels checked first: their class weights weigh the moments too)
                yc = self._chunk_y(yc, k, Xc.shape[0])
                wc = self._chunk_class_weighted(yc, wc)
            weighted = wc is not None
            wc = np.ones(Xc.shape[0]) if wc is None else wc
            if is_sparse(Xc):
                # Checked (finite too) and converted to CSR; the scale-only moments, merged.
                Xc = self._chunk_X(Xc, k, dtype, d)
                if x_mom is not None:
                    x_mom.merge(sparse_moments(Xc, wc))
            elif x_mom is not None and Xc.ndim == 2 and Xc.dtype.kind == "f" and Xc.shape[0] and Xc.shape[1] \
                    and (d is None or Xc.shape[1] == d):
                # The moments' read of the chunk also finds its non-finite values: check_X
                # (for its error message) only reads it again when there are some.
                Xc = np.asarray(Xc, dtype=dtype or (np.float32 if Xc.dtype == np.float32 else np.float64))
                if not x_mom.update(Xc, wc):
                    self._chunk_X(Xc, k, dtype, d)
            else:
                Xc = self._chunk_X(Xc, k, dtype, d)
                if x_mom is not None:
                    x_mom.update(Xc, wc)
            dtype, d = Xc.dtype, Xc.shape[1]
            m = Xc.shape[0]
            yc = self._chunk_y(yc, k, m)
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
                assert y_mom is not None  # a regressor's
                columns = None if y_mom.mean is None else len(y_mom.mean)
                if k and (yt.ndim != y_ndim or (yt.ndim == 2 and yt.shape[1] != columns)):
                    raise ValueError(f"chunk {k}: y has shape {yt.shape}, but the first chunks' y "
                                     + (f"has {columns} columns" if y_ndim == 2 else "is 1-D"))
                y_ndim = yt.ndim
                y_mom.update(yt if yt.ndim == 2 else yt[:, None], wc)
            n += m
            wsum += float(wc.sum())
        assert d is not None  # set by the first chunk (chunks() raises when there is none)
        return n, wsum, weighted, dtype, d, y_ndim

    def _stream_transform(self, inputs: FitInputs, scaling: Scaling, regression: bool, targets: Callable,
                          rows: bool, raw_rows: bool = False) -> Callable:
        """A chunk as training reads it: checked, in the space of ``scaling`` (its rows left
        raw with ``raw_rows``: the loss standardizes them as it reads them), y encoded (and
        scaled for regression), the weights divided by the mean weight (None without weights
        when ``rows``: the fused loss then reads none)."""
        dtype, d = inputs.dtype, inputs.n_features
        classes = inputs.enc["attrs"].get("classes_")
        target_shape = (inputs.enc["K"],) if inputs.enc.get("targets_2d") else ()  # a row's targets
        count = [0]
        checked = inputs.n_samples is not None  # by stream_inputs' pass
        scratch: list[Any] = [None, None]

        def transform(Xc: Any, yc: Any, wc: Any) -> tuple[Any, Any, Any]:
            k = count[0]
            count[0] += 1
            if checked and isinstance(Xc, np.ndarray) and Xc.ndim == 2 and Xc.shape[1] == d and Xc.dtype.kind == "f":
                # The pass before training checked the values (finite); the stream re-checks
                # shapes and dtypes. Only the conversion, if any, is left.
                Xc = np.asarray(Xc, dtype=dtype)
            else:
                Xc = self._chunk_X(Xc, k, dtype, d)
            m = Xc.shape[0]
            yc = self._chunk_y(yc, k, m)
            if is_sparse(Xc) and scaling.standardized and not raw_rows:
                raise ValueError("sparse chunks: a column's standard deviation is too large or too small to scale it "
                                 f"in {np.dtype(dtype).name}; scale the features yourself and pass standardize=False")
            if scaling.standardized and not raw_rows:
                # ((X - mean) / scale).astype(dtype), the same bits as scaled(), in scratch arrays
                # kept from chunk to chunk (the buffer copies the result before the next one).
                if scratch[0] is None or len(scratch[0]) < len(Xc):
                    scratch[0] = np.empty(Xc.shape, np.float64)
                    scratch[1] = scratch[0] if dtype == np.float64 else np.empty(Xc.shape, dtype)
                t64, out = scratch[0][:len(Xc)], scratch[1][:len(Xc)]
                Xc = centre_and_scale(Xc, scaling.mean, scaling.scale, t64, out)
            try:
                ys = self._encode_target(yc, None, classes, True, False)["y"]
            except ValueError as e:
                raise ValueError(f"chunk {k}: {e}") from None
            if regression:
                if ys.shape[1:] != target_shape:  # a one-shot iterator's chunks are checked only here
                    raise ValueError(f"chunk {k}: y has shape {ys.shape}, but the model's target "
                                     + (f"has {target_shape[0]} columns" if target_shape else "is 1-D"))
                ys = standardized(ys, scaling.y_mean, scaling.y_scale, dtype)
            ys = targets(ys, dtype)
            wc = self._chunk_class_weighted(yc, wc)
            if wc is None:
                w = None if rows else np.ones(m, dtype)
            else:
                w = (wc / inputs.mean_weight).astype(dtype)
            return Xc, ys, w

        return transform

    def _fit_inputs(self, X: Any, y: Any, sample_weight: Any, *, partial: bool, classes: Any) -> FitInputs:
        """Check X, y and sample_weight and encode y (``self._encode_target``). A partial_fit that
        continues keeps the first fit's dtype and number of features. Chunks and memmaps go to
        :func:`stream_inputs`."""
        if self._streamed(X, partial):
            return self._stream_inputs(X, y, sample_weight, partial=partial, classes=classes)
        fitted = self.__sklearn_is_fitted__()
        continuing = partial and fitted
        unchecked = self._moments_check_X(X, fitted, continuing)
        names = self._input_names(X, continuing)
        X = check_X_or_csr(X, dtype=self._dtype if continuing else None, warn_copy=True, finite=not unchecked,
                           sparse=self._accepts_sparse)
        if continuing:
            check_n_features(self, X)
        n = X.shape[0]
        with reporting_X_first(X, unchecked):
            y = check_y(y, n, type(self).__name__, self._multi_output)
            # No weights: a broadcast of ones, not an array of n of them.
            sw = unit_weights(n) if sample_weight is None else check_sample_weight(sample_weight, n)
            enc = self._encode_target(y, sw, classes, partial, continuing)
        return FitInputs(X, self._class_weighted(enc, sw), enc, fitted, continuing, x_unchecked=unchecked, names=names)

    def _scaled(self, inputs: FitInputs, scaling: Scaling, regression: bool) -> tuple[Any, Any, Any, Any]:
        """(Xs, ys, w, row_scaling): inputs (and for regression the target) in the space of
        ``scaling``, and the sample weights rescaled to mean 1, so that a batch's mean loss times
        its share of the weight is an unbiased estimate of the full weighted mean (exactly it
        for a full batch); without weights, for a loss that reads rows in place,
        :func:`unit_weights` of X's dtype (no array of n ones).

        An objective that standardizes the rows it reads (``self._standardizes_rows``) trains
        on X itself, never a standardized copy: ``Xs`` is then X and ``row_scaling`` the
        standardization as its kernel applies it (:func:`kernel_row_scaling`; None, and a
        standardized copy, only for columns too large for that in X's dtype).

        Streamed inputs: ``(stream, None, None, row_scaling)``, the stream transforming each
        chunk as it enters the shuffle buffer (its rows standardized there unless the loss
        does it, ``row_scaling``: then the buffer holds raw rows, as X is), its targets as the
        estimator's loss reads them (``self._training_targets``); when the loss reads rows in
        place (``self._reads_rows``), unweighted chunks go without weights, as the fused loss
        wants them."""
        dtype = inputs.X_dtype
        row_scaling = None
        if scaling.standardized and self._standardizes_rows:
            row_scaling = kernel_row_scaling(scaling, dtype)
        if inputs.stream is not None:
            transform = self._stream_transform(inputs, scaling, regression, self._training_targets, self._reads_rows,
                                               raw_rows=row_scaling is not None and self._raw_streams)
            stream = inputs.stream.with_transform(transform)
            stream.n_samples, stream.row_shape = inputs.n_samples, (inputs.n_features,)
            return stream, None, None, row_scaling
        X = inputs.X
        if is_sparse(X) and not self._standardizes_rows:
            raise ValueError(f"{type(self).__name__}: this configuration trains on dense X only (its solver works on "
                             "a standardized copy); sparse X trains with solver='gd'")
        if is_sparse(X) and scaling.standardized and row_scaling is None:
            raise ValueError("X: a column's standard deviation is too large or too small to scale it in "
                             f"{np.dtype(dtype).name}; scale the features yourself and pass standardize=False")
        standardize_here = scaling.standardized and row_scaling is None
        Xs = standardize(X, scaling.mean, scaling.scale, dtype) if standardize_here else X
        ys = inputs.enc["y"]
        if regression:
            ys = standardized(ys, scaling.y_mean, scaling.y_scale, dtype)
        else:
            # Labels as the loss reads them, kept once (the encoding's own array is let go).
            ys = inputs.enc["y"] = self._training_targets(ys, dtype)
        sw = inputs.sw
        if is_unit_weights(sw):
            # A loss that reads rows in place reads no weights then (train gets None); other
            # losses take the weights with each batch, as an array.
            w = unit_weights(len(sw), dtype) if self._reads_rows else np.ones(len(sw), dtype)
        else:
            w = (sw / sw.mean()).astype(dtype)
        return Xs, ys, w, row_scaling

    def _distributed_fit_inputs(self, X: Any, y: Any, sample_weight: Any, comm: Any, *,
                               resume: bool = False) -> FitInputs:
        """:func:`fit_inputs` for a data-parallel ``fit``: each rank checks its own shard (a stream:
        :func:`stream_inputs` with ``comm``), and all
        ranks agree (an error on one is an error on all, never a hang); classifiers encode ``y``
        by the union of the ranks' classes (by the fitted ones when resuming); the ranks must
        agree on the number of features and the dtype. The sample weights are rescaled later, by
        their global mean."""
        from fastgd.distributed import agree_on_errors

        name = type(self).__name__
        if self._streamed(X, resume):
            # Each rank streams its own shard (chunks, or a memmap read in blocks); the ranks'
            # first passes are merged.
            return self._stream_inputs(X, y, sample_weight, partial=resume, classes=None, comm=comm)
        fitted = self.__sklearn_is_fitted__()
        continuing = resume and fitted
        unchecked = self._moments_check_X(X, fitted, continuing)
        labels = None
        with agree_on_errors(comm, f"{name}.fit"):
            names = self._input_names(X, continuing)
            X = check_X_or_csr(X, dtype=self._dtype if continuing else None, warn_copy=True, finite=not unchecked,
                               sparse=self._accepts_sparse)
            if continuing:
                check_n_features(self, X)
            n = X.shape[0]
            with reporting_X_first(X, unchecked):
                y = check_y(y, n, name, self._multi_output)
                sw = check_sample_weight(sample_weight, n)
                if self._estimator_type == "classifier" and not continuing:
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
        with agree_on_errors(comm, f"{name}.fit"), reporting_X_first(X, unchecked):
            # partial=True: a shard may hold a single class; the union (or the fit's) has them all.
            enc = self._encode_target(y, sw, classes, classes is not None or continuing, continuing)
            sw = self._class_weighted(enc, sw, comm)
        return FitInputs(X, sw, enc, fitted, continuing, x_unchecked=unchecked, names=names)
