"""Data-parallel training over MPI: each test launches ``mpiexec -n N python
tests/mpi_scripts/<script>.py OUT`` with a timeout; the script asserts on every rank and
writes its results to OUT as .npz, which the test compares across ranks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgd as fg
from fastgd import _core
from fastgd.optim import rule_classes

SCRIPTS = Path(__file__).parent / "mpi_scripts"
TIMEOUT = 300


def _mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    return shutil.which("mpiexec")


def _have_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401  (the package only: importing mpi4py.MPI would start MPI here)
    except ImportError:
        return False
    return True


MPIEXEC = _mpiexec()
# Skipped only without mpi4py; with it, a missing mpiexec is a failure that says what to install.
needs_mpi = pytest.mark.skipif(not _have_mpi4py(), reason="mpi4py is not installed (pip install 'fastgd[mpi]')")


def run_mpi(script: str, n: int, out: Path, *args: str, plain: bool = False,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``mpiexec -n n python -m mpi4py script out *args``, which must succeed; ``plain``:
    ``python script`` without mpi4py's runner (whose uncaught exceptions would abort every
    rank), and the caller judges the return code."""
    if MPIEXEC is None:
        pytest.fail("mpi4py is installed but no mpiexec was found next to the Python executable nor on PATH: "
                    "pip install mpich (or put an MPI library's mpiexec on PATH)")
    env = dict(os.environ)
    # Two cores: one thread per rank, so that N ranks do not oversubscribe the machine.
    env.setdefault("OMP_NUM_THREADS", "1")
    runner = [] if plain else ["-m", "mpi4py"]
    cmd = [MPIEXEC, "-n", str(n), sys.executable, *runner, str(SCRIPTS / script), str(out), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} {' '.join(args)} on {n} ranks did not finish in {timeout} s (a hang)\n{e.stdout}\n"
                    f"{e.stderr}")
    if not plain:
        assert proc.returncode == 0, f"{script} on {n} ranks failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _ranks(out: Path, stem: str, n: int) -> list[dict[str, np.ndarray]]:
    files = [out / f"{stem}_rank{r}.npz" for r in range(n)]
    for f in files:
        assert f.exists(), f"{f.name} was not written"
    return [dict(np.load(f)) for f in files]


def _assert_same_bits(results: list[dict[str, np.ndarray]]) -> None:
    first = results[0]
    for r, other in enumerate(results[1:], start=1):
        assert other.keys() == first.keys()
        for k in first:
            assert np.array_equal(first[k], other[k], equal_nan=True), f"rank {r} differs from rank 0 in {k}"


# -- without MPI: the 1/N factor that DistributedOptimizer fuses into the step ------------------

PRESCALE_OPTIONS = [{}, {"clip_norm": 0.5}, {"clip_value": 0.2}, {"nonfinite": "skip"}]


@pytest.mark.parametrize("rule", [cls.__name__ for cls in rule_classes()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", PRESCALE_OPTIONS, ids=["plain", "clip_norm", "clip_value", "skip"])
@pytest.mark.parametrize("fresh_plan", [False, True], ids=["kept_plan", "fresh_plan"])
def test_grad_prescale_equals_step_on_scaled_grads(simd_level, rule, dtype, options, fresh_plan):
    # A step on sums with the factor 1/2 == a step on the halved sums, bit for bit (halving is
    # exact), with the step plan kept from step to step or made for every step; last_grad_norm
    # too.
    rng = np.random.default_rng(5)
    shapes = [(3, 5), (17,), (8,), (1,)]
    a = [rng.standard_normal(s).astype(dtype) for s in shapes]
    b = [p.copy() for p in a]
    scaled = getattr(fg, rule)(a, lr=0.01, **options)
    ref = getattr(fg, rule)(b, lr=0.01, **options)
    scaled.grad_prescale = 0.5
    for k in range(5):
        if fresh_plan:
            scaled.invalidate_plan()
        g = [rng.standard_normal(s).astype(dtype) for s in shapes]
        if k == 2 and "nonfinite" in options:
            g[1][3] = np.inf
        scaled.step(g)
        ref.step([x * dtype(0.5) for x in g])
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        assert scaled.last_grad_norm == ref.last_grad_norm
        assert scaled.skipped_steps == ref.skipped_steps
    assert scaled.step_plan is not None and scaled.grad_prescale == 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_batches_sync_hook_without_mpi(simd_level, dtype):
    # The data-parallel form of the one-call loop on one process: a sync that returns the
    # local numbers (what one rank's synchronize_step does) gives the bits of no sync; a short
    # shard's order padded to n_rows repeats rows; sync's exception comes through; bad sync or
    # n_rows: an error naming it, nothing written.
    rng = np.random.default_rng(2)
    X = rng.standard_normal((37, 5)).astype(dtype)
    y = (rng.random(37) > 0.5).astype(dtype)
    order = np.resize(rng.permutation(37), 45)
    batches = np.arange(6)[::-1].copy()

    def run(sync, n_rows=45, order=order, theta=None):
        theta = np.zeros(6, dtype) if theta is None else theta
        grad = np.zeros(6, dtype)
        opt = fg.Adam([theta], lr=0.05)
        opt.step([grad])  # builds the plan
        ran = _core.linear_batches("log_loss", X, y, theta, grad, 1, None, order, batches, 0, 8, None, 1e-3, 0.0,
                                   1.0, opt.step_plan, [grad], (0.0, 0.0, 0.0), None, None, sync=sync, n_rows=n_rows)
        return theta, ran

    calls = []

    def local(grads, loss, weight):
        calls.append(weight)
        return loss, weight, fg.clip.total_norm(grads)

    theta_a, ran_a = run(None)
    theta_b, ran_b = run(local)
    np.testing.assert_array_equal(theta_a, theta_b)
    assert ran_a == ran_b and ran_a[0] == 6
    assert calls == [5.0, 8.0, 8.0, 8.0, 8.0, 8.0]  # batch 5 holds padded rows 40..44
    # A sync that reports a non-finite global loss stops the loop before that batch's step.
    theta_c, ran_c = run(lambda g, loss, w: (np.nan if len(calls) > 8 else loss, w, calls.append(w) or 1.0))
    assert ran_c[0] == 3

    def boom(grads, loss, weight):
        raise RuntimeError("reduction failed")

    with pytest.raises(RuntimeError, match="reduction failed"):
        run(boom)
    theta = np.zeros(6, dtype)
    with pytest.raises(TypeError, match="sync"):
        run(3, theta=theta)
    with pytest.raises(ValueError, match="order"):
        run(None, n_rows=40, theta=theta)
    with pytest.raises(ValueError, match="n_rows"):
        run(None, n_rows=40, order=None, theta=theta)
    assert not theta.any()


def test_fastgd_does_not_import_mpi4py():
    # mpi4py stays optional: importing fastgd (training included) never loads it.
    code = "import sys, fastgd, fastgd.distributed; assert 'mpi4py' not in sys.modules, 'mpi4py imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@needs_mpi
@pytest.mark.parametrize("reduction", ["allreduce", "reduce_bcast"])
def test_optimizer_steps_two_ranks(tmp_path, reduction):
    # One distributed step == a single-process step on the averaged gradient, bit for bit
    # (every rule, both dtypes, every SIMD level, clipping, nonfinite="skip"); ranks agree.
    run_mpi("optimizer_steps.py", 2, tmp_path, reduction)
    results = _ranks(tmp_path, "optimizer_steps", 2)
    assert int(results[0]["checked"]) > 0
    _assert_same_bits(results)


@needs_mpi
def test_optimizer_steps_three_ranks_deterministic(tmp_path):
    # Three ranks (more than two: an Allreduce need not give every rank the same bits):
    # reduce_bcast does; the steps match the reference to rounding.
    run_mpi("optimizer_steps.py", 3, tmp_path, "reduce_bcast")
    _assert_same_bits(_ranks(tmp_path, "optimizer_steps", 3))


@needs_mpi
def test_fits_two_ranks(tmp_path):
    # train(comm=), the linear estimators and the MLPs on 2 unequal shards: the same bits on both ranks,
    # the accuracy of a single-process fit on the whole data, the whole data's
    # standardization, the union of the classes; the checkpoint written by rank 0 only.
    run_mpi("fit.py", 2, tmp_path)
    results = _ranks(tmp_path, "fit", 2)
    _assert_same_bits(results)
    assert (tmp_path / "logreg_rank0.fgd").exists()
    assert not (tmp_path / "logreg_rank1.fgd").exists()
    acc_single, acc_dist = results[0]["logreg_acc"]
    assert acc_dist > 0.8 and abs(acc_single - acc_dist) < 0.02


@needs_mpi
def test_disagreements_are_errors_on_every_rank(tmp_path):
    # Parameters, features or arguments that differ between ranks, and a bad input on one
    # rank: a clear error on every rank (the script checks that none hangs).
    run_mpi("errors.py", 2, tmp_path)
    results = _ranks(tmp_path, "errors", 2)
    for r in results:
        assert set(r) == {"shapes", "dtypes", "features", "batch_size", "bad_weight", "bad_batch_size", "bad_y",
                          "bad_X_True", "bad_X_False",
                          "estimator_features", "newton", "batch_norm", "stream_features",
                          "train_stream_features", "stream_bad_chunk", "one_shot"}
    assert "rank 1 of 2 failed" in str(results[0]["bad_y"])


@needs_mpi
def test_streamed_shards_two_ranks(tmp_path):
    # Every rank streams its own shard (a memmap in blocks, chunks, a callable) through its own
    # buffer: with a buffer that holds the shard, the in-memory data-parallel fit's bits; with
    # a small one, the largest shard's steps on every rank; identical ranks; anonymous memory
    # bounded by the buffer (the script asserts each).
    run_mpi("stream.py", 2, tmp_path)
    results = _ranks(tmp_path, "stream", 2)
    _assert_same_bits(results)
    assert not (tmp_path / "small_True_rank1.fgd").exists()


@needs_mpi
def test_fits_three_ranks(tmp_path):
    # Three unequal shards (reduction "auto" = Reduce + Bcast beyond 2 ranks): still the same
    # bits on every rank and the accuracy of a single-process fit.
    run_mpi("fit.py", 3, tmp_path)
    _assert_same_bits(_ranks(tmp_path, "fit", 3))


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_fused_linear_fits_match_per_step_loop(tmp_path, ranks):
    # The linear estimators' data-parallel fits run whole stretches of an epoch in one C++ call
    # (the Allreduce called from inside it between each gradient and its step): the bits, history
    # and stop reason of the per-step Python loop, for losses, dtypes, weights, shuffle modes,
    # clipping, early stopping and divergence; the same bits on every rank.
    run_mpi("fused.py", ranks, tmp_path)
    results = _ranks(tmp_path, "fused", ranks)
    _assert_same_bits(results)
    assert int(results[0]["logreg_fused_batches"]) > 0


# One rank fails during a data-parallel train or fit, under a plain `python` launch: what
# each rank raises (its own error on the failed rank, a RuntimeError naming it on the other),
# or None where the job is aborted at once (a failure inside the gradient reduction).
RANK_FAILURES = {
    "loss": ("ValueError: boom in the loss on rank 1", "RuntimeError: rank 1 of 2 failed in train: ValueError: boom "
             "in the loss on rank 1"),
    "interrupt": ("KeyboardInterrupt", "RuntimeError: rank 1 of 2 failed in train: KeyboardInterrupt"),
    "callback_caught": ("caught ValueError: boom in a callback on rank 1", "RuntimeError: rank 1 of 2 failed in "
                        "train: ValueError: boom in a callback on rank 1"),
    "checkpoint": ("FileNotFoundError", "RuntimeError: rank 0 of 2 failed in train: FileNotFoundError"),
    "last_checkpoint": ("FileNotFoundError", "RuntimeError: rank 0 of 2 failed in LogisticRegression.fit's last "
                        "checkpoint write: FileNotFoundError"),
    "fused": ("MemoryError: no memory for the fused loop on rank 1", "RuntimeError: rank 1 of 2 failed in train: "
              "MemoryError: no memory for the fused loop on rank 1"),
    "metric": ("ValueError: boom in the metric on rank 1", "RuntimeError: rank 1 of 2 failed in train: ValueError: "
               "boom in the metric on rank 1"),
    "train_end": ("ValueError: boom at the end of training on rank 1", "RuntimeError: rank 1 of 2 failed in train: "
                  "ValueError: boom at the end of training on rank 1"),
    "reduction": None,
}
FAILURE_TIMEOUT = 60


@needs_mpi
@pytest.mark.parametrize("case", list(RANK_FAILURES))
def test_one_rank_failing_ends_the_job(tmp_path, case):
    # An exception on one rank (in the loss, a callback the failing rank catches before going
    # on to its next data-parallel call, a checkpoint write on rank 0, the fused C++ loop, a
    # metric, a criterion's end of training, a KeyboardInterrupt) reaches the other rank at
    # its next exchange, which raises a RuntimeError naming it; uncaught, the errors end the
    # job with a non-zero code and the message shown. A failure inside the reduction itself
    # aborts the job. Never a hang (the timeout).
    proc = run_mpi("rank_failure.py", 2, tmp_path, case, plain=True, timeout=FAILURE_TIMEOUT)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    expected = RANK_FAILURES[case]
    if expected is None:
        assert "RuntimeError: the gradient reduction failed on rank 1" in output
        assert "failed inside a collective call of train" in output
        return
    failed_rank = 0 if "checkpoint" in case else 1
    seen = {r: (tmp_path / f"failure_rank{r}.txt").read_text() for r in (0, 1)}
    assert expected[0] in seen[failed_rank], seen
    assert expected[1] in seen[1 - failed_rank], seen
    assert "done" not in seen[0] + seen[1] and "went on" not in seen[1]
    assert expected[0].replace("caught ", "") in output


@needs_mpi
def test_one_rank_failing_caught_everywhere(tmp_path):
    # Every rank catches what it raised (its own error, or the RuntimeError naming the failed
    # rank): they agree, so they go on together, train again and end normally.
    proc = run_mpi("rank_failure.py", 2, tmp_path, "caught", plain=True, timeout=FAILURE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = [(tmp_path / f"failure_rank{r}.txt").read_text().splitlines() for r in (0, 1)]
    assert seen[0] == ["caught RuntimeError: rank 1 of 2 failed in train: ValueError: boom in the loss on rank 1; "
                       "every rank stops", "trained again", "done"]
    assert seen[1] == ["caught ValueError: boom in the loss on rank 1", "trained again", "done"]
