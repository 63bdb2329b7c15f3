"""The batch source of :func:`fastgd.train`: which rows each step of an epoch reads.

An epoch is one or more :class:`Segment` s, each a stretch of batches over arrays the step
reads: for arrays, one segment over ``X`` (under MPI a short shard's order padded to the
largest shard's samples; with ``rows``, an order over those rows of ``X`` only); for a
stream of chunks, the shuffle buffer's segments (:meth:`fastgd.ChunkStream.segments`). Every
random draw of an epoch is made here, from the run's one generator, in a fixed order: that
order is what makes runs repeatable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastgd.shuffling import ShuffleMode, permutation
from fastgd.streaming import ChunkStream, as_stream, is_chunk_source
from fastgd.training._common import as_data, n_rows, positive_int

__all__ = ["Data", "Segment", "read_data", "batch_source"]


@dataclass
class Data:
    """train's data as given and checked: arrays (``X``, ``y``, ``sw``) or a ``stream``."""

    X: Any
    y: Any
    sw: np.ndarray | None
    n: int | None  # samples; a stream's only when counted (under MPI), else None
    stream: ChunkStream | None = None
    features: tuple[int, ...] | None = None  # a counted stream's sample shape
    rows: np.ndarray | None = None  # the rows of X trained on (int64), or None: all of them


@dataclass
class Segment:
    """A stretch of an epoch: batch ``k`` is rows ``order[k*bs:(k+1)*bs]`` (or rows
    ``k*bs..`` without ``order``) of ``X``, ``y``, ``sw``, for ``k`` in ``ks``, the visiting
    order; ``rows`` samples in all. ``batch_w``: every batch's total weight (for a loss that
    reads its rows in place, with weights); ``whole``: the one batch is all of ``X``."""

    X: Any
    y: Any
    sw: np.ndarray | None
    order: np.ndarray | None
    rows: int
    ks: np.ndarray
    batch_w: np.ndarray | None
    whole: bool


def read_data(X: Any, y: Any, sample_weight: Any, batch_size: Any, distributed: bool, rows: Any = None) -> Data:
    """Checks ``X``, ``y`` and ``sample_weight`` (or a source of chunks in ``X``, counted when
    ``distributed``: every rank must take the same number of steps), and ``rows``, the rows
    of ``X`` to train on (indices, None: all)."""
    if is_chunk_source(X):
        # Chunks (a ChunkStream, a list of (X, y) tuples, a callable or an iterator of them):
        # each epoch streams them through a shuffle buffer, in segments (fastgd.streaming).
        stream = as_stream(X, y, sample_weight)
        if batch_size is None:
            raise ValueError("batch_size=None (the whole data set in one step) needs the data in memory; give a "
                             "batch_size to stream chunks")
        positive_int("batch_size", batch_size)
        n, features = stream.count() if distributed else (None, None)
        return Data(None, None, None, n, stream, features)
    X = as_data(X)
    n = n_rows(X, "X")
    if n == 0:
        raise ValueError("X has no samples")
    if y is not None:
        y = as_data(y)
        if n_rows(y, "y") != n:
            raise ValueError(f"X has {n} samples but y has {n_rows(y, 'y')}")
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        if not (np.all(np.isfinite(sw)) and np.all(sw >= 0)):
            raise ValueError("sample_weight must be finite and >= 0")
    if rows is None:
        return Data(X, y, sw, n)
    r = np.asarray(rows)
    if r.ndim != 1 or r.dtype.kind not in "iu" or len(r) == 0:
        raise ValueError(f"rows must be a non-empty 1-D array of row indices, got {r.dtype} of shape {r.shape}")
    if r.min() < 0 or r.max() >= n:
        raise ValueError(f"rows: indices must be in [0, {n}) (the rows of X)")
    return Data(X, y, sw, len(r), rows=np.ascontiguousarray(r, dtype=np.int64))


def batch_weights(sw: np.ndarray, order: np.ndarray | None, n: int, bs: int) -> np.ndarray:
    """Every batch's total weight for train_loss at once (no gather per batch)."""
    return np.add.reduceat(sw[:n] if order is None else sw[order[:n]], np.arange(0, n, bs), dtype=np.float64)


def _visiting_order(rng: np.random.Generator, shuffle: ShuffleMode, n_batches: int, in_order: np.ndarray) -> Any:
    return rng.permutation(n_batches) if shuffle == "batches" and n_batches > 1 else in_order


class ArrayBatches:
    """An epoch over arrays: one segment. ``shuffle=True`` draws the samples' permutation
    (into one buffer, rewritten every epoch), ``"batches"`` the batches' order; a short shard
    (``n_epoch`` > its ``n`` rows, under MPI) is padded with the first samples of its order
    again."""

    def __init__(self, data: Data, bs: int, n_epoch: int, shuffle: ShuffleMode, gather: bool) -> None:
        self.data, self.bs, self.n_epoch, self.shuffle = data, bs, n_epoch, shuffle
        self.weights = not gather and data.sw is not None
        self.in_order = np.arange(-(-n_epoch // bs))
        self.perm: np.ndarray | None = None  # the permutation's buffer, made on the first epoch

    def epoch(self, rng: np.random.Generator) -> Iterator[Segment]:
        d, n, n_epoch, bs = self.data, int(self.data.n or 0), self.n_epoch, self.bs
        order = None
        if self.shuffle is True and bs < n:
            if self.perm is None:
                self.perm = np.empty(n, np.int64)
            order = permutation(rng, n, self.perm)
        if d.rows is not None:  # positions in the subset -> rows of X (the same draws as a compact copy)
            order = d.rows if order is None else d.rows[order]
        if n_epoch != n:
            order = np.resize(np.arange(n) if order is None else order, n_epoch)
        ks = _visiting_order(rng, self.shuffle, len(self.in_order), self.in_order)
        batch_w = batch_weights(d.sw, order, n_epoch, bs) if self.weights and d.sw is not None else None
        yield Segment(d.X, d.y, d.sw, order, n_epoch, ks, batch_w, bs == n and order is None)


class StreamBatches:
    """An epoch over a stream: its shuffle buffer's segments, one after the other, each
    trained on before the next is read (they are views of the buffer). ``pad_to``: the
    samples every rank's epoch visits (under MPI)."""

    def __init__(self, stream: ChunkStream, bs: int, shuffle: ShuffleMode, gather: bool,
                 pad_to: int | None) -> None:
        self.stream, self.bs, self.shuffle, self.gather, self.pad_to = stream, bs, shuffle, gather, pad_to

    def epoch(self, rng: np.random.Generator) -> Iterator[Segment]:
        bs = self.bs
        for X, y, sw, order, n in self.stream.segments(rng, bs, self.shuffle, pad_to=self.pad_to):
            n_batches = -(-n // bs)
            ks = _visiting_order(rng, self.shuffle, n_batches, np.arange(n_batches))
            batch_w = batch_weights(sw, order, n, bs) if not self.gather and sw is not None else None
            yield Segment(X, y, sw, order, n, ks, batch_w, bs == n and order is None)


def batch_source(data: Data, batch_size: int | None, n_epoch: int | None, shuffle: ShuffleMode, gather: bool,
                 distributed: bool) -> tuple[ArrayBatches | StreamBatches, int]:
    """The epochs' source and the batch size: ``batch_size`` (None: the whole set, one step
    per epoch), at most the samples an epoch visits, ``n_epoch`` (the largest shard's under
    MPI)."""
    if data.stream is not None:
        bs = int(batch_size or 0)
        # Under MPI every epoch is padded to the largest stream's number of samples.
        return StreamBatches(data.stream, bs, shuffle, gather, n_epoch if distributed else None), bs
    n_epoch = int(n_epoch or 0)
    bs = int(data.n or 0) if batch_size is None else min(batch_size, n_epoch)
    return ArrayBatches(data, bs, n_epoch, shuffle, gather), bs
