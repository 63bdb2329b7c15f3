r"""Data-parallel training over MPI (mpi4py): every process (rank) holds the same parameters,
computes gradients on its own shard of the data, and every step applies the mean of the
ranks' gradients, so that the ranks stay identical.

::

    from mpi4py import MPI
    import fastgd as fg
    from fastgd.distributed import DistributedOptimizer

    opt = DistributedOptimizer(fg.Adam(params, lr=1e-3))   # params broadcast from rank 0
    for X_b, y_b in my_shard_batches:
        loss = loss_and_grad_into(params, X_b, y_b, out=opt.grads)  # write into the buffer
        opt.step()                                  # one Allreduce per dtype, then the step

Run under MPI: ``mpiexec -n 2 python script.py`` (or ``python -m mpi4py script.py``).

**One rank's error is every rank's.** In :func:`fastgd.train` and the estimators' ``fit``
with ``comm``, an exception on one rank (in the loss, a callback, a checkpoint write, a
``KeyboardInterrupt``) never leaves the others waiting in a collective call for it: the rank
that failed joins the next exchange the others make with a "failed" flag (every exchange
during training carries one, see :class:`DistributedOptimizer`), then raises its own
exception, and the others raise a RuntimeError naming it. A rank that fails inside the
gradient reduction itself, where the others cannot be told, prints its error and calls
``comm.Abort(1)``. After such an exception, whatever the launch, one that goes uncaught
prints its traceback and ends the job (``comm.Abort(1)``, as ``python -m mpi4py`` does)
instead of hanging in ``MPI_Finalize``.

mpi4py is imported here only (``pip install "fastgd[mpi]"``); the rest of fastgd never needs it.
"""

from __future__ import annotations

import contextvars
import functools
import math
import os
import sys
import time
import traceback
import zlib
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fastgd import _core
from fastgd.optim._base import Optimizer

__all__ = ["DistributedOptimizer", "world", "agree_on_errors", "agree_on_failures", "abort_if_uncaught",
           "ending_job_if_uncaught", "rank_sum", "shard_plan", "STATUS_WIDTH"]

REDUCTIONS = ("auto", "allreduce", "reduce_bcast")


_MPI: Any = None


def _mpi() -> Any:
    """mpi4py's MPI module, imported on first use (and kept: a step asks for it)."""
    global _MPI
    if _MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise ImportError("fastgd.distributed needs mpi4py and an MPI library: pip install \"fastgd[mpi]\" "
                              "(mpi4py and MPICH's binary wheel)") from e
        _MPI = MPI
    return _MPI


def world(comm: Any = None) -> Any:
    """``comm``, or ``MPI.COMM_WORLD`` when it is None."""
    return _mpi().COMM_WORLD if comm is None else comm


def _error_text(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class agree_on_errors:
    """A block that every rank of ``comm`` runs, after which all ranks agree on whether it
    failed: a rank whose block raised re-raises its exception, and the others raise ``error``
    (ValueError: an argument error on some ranks is an error on all of them) naming the
    failed rank and its error, instead of going on to a collective call that the failed rank
    will never join (a hang). One ``allgather`` of a short message.

    ``comm=None`` is a no-op (the single-process path)."""

    def __init__(self, comm: Any, what: str = "", error: type[Exception] = ValueError) -> None:
        self.comm, self.what, self.error = comm, what, error

    def __enter__(self) -> agree_on_errors:
        return self

    def __exit__(self, et: Any, e: Any, tb: Any) -> Literal[False]:
        if self.comm is None:
            return False
        messages = self.comm.allgather(None if e is None else _error_text(e))
        if e is not None:
            return False  # the failed rank raises its own error
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        if failed:
            r, m = failed[0]
            where = f" in {self.what}" if self.what else ""
            raise self.error(f"rank {r} of {len(messages)} failed{where}: {m}")
        return False


class ending_job_if_uncaught:
    """A block (a data-parallel ``fit``) after whose exception, on any rank, an exception that
    nothing catches ends the job: see :func:`abort_if_uncaught`. ``comm=None``: a no-op."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def __enter__(self) -> ending_job_if_uncaught:
        return self

    def __exit__(self, et: Any, e: Any, tb: Any) -> Literal[False]:
        if e is not None and self.comm is not None:
            abort_if_uncaught(self.comm)
        return False


_abort_comm: list[Any] = []  # the communicator that abort_if_uncaught's hook aborts, once set


def abort_if_uncaught(comm: Any) -> None:
    """From now on, an exception that nothing catches prints its traceback (through the
    previous ``sys.excepthook``) and then calls ``comm.Abort(1)``, which ends every rank,
    instead of leaving this process in ``MPI_Finalize`` and the others in a collective call
    that it will not join: what ``python -m mpi4py`` does, for a plain ``python`` launch.
    train and fit set it when an exception leaves them under MPI (the healthy ranks' too:
    the rank that failed may catch its error and go on to a collective call)."""
    if not _abort_comm:
        previous = sys.excepthook

        def hook(et: Any, e: Any, tb: Any) -> None:
            previous(et, e, tb)
            comm = _abort_comm[-1]
            _end_job(comm, f"fastgd: rank {comm.Get_rank()} of {comm.Get_size()}: an uncaught exception after a "
                           "failed data-parallel call; ending every rank (comm.Abort(1))\n")

        sys.excepthook = hook
        _abort_comm.append(comm)
    _abort_comm[-1] = comm


# How long a rank that ends the job waits between writing its error and MPI_Abort: the
# launcher forwards each rank's output through pipes, and the processes it kills on an
# Abort (this one among them) can take unread output with them.
ABORT_GRACE_SECONDS = 0.5


def _end_job(comm: Any, message: str) -> None:
    """``message`` on stderr, then ``comm.Abort(1)``. MPI's Abort is a "best attempt" that
    may return before the launcher ends the processes (MPICH's does): this one then leaves at
    once, rather than run on (its caller's code, or an ``MPI_Finalize`` that would wait)."""
    sys.stderr.write(message)
    sys.stderr.flush()
    sys.stdout.flush()
    time.sleep(ABORT_GRACE_SECONDS)
    comm.Abort(1)
    os._exit(1)


def _abort(comm: Any, e: BaseException) -> None:
    """Print ``e`` and end every rank: for an error where the others cannot be told."""
    _end_job(comm, "".join(traceback.format_exception(type(e), e, e.__traceback__))
             + f"fastgd: rank {comm.Get_rank()} of {comm.Get_size()} failed inside a collective call of train, "
             "where the other ranks cannot learn of it; ending every rank (comm.Abort(1))\n")


# Every exchange of train's loop (a "status point": the step's reduction of its loss and batch
# weight, the validation means, the stop votes, the end of train) is an Allgather of this many
# float64 per rank, the last one the rank's status (0 ok, 1 failed). A rank that failed
# between two of them joins whichever comes next the same way, without knowing which.
STATUS_WIDTH = 4


class _RemoteTraceback(Exception):
    """The failed rank's traceback, as the cause of the other ranks' RuntimeError (so that it
    is shown where they print theirs; as concurrent.futures shows a worker's)."""

    def __str__(self) -> str:
        return str(self.args[0])


def _join_as_failed(comm: Any, e: BaseException) -> None:
    """The failed rank's part of the next status point, then of the exchange of messages."""
    mine = np.full(STATUS_WIDTH, math.nan)
    mine[-1] = 1.0
    comm.Allgather(mine, np.empty((comm.Get_size(), STATUS_WIDTH)))
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    comm.allgather((_error_text(e), f"\n\"\"\"\n{tb}\"\"\""))


def _raise_failed(comm: Any) -> None:
    """A healthy rank's part once a status point showed a failed rank: the exchange of
    messages, then a RuntimeError naming the (first) failed rank and its error."""
    messages = comm.allgather(None)
    call = _train_call.get()
    if call is not None:
        call.phase = "done"
    r, (text, tb) = next((r, m) for r, m in enumerate(messages) if m is not None)
    raise RuntimeError(f"rank {r} of {len(messages)} failed in train: {text}; every rank stops") \
        from _RemoteTraceback(tb)


class _TrainCall:
    """One train call under MPI, as far as a failure on this rank is concerned. ``phase``:

    * ``"early"``: before its first collective call (a failed rank joins it with its error);
    * ``"setup"``: while it agrees on its arguments and wraps the optimizer (what fails there
      fails on every rank alike);
    * ``"armed"``: in its loop, outside fastgd's collective calls (a failed rank joins the
      next status point);
    * ``"collective"``: from the start of a status point to its end, for the step's one to
      the end of the gradient reduction that follows it. An exception there (one raised in
      the reduction, a KeyboardInterrupt that arrived while it waited) leaves this rank
      where it cannot tell which call the others are in: it aborts the job;
    * ``"done"``: every rank knows of a failure, or train's last exchange has passed (then a
      failure concerns this rank only)."""

    def __init__(self, comm: Any) -> None:
        self.comm, self.phase = comm, "early"

    def failed(self, e: BaseException) -> None:
        """This rank's part of the failure ``e``, before it raises ``e``."""
        if self.phase == "early":
            self.comm.allgather(("error", _error_text(e)))  # shard_plan's allgather
        elif self.phase == "armed":
            self.phase = "collective"
            _join_as_failed(self.comm, e)
            self.phase = "done"
        elif self.phase == "collective":
            _abort(self.comm, e)


# The train call under way (under MPI), for its status points and its failures.
_train_call: contextvars.ContextVar[_TrainCall | None] = contextvars.ContextVar("fastgd_train_call", default=None)


def agree_on_failures(train: Any) -> Any:
    """Decorates fastgd.train: under ``comm`` (or a DistributedOptimizer), an exception on
    some ranks reaches every rank instead of leaving the others waiting for them (see the
    module docstring). Raised before train's first collective call (its argument checks: a
    bad ``sample_weight`` on one rank's shard, say), the failed ranks join that call with
    their error and the others raise a ValueError naming one; raised in the loop, the failed
    ranks join the next status point and the others raise a RuntimeError naming one. Then
    :func:`abort_if_uncaught`. Without ``comm`` it calls train as it is."""

    @functools.wraps(train)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        optimizer: Any  # a DistributedOptimizer whenever comm is None past the first check
        comm, optimizer = kwargs.get("comm"), kwargs.get("optimizer")
        if comm is None and not isinstance(optimizer, DistributedOptimizer):
            return train(*args, **kwargs)
        call = _TrainCall(world(optimizer.comm if comm is None else comm))
        token = _train_call.set(call)
        try:
            return train(*args, **kwargs)
        except BaseException as e:
            call.failed(e)
            abort_if_uncaught(call.comm)
            raise
        finally:
            _train_call.reset(token)

    return wrapper


def rank_sum(comm: Any, values: Any) -> np.ndarray:
    """The sum over the ranks of a few float64 numbers, with the same bits on every rank
    (an ``Allgather``, then the sum in rank order on each): for the scalars that decisions
    depend on (losses and their weights), which must not differ by a rounding between ranks."""
    mine = np.array(values, dtype=np.float64).reshape(-1)
    everyone = np.empty((comm.Get_size(), mine.size), dtype=np.float64)
    comm.Allgather(mine, everyone)
    total = everyone[0].copy()
    for row in everyone[1:]:
        total += row
    return total


def shard_plan(comm: Any, dist: DistributedOptimizer | None, optimizer: Optimizer, X: Any, n: int,
               batch_size: int | None, max_epochs: int | None, shuffle: Any,
               validation: bool, features: tuple[int, ...] | None = None) -> tuple[DistributedOptimizer, int]:
    """fastgd.train's set-up under ``comm``: checks that the ranks agree on what must be
    the same (the features' shape, batch_size, max_epochs, shuffle, validation or not: a
    ValueError on every rank otherwise), wraps ``optimizer`` (unless ``dist`` is given) and
    returns it with the number of samples an epoch visits on every rank: the largest
    shard's (``batch_size=None``: each rank's own, one step per epoch). ``features``: a
    sample's shape when ``X`` is not an array (a stream's), else ``X.shape[1:]``."""
    if dist is not None:
        if comm is not None and comm is not dist.comm:
            raise ValueError("train: comm is not the communicator of the DistributedOptimizer given as optimizer")
        comm = dist.comm
    comm = world(comm)
    if features is None:
        features = tuple(getattr(X, "shape", ())[1:])
    mine = {"features": tuple(features), "batch_size": batch_size, "max_epochs": max_epochs,
            "shuffle": shuffle, "validation_data": validation}
    call = _train_call.get()
    if call is not None:
        call.phase = "setup"
    gathered = comm.allgather(("ok", mine, int(n)))
    for r, (tag, *rest) in enumerate(gathered):
        if tag == "error":
            raise ValueError(f"rank {r} of {len(gathered)} failed in train: {rest[0]}")
    everyone = [tuple(rest) for _, *rest in gathered]
    for r, (theirs, _) in enumerate(everyone):
        for key in mine:
            first = everyone[0][0][key]
            if theirs[key] != first:
                what = "X's shape beyond the samples" if key == "features" else key
                raise ValueError(f"train(comm=...): the ranks disagree on {what}: rank 0 has {first!r}, rank {r} "
                                 f"has {theirs[key]!r}; every rank must pass the same arguments, only its own shard "
                                 "of the data")
    if dist is None:
        dist = DistributedOptimizer(optimizer, comm)
    if call is not None:
        call.phase = "armed"  # from here on, a rank that fails joins the next status point
    n_epoch = n if batch_size is None else max(k for _, k in everyone)
    return dist, n_epoch


class DistributedOptimizer:
    r"""Data-parallel training: ``optimizer``'s step on the mean of the ranks' gradients.

    With :math:`N` ranks, each with its gradients :math:`g_r` (of its own mini-batch), every
    step is

    .. math:: g = \frac{1}{N} \sum_{r=0}^{N-1} g_r, \qquad
              \theta \leftarrow \text{optimizer's update}(\theta, g)

    on every rank, with the wrapped rule's exact update (its clipping by norm or value, its
    ``nonfinite`` handling and ``last_grad_norm`` all see the averaged :math:`g`), so every
    rank takes (or skips) the same steps and keeps the same parameters. These are the
    semantics of ``torch.nn.parallel.DistributedDataParallel`` (gradients averaged by an
    all-reduce during backward, then an ordinary ``optimizer.step()``) and of Horovod's
    ``hvd.DistributedOptimizer`` (``op=hvd.Average``; ``synchronize()`` then ``step()``).
    With mini-batches of equal size :math:`b` on every rank, :math:`g` is the gradient of the
    mean loss over the global batch of :math:`N b` samples.

    At construction the parameters are broadcast from rank 0 (``Bcast`` in place), after
    checking that every rank has the same number of parameters with the same shapes and
    dtypes (a ValueError on every rank otherwise, never a hang).

    **The gradient buffer.** ``grads`` is a list of arrays aligned with the parameters, views
    of one flat buffer per dtype. A loss that writes its gradients into them costs no copy:
    ``step()`` then does one in-place ``Allreduce(IN_PLACE, buffer, SUM)`` per dtype. The
    division by :math:`N` costs no pass either: it is a factor of the step's read of the
    gradients (the same fused transform as clipping by norm), so after a step ``grads``
    holds the *sum* over the ranks. ``step(grads)`` with other arrays copies them into the
    buffer first (one read and one write of every gradient: small next to the Allreduce, but
    avoidable); arrays that are the views themselves are not copied.

    **Identical bits on every rank.** With ``reduction="allreduce"`` the sum is MPI's
    ``Allreduce``; with 2 ranks each element is one addition ``a + b``, which is commutative,
    so both ranks get the same bits. The MPI standard does not promise that an Allreduce
    over more ranks gives every rank the same bits (an implementation may sum in a different
    order on each, e.g. recursive doubling). ``reduction="reduce_bcast"`` sums on rank 0
    only (``Reduce``) and broadcasts that result (``Bcast``): the same bits everywhere, for
    any number of ranks, at about twice the latency. ``"auto"`` (default) takes
    ``"allreduce"`` for up to 2 ranks and ``"reduce_bcast"`` beyond, so that the ranks never
    drift apart nor decide differently (stop, skip a step) by a rounding. Beyond the sum, the
    ranks run the same kernels on the same inputs, so they stay bit-identical provided each
    one runs the same fastgd build at the same SIMD level (the environment variable ``FASTGD_ISA`` forces one
    on mixed hardware); :meth:`in_sync` checks it.

    **A failure on one rank.** :meth:`synchronize_step`, :meth:`global_means`,
    :meth:`any_rank` and :meth:`ranks_ok`, the exchanges of fastgd.train's loop, each carry
    every rank's status: a rank that failed joins the next one as "failed", and every rank
    raises (see :meth:`ranks_ok`) instead of waiting for it.

    Everything else (``param_groups``, ``state``, ``state_dict``/``load_state_dict``,
    schedules, ``skipped_steps``, ``last_grad_norm``) is the wrapped optimizer's, read and
    written through this object. While wrapped, the optimizer reads its gradients scaled by
    :math:`1/N`; :meth:`detach` gives it back as it was.

    Attributes:
        optimizer: the wrapped fastgd Optimizer.
        comm, rank, size: the communicator, this process's rank and the number of ranks.
        grads: the gradient buffer's views, aligned with the parameters.
        comm_seconds: wall time spent in the gradient reduction so far (for benchmarks).
        comm_calls: the number of reductions so far.
    """

    def __init__(self, optimizer: Optimizer, comm: Any = None, *, reduction: str = "auto") -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a fastgd Optimizer instance, got {type(optimizer).__name__}")
        if not (isinstance(reduction, str) and reduction in REDUCTIONS):
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        comm = world(comm)
        if reduction == "auto":
            reduction = "allreduce" if comm.Get_size() <= 2 else "reduce_bcast"
        self.__dict__.update(optimizer=optimizer, comm=comm, rank=comm.Get_rank(), size=comm.Get_size(),
                             reduction=reduction, comm_seconds=0.0, comm_calls=0)
        params = optimizer.params
        signature = [(tuple(p.shape), p.dtype.str) for p in params]
        signatures = comm.allgather(signature)
        for r, s in enumerate(signatures):
            if s != signatures[0]:
                raise ValueError(f"DistributedOptimizer: the parameters differ between ranks: rank 0 has "
                                 f"{_describe(signatures[0])}, rank {r} has {_describe(s)}; every rank must "
                                 "build the same model")
        for p in params:
            comm.Bcast(p, root=0)
        # One flat buffer per dtype (in the order the dtypes first appear), views per parameter.
        buffers: dict[np.dtype, np.ndarray] = {}
        sizes: dict[np.dtype, int] = {}
        for p in params:
            sizes[p.dtype] = sizes.get(p.dtype, 0) + p.size
        for dt, n in sizes.items():
            buffers[dt] = np.zeros(n, dtype=dt)
        offsets = dict.fromkeys(sizes, 0)
        views = []
        for p in params:
            o = offsets[p.dtype]
            views.append(buffers[p.dtype][o:o + p.size].reshape(p.shape))
            offsets[p.dtype] = o + p.size
        self.__dict__.update(grads=views, buffers=list(buffers.values()), _params=params, _synced=False,
                             _scalars=(np.zeros(STATUS_WIDTH), np.zeros((self.size, STATUS_WIDTH))))
        optimizer.grad_prescale = 1.0 / self.size  # the plan is rebuilt with the factor on the next step

    # -- delegation ---------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only for names not found on this object: the wrapped optimizer's attributes.
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name in type(self).__dict__:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)

    def __repr__(self) -> str:
        return f"DistributedOptimizer(rank={self.rank}, size={self.size}, reduction={self.reduction!r}, " \
               f"optimizer={self.optimizer!r})"

    def state_dict(self, flat: bool = False) -> dict[str, Any]:
        """The wrapped optimizer's :meth:`~fastgd.Optimizer.state_dict` (the same on every rank)."""
        return self.optimizer.state_dict(flat)

    def load_state_dict(self, state_dict: Any) -> None:
        """The wrapped optimizer's :meth:`~fastgd.Optimizer.load_state_dict`."""
        self.optimizer.load_state_dict(state_dict)

    # -- stepping -----------------------------------------------------------------------

    def synchronize(self, grads: Sequence[np.ndarray] | np.ndarray | None = None) -> list[np.ndarray]:
        """Sum the gradients over the ranks into ``grads`` (the buffer's views), which it
        returns; the next :meth:`step` then steps on them without reducing again (Horovod's
        ``synchronize()``). ``grads``: as for :meth:`step`."""
        if grads is not None:
            self._fill(grads)
        MPI = _mpi()
        t0 = time.perf_counter()
        for buf in self.buffers:
            if self.reduction == "allreduce":
                self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            else:
                if self.rank == 0:
                    self.comm.Reduce(MPI.IN_PLACE, buf, op=MPI.SUM, root=0)
                else:
                    self.comm.Reduce(buf, None, op=MPI.SUM, root=0)
                self.comm.Bcast(buf, root=0)
        self.__dict__["comm_seconds"] += time.perf_counter() - t0
        self.__dict__["comm_calls"] += 1
        self.__dict__["_synced"] = True
        return self.grads

    def step(self, grads: Sequence[np.ndarray] | np.ndarray | None = None) -> None:
        """Average the gradients over the ranks and take the wrapped optimizer's step on them.

        ``grads``: None when the gradients are already in :attr:`grads`; else arrays aligned
        with the parameters, copied into the buffer (those that are its views are not). A
        step after :meth:`synchronize` (and no new ``grads``) does not reduce again."""
        if grads is not None or not self._synced:
            self.synchronize(grads)
        self.__dict__["_synced"] = False
        self.optimizer.step(self.grads)

    def mark_unsynced(self) -> None:
        """Say that the gradient buffer no longer holds a reduced gradient that the next
        :meth:`step` may use: a loop that stepped the wrapped optimizer itself (the linear
        models' fused epoch, through :meth:`synchronize_step`) calls this when it is done."""
        self.__dict__["_synced"] = False

    def _fill(self, grads: Sequence[np.ndarray] | np.ndarray) -> None:
        gs = [grads] if isinstance(grads, np.ndarray) else list(grads)
        if len(gs) != len(self.grads):
            raise ValueError(f"step() got {len(gs)} gradients for {len(self.grads)} parameters; pass one gradient "
                             "per parameter, in the order of the parameters")
        for i, (g, v) in enumerate(zip(gs, self.grads)):
            if g is v:
                continue
            if not isinstance(g, np.ndarray):
                g = np.asarray(g)
            if g.shape != v.shape:
                raise ValueError(f"gradient {i} has shape {g.shape}, its parameter {v.shape}")
            if g.dtype.kind != "f":
                raise TypeError(f"gradient {i} has dtype {g.dtype}; expected a floating-point array")
            # Another view of the buffer itself is not copied (checked for large arrays only: a
            # small copy costs less than the check).
            if g.size >= 4096 and g.dtype == v.dtype and g.strides == v.strides \
                    and g.__array_interface__["data"][0] == v.__array_interface__["data"][0]:
                continue
            np.copyto(v, g, casting="same_kind")
        self.__dict__["_synced"] = False

    def synchronize_step(self, grads: Sequence[np.ndarray], loss: float, weight: float,
                         grad_norm: bool = True) -> tuple[float, float, float]:
        """:meth:`synchronize` for fastgd.train's step: also the global batch's loss (the
        ranks' losses weighted by their batches' weights; their plain mean when the weights
        sum to 0), its total weight, and the 2-norm of the averaged gradient, the same
        numbers on every rank. ``grad_norm=False``: NaN in place of the norm, for a step that
        computes it itself (clipping by it), read from ``last_grad_norm`` after the step.

        The loss and weight are exchanged first, a status point (see :meth:`ranks_ok`): when
        a rank failed, every rank raises before the gradients are reduced."""
        self._fill(grads)
        call = _train_call.get()
        if call is not None:
            call.phase = "collective"  # to the end of the reduction, which is not a status point
        loss_w, total_w, plain = self._status_sums(loss * weight, weight, loss)
        self.synchronize()
        if call is not None:
            call.phase = "armed"
        mean = loss_w / total_w if total_w > 0 else plain / self.size
        if not grad_norm:
            return float(mean), float(total_w), math.nan
        return float(mean), float(total_w), self.optimizer.grad_prescale * _core.total_norm(self.grads, 2.0)

    def global_means(self, values: Sequence[float | None], weight: float) -> tuple[float | None, ...]:
        """The means over the ranks of per-rank ``values`` (at most two; None stays None),
        each rank's weighted by ``weight`` (its number of samples): the global validation
        scores. A status point."""
        present = [v for v in values if v is not None]
        if len(present) > 2:
            raise ValueError(f"global_means takes at most 2 values, got {len(present)}")
        first, second = ([v * weight for v in present] + [0.0, 0.0])[:2]
        first, second, total = self._status_point(first, second, weight)
        sums = (first, second)
        means = iter([s / total for s in sums] if total > 0 else sums)
        return tuple(None if v is None else float(next(means)) for v in values)

    def any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (a stop requested by a callback on one). A
        status point."""
        return self._status_point(1.0 if flag else 0.0, 0.0, 0.0)[0] > 0

    def ranks_ok(self) -> None:
        """A status point and nothing else: returns when no rank reported a failure, and
        raises otherwise (train's last exchange, so that a rank failing after the others'
        last step still reaches them).

        Every exchange of train's loop is a status point: one ``Allgather`` of
        ``STATUS_WIDTH`` float64 per rank, the numbers it sums and this rank's status. A rank
        whose loss, callback, checkpoint write... raised makes the same ``Allgather`` with
        the status "failed", whichever exchange the others are at, then an ``allgather`` of
        its error message, and raises its own exception; the others then raise a
        RuntimeError naming it. A collective call: every rank must make it."""
        self._status_point(0.0, 0.0, 0.0, then="done")

    def _status_point(self, a: float, b: float, c: float, then: str = "armed") -> tuple[float, float, float]:
        """:meth:`_status_sums` in train's phase ``"collective"``, then in phase ``then``."""
        call = _train_call.get()
        if call is None:
            return self._status_sums(a, b, c)
        call.phase = "collective"
        sums = self._status_sums(a, b, c)
        call.phase = then
        return sums

    def _status_sums(self, a: float, b: float, c: float) -> tuple[float, float, float]:
        """A status point: the sums over the ranks of ``a``, ``b`` and ``c``, in rank order
        (the same bits on every rank); raises when a rank reports a failure. Buffers made
        once, and no more Python than needed: this runs every step."""
        mine, everyone = self._scalars
        mine[0], mine[1], mine[2] = a, b, c  # mine[3], this rank's status, stays 0 (ok)
        self.comm.Allgather(mine, everyone)
        rows = everyone.tolist()
        a, b, c, failed = rows[0]
        for row in rows[1:]:  # in rank order: the same bits on every rank
            a, b, c, failed = a + row[0], b + row[1], c + row[2], failed + row[3]
        if failed:
            _raise_failed(self.comm)
        return a, b, c

    # -- checks and teardown ------------------------------------------------------------

    def in_sync(self) -> bool:
        """Whether every rank holds the same parameter bits (a CRC-32 of each rank's
        parameters, gathered); a collective call: every rank must make it."""
        crc = 0
        for p in self._params:
            # numpy's stub gives ndarray the buffer protocol (__buffer__) for Python >= 3.12 only.
            crc = zlib.crc32(memoryview(np.ascontiguousarray(p)).cast("B"), crc)  # type: ignore[arg-type, unused-ignore]
        return len(set(self.comm.allgather(crc))) == 1

    def detach(self) -> Optimizer:
        """The wrapped optimizer, reading its gradients unscaled again (for use without MPI,
        or to save it)."""
        opt = self.optimizer
        opt.grad_prescale = 1.0
        return opt


def _describe(signature: list[tuple[tuple[int, ...], str]]) -> str:
    shown = ", ".join(f"{np.dtype(dt).name}{list(shape)}" for shape, dt in signature[:6])
    more = f", ... ({len(signature)} arrays)" if len(signature) > 6 else ""
    return f"[{shown}{more}]"
