"""The driver of :func:`fastgd.train`: its arguments checked, then epochs over four parts,
each with one job (see :mod:`fastgd.training`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from fastgd.distributed import DistributedOptimizer, agree_on_failures, shard_plan
from fastgd.history import History
from fastgd.optim.registry import check_options, get_optimizer
from fastgd.shuffling import check_shuffle
from fastgd.stopping import AnyOf
from fastgd.streaming import is_chunk_source
from fastgd.training._batches import Segment, batch_source, read_data
from fastgd.training._common import LossAndGrad, param_list, positive_int
from fastgd.training._guard import Diverged, Guard
from fastgd.training._record import Progress, Record, Validation, resume_point
from fastgd.training._steps import FusedStretch, PythonStep, fused_stretch

__all__ = ["train"]


@agree_on_failures
def train(loss_and_grad: LossAndGrad, params: Sequence[np.ndarray] | np.ndarray, X: Any, y: Any, *,
          optimizer: Any = "adam", lr: Any = 1e-3, batch_size: int | None = None, max_epochs: int | None = 100,
          shuffle: bool | str = True, random_state: Any = None, sample_weight: Any = None,
          validation_data: tuple[Any, Any] | None = None, loss_fn: Callable | None = None,
          metric: Callable | None = None, stopping: Any = (), callbacks: Any = (),
          post_step: Callable[[list, float], None] | None = None, verbose: bool = False,
          optimizer_options: dict[str, Any] | None = None, explode_factor: float | None = 1e6,
          gather: bool = True, state: dict[str, Any] | None = None, comm: Any = None,
          rows: Any = None) -> History:
    r"""Minimize a loss over mini-batches of ``(X, y)``, updating ``params`` in place.

    Each epoch visits every sample once, in batches of ``batch_size`` (``None``: the whole
    set, one step per epoch; the last batch may be smaller). ``shuffle`` says in which order:

    * ``True``: each epoch takes a new permutation of the samples, and batch ``k`` is the
      ``k``-th run of ``batch_size`` samples of it. Every batch is a fresh random sample, but
      its rows come from all over ``X``: each is a cache miss (a gather, or a read by index).
    * ``"batches"``: the contiguous batches ``X[k*batch_size:(k+1)*batch_size]`` are visited
      in a new random order each epoch. Every batch is a contiguous range of rows, read in
      order (no index array, no gather), so an epoch reads ``X`` at the speed of memory. The
      trade-off: a batch keeps its composition from epoch to epoch (only the order of the
      steps changes), which is fine when the rows are in no particular order (shuffled once,
      as ``train_test_split`` or ``make_classification`` leave them), and biased when they
      are sorted by class, time or source: then use ``True`` (or shuffle ``X`` once first).
    * ``False``: the batches in order, the same every epoch.

    Both random modes draw from one ``np.random.default_rng(random_state)`` for the whole run,
    so a fixed ``random_state`` gives bit-identical runs. (Full-batch epochs are never permuted:
    the order of a sum cannot matter beyond rounding.) Per batch :math:`B`:

    .. math:: (\ell_B, g) = \text{loss\_and\_grad}(\theta, X_B, y_B, w_B), \qquad
              \theta \leftarrow \text{optimizer step}(\theta, g)

    Args:
        loss_and_grad: ``(params, X_batch, y_batch, w_batch) -> (loss, grads)``, grads a list
            aligned with ``params``; ``w_batch`` is ``None`` without ``sample_weight``.
            It should return the (weighted) *mean* loss of the batch.
        params: float32/float64 arrays, updated in place.
        X, y: samples along the first axis (``y`` may be ``None``); NumPy arrays or anything
            indexable by an array of rows (scipy.sparse CSR; a memmap is read in place, batch
            by batch). Or, for data larger than memory, ``X`` a source of chunks and ``y``
            None: a :class:`fastgd.ChunkStream`, a list of ``(X_chunk, y_chunk)`` or
            ``(X_chunk, y_chunk, w_chunk)`` tuples, a callable returning a fresh iterator of
            them (once per epoch) or a one-shot iterator (one epoch). Each epoch streams them
            through a shuffle buffer (see :mod:`fastgd.streaming`: ``shuffle`` then mixes
            within the buffer); ``batch_size`` must be given, and ``sample_weight`` goes in
            the chunks.
        optimizer: a name (``"adam"``, ``"sgd"``, ``"momentum"``... see
            :func:`fastgd.optim.get_optimizer`), an Optimizer class, or an Optimizer instance
            over ``params``; an instance keeps its state from call to call (``partial_fit``)
            and its own ``lr`` (``lr`` and ``optimizer_options`` then do not apply).
        lr: learning rate, a float or a schedule (a callable of the step, fastgd.schedules).
        max_epochs: at most this many epochs (``None``: no limit, then ``stopping`` must stop).
        sample_weight: one weight >= 0 per sample, passed along with each batch.
        validation_data: ``(X_val, y_val)``, scored after each epoch by ``loss_fn``
            (default: ``loss_and_grad(params, X_val, y_val, None)[0]``) and ``metric``, both
            ``(params, X_val, y_val) -> float``.
        stopping: a criterion or a list of them (:mod:`fastgd.stopping`); training stops when
            any one says so.
        callbacks: callables ``cb(history, params)`` run after each epoch; one that returns
            True stops training.
        post_step: ``post_step(params, lr)`` after every optimizer step (e.g. an L1 proximal
            step), ``lr`` the learning rate that step used.
        verbose: a progress bar over epochs (tqdm if installed, else one line per epoch).
        optimizer_options: more options for the optimizer (``{"clip_norm": 1.0}``...).
        gather: ``False`` hands the batch over as row numbers instead of copied rows:
            ``loss_and_grad(params, X, y, sample_weight, rows)`` with the whole ``X``, ``y``
            and ``sample_weight`` and ``rows`` the batch's rows, a slice or an int64 index
            array (a view of the epoch's permutation, whose buffer the next epoch rewrites:
            copy it to keep it). A loss that reads the rows in place
            (the linear models' fused kernel) then costs no copy per batch. Such a loss may
            also take whole stretches of an epoch in one call (a ``run_batches`` method, see
            ``fastgd.training._steps.FusedStretch``: the linear models' objective runs this
            loop's body in C++, with the same bits), which train uses when nothing runs in
            Python between steps: no ``post_step`` and no stopping criterion with a
            ``check_step``.
        rows: train on these rows of ``X`` only (an integer index array), read where they are:
            the same batches, draws and bits as training on the copy ``X[rows]``,
            ``y[rows]``, ``sample_weight[rows]``, without making it (``y`` and
            ``sample_weight`` are indexed like ``X``). Arrays only (not a stream).
        state: a dict through which a run can be continued exactly (checkpoints). train keeps
            ``state["first_gnorm"]`` (the first step's gradient norm, the reference of
            ``explode_factor``) up to date before the callbacks run each epoch. Given
            ``state["history"]`` (the History of the run so far), train continues that run:
            epochs and steps are numbered on from it, ``max_epochs`` counts its epochs too, the
            stopping criteria see it, and the returned History holds its records followed by the
            new ones. For the same bits as an uninterrupted run, pass the run's random generator
            as ``random_state`` (as it was at the end of the last epoch) and its optimizer.
        comm: an MPI communicator (mpi4py) for data-parallel training: every rank calls
            train with the same arguments except the data, ``X``, ``y``, ``sample_weight``
            (and ``validation_data``) being its own shard. The optimizer is wrapped in a
            :class:`fastgd.distributed.DistributedOptimizer` (``params`` broadcast from rank
            0, every step on the mean of the ranks' gradients; a DistributedOptimizer may also
            be passed as ``optimizer``), so the ranks stay identical. Every rank takes the same
            number of steps per epoch, that of the largest shard: a smaller shard is padded
            with its own first samples of the epoch's order again, as
            ``torch.utils.data.DistributedSampler`` pads (nothing is dropped), so that every
            step averages batches of the same size. (``batch_size=None``: one step per epoch
            on each rank's whole shard, the ranks' mean gradients averaged with equal weights.)
            The history is global: ``train_loss`` the weighted mean over all ranks' batches,
            ``val_loss`` and ``val_metric`` the means of the ranks' values weighted by their
            validation shards' sizes (exact for a mean over samples, such as accuracy; for R^2
            an approximation), ``grad_norm`` the norm of the averaged gradient; the
            divergence checks and the stopping decisions (criteria and callbacks: one that
            returns True on any rank stops all) are the same on every rank. A loss with a
            ``run_batches`` method keeps it for an array shard, with the reduction called from
            inside it between the gradient and the step (see
            ``fastgd.training._steps.FusedStretch``: the same bits as this loop).
            Only rank 0 shows the progress bar. A rank's shard may be a stream of chunks (each
            rank streams its own through its own shuffle buffer): the ranks agree on the largest stream's
            number of samples (from the stream's count, or one counting pass over the chunks
            first; a one-shot iterator cannot be counted), and each epoch pads a shorter
            stream's last segment with samples that its buffer holds again (see
            :meth:`fastgd.ChunkStream.segments`; with a buffer that holds the whole shard,
            the same padding, and the same bits, as the shard as an array).
            An exception on one rank (in ``loss_and_grad``, a callback, ``post_step``, a
            ``KeyboardInterrupt``) is raised there and reaches every other rank at its next
            exchange with the others, where it raises a RuntimeError naming the failed rank
            and its error: no rank is left waiting (see :mod:`fastgd.distributed`).

    Returns:
        A :class:`fastgd.History`: one record per epoch with ``train_loss`` (the
        sample-weighted mean of the epoch's batch losses, taken before each step),
        ``val_loss``, ``val_metric``, ``lr`` (of the epoch's last step), ``grad_norm`` (2-norm
        of the last batch's gradients), ``step`` (steps so far in this run) and ``time``;
        ``history.stop_reason`` says why training stopped, ``history.restored_epoch`` which
        epoch's parameters a criterion (EarlyStopping) put back at the end, if any.

    Divergence: when a batch loss or the gradient norm is NaN or infinite, or the gradient norm
    explodes to more than ``explode_factor`` times the first step's (``None``: never), the step
    is not kept; when a parameter is not finite at the end of an epoch, likewise. (With the
    optimizer's ``clip_norm``, its step computes the norm and train reads it from
    ``last_grad_norm`` rather than computing it twice; a step not kept is then undone with the
    rest of its epoch.) Then
    ``params`` and the optimizer's state go back to the end of the last complete epoch (the
    initial values in the first epoch),
    ``stop_reason`` starts with ``"diverged"`` and a :class:`DivergenceWarning` is issued.
    The diverging epoch is not recorded.
    """
    params = param_list(params)
    distributed = comm is not None or isinstance(optimizer, DistributedOptimizer)
    if rows is not None and is_chunk_source(X):
        raise ValueError("rows selects rows of an array X; a stream of chunks has none to select")
    data = read_data(X, y, sample_weight, batch_size, distributed, rows)
    batch_size = positive_int("batch_size", batch_size, allow_none=True)
    shuffle = check_shuffle(shuffle)
    max_epochs = positive_int("max_epochs", max_epochs, allow_none=True)
    if explode_factor is not None and not explode_factor > 1:
        raise ValueError(f"explode_factor must be > 1 or None, got {explode_factor}")
    criteria = AnyOf(*([stopping] if hasattr(stopping, "check") else list(stopping)))
    if max_epochs is None and not criteria.criteria:
        raise ValueError("max_epochs=None needs a stopping criterion, or training would never end")
    callbacks = [callbacks] if callable(callbacks) else list(callbacks)
    validation = None if validation_data is None else Validation(validation_data, loss_fn, metric, loss_and_grad,
                                                                 gather)
    dist = optimizer if isinstance(optimizer, DistributedOptimizer) else None
    check_options(optimizer, optimizer_options or {}, "train(optimizer_options=...)", what="optimizer option")
    opt = dist.optimizer if dist is not None else get_optimizer(optimizer, params, lr, **(optimizer_options or {}))
    n_epoch = data.n  # samples per epoch: n, or the largest shard's under comm (short shards padded)
    if distributed:
        assert data.n is not None  # read_data counts a stream when distributed
        dist, n_epoch = shard_plan(comm, dist, opt, data.X, data.n, batch_size, max_epochs, shuffle,
                                   validation is not None, features=data.features)
        opt = dist
    source, bs = batch_source(data, batch_size, n_epoch, shuffle, gather, dist is not None)
    rng = np.random.default_rng(random_state)
    history, epoch, step, first_gnorm = resume_point(state)
    criteria.reset()
    guard = Guard(params, opt, explode_factor, first_gnorm)
    progress = Progress(max_epochs) if verbose and (dist is None or dist.rank == 0) else None
    record = Record(params, history, step, criteria, callbacks, validation, dist, state, progress)
    python_step = PythonStep(loss_and_grad, params, opt, dist, bs, gather, post_step, guard, record)
    fused = fused_stretch(loss_and_grad, gather, post_step, criteria, data.stream is not None and dist is not None,
                          params=params, opt=opt, dist=dist, bs=bs, guard=guard, record=record)
    reason: str | None = None
    try:
        while reason is None and (max_epochs is None or epoch < max_epochs):
            epoch += 1
            record.start_epoch()
            reason, diverged = _epoch(source.epoch(rng), python_step, fused, criteria, record)
            diverged = diverged or guard.params_finite(record.step)
            if diverged:
                reason = guard.rollback(epoch, diverged)
                break
            reason = record.end_epoch(epoch, reason, guard.first_gnorm)
            if reason is None:
                guard.save()
        if reason is None:
            reason = f"reached max_epochs={max_epochs}"
        criteria.on_train_end(params)
    finally:
        record.close(reason)
        if dist is not None and not isinstance(optimizer, DistributedOptimizer):
            dist.detach()  # the optimizer train wrapped reads its gradients unscaled again
    if dist is not None:
        dist.ranks_ok()  # a rank that failed after the last exchange (a callback, the end) still reaches the others
    history.stop_reason = reason
    history.restored_epoch = criteria.restored_epoch
    return history


def _epoch(segments: Iterator[Segment], step: PythonStep, fused: FusedStretch | None, criteria: AnyOf,
           record: Record) -> tuple[str | None, Diverged | None]:
    """One epoch's batches, segment by segment: whole stretches by the fused step where it
    can, the others one by one in Python. Returns a criterion's reason to stop after a step,
    or what diverged (at most one of them)."""
    for seg in segments:
        i, count = 0, len(seg.ks)
        while i < count:
            if fused is not None:
                i += fused.run(seg, i)
                if i == count:
                    break
            diverged = step.take(seg, seg.ks[i])
            i += 1
            if diverged:
                return None, diverged
            reason = criteria.check_step(record.step)
            if reason:
                return reason, None
    return None, None
