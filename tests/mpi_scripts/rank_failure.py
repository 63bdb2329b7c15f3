"""Run by tests/test_distributed.py under a plain ``mpiexec -n 2 python rank_failure.py OUT
CASE`` (not ``python -m mpi4py``): one rank fails in CASE during a data-parallel train or
fit. Each rank appends what it raised (or caught) to OUT/failure_rank<r>.txt, then lets it go
uncaught, as a script would: the job must end, with the error shown, and never hang.

Cases (the failing rank is 1, or 0 for the checkpoint writes that only rank 0 makes):
``loss``: train's loss raises; ``interrupt``: a KeyboardInterrupt in the loss;
``callback_caught``: an estimator's callback raises, and the failing rank catches it and goes
on to its next data-parallel call; ``checkpoint``: an estimator's checkpoint write fails
mid-fit; ``last_checkpoint``: its last write (after training) fails; ``fused``: the linear
models' one-call C++ loop fails (the other rank waits inside it); ``metric``: a validation
metric raises; ``train_end``: a stopping criterion raises after the last exchange of the
loop; ``reduction``: the gradient reduction itself fails (the job is aborted); ``caught``:
every rank catches its error and goes on, training again (the job then ends normally).
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
from mpi4py import MPI

import fastgd as fg
from fastgd import _core
from fastgd.distributed import DistributedOptimizer
from fastgd.stopping import StoppingCriterion

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
out, case = sys.argv[1], sys.argv[2]
warnings.simplefilter("ignore")  # ConvergenceWarning of short fits

rng = np.random.default_rng(rank)
X = rng.standard_normal((64, 3))
y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(64)
labels = (y > 0).astype(np.int64)


def note(text: str) -> None:
    with open(os.path.join(out, f"failure_rank{rank}.txt"), "a") as f:
        f.write(text + "\n")


def wait_for_the_other_note() -> None:
    """Before an error goes uncaught (and ends the job at once): until the other rank has
    written what it raised, so that the test reads both (no collective call: the harness's
    own wait, on the file system both ranks share)."""
    other = os.path.join(out, f"failure_rank{1 - rank}.txt")
    deadline = time.monotonic() + 30
    while not os.path.exists(other) and time.monotonic() < deadline:
        time.sleep(0.01)


def lsq(params, Xb, yb, wb):
    (w,) = params
    r = Xb @ w - yb
    return 0.5 * np.mean(r**2), [Xb.T @ r / len(yb)]


def failing_loss(error: BaseException, at_call: int = 3):
    calls = [0]

    def loss(params, Xb, yb, wb):
        calls[0] += 1
        if rank == 1 and calls[0] == at_call:
            raise error
        return lsq(params, Xb, yb, wb)

    return loss


def train(loss=lsq, **kw):
    return fg.train(loss, [np.zeros(3)], X, y, batch_size=8, max_epochs=3, comm=comm, **kw)


def loss_case():
    train(failing_loss(ValueError("boom in the loss on rank 1")))


def interrupt_case():
    train(failing_loss(KeyboardInterrupt()))


def callback_caught_case():
    def callback(history, params):
        if rank == 1 and len(history) == 2:
            raise ValueError("boom in a callback on rank 1")

    try:
        fg.LogisticRegression(max_epochs=4, batch_size=16, callbacks=[callback]).fit(X, labels, comm=comm)
    except ValueError as e:
        if rank != 1:
            raise
        note(f"caught {type(e).__name__}: {e}")
    # The failing rank's code goes on into its next data-parallel call, which rank 0 never
    # makes: rank 0's uncaught error must end the job.
    train()
    note("went on")


def checkpoint_case(epochs: int = 3):
    path = os.path.join(out, "no such directory", "model.fgd")
    fg.LogisticRegression(max_epochs=epochs, batch_size=16).fit(X, labels, comm=comm, checkpoint=path)


def fused_case():
    real, calls = _core.linear_batches, [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if rank == 1 and calls[0] == 2:
            raise MemoryError("no memory for the fused loop on rank 1")
        return real(*args, **kwargs)

    _core.linear_batches = failing
    fg.LogisticRegression(max_epochs=4, batch_size=16, tol=None).fit(X, labels, comm=comm)
    assert calls[0] > 1, "the fused loop did not run"


def metric_case():
    def metric(params, Xv, yv):
        if rank == 1 and metric.calls == 1:
            raise ValueError("boom in the metric on rank 1")
        metric.calls += 1
        return float(np.mean((Xv @ params[0] - yv) ** 2))

    metric.calls = 0
    train(validation_data=(X[:16], y[:16]), metric=metric)


class FailsAtTheEnd(StoppingCriterion):
    def on_train_end(self, params):
        if rank == 1:
            raise ValueError("boom at the end of training on rank 1")


def train_end_case():
    train(stopping=[FailsAtTheEnd()])


def reduction_case():
    real, calls = DistributedOptimizer.synchronize, [0]

    def failing(self, grads=None):
        calls[0] += 1
        if rank == 1 and calls[0] == 3:
            raise RuntimeError("the gradient reduction failed on rank 1")
        return real(self, grads)

    DistributedOptimizer.synchronize = failing
    train()


def caught_case():
    params = [np.zeros(3)]
    try:
        fg.train(failing_loss(ValueError("boom in the loss on rank 1")), params, X, y, batch_size=8, max_epochs=3,
                 comm=comm)
    except (ValueError, RuntimeError) as e:
        note(f"caught {type(e).__name__}: {e}")
    # Every rank knows: they all go on together, and train again from where they are.
    dist = DistributedOptimizer(fg.SGD(params, lr=0.05), comm)
    fg.train(lsq, params, X, y, optimizer=dist, batch_size=8, max_epochs=2)
    assert dist.in_sync()
    note("trained again")


CASES = {"loss": loss_case, "interrupt": interrupt_case, "callback_caught": callback_caught_case,
         "checkpoint": checkpoint_case, "last_checkpoint": lambda: checkpoint_case(epochs=1),
         "fused": fused_case, "metric": metric_case, "train_end": train_end_case, "reduction": reduction_case,
         "caught": caught_case}

try:
    CASES[case]()
except BaseException as e:
    note(f"{type(e).__name__}: {e}")
    wait_for_the_other_note()
    raise
note("done")
