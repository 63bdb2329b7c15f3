r"""Data larger than memory: chunks of samples streamed through a bounded shuffle buffer.

:func:`fastgd.train` and the estimators' ``fit``/``partial_fit`` take, instead of arrays,

* a :class:`ChunkStream` (the explicit form, with its options),
* a list or tuple of chunks, each a tuple ``(X_chunk, y_chunk)`` or
  ``(X_chunk, y_chunk, sample_weight_chunk)``,
* a callable returning a fresh iterator of such chunks (a generator function): called once
  per pass over the data, so several epochs are possible,
* a one-shot iterator of chunks (a generator object): one pass only, so only where one pass
  suffices (``partial_fit`` of a fitted estimator, ``train(max_epochs=1)``);

and the estimators stream a memory-mapped ``X`` (``np.load(path, mmap_mode="r")``,
``np.memmap``) in contiguous blocks of rows the same way, so that it is never copied whole
(except where the whole set is needed at once: Newton's solver, ``batch_size=None``,
``early_stopping``'s validation split, a standardized Huber target; the memmap is then read
into memory as any array). :func:`fastgd.train` reads a memmap in place, batch by batch.

**The shuffle buffer** works as ``tf.data.Dataset.shuffle(buffer_size)`` and torchdata's
``Shuffler``: it holds ``buffer_size`` samples. Once it is full, a random half of it
(a whole number of batches) is trained on, in a random order, and the next chunks take
the freed places; at the end of the stream the rest is trained on, in a random order. So
every batch mixes samples of many chunks, a sample can stay in the buffer for several
rounds, and memory stays bounded by the buffer (``buffer_size`` rows, plus one chunk
being read), whatever the size of the data. The shuffle is local: samples far apart in
the stream are never in one batch, so a stream sorted by class or by time needs a buffer
that spans that order (or the file shuffled once). With a buffer that holds the whole
data set, an epoch is one permutation of all samples, drawn as :func:`fastgd.train`
draws it for arrays: the same batches, and the same results, as with the arrays.

``shuffle="batches"`` and ``shuffle=False`` fill the buffer and train on all of it each time
it is full, its contiguous batches in a random order (``"batches"``) or in order (False).

An array or a list of chunks that fits in the buffer is read (and transformed) once: the
later epochs permute what the buffer holds. A callable is called every epoch, since it may
give other data each time (augmented, resampled).

**Standardization** of a stream is learned by one streaming pass before training: each
chunk's weighted mean and variance, merged chunk by chunk (Chan, Golub and LeVeque's
parallel algorithm), in float64, one chunk at a time (:class:`RunningMoments`), each chunk
read once by fastgd's column statistics kernel, which also checks that its values are finite.

**Data-parallel training** (``comm=``): each rank streams its own shard through its own
buffer; the ranks' first passes are merged (:meth:`RunningMoments.merge`, in rank order) and
every epoch is padded to the largest shard's number of samples (``segments(pad_to=)``).
"""

from __future__ import annotations

import copy
import itertools
import mmap
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from fastgd import _core, _sparse_check
from fastgd._feature_names import check_same_names, feature_names
from fastgd.shuffling import ShuffleMode, check_shuffle, permutation

__all__ = ["ChunkStream", "RunningMoments", "is_chunk_source", "is_memmap", "pow2_scale"]

# Default buffer: as many rows as fit in this many bytes of the (transformed) samples.
DEFAULT_BUFFER_BYTES = 64 << 20
# Default block of a memory-mapped array: as many rows as fit in this many bytes.
DEFAULT_CHUNK_BYTES = 4 << 20


def is_memmap(a: Any) -> bool:
    """Whether ``a`` is an array over a memory-mapped file (``np.memmap``, ``np.load(...,
    mmap_mode=...)``, or a view of one)."""
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap):
            return True
        a = a.base
    return isinstance(a, mmap.mmap)


def is_chunk_source(X: Any) -> bool:
    """Whether ``X`` is a source of chunks rather than an array: a :class:`ChunkStream`, a
    callable, an iterator, or a list/tuple whose first item is a tuple of arrays (a list of
    tuples of numbers is rows of samples)."""
    if isinstance(X, ChunkStream):
        return True
    if hasattr(X, "shape") or isinstance(X, (str, bytes)):
        return False
    if callable(X) or isinstance(X, Iterator):
        return True
    if not (isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], tuple) and len(X[0]) > 0):
        return False
    # A chunk's first item is rows (an array, a list of rows); a row of numbers is a sample.
    first = X[0][0]
    return hasattr(first, "__len__") and not isinstance(first, (str, bytes))


def pow2_scale(m: Any) -> np.ndarray:
    """For each finite ``m >= 0`` (an array or a number), the power of two ``s`` with
    ``m / s`` in [1, 2) (1 for 0): dividing by it is exact (no rounding) and brings any
    float64 magnitude near 1, where squares and sums cannot overflow."""
    m = np.asarray(m, dtype=np.float64)
    _, e = np.frexp(m)  # m = f * 2**e, 0.5 <= f < 1
    return np.where(m > 0, np.ldexp(1.0, e - 1), 1.0)


class RunningMoments:
    r"""Weighted mean and variance along axis 0, updated chunk by chunk and merged by Chan,
    Golub and LeVeque's parallel formulas, in float64:

    .. math:: W = W_a + W_b, \quad \delta = \bar x_b - \bar x_a, \quad
              \bar x = \bar x_a + \delta\, W_b / W, \quad
              \sigma^2 = (W_a \sigma_a^2 + W_b \sigma_b^2 + \delta^2\, W_a W_b / W) / W.

    A chunk's own moments are those fastgd's column statistics kernel gives for it as one
    block (``weighted_moments`` merges blocks of rows by the same formulas, in the same
    order, so a stream of those blocks gives its bits). Chunks of weight 0 count for nothing.

    Finite values of any magnitude: a column whose squares (or the merge's products) would
    overflow (values beyond about 1e154) is summarized in units of a power of two, its
    ``scale``: ``var`` is then the variance of the values divided by it, computed from the
    quotients. The other columns keep the formulas above, bit for bit (``scale`` None: 1 for
    every column)."""

    def __init__(self) -> None:
        self.weight = 0.0
        self.count = 0
        self.mean: np.ndarray | None = None
        self.var: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def summary(self) -> tuple[Any, ...]:
        """``(weight, count, mean, var, scale)``: what another rank needs to merge these
        moments (:meth:`from_summary`)."""
        return self.weight, self.count, self.mean, self.var, self.scale

    @classmethod
    def from_summary(cls, summary: tuple[Any, ...]) -> RunningMoments:
        """The moments that :meth:`summary` describes."""
        moments = cls()
        moments.weight, moments.count, moments.mean, moments.var, moments.scale = summary
        return moments

    def update(self, a: np.ndarray, w: np.ndarray, block_rows: int | None = None) -> bool:
        """Add the rows ``a`` with weights ``w``; returns whether its values are all finite (a
        NaN or an infinity, at any weight, makes its column's mean non-finite as well).

        The rows are one chunk (``block_rows`` None), or blocks of ``block_rows`` rows merged
        in order: into empty moments, the same bits as one update per block. One read of
        ``a`` by fastgd's column statistics kernel (``_core.column_moments``), which also
        finds the non-finite values; a chunk whose moments overflow is taken again in units of
        a power of two (block by block), as the class docstring says."""
        rows = _as_rows(a)
        # Weights of 1 given as a broadcast of one value (an unweighted fit's) go down as None:
        # the kernel's unweighted pass, the same bits, with no array of n ones made and read.
        w = np.asarray(w)
        ones = w.ndim == 1 and w.strides == (0,) and len(w) > 0 and float(w[0]) == 1.0
        if not ones:
            w = np.ascontiguousarray(w, dtype=np.float64)
        weight, mean, var, first_nan, first_inf = _core.column_moments(rows, None if ones else w, block_rows)
        finite = first_nan < 0 and first_inf < 0
        if not weight > 0:
            self.count += len(rows)
            return finite
        scale = None
        if not (np.isfinite(mean).all() and np.isfinite(var).all()):
            if block_rows is not None and block_rows < len(rows):
                # Block by block, as a stream of these blocks would be merged (the blocks
                # that do not overflow give the kernel's bits again).
                for start in range(0, len(rows), block_rows):
                    self.update(rows[start:start + block_rows], w[start:start + block_rows])
                return finite
            with np.errstate(invalid="ignore"):  # a NaN or an infinity: left as it is
                mean, var, scale = _in_units(rows, w / w.sum(), mean, var)
        self.count += len(rows)
        self._add(weight, mean, var, scale)
        return finite

    def merge(self, other: RunningMoments) -> None:
        """Add the rows that ``other`` summarizes (another rank's, say), by the same formulas
        as :meth:`update`: merging the same moments in the same order gives the same bits."""
        self.count += other.count
        if other.mean is None:
            return
        assert other.var is not None  # set with the mean
        if self.mean is None:
            self.weight, self.mean, self.var = other.weight, other.mean.copy(), other.var.copy()
            self.scale = None if other.scale is None else other.scale.copy()
            return
        self._add(other.weight, other.mean, other.var, other.scale)

    def _add(self, weight: float, mean: np.ndarray, var: np.ndarray, scale: np.ndarray | None) -> None:
        """Chan et al.'s merge of moments of total weight ``weight`` into these."""
        if self.mean is None:
            self.weight, self.mean, self.var, self.scale = weight, mean, var, scale
            return
        assert self.var is not None  # set with the mean
        total = self.weight + weight
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: taken up below
            delta = mean - self.mean
            # Operation for operation as the column statistics kernel merges its blocks
            # (cpp/include/fastgd/column_stats.hpp): a stream's chunks merged here and the
            # same rows merged there give the same bits.
            spread = (delta * delta) * (self.weight * weight / total)
            new_var = np.maximum((self.weight * self.var + weight * var + spread) / total, 0.0)
            new_mean = self.mean + delta * (weight / total)
        if self.scale is not None or scale is not None or not (np.isfinite(new_mean).all()
                                                             and np.isfinite(new_var).all()):
            new_mean, new_var, scale = _merge_in_units((self.weight, self.mean, self.var, self.scale),
                                                       (weight, mean, var, scale), new_mean, new_var)
        self.mean, self.var, self.scale, self.weight = new_mean, new_var, scale, total

    def mean_std(self, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation), a zero (or rounding-level) deviation replaced by 1, as
        StandardScaler does for constant features."""
        if self.mean is None:
            raise ValueError("no sample with a positive weight: the mean and variance are undefined")
        assert self.var is not None  # set with the mean
        std = np.sqrt(self.var)
        if self.scale is not None:
            std = std * self.scale
        constant = std <= 100 * np.finfo(dtype).eps * np.maximum(np.abs(self.mean), 1e-300)
        return self.mean, np.where(constant, 1.0, std)


def _as_rows(a: np.ndarray) -> np.ndarray:
    """``a`` as the kernel reads it: 2-D (a sample per row), C-contiguous float32 or float64
    (a view when it already is one, as a chunk of a C-contiguous array or memmap is)."""
    dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(a, dtype=dtype).reshape(len(a), -1)


def _in_units(a: np.ndarray, p: np.ndarray, mean: np.ndarray, var: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A chunk's moments (``RunningMoments.update``) again for the columns where they
    overflowed but the values are finite, from the values divided by a power of two near
    their largest magnitude: returns the mean, the variance in units of the scale, and the
    scale (1 for the other columns, whose results are kept)."""
    cols = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(var)))
    sub = a[:, cols].astype(np.float64)  # a copy (indexing by an array)
    top = np.max(np.abs(sub), axis=0)
    finite = np.isfinite(top)  # the other columns hold a NaN or an infinity: left as they are
    cols, sub, top = cols[finite], sub[:, finite], top[finite]
    s = pow2_scale(top)
    sub /= s
    m = p @ sub
    sub -= m
    mean, var, scale = mean.copy(), var.copy(), np.ones(mean.shape)
    mean[cols], var[cols], scale[cols] = m * s, np.maximum(p @ np.square(sub, out=sub), 0.0), s
    return mean, var, scale


def _merge_in_units(a: tuple[Any, ...], b: tuple[Any, ...], plain_mean: np.ndarray, plain_var: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chan et al.'s merge of moments ``a`` and ``b`` (``(weight, mean, var, scale)``) for the
    columns that either has in units of a scale, or whose plain merge (``plain_mean``,
    ``plain_var``) overflowed: in units of a power of two at least both scales and near the
    largest of the means and deviations, so that nothing overflows. Returns the mean, the
    variance in units of the scale, and the scale (1 for the other columns, kept plain)."""
    (wa, ma, va, sa), (wb, mb, vb, sb) = a, b
    ones = np.ones(ma.shape)
    sa, sb = ones if sa is None else sa, ones if sb is None else sb
    cols = np.flatnonzero(~(np.isfinite(plain_mean) & np.isfinite(plain_var)) | (sa != 1) | (sb != 1))
    total = wa + wb
    with np.errstate(invalid="ignore"):  # a column of NaN stays NaN
        top = np.maximum(np.maximum(np.abs(ma[cols]), np.abs(mb[cols])),
                         np.maximum(np.sqrt(va[cols]) * sa[cols], np.sqrt(vb[cols]) * sb[cols]))
        s = np.maximum(np.maximum(sa[cols], sb[cols]), pow2_scale(np.nan_to_num(top)))
        ra, rb = sa[cols] / s, sb[cols] / s
        xa, xb = ma[cols] / s, mb[cols] / s
        delta = xb - xa
        var = np.maximum((wa * (va[cols] * ra * ra) + wb * (vb[cols] * rb * rb) + delta**2 * (wa * wb / total))
                         / total, 0.0)
        mean_cols = (xa + delta * (wb / total)) * s
    mean, new_var, scale = plain_mean.copy(), plain_var.copy(), ones
    mean[cols], new_var[cols], scale[cols] = mean_cols, var, s
    return mean, new_var, scale


def _rows_for(nbytes: int, row_bytes: int) -> int:
    return max(1, nbytes // max(row_bytes, 1))


class ChunkStream:
    """Samples in chunks, streamed through a shuffle buffer of ``buffer_size`` samples (see
    :mod:`fastgd.streaming`).

    Args:
        source: where the chunks come from: a list or tuple of chunks (re-read every
            epoch), a callable returning a fresh iterable of chunks (called once per pass),
            a one-shot iterator of chunks (one pass only), or an array ``X`` (a memmap:
            read in contiguous blocks of ``chunk_rows`` rows, with ``y`` and
            ``sample_weight`` sliced alike). A chunk is a tuple ``(X_chunk, y_chunk)`` or
            ``(X_chunk, y_chunk, sample_weight_chunk)``; ``y_chunk`` may be None for
            :func:`fastgd.train` with a loss that needs no targets.
        y, sample_weight: with an array ``source`` only.
        chunk_rows: rows per block of an array ``source`` (default: about 4 MB of it).
        buffer_size: samples in the shuffle buffer (default: about 64 MB of them, in the
            dtype training reads), rounded up to a whole number of batches.

    Anonymous memory used: the buffer (``buffer_size`` rows of X, y and the weights, and
    an index of them) and one chunk as it is read and transformed.
    """

    def __init__(self, source: Any, y: Any = None, sample_weight: Any = None, *, chunk_rows: int | None = None,
                 buffer_size: int | None = None) -> None:
        for name, value in (("chunk_rows", chunk_rows), ("buffer_size", buffer_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if isinstance(source, ChunkStream):
            raise TypeError("source is already a ChunkStream")
        self.array = hasattr(source, "shape") and hasattr(source, "__getitem__")
        if not self.array and (y is not None or sample_weight is not None):
            raise ValueError("y and sample_weight go inside the chunks ((X, y) or (X, y, sample_weight) tuples); "
                             "pass them separately only with an array X")
        if not self.array and not (callable(source) or isinstance(source, Iterable)):
            raise TypeError(f"source must be an array, a list of (X, y) chunks, a callable returning an iterator "
                            f"of chunks, or an iterator of chunks; got {type(source).__name__}")
        if self.array:
            shape: tuple[Any, ...] = getattr(source, "shape", ())
            if len(shape) < 1:
                raise ValueError("X must have a first axis of samples, got a scalar")
            n = int(shape[0])
            if sample_weight is not None and np.ndim(sample_weight) == 0:
                sample_weight = np.broadcast_to(np.float64(sample_weight), (n,))  # one weight for all, no copy
            for name, a in (("y", y), ("sample_weight", sample_weight)):
                if a is not None and len(a) != n:
                    raise ValueError(f"X has {n} samples but {name} has {len(a)}")
        self.source, self.y, self.sample_weight = source, y, sample_weight
        self.chunk_rows, self.buffer_size = chunk_rows, buffer_size
        self._used = False  # a one-shot iterator that has been read
        self.transform: Callable | None = None
        self._kept: Any = None   # (key, the buffers), kept from epoch to epoch
        self._held: Any = None   # the whole data set is in the buffer: (rows, batch size, shuffled, transform)
        self.n_samples: int | None = None  # when known (the estimators count them first)
        self.row_shape: tuple[int, ...] | None = None  # a sample's shape, when known
        # Sorted positions (in the stream, from 0) of samples left out of every pass: a
        # held-out validation sample.
        self.exclude: np.ndarray | None = None
        # The first chunk's X as given (a DataFrame keeps its column names), once read, and a
        # check of it run as it is read (an estimator's of its column names, for a one-shot
        # source that it reads only while training).
        self.first_X: Any = None
        self.check_first: Callable[[Any], Any] | None = None
        # Whether the chunks' X is scipy.sparse (known once the first chunk is read).
        self.sparse: bool | None = None

    def with_transform(self, transform: Callable | None) -> ChunkStream:
        """A copy of this stream (over the same source) whose chunks go through
        ``transform(X, y, w) -> (X, y, w)`` as they enter the shuffle buffer."""
        out = copy.copy(self)
        out.transform = transform
        out._kept = out._held = None  # its own buffer
        return out

    # -- reading -----------------------------------------------------------------------

    def is_sparse(self) -> bool:
        """Whether the chunks' X is scipy.sparse: known once a chunk has been read, else from
        the first chunk (a one-shot iterator's is read and put back in front of the rest)."""
        if self.sparse is None:
            if self.array:
                self.sparse = _sparse_check.is_sparse(self.source)
            elif isinstance(self.source, (list, tuple)):
                self.sparse = bool(self.source) and isinstance(self.source[0], tuple) \
                    and _sparse_check.is_sparse(self.source[0][0])
            else:
                it = iter(self._called()) if callable(self.source) else self.source
                first = next(it, None)
                if self.one_shot:
                    self.source = itertools.chain([] if first is None else [first], it)
                self.sparse = isinstance(first, tuple) and len(first) > 0 and _sparse_check.is_sparse(first[0])
        return bool(self.sparse)

    def _called(self) -> Iterable[Any]:
        """What the source callable returns: an iterable of chunks, else a TypeError."""
        it = self.source()
        if it is None or not isinstance(it, Iterable):
            raise TypeError(f"the chunk source callable must return an iterable of chunks, got {type(it).__name__}")
        return it

    @property
    def one_shot(self) -> bool:
        """Whether the source can be read only once (an iterator)."""
        return not self.array and not callable(self.source) and isinstance(self.source, Iterator)

    def _raw(self) -> Iterator[Any]:
        if self.array:
            X = self.source
            n = int(X.shape[0])
            row_bytes = int(np.prod(X.shape[1:], dtype=np.int64)) * X.dtype.itemsize
            step = self.chunk_rows or _rows_for(DEFAULT_CHUNK_BYTES, row_bytes)
            for start in range(0, n, step):
                stop = min(start + step, n)
                yield (X[start:stop], None if self.y is None else self.y[start:stop],
                       None if self.sample_weight is None else self.sample_weight[start:stop])
            return
        if callable(self.source):
            yield from self._called()
            return
        if self.one_shot:
            if self._used:
                raise ValueError("the chunk source is a one-shot iterator (e.g. a generator object) that has already "
                                 "been read; pass a list of chunks or a callable returning a fresh iterator (e.g. "
                                 "the generator function itself) to read the data more than once")
            self._used = True
        yield from self.source

    def chunks(self) -> Iterator[tuple[np.ndarray, Any, Any]]:
        """One pass over the data: checked ``(X, y, sample_weight)`` chunks (``y`` and
        ``sample_weight`` None when absent), X a NumPy array (a memmap slice stays one)."""
        first: tuple[Any, ...] | None = None
        position = 0  # of the chunk's first sample in the stream
        for k, chunk in enumerate(self._raw()):
            if not isinstance(chunk, tuple) or len(chunk) not in (2, 3):
                what = f"a tuple of {len(chunk)}" if isinstance(chunk, tuple) else type(chunk).__name__
                raise ValueError(f"chunk {k}: each chunk must be a tuple (X, y) or (X, y, sample_weight), got {what}")
            Xc, yc = chunk[0], chunk[1]
            wc = chunk[2] if len(chunk) == 3 else None
            if Xc is None:
                raise ValueError(f"chunk {k}: X is None")
            sparse = _sparse_check.is_sparse(Xc)  # kept as it is (CSR rows go through a buffer of their own)
            if sparse or isinstance(Xc, np.ndarray):
                if k == 0:
                    self.first_X, first_names = Xc, None
                    self.sparse = sparse
                    if self.check_first is not None:
                        self.check_first(Xc)
                else:
                    check_same_names(None, first_names, f"chunk {k}")
                    if sparse != self.sparse:
                        raise ValueError(f"chunk {k}: X is {'sparse' if sparse else 'dense'}, but the first chunk's is "
                                         f"{'sparse' if self.sparse else 'dense'}; give all chunks in one form")
            elif not isinstance(Xc, np.ndarray):
                # Column names (a DataFrame's), read before the conversion drops them: every
                # chunk has the first one's, which the estimator learns or checks.
                names = feature_names(Xc)
                if k == 0:
                    self.first_X, first_names = Xc, names
                    if self.check_first is not None:
                        self.check_first(Xc)
                else:
                    check_same_names(names, first_names, f"chunk {k}")
                Xc = np.asarray(Xc)
                if k == 0:
                    self.sparse = False
            if Xc.ndim < 1:
                raise ValueError(f"chunk {k}: X must have a first axis of samples, got a scalar")
            m = Xc.shape[0]
            if m == 0:
                raise ValueError(f"chunk {k}: X has no rows (an empty chunk); leave empty chunks out of the stream")
            if first is None:
                first = (Xc.shape[1:], Xc.dtype, yc is None, wc is None)
            if Xc.shape[1:] != first[0]:
                raise ValueError(f"chunk {k}: X has shape {Xc.shape}, but the first chunk's rows have shape "
                                 f"{first[0]} (mismatched numbers of features)")
            if Xc.dtype != first[1]:
                raise ValueError(f"chunk {k}: X has dtype {Xc.dtype}, but the first chunk's is {first[1]}; give all "
                                 "chunks one dtype")
            if (yc is None) != first[2]:
                raise ValueError(f"chunk {k}: y is {'missing' if yc is None else 'given'}, but "
                                 f"{'not ' if yc is None else ''}in the first chunk; give y in every chunk or in none")
            if (wc is None) != first[3]:
                raise ValueError(f"chunk {k}: sample_weight is {'missing' if wc is None else 'given'}, but "
                                 f"{'not ' if wc is None else ''}in the first chunk; give weights in every chunk or "
                                 "in none")
            if yc is not None:
                yc = yc if isinstance(yc, np.ndarray) else np.asarray(yc)
                if yc.ndim < 1 or yc.shape[0] != m:
                    raise ValueError(f"chunk {k}: X has {m} rows but y has shape {yc.shape}")
            if wc is not None:
                wc = np.asarray(wc, dtype=np.float64)
                if wc.shape != (m,):
                    raise ValueError(f"chunk {k}: sample_weight must have shape ({m},), got {wc.shape}")
                if not (np.all(np.isfinite(wc)) and np.all(wc >= 0)):
                    raise ValueError(f"chunk {k}: sample_weight must be finite and >= 0")
            if self.exclude is not None:
                lo, hi = np.searchsorted(self.exclude, [position, position + m])
                position += m
                if hi > lo:
                    keep = np.ones(m, bool)
                    keep[self.exclude[lo:hi] - (position - m)] = False
                    if not keep.any():
                        continue
                    Xc, yc, wc = (None if a is None else a[keep] for a in (Xc, yc, wc))
            yield Xc, yc, wc
        if first is None:
            raise ValueError("the chunk source gave no chunks: there are no samples")

    def count(self) -> tuple[int, tuple[int, ...] | None]:
        """(samples, a sample's shape): from the array's shape, from what is known (the
        estimators' first pass), or else from one pass over the chunks (which checks them)."""
        if self.array:
            shape = tuple(int(k) for k in self.source.shape)
            if self.exclude is None:
                return shape[0], shape[1:]
            self.row_shape = self.row_shape or shape[1:]
        if self.n_samples is None:
            if self.one_shot:
                raise ValueError("the chunk source is a one-shot iterator (e.g. a generator object), whose samples "
                                 "cannot be counted before training (data-parallel training needs the count: every "
                                 "rank takes the same number of steps); pass a list of chunks or a callable "
                                 "returning a fresh iterator (e.g. the generator function itself)")
            n, row_shape = 0, None
            for Xc, _, _ in self.chunks():
                n += Xc.shape[0]
                row_shape = Xc.shape[1:]
            self.n_samples, self.row_shape = n, row_shape
        return int(self.n_samples), self.row_shape

    # -- the shuffle buffer ------------------------------------------------------------

    def _buffers(self, cap: int, Xc: np.ndarray, yc: Any, wc: Any) -> list[Any]:
        """The X, y and w buffers of ``cap`` rows, kept from epoch to epoch (a new one each
        epoch would fault its pages in again)."""
        like = [Xc, yc, wc]
        key = tuple(None if a is None else ((cap,) + a.shape[1:], a.dtype) for a in like)
        kept = self._kept
        if kept is None or kept[0] != key:
            kept = (key, [None if k is None else np.empty(*k) for k in key])
            self._kept = kept
        return kept[1]

    def segments(self, rng: np.random.Generator, batch_size: int, shuffle: ShuffleMode,
                 transform: Callable | None = None,
                 pad_to: int | None = None) -> Iterator[tuple[Any, Any, Any, Any, int]]:
        """One epoch through the shuffle buffer: ``(X, y, w, order, n)`` segments, each to
        be trained on (batches of ``batch_size`` over its rows ``order``, or over its
        first ``n`` rows in order when ``order`` is None) before the next is asked for: the
        arrays are views of the buffer, which the next segment overwrites. Every segment
        but the last holds a whole number of batches. ``shuffle``: a mode of
        :data:`fastgd.shuffling.SHUFFLE_MODES` (``True`` shuffles the rows in the buffer).

        ``transform(X, y, w) -> (X, y, w)``: applied to each chunk as it enters the
        buffer (the estimators' standardization and encoding of the targets).

        ``pad_to``: the number of samples the epoch must visit (data-parallel training: the
        largest shard's), at least the stream's own. The last segment is padded with
        samples of the buffer again: its order continued cyclically over what the buffer
        holds, the rows not yet trained on first, then those of the epoch that are still in
        it. When the buffer holds the whole stream, the padding is the first samples of the
        epoch's order again, as :func:`fastgd.train` pads a short shard held as an array."""
        bs = int(batch_size)
        rows_shuffled = check_shuffle(shuffle) is True
        transform = transform or self.transform
        # An array or a list of chunks that the buffer held whole last epoch is still there:
        # the epoch is its permutation, without reading (and transforming) it again.
        held = getattr(self, "_held", None)
        if held is not None and held[1:] == (bs, rows_shuffled, transform):
            filled = held[0]
            if pad_to is not None and filled > pad_to:
                raise ValueError(f"the stream holds {filled} samples, more than the {pad_to} agreed on")
            order = permutation(rng, filled) if rows_shuffled and bs < filled else None
            order, total = _padded(order, filled, filled, pad_to)
            Xb, yb, wb = (None if b is None else b[:filled] for b in self._kept[1])
            yield Xb, yb, wb, order, total
            return
        self._held = None
        buffer: _ShuffleBuffer | None = None
        seen = 0  # samples read this epoch
        for Xc, yc, wc in self.chunks():
            seen += Xc.shape[0]
            if pad_to is not None and seen > pad_to:
                raise ValueError(f"the stream gave more samples this epoch ({seen} so far) than its first pass "
                                 f"counted and the ranks agreed on ({pad_to}); a data-parallel stream must give "
                                 "the same samples every epoch")
            if transform is not None:
                Xc, yc, wc = transform(Xc, yc, wc)
            if buffer is None:
                buffer = self._open_buffer(Xc, yc, wc, bs, rows_shuffled)
            yield from buffer.put(rng, (Xc, yc, wc))
        if buffer is None:
            return
        if buffer.holds_all() and (self.array or isinstance(self.source, (list, tuple))) \
                and not isinstance(buffer, _SparseShuffleBuffer):
            self._held = (buffer.filled, bs, rows_shuffled, transform)
        # The end of the stream: the rest, in a random order.
        yield from buffer.rest(rng, 0 if pad_to is None else pad_to - seen, pad_to is not None)

    def _open_buffer(self, Xc: Any, yc: Any, wc: Any, bs: int, rows_shuffled: bool) -> Any:
        """The epoch's buffer, sized on its first (transformed) chunk."""
        if _sparse_check.is_sparse(Xc):
            # A CSR row's bytes: its share of the chunk's values, indices and row pointers.
            m = max(1, Xc.shape[0])
            row_bytes = (Xc.data.nbytes + Xc.indices.nbytes + Xc.indptr.nbytes) // m + 1
            row_bytes += (0 if yc is None else yc[:1].nbytes) + (0 if wc is None else 8)
            cap = -(-(self.buffer_size or _rows_for(DEFAULT_BUFFER_BYTES, row_bytes)) // bs) * bs
            return _SparseShuffleBuffer(cap, bs, rows_shuffled)
        row_bytes = Xc[:1].nbytes + (0 if yc is None else yc[:1].nbytes) + (0 if wc is None else 8)
        # A whole number of batches (at least one), so that only the epoch's last batch may
        # be short.
        cap = -(-(self.buffer_size or _rows_for(DEFAULT_BUFFER_BYTES, row_bytes)) // bs) * bs
        if self.array:
            cap = min(cap, int(self.source.shape[0]))  # no larger than the data
        return _ShuffleBuffer(self._buffers(cap, Xc, yc, wc), cap, bs, rows_shuffled)


class _ShuffleBuffer:
    """One epoch's pass through a stream's shuffle buffer (:meth:`ChunkStream.segments`):
    chunks go in, and ``(X, y, w, order, n)`` segments to train on come out whenever it is
    full, and at the end of the stream."""

    def __init__(self, buf: list[Any], cap: int, bs: int, rows_shuffled: bool) -> None:
        self.buf, self.cap, self.bs, self.rows_shuffled = buf, cap, bs, rows_shuffled
        # Emitted when full: about half of it, a whole number of batches (all of it without
        # row shuffling: the buffer's batches are then contiguous).
        self.emit = min(cap, max(bs, (cap // 2) // bs * bs)) if rows_shuffled else cap
        self.emitted = False  # part of the data was trained on before the end of the stream
        self.filled = 0       # rows in buf[:filled] (before the first emission)
        self.free: np.ndarray | None = None  # after an emission: the slots to fill, in order
        self.nfree = 0        # free[len(free) - nfree:] are still empty

    def holds_all(self) -> bool:
        """Whether the buffer holds every sample of the epoch, none trained on yet."""
        return not self.emitted and self.free is None and self.filled > 0

    def put(self, rng: np.random.Generator, parts: tuple[Any, Any, Any]) -> Iterator[tuple[Any, Any, Any, Any, int]]:
        """A chunk into the buffer, making room by training on part of it when it is full."""
        buf = self.buf
        m, pos = len(parts[0]), 0
        while pos < m:
            space = self.cap - self.filled if self.free is None else self.nfree
            if space == 0:
                # Full, and more to come: train on part of it (all of it, unshuffled) to make
                # room. Not before: a buffer that holds all the data is trained on in one
                # random order, as an array would be.
                self.emitted = True
                if self.rows_shuffled:
                    # The rows order[:emit] (order spans the buffer, as the fused loss's batch
                    # loop wants it).
                    order = permutation(rng, self.cap)
                    yield buf[0], buf[1], buf[2], order, self.emit
                    # Refilled in ascending order: the same randomness (the next emission
                    # permutes the whole buffer), nearer writes.
                    self.free, self.nfree = np.sort(order[:self.emit]), self.emit
                else:
                    yield buf[0], buf[1], buf[2], None, self.cap
                    self.filled = 0
                continue
            take = min(m - pos, space)
            if self.free is None:
                where: Any = slice(self.filled, self.filled + take)
                self.filled += take
            else:
                start = len(self.free) - self.nfree
                where = self.free[start:start + take]
                self.nfree -= take
            for b, c in zip(buf, parts):
                if b is not None:
                    b[where] = c[pos:pos + take]
            pos += take

    def rest(self, rng: np.random.Generator, deficit: int, padded: bool) -> Iterator[tuple[Any, Any, Any, Any, int]]:
        """The end of the stream: what the buffer still holds, in a random order, padded by
        ``deficit`` samples (``padded``: the epoch must visit an agreed number of them)."""
        buf, bs = self.buf, self.bs
        if self.free is None:
            filled = self.filled
            if filled:
                order = permutation(rng, filled) if self.rows_shuffled and bs < filled else None
                # After an emission, the rows beyond `filled` are the last segment's, of
                # this epoch too: padding may take them.
                order, total = _padded(order, filled, self.cap if self.emitted else filled,
                                       filled + deficit if padded else None)
                all_rows = self.emitted and deficit > 0
                Xb, yb, wb = (None if b is None else b if all_rows else b[:filled] for b in buf)
                yield Xb, yb, wb, order, total
            return
        empty = self.free[len(self.free) - self.nfree:]
        occupied = np.ones(self.cap, bool)
        occupied[empty] = False
        slots = np.flatnonzero(occupied)
        order = np.concatenate([slots[permutation(rng, len(slots))], empty])
        total = len(slots) + deficit  # the empty slots hold rows of this epoch: padding may take them
        if total > len(order):
            order = np.resize(order, total)
        whole = total // bs * bs
        if whole:
            yield buf[0], buf[1], buf[2], order, whole
        if whole < total:
            # The short last batch, copied out (fewer than batch_size rows): the buffer's
            # empty slots must not be read as its tail.
            rest = order[whole:total]
            Xb, yb, wb = (None if b is None else b[rest] for b in buf)
            yield Xb, yb, wb, None, len(rest)


class _SparseShuffleBuffer:
    """The shuffle buffer of a stream of sparse (CSR) chunks: the chunks are kept as they
    come until they hold ``cap`` rows, which are then joined into one CSR matrix and trained
    on whole, in a random order of their rows (``rows_shuffled``), before the buffer starts
    again. (A dense buffer trains on half of itself and refills those rows in place; a CSR
    matrix has no rows to refill in place.) Memory: the buffer's rows, twice while they are
    joined."""

    def __init__(self, cap: int, bs: int, rows_shuffled: bool) -> None:
        self.cap, self.bs, self.rows_shuffled = cap, bs, rows_shuffled
        self.parts: list[tuple[Any, Any, Any]] = []
        self.filled = 0
        self.emitted = False

    def holds_all(self) -> bool:
        return not self.emitted and self.filled > 0

    def _joined(self, rows: int) -> tuple[Any, Any, Any]:
        """The first ``rows`` rows of the parts as one (X, y, w), the rest kept."""
        import scipy.sparse as sp

        taken: list[tuple[Any, Any, Any]] = []
        left = rows
        while left:
            X, y, w = self.parts[0]
            m = X.shape[0]
            if m <= left:
                taken.append(self.parts.pop(0))
                left -= m
            else:
                taken.append((X[:left], None if y is None else y[:left], None if w is None else w[:left]))
                self.parts[0] = (X[left:], None if y is None else y[left:], None if w is None else w[left:])
                left = 0
        self.filled -= rows
        Xb = sp.vstack([t[0] for t in taken], format="csr") if len(taken) > 1 else taken[0][0].tocsr()
        yb = None if taken[0][1] is None else np.concatenate([t[1] for t in taken])
        wb = None if taken[0][2] is None else np.concatenate([t[2] for t in taken])
        return Xb, yb, wb

    def put(self, rng: np.random.Generator, parts: tuple[Any, Any, Any]) -> Iterator[tuple[Any, Any, Any, Any, int]]:
        # (Copies: a transform may return views of arrays it reuses.)
        self.parts.append(tuple(None if a is None else a.copy() for a in parts))  # type: ignore[arg-type]
        self.filled += parts[0].shape[0]
        while self.filled > self.cap:  # full, and more to come
            self.emitted = True
            Xb, yb, wb = self._joined(self.cap)
            yield Xb, yb, wb, permutation(rng, self.cap) if self.rows_shuffled else None, self.cap

    def rest(self, rng: np.random.Generator, deficit: int, padded: bool) -> Iterator[tuple[Any, Any, Any, Any, int]]:
        filled = self.filled
        if not filled:
            return
        Xb, yb, wb = self._joined(filled)
        order = permutation(rng, filled) if self.rows_shuffled and self.bs < filled else None
        order, total = _padded(order, filled, filled, filled + deficit if padded else None)
        yield Xb, yb, wb, order, total


def _padded(order: np.ndarray | None, n: int, pool: int, pad_to: int | None) -> tuple[np.ndarray | None, int]:
    """A segment's ``(order, rows)`` padded to ``pad_to`` rows: ``order`` (or the first ``n``
    rows in order) continued by rows ``n..pool-1`` of the buffer, cyclically, as
    ``np.resize`` (``torch.utils.data.DistributedSampler``'s padding)."""
    if pad_to is None or pad_to <= n:
        return order, n
    base = np.arange(n) if order is None else order
    if pool > n:
        base = np.concatenate([base, np.arange(n, pool)])
    return np.resize(base, pad_to), pad_to


def as_stream(X: Any, y: Any = None, sample_weight: Any = None) -> ChunkStream:
    """``X`` as a :class:`ChunkStream` (itself if it is one; y and sample_weight then go in
    the chunks)."""
    if isinstance(X, ChunkStream):
        if y is not None or sample_weight is not None:
            raise ValueError("y and sample_weight go in the ChunkStream (its chunks, or its y and sample_weight "
                             "arguments); pass y=None and no sample_weight with it")
        return X.with_transform(X.transform)  # a buffer of this call's own
    if is_chunk_source(X):
        if y is not None or sample_weight is not None:
            raise ValueError("with chunks, y and sample_weight go inside each chunk ((X, y) or (X, y, "
                             "sample_weight) tuples); pass y=None and no sample_weight")
        return ChunkStream(X)
    return ChunkStream(X, y, sample_weight)
