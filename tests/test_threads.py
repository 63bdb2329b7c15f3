"""Results do not depend on the thread count: 1 and 2 threads give the same bits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import reference as R

import fastgd as fg
from fastgd import _core

# Every rule class; these with the options given, the others with every state array in use.
RULES = R.rule_cases({
    "SGD": {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    "Adagrad": {"weight_decay": 0.1},
    "AdamW": {},
    "Adadelta": {},
    "Adamax": {},
    "NAdam": {},
    "RAdam": {},
    "Lion": {},
})


@pytest.fixture
def force_parallel():
    """Run every call on the team, however small, so the split itself is exercised."""
    old = _core.get_parallel_threshold()
    _core.set_parallel_threshold(0)
    yield
    _core.set_parallel_threshold(old)


def _run(rule, options, threads, clip_norm=None):
    rng = np.random.default_rng(11)
    # Sizes around the chunk size, a large one, and 300 small arrays in one call.
    chunk = _core.chunk_elements
    shapes = [(chunk - 1,), (chunk + 5,), (200_003,)] + [(i % 37 + 1,) for i in range(300)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    with fg.num_threads(threads):
        opt = getattr(fg, rule)(params, clip_norm=clip_norm, **options)
        for _ in range(3):
            opt.step([rng.standard_normal(s).astype(np.float32) for s in shapes])
    return params, opt


@pytest.mark.parametrize(("rule", "options"), RULES, ids=[r for r, _ in RULES])
def test_one_and_two_threads_same_bits(simd_level, force_parallel, rule, options):
    a, oa = _run(rule, options, 1, clip_norm=5.0)
    b, ob = _run(rule, options, 2, clip_norm=5.0)
    assert oa.last_grad_norm == ob.last_grad_norm
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("p", [1.0, 2.0, float("inf"), 3.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_same_bits_for_any_thread_count(force_parallel, p, dtype):
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(n).astype(dtype) for n in (1, 4095, 4097, 1_000_003)]
    values = []
    for threads in (1, 2, 3):
        with fg.num_threads(threads):
            values.append(fg.total_norm(grads, p))
    assert values[0] == values[1] == values[2]


def test_thread_controls():
    with fg.num_threads(1):
        assert fg.get_num_threads() == 1
        with fg.num_threads(2):
            assert fg.get_num_threads() == 2
        assert fg.get_num_threads() == 1
    fg.set_num_threads(3)
    assert fg.get_num_threads() == 3
    fg.set_num_threads(0)  # back to OpenMP's own setting
    assert fg.get_num_threads() >= 1
    with pytest.raises(ValueError):
        fg.set_num_threads(-1)


def _threads_in_subprocess(env_extra, code="import fastgd; print(fastgd.get_num_threads())"):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP runs on one thread")
@pytest.mark.parametrize("n", ["1", "2", "3"])
def test_omp_num_threads_is_followed(n):
    assert _threads_in_subprocess({"OMP_NUM_THREADS": n}) == [n]
    # An explicit count wins over the variable.
    code = "import fastgd; fastgd.set_num_threads(4); print(fastgd.get_num_threads())"
    assert _threads_in_subprocess({"OMP_NUM_THREADS": n}, code) == ["4"]


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP runs on one thread")
def test_threadpoolctl_limits_the_kernels(force_parallel):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    apis = {lib["user_api"] for lib in threadpoolctl.threadpool_info()}
    assert "openmp" in apis  # it sees the OpenMP runtime fastgd's kernels use
    fg.set_num_threads(0)
    with fg.num_threads(0):
        with threadpoolctl.threadpool_limits(limits=1):
            assert fg.get_num_threads() == 1
            limited = _run("Adam", {}, 0)[0]
        with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
            assert fg.get_num_threads() == 2
            two = _run("Adam", {}, 0)[0]
        # An explicit count is not overridden by the limit.
        with threadpoolctl.threadpool_limits(limits=1), fg.num_threads(2):
            assert fg.get_num_threads() == 2
    assert len(limited) == len(two)
    for x, y in zip(limited, two):
        np.testing.assert_array_equal(x, y)


def _fit_pair(concurrent, X, y):
    fits = {
        "logreg": lambda: fg.LogisticRegression(solver="gd", max_epochs=5, batch_size=256, random_state=1).fit(X, y),
        "mlp": lambda: fg.MLPClassifier(hidden_layer_sizes=(32,), max_epochs=4, batch_size=256,
                                        random_state=2).fit(X, y),
    }
    models = {}
    errors = []

    def run(name):
        try:
            models[name] = fits[name]()
        except BaseException as e:  # reported to the test below
            errors.append(e)

    if concurrent:
        workers = [threading.Thread(target=run, args=(name,)) for name in fits]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=300)
        assert not any(w.is_alive() for w in workers)
    else:
        for name in fits:
            run(name)
    assert not errors, errors
    return models["logreg"].coef_, models["mlp"].coefs_


@pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning")
@pytest.mark.parametrize("parallel", [False, True], ids=["serial-kernels", "threaded-kernels"])
def test_two_python_threads_fit_as_one_after_the_other(request, parallel):
    if parallel:
        request.getfixturevalue("threaded")
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3000, 30))
    y = (X @ rng.standard_normal(30) + 0.5 * rng.standard_normal(3000) > 0).astype(int)
    lr_seq, mlp_seq = _fit_pair(False, X, y)
    for _ in range(2):
        lr_con, mlp_con = _fit_pair(True, X, y)
        np.testing.assert_array_equal(lr_seq, lr_con)
        assert len(mlp_seq) == len(mlp_con)
        for a, b in zip(mlp_seq, mlp_con):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [fg.LogisticRegression, fg.LinearRegression])
def test_linear_fit_runs_blas_on_one_thread_and_gives_it_back(cls):
    # After a multi-threaded product, OpenBLAS's workers poll for ~0.1 s on the cores that
    # fastgd's kernels use next; the linear models' training loop keeps BLAS on one thread.
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    if not before:
        pytest.skip("NumPy has no BLAS that threadpoolctl knows")
    seen = []
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X[:, 0] > 0).astype(int) if cls is fg.LogisticRegression else X[:, 0]
    m = cls(max_epochs=3, tol=None, early_stopping=True, random_state=0,
            callbacks=[lambda history, params: seen.append(blas_threads())])
    with pytest.warns(fg.models.ConvergenceWarning, match="max_epochs=3"):  # 3 epochs: on purpose
        m.fit(X, y)
    assert seen and all(s == [1] * len(before) for s in seen)
    assert blas_threads() == before
    m2 = cls(max_epochs=3, tol=None, early_stopping=True, random_state=0)
    with threadpoolctl.threadpool_limits(2, user_api="blas"), pytest.warns(fg.models.ConvergenceWarning):
        m2.fit(X, y)
    np.testing.assert_array_equal(m.coef_, m2.coef_)  # BLAS's threads never change the bits


@pytest.mark.filterwarnings("ignore::fastgd.models.ConvergenceWarning")
@pytest.mark.parametrize("make", [
    lambda: fg.LogisticRegression(solver="gd", max_epochs=1, batch_size=256, random_state=1),
    lambda: fg.MLPClassifier(hidden_layer_sizes=(8,), max_epochs=1, batch_size=256, random_state=2),
], ids=["logistic", "mlp"])
def test_a_fits_bits_do_not_depend_on_the_blas_threads_it_starts_with(make):
    # The set-up's products (weighted moments, starting points) once ran on whatever BLAS's
    # thread count was, which another fit in another thread may have lowered meanwhile; at
    # this size OpenBLAS splits them differently on 1 and 4 threads.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20_000, 100))
    y = (X[:, 0] + 0.5 * rng.standard_normal(20_000) > 0).astype(int)
    w = rng.random(20_000)
    fits = []
    for n in (1, 4):
        with threadpoolctl.threadpool_limits(n, user_api="blas"):
            m = make().fit(X, y, sample_weight=w)
        fits.append([m.coef_] if hasattr(m, "coef_") else m.coefs_)
    for a, b in zip(*fits):
        np.testing.assert_array_equal(a, b)


def test_overlapping_fits_keep_blas_limited_until_the_last_ends():
    # Fits in two Python threads each limit BLAS's (process-wide) thread count. The one that
    # ended first used to give BLAS its threads back while the other still ran; with
    # OpenBLAS 0.3.20 (NumPy 1.23) the other's products then changed in their last bits.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastgd.models._fitting import limit_blas

    def blas_threads():
        return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("NumPy has no BLAS that threadpoolctl knows")
    with threadpoolctl.threadpool_limits(4, user_api="blas"):
        # Entered and left in the order of two fits that overlap: a (2 threads) starts, b (1)
        # starts, a ends, b ends; and the same with b ending first.
        for last in ("b", "a"):
            a = limit_blas(2)
            a.__enter__()
            assert blas_threads() == {2}
            b = limit_blas(1)
            b.__enter__()
            assert blas_threads() == {1}
            first, second = (a, b) if last == "b" else (b, a)
            first.__exit__(None, None, None)
            assert blas_threads() == ({1} if last == "b" else {2})
            second.__exit__(None, None, None)
            assert blas_threads() == {4}


@pytest.mark.parametrize("cls", [fg.MLPClassifier, fg.LogisticRegression])
def test_a_failing_fit_gives_blas_its_threads_back(cls):
    # The MLP once took its BLAS limit before its set-up (the optimizer is built there): a
    # set-up that raised left NumPy's BLAS on one thread for the rest of the process.
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X[:, 0] > 0).astype(int)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        with pytest.raises(TypeError, match="bogus"):
            cls(max_epochs=2, optimizer_options={"bogus": 1}).fit(X, y)
        assert blas_threads() == before


# -- the thread limit: kThreadsPerCpu times the CPUs available --------------------------

# One step on a 2^20-element array (above the parallel threshold), on the threads the
# process asks for, and on one thread: the same bits, and the count the kernels used.
_BIG_STEP = """
import warnings, sys
import numpy as np
import fastgd
from fastgd import _core

def step():
    p = np.linspace(-1, 1, 1 << 20, dtype=np.float32)
    opt = fastgd.optim.Adam([p], lr=0.1)
    for _ in range(2):
        opt.step([np.cos(p)])
    return p

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    REQUEST
    used = fastgd.get_num_threads()
    many = step()
with fastgd.num_threads(1):
    one = step()
assert np.array_equal(many, one)
print(used, _core.thread_limit(), _core.available_cpus(), len(caught))
print(*[str(w.message) for w in caught], sep="\\n", file=sys.stderr)
"""


def _big_step(request, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", _BIG_STEP.replace("REQUEST", request)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"exit status {out.returncode}: {out.stderr}"
    used, limit, cpus, warned = map(int, out.stdout.split())
    return used, limit, cpus, warned, out.stderr


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP runs on one thread")
@pytest.mark.parametrize("n", [10**6, 100_000, 50_000, 20_000])
def test_set_num_threads_far_above_the_cpus_is_capped_with_a_warning(n):
    # Once a segfault (10^5, 10^6), an abort in libgomp (50,000), 4.4 s a step (20,000).
    used, limit, cpus, warned, messages = _big_step(f"fastgd.set_num_threads({n})")
    assert limit == _core.threads_per_cpu * cpus and used == limit
    assert warned == 1 and f"set_num_threads({n}): using {limit} threads" in messages


@pytest.mark.skipif(not _core.openmp_enabled(), reason="a build without OpenMP runs on one thread")
def test_omp_num_threads_far_above_the_cpus_is_capped():
    # OpenMP's own setting is not passed to the kernels' num_threads clauses beyond the limit.
    used, limit, cpus, warned, _ = _big_step("pass", {"OMP_NUM_THREADS": "1000000"})
    assert used == limit == _core.threads_per_cpu * cpus and warned == 0
    # The probe as it was reported: one step of a plain SGD.
    code = ("import fastgd, numpy as np; opt = fastgd.optim.SGD([np.zeros(1<<20, np.float32)], lr=0.1); "
            "opt.step([np.ones(1<<20, np.float32)]); print(fastgd.get_num_threads())")
    assert _threads_in_subprocess({"OMP_NUM_THREADS": "1000000"}, code) == [str(limit)]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_the_limit_follows_the_cpus_the_process_may_run_on():
    cpu = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{cpu}}}); import fastgd; from fastgd import _core; "
            "fastgd.set_num_threads(3); print(_core.available_cpus(), _core.thread_limit(), fastgd.get_num_threads())")
    assert _threads_in_subprocess({}, code) == ["1", str(_core.threads_per_cpu), "3"]
    assert _core.available_cpus() == len(os.sched_getaffinity(0))


def test_a_count_within_the_limit_is_kept_and_the_limit_warns_once():
    limit = _core.thread_limit()
    assert limit >= _core.threads_per_cpu >= 4  # 3 and 4 threads stay possible on one CPU
    with fg.num_threads(limit):
        assert fg.get_num_threads() == limit
    with pytest.warns(RuntimeWarning, match=f"set_num_threads\\({limit + 1}\\): using {limit} threads") as caught:
        with fg.num_threads(limit + 1):
            assert fg.get_num_threads() == limit
    assert len(caught) == 1  # leaving the block restores the previous count without a warning
    with pytest.warns(RuntimeWarning):
        fg.set_num_threads(10**30)  # beyond a C int: capped before it reaches the core
    assert fg.get_num_threads() == limit
    fg.set_num_threads(0)


@pytest.mark.parametrize("bad", [2.5, "3", True, None, 2.0])
def test_set_num_threads_takes_integers_only(bad):
    with pytest.raises(TypeError, match="n must be an integer"):
        fg.set_num_threads(bad)


def test_set_num_threads_takes_numpy_integers_and_refuses_negative_counts():
    with fg.num_threads(np.int64(2)):
        assert fg.get_num_threads() == min(2, _core.thread_limit())
    with pytest.raises(ValueError, match="n must be >= 0.*got -3"):
        fg.set_num_threads(-3)
