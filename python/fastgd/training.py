"""Training loops over the optimizers: :func:`train` (mini-batch epochs with validation,
stopping criteria and divergence handling), :func:`minimize` (scipy-like, for a function of
one array) and :func:`lr_find` (the learning-rate range test).

    import numpy as np, fastgd as fg

    def loss_and_grad(params, X, y, w):          # w: sample weights of the batch, or None
        (coef,) = params
        r = X @ coef - y
        return 0.5 * np.mean(r**2), [X.T @ r / len(y)]

    coef = np.zeros(X.shape[1])
    history = fg.train(loss_and_grad, [coef], X, y, optimizer="adam", lr=1e-2, batch_size=64,
                       validation_data=(X_val, y_val), stopping=[fg.stopping.EarlyStopping()])
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastgd._plotting import axes_for
from fastgd.clip import total_norm
from fastgd.distributed import DistributedOptimizer, agree_on_early_errors
from fastgd.history import History
from fastgd.optim._base import Optimizer, resolve_options
from fastgd.optim.registry import get_optimizer
from fastgd.shuffling import check_shuffle
from fastgd.stopping import AnyOf, StoppingCriterion
from fastgd.streaming import as_stream, is_chunk_source

__all__ = ["train", "minimize", "lr_find", "DivergenceWarning", "OptimizeResult", "LRFinderResult"]

LossAndGrad = Callable[[list, Any, Any, Any], tuple]


class DivergenceWarning(RuntimeWarning):
    """Training stopped early because a loss or a gradient became NaN or infinite."""


# -- helpers ---------------------------------------------------------------------------

def _param_list(params: Any) -> list[np.ndarray]:
    ps = [params] if isinstance(params, np.ndarray) else list(params)
    if not ps:
        raise ValueError("params is empty: pass the list of arrays to optimize")
    return ps


def _as_data(a: Any) -> Any:
    # Arrays and scipy.sparse matrices index by rows as they are; lists become arrays.
    return a if hasattr(a, "shape") and hasattr(a, "__getitem__") else np.asarray(a)


def _n_rows(a: Any, name: str) -> int:
    shape = getattr(a, "shape", ())
    if not shape:
        raise ValueError(f"{name} must have a first axis of samples, got a scalar")
    return int(shape[0])


def _grad_list(grads: Any, params: list[np.ndarray]) -> list[np.ndarray]:
    gs = [grads] if isinstance(grads, np.ndarray) else list(grads)
    if len(gs) != len(params):
        raise ValueError(f"loss_and_grad returned {len(gs)} gradients for {len(params)} parameters; "
                         "return one gradient per parameter, in the order of params")
    # The kernels take C-contiguous gradients of the parameter's dtype. A float64 gradient
    # for float32 parameters (float64 data) is a common slip: convert rather than fail.
    return [g if isinstance(g, np.ndarray) and g.dtype == p.dtype and g.flags.c_contiguous
            else np.ascontiguousarray(g, dtype=p.dtype) for g, p in zip(gs, params)]


def _lr_of(opt: Optimizer, k: int) -> float:
    """Group 0's learning rate at its k-th step (from 0), a schedule evaluated."""
    return float(resolve_options(opt.param_groups[0], max(k, 0))["lr"])


def _opt_steps(opt: Optimizer) -> int:
    return opt.step_count


def _positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _checks_steps(criterion: Any) -> bool:
    """Whether a stopping criterion (or any of an AnyOf's) looks at every step."""
    if isinstance(criterion, AnyOf) and type(criterion).check_step is AnyOf.check_step:
        return any(_checks_steps(c) for c in criterion.criteria)
    hook = getattr(type(criterion), "check_step", None)  # optional for duck-typed criteria
    return hook is not None and hook is not StoppingCriterion.check_step


def _run_batches_hook(loss_and_grad: Any, gather: bool, post_step: Any, criteria: AnyOf) -> Callable | None:
    """``loss_and_grad.run_batches``, when train may hand it whole stretches of an epoch.

    A loss that reads rows in place may offer ``run_batches(params, X, y, sample_weight,
    order, batches, first, batch_size, optimizer, batch_weight, sums, first_gnorm,
    explode_factor)``: this loop's body (the loss, the gradient norm, the divergence checks,
    ``optimizer.step``, the sums for ``train_loss``) for the batches ``batches[first:]`` in one
    call, the same operations in the same order, stopping before a batch this loop must take
    itself. It returns ``(batches done, sums, last gradient norm, first gradient norm)``, or
    None to decline. Only used when nothing runs in Python between steps: no ``post_step``,
    no stopping criterion that checks every step.

    Data-parallel (``comm``), train also passes ``sync=`` the DistributedOptimizer's
    ``synchronize_step`` and ``n_rows=`` the samples an epoch visits (a short shard's ``order``
    is padded to it): the hook calls ``sync(grads, loss, weight)`` between each batch's
    gradient and its step, as this loop does, and takes the global ``(loss, weight, gradient
    norm)`` it returns for its checks and sums. Every rank then makes the same decisions, so
    the ranks leave the hook at the same batch (one that this loop then takes on every rank,
    reducing its gradient again)."""
    fast = getattr(loss_and_grad, "run_batches", None)
    if fast is None or gather or post_step is not None or _checks_steps(criteria):
        return None
    return fast


def _batch_weights(sw: np.ndarray, order: np.ndarray | None, n: int, bs: int) -> np.ndarray:
    """Every batch's total weight for train_loss at once (no gather per batch)."""
    return np.add.reduceat(sw[:n] if order is None else sw[order[:n]], np.arange(0, n, bs), dtype=np.float64)


def _divergence_advice(lr: float, clipping: str = "optimizer_options={'clip_norm': 1.0}",
                       scaling: str = "standardizing the inputs") -> str:
    return (f"Try a smaller learning rate (lr={lr:g} now; e.g. {lr / 10:g}), gradient clipping ({clipping}), "
            f"or {scaling}.")


class _Progress:
    """A tqdm bar over epochs with the losses as postfix; plain prints without tqdm."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, unit="epoch")

    def update(self, rec: dict[str, Any]) -> None:
        shown = {k: f"{rec[k]:.4g}" for k in ("train_loss", "val_loss", "val_metric") if rec.get(k) is not None}
        if self.bar is not None:
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update()
        else:
            of = f"/{self.total}" if self.total else ""
            print(f"epoch {rec['epoch']}{of}: " + "  ".join(f"{k}={v}" for k, v in shown.items()), flush=True)

    def close(self, reason: str | None) -> None:
        if self.bar is not None:
            self.bar.close()
        if reason:
            print(f"stopped: {reason}", flush=True)


# -- train -----------------------------------------------------------------------------

@agree_on_early_errors
def train(loss_and_grad: LossAndGrad, params: Sequence[np.ndarray] | np.ndarray, X: Any, y: Any, *,
          optimizer: Any = "adam", lr: Any = 1e-3, batch_size: int | None = None, max_epochs: int | None = 100,
          shuffle: bool | str = True, random_state: Any = None, sample_weight: Any = None,
          validation_data: tuple[Any, Any] | None = None, loss_fn: Callable | None = None,
          metric: Callable | None = None, stopping: Any = (), callbacks: Any = (),
          post_step: Callable[[list, float], None] | None = None, verbose: bool = False,
          optimizer_options: dict[str, Any] | None = None, explode_factor: float | None = 1e6,
          gather: bool = True, state: dict[str, Any] | None = None, comm: Any = None) -> History:
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
            array (a view of the epoch's permutation). A loss that reads the rows in place
            (the linear models' fused kernel) then costs no copy per batch. Such a loss may
            also take whole stretches of an epoch in one call (a ``run_batches`` method, see
            ``_run_batches_hook``: the linear models' objective runs this loop's body in C++,
            with the same bits), which train uses when nothing runs in Python between steps:
            no ``post_step`` and no stopping criterion with a ``check_step``.
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
            inside it between the gradient and the step (see ``_run_batches_hook``: the same
            bits as this loop).
            Only rank 0 shows the progress bar. A rank's shard may be a stream of chunks (each
            rank streams its own through its own shuffle buffer): the ranks agree on the largest stream's
            number of samples (from the stream's count, or one counting pass over the chunks
            first; a one-shot iterator cannot be counted), and each epoch pads a shorter
            stream's last segment with samples that its buffer holds again (see
            :meth:`fastgd.ChunkStream.segments`; with a buffer that holds the whole shard,
            the same padding, and the same bits, as the shard as an array).

    Returns:
        A :class:`fastgd.History`: one record per epoch with ``train_loss`` (the
        sample-weighted mean of the epoch's batch losses, taken before each step),
        ``val_loss``, ``val_metric``, ``lr`` (of the epoch's last step), ``grad_norm`` (2-norm
        of the last batch's gradients), ``step`` (steps so far in this run) and ``time``;
        ``history.stop_reason`` says why training stopped.

    Divergence: when a batch loss or the gradient norm is NaN or infinite, or the gradient norm
    explodes to more than ``explode_factor`` times the first step's (``None``: never), the step
    is not taken; when a parameter is not finite at the end of an epoch, likewise. Then
    ``params`` and the optimizer's state go back to the end of the last complete epoch (the
    initial values in the first epoch),
    ``stop_reason`` starts with ``"diverged"`` and a :class:`DivergenceWarning` is issued.
    The diverging epoch is not recorded.
    """
    params = _param_list(params)
    # Chunks (a ChunkStream, a list of (X, y) tuples, a callable or an iterator of them):
    # each epoch streams them through a shuffle buffer, in segments (fastgd.streaming).
    stream = as_stream(X, y, sample_weight) if is_chunk_source(X) else None
    if stream is not None:
        if batch_size is None:
            raise ValueError("batch_size=None (the whole data set in one step) needs the data in memory; give a "
                             "batch_size to stream chunks")
        _positive_int("batch_size", batch_size)
        stream_n = stream_shape = None
        if comm is not None or isinstance(optimizer, DistributedOptimizer):
            # Every rank must take the same number of steps: the ranks agree on it from
            # their streams' numbers of samples (counted by one pass, unless known).
            stream_n, stream_shape = stream.count()
        X = y = sample_weight = None
    else:
        X = _as_data(X)
    # (A stream's n is set per segment; batch_size stands in for it until then.)
    n = _n_rows(X, "X") if stream is None else batch_size
    if n == 0:
        raise ValueError("X has no samples")
    if y is not None:
        y = _as_data(y)
        if _n_rows(y, "y") != n:
            raise ValueError(f"X has {n} samples but y has {_n_rows(y, 'y')}")
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}")
        if not (np.all(np.isfinite(sw)) and np.all(sw >= 0)):
            raise ValueError("sample_weight must be finite and >= 0")
    batch_size = _positive_int("batch_size", batch_size, allow_none=True)
    shuffle = check_shuffle(shuffle)
    max_epochs = _positive_int("max_epochs", max_epochs, allow_none=True)
    if explode_factor is not None and not explode_factor > 1:
        raise ValueError(f"explode_factor must be > 1 or None, got {explode_factor}")
    criteria = AnyOf(*([stopping] if hasattr(stopping, "check") else list(stopping)))
    if max_epochs is None and not criteria.criteria:
        raise ValueError("max_epochs=None needs a stopping criterion, or training would never end")
    callbacks = [callbacks] if callable(callbacks) else list(callbacks)
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        X_val, y_val = validation_data
        if loss_fn is None:
            def loss_fn(p, Xv, yv):
                if not gather:
                    return loss_and_grad(p, Xv, yv, None, slice(0, _n_rows(Xv, "X_val")))[0]
                return loss_and_grad(p, Xv, yv, None)[0]
    dist = optimizer if isinstance(optimizer, DistributedOptimizer) else None
    opt = dist.optimizer if dist is not None else get_optimizer(optimizer, params, lr, **(optimizer_options or {}))
    n_epoch = n  # samples per epoch: n, or the largest shard's under comm (short shards padded)
    if comm is not None or dist is not None:
        from fastgd.distributed import shard_plan

        if stream is None:
            dist, n_epoch = shard_plan(comm, dist, opt, X, n, batch_size, max_epochs, shuffle,
                                       validation_data is not None)
        else:
            dist, n_epoch = shard_plan(comm, dist, opt, X, stream_n, batch_size, max_epochs, shuffle,
                                       validation_data is not None, features=stream_shape)
        opt = dist

    rng = np.random.default_rng(random_state)
    # A stream under comm: every epoch padded to the largest stream's number of samples.
    pad_to = n_epoch if stream is not None and dist is not None else None
    if stream is not None:
        n = n_epoch = batch_size
    bs = n if batch_size is None else min(batch_size, n_epoch)
    n_batches = -(-n_epoch // bs)
    # Not for a stream under comm: its segments' orders cover the buffer, not n_rows (the
    # per-step loop below takes them, with the same bits).
    fast = None if stream is not None and dist is not None else _run_batches_hook(loss_and_grad, gather, post_step,
                                                                                   criteria)
    data_parallel = {} if dist is None else {"sync": dist.synchronize_step}
    all_batches = np.arange(n_batches) if fast is not None else None
    history = History()
    step = 0
    epoch = 0
    first_gnorm: float | None = None
    if state is not None and state.get("history") is not None:
        history = History([dict(r) for r in state["history"].records])
        epoch = len(history)
        step = int(history.records[-1]["step"]) if epoch else 0
        first_gnorm = state.get("first_gnorm")
    criteria.reset()
    # The last good point, for divergence: one copy per epoch, small next to an epoch's work.
    good_params = [np.array(p, copy=True) for p in params]
    good_state = opt.state_dict()
    progress = _Progress(max_epochs) if verbose and (dist is None or dist.rank == 0) else None
    reason: str | None = None
    t0 = time.perf_counter()
    try:
        while reason is None and (max_epochs is None or epoch < max_epochs):
            epoch += 1
            if stream is not None:
                n = n_epoch = bs  # stand-ins until the first segment: nothing is drawn below
                n_batches = 1
            # order: the samples' permutation (shuffle=True); batch k is order[k*bs:(k+1)*bs]
            # of it, or the rows k*bs..(k+1)*bs. ks: the batches in the order they are visited.
            order = rng.permutation(n) if shuffle is True and bs < n else None
            if n_epoch != n:
                # A short shard (comm): padded with the first samples of its order again.
                order = np.resize(np.arange(n) if order is None else order, n_epoch)
            ks = rng.permutation(n_batches) if shuffle == "batches" and n_batches > 1 else range(n_batches)
            if not gather and sw is not None:
                # Every batch's total weight for train_loss at once (no gather per batch).
                starts = np.arange(0, n_epoch, bs)
                batch_w = np.add.reduceat(sw if order is None else sw[order], starts, dtype=np.float64)
            loss_sum = weight_sum = plain_sum = 0.0
            batches = 0
            lr_now = gnorm = math.nan
            diverged = None
            i = 0
            # A stream's epoch: its segments, one after the other (fastgd.streaming).
            segments = stream.segments(rng, bs, shuffle, pad_to=pad_to) if stream is not None else iter(())
            if stream is not None:
                n_batches = 0
            while True:
                if i == n_batches:
                    segment = next(segments, None)
                    if segment is None:
                        break
                    X, y, sw, order, n = segment
                    n_epoch = n
                    i, n_batches = 0, -(-n // bs)
                    ks = rng.permutation(n_batches) if shuffle == "batches" and n_batches > 1 else np.arange(n_batches)
                    if not gather and sw is not None:
                        batch_w = _batch_weights(sw, order, n, bs)
                    continue
                if fast is not None:
                    # Whole stretches of batches in one call, stopping before any batch that
                    # needs this loop (see _run_batches_hook).
                    ran = fast(params, X, y, sw, order, ks if isinstance(ks, np.ndarray) else all_batches, i, bs,
                               opt, batch_w if sw is not None else None, (loss_sum, weight_sum, plain_sum),
                               first_gnorm, explode_factor,
                               **(data_parallel and {**data_parallel, "n_rows": n_epoch}))
                    if ran is not None:
                        done, (loss_sum, weight_sum, plain_sum), g, first_gnorm = ran
                        if done:
                            i += done
                            step += done
                            batches += done
                            gnorm = g
                            lr_now = _lr_of(opt, _opt_steps(opt) - 1)
                        if i == n_batches:
                            continue
                kb = ks[i]
                i += 1
                start = int(kb) * bs
                stop = min(start + bs, n_epoch)
                if not gather:
                    idx = order[start:stop] if order is not None else slice(start, stop)
                    loss, grads = loss_and_grad(params, X, y, sw, idx)
                else:
                    if bs == n and order is None:
                        Xb, yb, wb = X, y, sw
                    else:
                        idx = order[start:stop] if order is not None else slice(start, stop)
                        Xb = X[idx]
                        yb = None if y is None else y[idx]
                        wb = None if sw is None else sw[idx]
                    loss, grads = loss_and_grad(params, Xb, yb, wb)
                loss = float(loss)
                grads = _grad_list(grads, params)
                if sw is None:
                    bw = float(stop - start)
                else:
                    bw = float(np.sum(wb)) if gather else float(batch_w[kb])
                if dist is None:
                    gnorm = total_norm(grads)
                else:
                    # The global batch: the gradients summed over the ranks (the step takes their
                    # mean), the loss weighted over them; the same values on every rank.
                    loss, bw, gnorm = dist.synchronize_step(grads, loss, bw)
                    grads = None
                if not math.isfinite(loss):
                    diverged = f"(step {step + 1}): the loss is {loss}"
                elif not math.isfinite(gnorm):
                    diverged = f"(step {step + 1}): the gradient norm is {gnorm}"
                elif first_gnorm is None:
                    first_gnorm = gnorm
                elif explode_factor is not None and first_gnorm > 0 and gnorm > explode_factor * first_gnorm:
                    diverged = (f"(step {step + 1}): the gradient norm exploded to {gnorm:.3g}, over "
                                f"{explode_factor:g} times the first step's {first_gnorm:.3g}")
                if diverged:
                    break
                k = _opt_steps(opt)
                opt.step(grads)
                step += 1
                lr_now = _lr_of(opt, k)
                if post_step is not None:
                    post_step(params, lr_now)
                loss_sum += loss * bw
                weight_sum += bw
                plain_sum += loss
                batches += 1
                reason = criteria.check_step(step)
                if reason:
                    break
            if diverged is None and not all(np.all(np.isfinite(p)) for p in params):
                diverged = f"(step {step}): the parameters are not finite"
            if diverged:
                lr_next = _lr_of(opt, _opt_steps(opt))
                for p, g in zip(params, good_params):
                    np.copyto(p, g)
                opt.load_state_dict(good_state)
                reason = f"diverged at epoch {epoch} {diverged}"
                where = f"the end of epoch {epoch - 1}" if epoch > 1 else "their initial values"
                warnings.warn(f"training {reason}; the parameters were restored to {where}. "
                              + _divergence_advice(lr_next), DivergenceWarning, stacklevel=2)
                break
            rec: dict[str, Any] = {
                "epoch": epoch, "step": step,
                # Weighted by the batches' total sample weight (or size); all-zero weights
                # fall back to the plain mean rather than 0/0.
                "train_loss": loss_sum / weight_sum if weight_sum > 0 else plain_sum / max(batches, 1),
                "val_loss": None, "val_metric": None, "lr": lr_now, "grad_norm": gnorm,
            }
            if validation_data is not None:
                rec["val_loss"] = float(loss_fn(params, X_val, y_val))
                if metric is not None:
                    rec["val_metric"] = float(metric(params, X_val, y_val))
                if dist is not None:
                    rec["val_loss"], rec["val_metric"] = dist.global_means(
                        (rec["val_loss"], rec["val_metric"]), _n_rows(X_val, "X_val"))
            rec["time"] = time.perf_counter() - t0
            history.append(rec)
            criteria.on_epoch_end(history, params)
            reason = reason or criteria.check(history)
            if state is not None:
                state["first_gnorm"] = first_gnorm
            # Every callback runs every epoch, also when a criterion stops here.
            stop_cb = [bool(cb(history, params)) for cb in callbacks]
            if dist is not None:
                stop_cb = [dist.any_rank(any(stop_cb))]
            if reason is None and any(stop_cb):
                reason = "stopped by callback"
            if progress is not None:
                progress.update(rec)
            if reason is None:
                for g, p in zip(good_params, params):
                    np.copyto(g, p)
                good_state = opt.state_dict()
        if reason is None:
            reason = f"reached max_epochs={max_epochs}"
        criteria.on_train_end(params)
    finally:
        if progress is not None:
            progress.close(reason)
        if dist is not None and not isinstance(optimizer, DistributedOptimizer):
            dist.detach()  # the optimizer train wrapped reads its gradients unscaled again
    history.stop_reason = reason
    return history


# -- minimize --------------------------------------------------------------------------

class OptimizeResult(dict):
    """The result of :func:`minimize`, a dict with attribute access (as scipy's):
    ``x``, ``fun``, ``jac``, ``nit`` (steps taken), ``nfev`` (evaluations), ``success``,
    ``status`` (0 converged, 1 max_iter, 2 diverged, 3 stopped by callback), ``message``,
    ``history`` (f at every evaluated point, in order)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__  # type: ignore[assignment]
    __delattr__ = dict.__delitem__  # type: ignore[assignment]

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(map(len, self)) + 1
        return "\n".join(f"{k.rjust(width)}: {v!r}" for k, v in self.items())


def minimize(fun: Callable, x0: Any, jac: bool | Callable = True, *, optimizer: Any = "adam", lr: Any = 1e-3,
             max_iter: int = 1000, tol: float = 1e-6, callback: Callable | None = None,
             **optimizer_options: Any) -> OptimizeResult:
    r"""Minimize ``fun`` from ``x0`` with a first-order optimizer, in the style of
    ``scipy.optimize.minimize``.

    Iterates :math:`x_{k+1} = \text{step}(x_k, \nabla f(x_k))` until
    :math:`\|\nabla f(x_k)\|_\infty \le \text{tol}` (``success``), ``max_iter`` steps, or a NaN
    or infinite value (then ``x`` is the last iterate where ``f`` and its gradient were finite,
    and a :class:`DivergenceWarning` is issued).

    Args:
        fun: ``fun(x) -> (f, grad)`` when ``jac=True``, else ``fun(x) -> f``. ``x`` is a
            read-only view of the iterate: copy it to keep it.
        x0: the starting point, copied (float32 stays float32, anything else is float64).
        jac: ``True``, or a callable ``jac(x) -> grad``.
        optimizer: a name or an Optimizer class (see :func:`fastgd.optim.get_optimizer`).
        lr: learning rate, a float or a schedule.
        max_iter: at most this many optimizer steps.
        tol: gradient tolerance, on the largest absolute component.
        callback: ``callback(xk)`` after each step with a copy of the iterate; returning True
            (or raising StopIteration) stops.
        **optimizer_options: passed to the optimizer (``momentum=``, ``clip_norm=``...).
    """
    if isinstance(optimizer, Optimizer):
        raise TypeError("minimize builds its own optimizer on a copy of x0: pass a name or an Optimizer class")
    if jac is not True and not callable(jac):
        raise ValueError("minimize needs the gradient: jac=True (fun returns (f, grad)) or a callable jac(x)")
    max_iter = int(max_iter)
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    x0 = np.asarray(x0)
    x = np.array(np.atleast_1d(x0), dtype=np.float32 if x0.dtype == np.float32 else np.float64, order="C")
    view = x.view()
    view.flags.writeable = False
    opt = get_optimizer(optimizer, [x], lr, **optimizer_options)

    def evaluate() -> tuple[float, np.ndarray]:
        if jac is True:
            f, g = fun(view)
        else:
            f, g = fun(view), jac(view)
        g = np.asarray(g, dtype=x.dtype)
        if g.size != x.size:
            raise ValueError(f"the gradient has {g.size} elements, x has {x.size}")
        return float(f), np.ascontiguousarray(g.reshape(x.shape))

    f, g = evaluate()
    history = [f]
    nit, stop_requested = 0, False
    x_good, f_good, g_good = x.copy(), f, g
    while True:
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            what = f"f is {f}" if not math.isfinite(f) else "the gradient is not finite"
            if nit == 0:
                status, message = 2, f"diverged: {what} at x0"
            else:
                np.copyto(x, x_good)
                f, g = f_good, g_good
                status, message = 2, f"diverged at iteration {nit}: {what}; x is the last finite iterate"
            advice = _divergence_advice(_lr_of(opt, max(nit - 1, 0)), "clip_norm=1.0", "rescaling the variables")
            warnings.warn(f"minimize {message}. {advice}", DivergenceWarning, stacklevel=2)
            break
        gmax = float(np.max(np.abs(g))) if g.size else 0.0
        if gmax <= tol:
            status, message = 0, f"converged: gradient inf-norm {gmax:.3g} <= tol={tol:g}"
            break
        if nit >= max_iter:
            status, message = 1, f"reached max_iter={max_iter} (gradient inf-norm {gmax:.3g} > tol={tol:g})"
            break
        if stop_requested:
            status, message = 3, "stopped by callback"
            break
        x_good[...] = x
        f_good, g_good = f, g
        opt.step([g])
        nit += 1
        f, g = evaluate()
        history.append(f)
        if callback is not None:
            try:
                stop_requested = bool(callback(x.copy()))
            except StopIteration:
                stop_requested = True
    return OptimizeResult(x=x, fun=f, jac=g, nit=nit, nfev=len(history), success=status == 0, status=status,
                          message=message, history=history)


# -- lr_find ---------------------------------------------------------------------------

@dataclass
class LRFinderResult:
    """What :func:`lr_find` saw: ``lrs`` and the smoothed ``losses`` at them (and the
    ``raw_losses``), and ``suggestion``, the lr where the smoothed loss falls fastest
    (``None`` if too few steps were taken)."""

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float | None
    raw_losses: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))

    def plot(self, path: Any = None, ax: Any = None) -> Any:
        """Smoothed loss against lr (log x-axis), the suggestion marked. With ``path``, saves
        the figure. Returns the figure. Needs matplotlib."""
        fig, ax = axes_for(ax, path, "LRFinderResult.plot")
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss (smoothed)")
        if self.suggestion is not None:
            i = int(np.argmin(np.abs(np.log(self.lrs) - math.log(self.suggestion))))
            ax.plot([self.lrs[i]], [self.losses[i]], "o", color="tab:red",
                    label=f"suggestion: {self.suggestion:.2g}")
            ax.legend()
        if path is not None:
            fig.savefig(path)
        return fig


def lr_find(loss_and_grad: LossAndGrad, params: Sequence[np.ndarray] | np.ndarray, X: Any, y: Any, *,
            optimizer: Any = "adam", min_lr: float = 1e-7, max_lr: float = 10.0, num_steps: int = 100,
            batch_size: int | None = 32, beta: float = 0.98, diverge_factor: float = 4.0,
            random_state: Any = None) -> LRFinderResult:
    r"""The learning-rate range test (Smith 2017, as fastai's ``lr_find``).

    Step :math:`k = 0, \dots, \text{num\_steps} - 1` trains on one mini-batch (drawn
    without replacement, reshuffled when used up) with
    :math:`\eta_k = \text{min\_lr}\,(\text{max\_lr}/\text{min\_lr})^{k/(\text{num\_steps}-1)}`
    and records the smoothed loss
    :math:`\bar\ell_k = a_k / (1 - \beta^{k+1})`, :math:`a_k = \beta a_{k-1} + (1-\beta)\ell_k`.
    It stops early when :math:`\bar\ell_k > \text{diverge\_factor}\cdot\min_{j<k}\bar\ell_j`
    (for a positive best loss) or a loss is not finite. The suggestion is the lr where
    :math:`d\bar\ell / d\log\eta` is lowest, leaving out the first tenth and the last 5
    points, as fastai, when enough remain. ``params`` (and an optimizer instance's state) are
    restored afterwards, so the test leaves no trace.
    """
    params = _param_list(params)
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if _positive_int("num_steps", num_steps) < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor}")
    X = _as_data(X)
    n = _n_rows(X, "X")
    if n == 0:
        raise ValueError("X has no samples")
    y = None if y is None else _as_data(y)
    bs = n if batch_size is None else min(_positive_int("batch_size", batch_size), n)

    opt = get_optimizer(optimizer, params, min_lr)
    saved_state = opt.state_dict() if opt is optimizer else None
    initial = [np.array(p, copy=True) for p in params]
    rng = np.random.default_rng(random_state)
    order, pos = None, n
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    avg, best = 0.0, math.inf
    try:
        for k in range(num_steps):
            lr_k = min_lr * (max_lr / min_lr) ** (k / (num_steps - 1))
            if bs == n:
                Xb, yb = X, y
            else:
                # Whole batches only: a short one would be noisier than the rest.
                if pos + bs > n:
                    order, pos = rng.permutation(n), 0
                idx = order[pos:pos + bs]
                pos += bs
                Xb, yb = X[idx], None if y is None else y[idx]
            loss, grads = loss_and_grad(params, Xb, yb, None)
            loss = float(loss)
            grads = _grad_list(grads, params)
            if not math.isfinite(loss):
                break
            avg = beta * avg + (1 - beta) * loss
            smooth = avg / (1 - beta ** (k + 1))
            lrs.append(lr_k)
            losses.append(smooth)
            raw.append(loss)
            if best > 0 and smooth > diverge_factor * best:
                break
            best = min(best, smooth)
            if not math.isfinite(total_norm(grads)):
                break
            # Set for every group: the test drives the lr itself, whatever the optimizer's step.
            for group in opt.param_groups:
                group["lr"] = lr_k
            opt.step(grads)
    finally:
        for p, p0 in zip(params, initial):
            np.copyto(p, p0)
        if saved_state is not None:
            opt.load_state_dict(saved_state)
    lrs_a, losses_a = np.array(lrs), np.array(losses)
    return LRFinderResult(lrs_a, losses_a, _steepest(lrs_a, losses_a), np.array(raw))


def _steepest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """The lr at the most negative slope of the loss against log(lr)."""
    lo, hi = len(lrs) // 10, len(lrs) - 5
    if hi - lo < 3:  # too short to trim: use every point
        lo, hi = 0, len(lrs)
    if hi - lo < 2:
        return None
    slope = np.gradient(losses[lo:hi], np.log(lrs[lo:hi]))
    return float(lrs[lo + int(np.argmin(slope))])
