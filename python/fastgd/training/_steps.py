"""The steps of :func:`fastgd.train`: one batch at a time in Python (:class:`PythonStep`), or
whole stretches of an epoch in one call of the loss's ``run_batches`` (:class:`FusedStretch`:
the linear models' C++ loop). Both do the same operations in the same order, judged by the
same divergence rule (:mod:`fastgd.training._guard`), so they give the same bits; the fused
one stops before a batch where the rule fires, and the Python step takes that batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fastgd.clip import total_norm
from fastgd.stopping import AnyOf, StoppingCriterion
from fastgd.training._batches import Segment
from fastgd.training._common import grad_list, lr_of
from fastgd.training._guard import Diverged, Guard
from fastgd.training._record import Record

__all__ = ["PythonStep", "FusedStretch", "fused_stretch", "norm_from_step"]


def norm_from_step(opt: Any) -> bool:
    """Whether the optimizer's step computes the gradient's 2-norm itself, as its clipping
    norm (``last_grad_norm``, the same bits as :func:`fastgd.clip.total_norm`): train then
    reads it there rather than computing it a second time, and judges the step after it
    (a step not kept is undone by the rollback, as is everything of the diverging epoch).
    Not under ``nonfinite="error"``, whose step raises on a gradient that train must judge
    first."""
    return opt.clip_norm is not None and opt.clip_norm_type == 2.0 and opt.nonfinite != "error"


class PythonStep:
    """One batch in Python: ``loss_and_grad`` on its rows (copied, or handed over as row
    numbers with ``gather=False``), under MPI the global batch (the gradients summed over the
    ranks, the loss weighted over them), the guard's verdict and the optimizer's step, then
    ``post_step(params, lr)``."""

    def __init__(self, loss_and_grad: Callable, params: list[np.ndarray], opt: Any, dist: Any, bs: int,
                 gather: bool, post_step: Callable | None, guard: Guard, record: Record) -> None:
        self.loss_and_grad, self.params, self.opt, self.dist = loss_and_grad, params, opt, dist
        self.bs, self.gather, self.post_step, self.guard, self.record = bs, gather, post_step, guard, record

    def _evaluate(self, seg: Segment, kb: Any) -> tuple[float, list[np.ndarray], float]:
        """The batch's (loss, gradients, total weight)."""
        start = int(kb) * self.bs
        stop = min(start + self.bs, seg.rows)
        rows = seg.order[start:stop] if seg.order is not None else slice(start, stop)
        wb: np.ndarray | None = seg.sw
        if not self.gather:
            loss, grads = self.loss_and_grad(self.params, seg.X, seg.y, seg.sw, rows)
        elif seg.whole:
            loss, grads = self.loss_and_grad(self.params, seg.X, seg.y, seg.sw)
        else:
            Xb = seg.X[rows]
            yb = None if seg.y is None else seg.y[rows]
            wb = None if seg.sw is None else seg.sw[rows]
            loss, grads = self.loss_and_grad(self.params, Xb, yb, wb)
        loss = float(loss)
        grads = grad_list(grads, self.params)
        if seg.sw is None:
            weight = float(stop - start)
        elif seg.batch_w is not None:
            weight = float(seg.batch_w[kb])
        else:
            weight = float(np.sum(wb))  # type: ignore[arg-type]  # with sw, the batch's weights
        return loss, grads, weight

    def take(self, seg: Segment, kb: Any) -> Diverged | None:
        """Batch ``kb`` of ``seg``: stepped on and recorded, or judged divergent (then the run
        stops and the guard rolls the epoch back)."""
        loss, grads, weight = self._evaluate(seg, kb)
        opt, guard, record = self.opt, self.guard, self.record
        from_step = norm_from_step(opt)
        gnorm = math.nan
        if self.dist is not None:
            # The global batch: the same values on every rank, so the ranks decide alike.
            loss, weight, gnorm = self.dist.synchronize_step(grads, loss, weight, grad_norm=not from_step)
        elif not from_step:
            gnorm = total_norm(grads)
        # Under MPI the step takes the summed gradients from the wrapper's buffer.
        stepped = None if self.dist is not None else grads
        k = opt.step_count
        if from_step:
            before = opt.last_grad_norm
            opt.step(stepped)
            gnorm = opt.last_grad_norm
            diverged = guard.judge(loss, gnorm, record.step + 1)
            if diverged:
                opt.last_grad_norm = before  # as if the step had not been taken (the rollback undoes the rest)
        else:
            diverged = guard.judge(loss, gnorm, record.step + 1)
            if not diverged:
                opt.step(stepped)
        if diverged:
            return Diverged(diverged, k)
        record.step += 1
        record.lr, record.gnorm = lr_of(opt, k), gnorm
        if self.post_step is not None:
            self.post_step(self.params, record.lr)
        record.add(loss, weight)
        return None


def _checks_steps(criterion: Any) -> bool:
    """Whether a stopping criterion (or any of an AnyOf's) looks at every step."""
    if isinstance(criterion, AnyOf) and type(criterion).check_step is AnyOf.check_step:
        return any(_checks_steps(c) for c in criterion.criteria)
    hook = getattr(type(criterion), "check_step", None)  # optional for duck-typed criteria
    return hook is not None and hook is not StoppingCriterion.check_step


class FusedStretch:
    """Whole stretches of an epoch's batches in one call of ``loss_and_grad.run_batches``.

    A loss that reads rows in place may offer ``run_batches(params, X, y, sample_weight,
    order, batches, first, batch_size, optimizer, batch_weight, sums, first_gnorm,
    explode_factor)``: :class:`PythonStep`'s work (the loss, the gradient norm, the divergence
    rule, ``optimizer.step``, the sums for ``train_loss``) for the batches ``batches[first:]``
    in one call, the same operations in the same order, stopping before a batch where the
    rule fires or that it cannot take. It returns ``(batches done, sums, last gradient norm,
    first gradient norm)``, or None to decline.

    Data-parallel, train also passes ``sync=`` the DistributedOptimizer's ``synchronize_step``
    and ``n_rows=`` the samples an epoch visits (a short shard's ``order`` is padded to it;
    ``n_rows`` also comes, without ``sync``, when train's ``rows`` select some rows of X):
    the hook calls ``sync(grads, loss, weight)`` between each batch's gradient and its step,
    as :class:`PythonStep` does, and takes the global ``(loss, weight, gradient norm)`` it
    returns for its verdicts and sums. Every rank then decides alike, so the ranks leave the
    hook at the same batch (one that :class:`PythonStep` then takes on every rank, reducing
    its gradient again)."""

    def __init__(self, hook: Callable, params: list[np.ndarray], opt: Any, dist: Any, bs: int, guard: Guard,
                 record: Record) -> None:
        self.hook, self.params, self.opt, self.dist, self.bs = hook, params, opt, dist, bs
        self.guard, self.record = guard, record

    def run(self, seg: Segment, first: int) -> int:
        """The batches ``seg.ks[first:]`` up to one the hook leaves to the Python step; returns
        how many it took."""
        guard, record = self.guard, self.record
        kw: dict[str, Any] = {} if self.dist is None else {"sync": self.dist.synchronize_step, "n_rows": seg.rows}
        if self.dist is None and seg.order is not None and len(seg.order) != seg.X.shape[0]:
            kw["n_rows"] = len(seg.order)  # train's rows: an order over some rows of X
        ran = self.hook(self.params, seg.X, seg.y, seg.sw, seg.order, seg.ks, first, self.bs, self.opt, seg.batch_w,
                        record.sums, guard.first_gnorm, guard.explode_factor, **kw)
        if ran is None:
            return 0
        done, record.sums, gnorm, guard.first_gnorm = ran
        if done:
            record.step += done
            record.batches += done
            record.gnorm = gnorm
            record.lr = lr_of(self.opt, self.opt.step_count - 1)
        return int(done)


def fused_stretch(loss_and_grad: Any, gather: bool, post_step: Any, criteria: AnyOf, streamed_shards: bool,
                  **parts: Any) -> FusedStretch | None:
    """A :class:`FusedStretch` when train may hand the loss whole stretches of an epoch: it
    offers ``run_batches``, reads rows in place (``gather=False``) and nothing runs in Python
    between steps (no ``post_step`` but one that run_batches applies itself, no stopping
    criterion that checks every step). Not for a
    stream under MPI (``streamed_shards``): its segments' orders cover the buffer, not the
    samples an epoch visits (the Python step takes them, with the same bits)."""
    hook = getattr(loss_and_grad, "run_batches", None)
    # (A post_step that run_batches applies itself, as it says by its attribute
    # ``applied_by_run_batches``, runs in Python only after the Python step's batches.)
    python_post_step = post_step is not None and not getattr(post_step, "applied_by_run_batches", False)
    if hook is None or gather or python_post_step or streamed_shards or _checks_steps(criteria):
        return None
    return FusedStretch(hook, **parts)
