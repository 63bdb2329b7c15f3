"""An optimizer may be shared between threads: steps serialize.

N threads x K steps are N*K steps, each from the state the one before left: the result has
the bits of N*K steps taken one after another (in the order the threads took them), and
``state_dict()``, ``load_state_dict()``, ``add_param_group``, changes through ``state`` and the
step options, and the linear models' fused epoch never see or make half a step. Every step
holds ``Optimizer.step_lock``; so does each of those.
"""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import sys
import threading

import numpy as np
import pytest
import reference as R

import fastgd as fg
from fastgd import _core

THREADS = 4
# Every rule class, with the options that make it keep every state array.
CASES = R.rule_cases()
IDS = [rule for rule, _ in CASES]


def _run_threads(target, n=THREADS):
    """target(thread index) on n threads started together; re-raises the first error."""
    start, errors = threading.Barrier(n), []

    def run(i):
        try:
            start.wait()
            target(i)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture(autouse=True)
def _switch_often():
    """Threads switch every few microseconds rather than every 5 ms, so that the steps of
    different threads interleave at every point where they could."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_the_probe_no_step_is_lost():
    p = np.zeros(1)
    opt = fg.SGD([p], lr=0.5)
    g = [np.ones(1)]

    def steps(_):
        for _ in range(10_000):
            opt.step(g)

    _run_threads(steps, 2)
    assert opt.step_count == 20_000
    assert p[0] == -0.5 * 20_000


def test_the_probe_no_update_is_lost_on_a_large_array():
    p = np.zeros(1_000_003, np.float32)
    opt = fg.SGD([p], lr=1.0)
    grads = [[np.full_like(p, 2.0 ** -i)] for i in range(THREADS)]  # sums exact in any order

    def steps(i):
        for _ in range(25):
            opt.step(grads[i])

    _run_threads(steps)
    assert opt.step_count == 25 * THREADS
    np.testing.assert_array_equal(p, np.float32(-25 * sum(2.0 ** -i for i in range(THREADS))))


def _params(seed, n=20_011):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32), rng.standard_normal((3, 7))]


@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_threads_equal_one_thread_with_the_same_gradient(rule, options):
    """With one gradient for every step the order does not matter: N*K steps from N threads
    give the bits of N*K steps from one."""
    shared, alone = _params(0), _params(0)
    grads = [np.full_like(p, 0.01) + 0.001 * p for p in _params(1)]
    a, b = getattr(fg, rule)(shared, **options), getattr(fg, rule)(alone, **options)

    def steps(_):
        for _ in range(10):
            a.step(grads)

    _run_threads(steps)
    for _ in range(10 * THREADS):
        b.step(grads)
    _assert_same(a, b, shared, alone)


def _assert_same(a, b, pa, pb):
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x, y)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["group_state"] == sb["group_state"]
    assert sa["state"].keys() == sb["state"].keys()
    for i, st in sa["state"].items():
        assert st.keys() == sb["state"][i].keys()
        for name, arr in st.items():
            np.testing.assert_array_equal(arr, sb["state"][i][name], err_msg=f"state[{i}][{name!r}]")


@pytest.mark.parametrize(("rule", "options"), CASES, ids=IDS)
def test_threads_equal_their_steps_taken_in_order(rule, options):
    """Each thread with its own gradients: the result is the bits of the same steps taken one
    after another in the order they were taken (read by the learning rate's schedule, which
    each step calls with the group's count)."""
    order: dict[int, int] = {}

    def lr(k):
        order.setdefault(k, threading.get_ident())
        return 0.01

    shared, alone = _params(2), _params(2)
    grads = {}
    a = getattr(fg, rule)(shared, **{**options, "lr": lr})
    b = getattr(fg, rule)(alone, **{**options, "lr": lambda k: 0.01})
    order.clear()  # the constructor's check called the schedule too

    def steps(i):
        rng = np.random.default_rng(10 + i)
        mine = grads[threading.get_ident()] = [[rng.standard_normal(p.shape).astype(p.dtype) for p in shared]
                                               for _ in range(8)]
        for g in mine:
            a.step(g)

    _run_threads(steps)
    assert a.step_count == 8 * THREADS and sorted(order) == list(range(8 * THREADS))
    taken = {ident: iter(gs) for ident, gs in grads.items()}
    for k in range(8 * THREADS):
        b.step(next(taken[order[k]]))
    _assert_same(a, b, shared, alone)


def test_state_dict_is_never_taken_halfway_through_a_step():
    p = np.zeros(400_003, np.float32)
    opt = fg.Adam([p], lr=0.01)
    g = [np.linspace(-1, 1, p.size, dtype=np.float32)]
    expected = []  # the state after each number of steps, one thread
    q = p.copy()
    one = fg.Adam([q], lr=0.01)
    for _ in range(30):
        one.step(g)
        expected.append(one.state_dict())
    snapshots, first, done = [], threading.Event(), threading.Event()

    def work(i):
        if i == 0:
            try:
                for _ in range(30):
                    opt.step(g)
                    first.set()
            finally:
                first.set()
                done.set()
        else:
            first.wait()
            snapshots.append(opt.state_dict())
            while len(snapshots) < 100 and not done.is_set():
                snapshots.append(opt.state_dict())

    _run_threads(work, 2)
    np.testing.assert_array_equal(p, q)
    for s in snapshots:
        want = expected[int(s["group_state"][0]["step"]) - 1]
        for name in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(s["state"][0][name], want["state"][0][name])


def test_load_state_dict_lands_between_two_steps():
    """One thread steps while another loads a checkpoint: the counts the steps read are a run
    from 0, then a run from the checkpoint's count, and the result is that sequence of steps."""
    seen: list[tuple[int, int]] = []

    def lr(k):
        seen.append((threading.get_ident(), k))
        return 0.1

    size = 100_003  # steps long enough (the kernel runs without the GIL) for the load to land among them
    source = fg.SGD([np.zeros(size)], lr=lr, momentum=0.9)
    source.state[0]["momentum_buffer"] = np.full(size, 3.0)
    source.load_state_dict({**source.state_dict(), "group_state": [{"step": np.int64(1000)}]})
    checkpoint = source.state_dict()
    p = np.zeros(size)
    opt = fg.SGD([p], lr=lr, momentum=0.9)
    g = [np.linspace(0.0, 1.0, size)]
    stepper = []

    n, started = 400, threading.Event()

    def work(i):
        if i == 0:
            stepper.append(threading.get_ident())
            try:
                for k in range(n):
                    opt.step(g)
                    if k == 5:
                        started.set()
            finally:
                started.set()
        else:
            started.wait()
            opt.load_state_dict(checkpoint)

    _run_threads(work, 2)
    steps = [k for ident, k in seen if ident == stepper[0]]  # the count each step read
    before = steps.index(1000) if 1000 in steps else n  # (the load may also come after every step)
    assert before > 5 and steps == list(range(before)) + list(range(1000, 1000 + n - before))
    assert opt.step_count == 1000 + n - before
    q = np.zeros(size)
    replay = fg.SGD([q], lr=0.1, momentum=0.9)
    for _ in range(before):
        replay.step(g)
    replay.load_state_dict(checkpoint)
    for _ in range(n - before):
        replay.step(g)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], replay.state[0]["momentum_buffer"])


def _blocked_while_held(opt, call):
    """call() on another thread waits while this thread holds opt.step_lock, then runs."""
    done = threading.Event()

    def run():
        call()
        done.set()

    with opt.step_lock:
        t = threading.Thread(target=run)
        t.start()
        t.join(0.2)
        assert not done.is_set(), "ran while the step lock was held"
    t.join()
    assert done.is_set()


@pytest.mark.parametrize("what", ["step", "state_dict", "load_state_dict", "add_param_group", "state",
                                  "state_entry", "clip_norm", "grad_prescale"])
def test_every_change_and_snapshot_holds_the_step_lock(what):
    opt = fg.Adam([np.zeros(3)], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    calls = {
        "step": lambda: opt.step([np.ones(3)]),
        "state_dict": opt.state_dict,
        "load_state_dict": lambda: opt.load_state_dict(sd),
        "add_param_group": lambda: opt.add_param_group({"params": [np.zeros(2)]}),
        "state": lambda: opt.state.__setitem__(0, {}),
        "state_entry": lambda: opt.state[0].__setitem__("exp_avg", np.ones(3)),
        "clip_norm": lambda: setattr(opt, "clip_norm", 1.0),
        "grad_prescale": lambda: setattr(opt, "grad_prescale", 0.5),
    }
    _blocked_while_held(opt, calls[what])


def test_the_lock_is_reentrant():
    """A thread that holds the lock may step (a loop that holds it around its own steps), and
    code that a step calls may take a snapshot."""
    snapshots, made = [], []

    def lr(k):
        if made:
            snapshots.append(made[0].state_dict())
        return 0.1

    opt = fg.SGD([np.zeros(2)], lr=lr)
    made.append(opt)
    with opt.step_lock:
        opt.step([np.ones(2)])
    assert opt.step_count == 1 and len(snapshots) == 1 and snapshots[0]["group_state"][0]["step"] == 0


def test_the_fused_linear_epoch_holds_the_step_lock(monkeypatch):
    from fastgd.models.linear import _Objective

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] > 0).astype(np.float64)
    theta = np.zeros(5)
    opt = fg.SGD([theta], lr=0.1)
    held = []
    real = _core.linear_batches

    def checking(*args, **kw):
        free = []
        t = threading.Thread(target=lambda: free.append(opt.step_lock.acquire(blocking=False)))
        t.start()
        t.join()
        held.append(not free[0])
        return real(*args, **kw)

    monkeypatch.setattr(_core, "linear_batches", checking)
    fg.train(_Objective("log_loss", 1, 4, 0.0, 0.0), [theta], X, y, optimizer=opt, batch_size=50, max_epochs=2,
             gather=False)
    assert held and all(held)


def test_copies_have_locks_of_their_own():
    opt = fg.Adam([np.zeros(3)], lr=0.1)
    opt.step([np.ones(3)])
    for other in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert other.step_lock is not opt.step_lock
        with opt.step_lock:
            _run_threads(lambda _, o=other: o.step([np.ones(3)]), 1)  # not blocked by the original's lock
        assert other.step_count == 2 and opt.step_count == 1


def _step_in_child(opt, conn):
    opt.step([np.ones(3)])
    conn.send(opt.step_count)


@pytest.mark.skipif(sys.platform == "win32" or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs the fork start method")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python 3.12+: fork with threads running
def test_a_child_forked_while_another_thread_holds_the_lock_can_step():
    opt = fg.SGD([np.zeros(3)], lr=0.1)
    opt.step([np.ones(3)])
    holding, release = threading.Event(), threading.Event()

    def hold():
        with opt.step_lock:
            holding.set()
            release.wait()

    t = threading.Thread(target=hold)
    t.start()
    assert holding.wait(60)
    try:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_step_in_child, args=(opt, child))
        proc.start()
        got = parent.recv() if parent.poll(120) else None
        proc.join(120)
        if proc.is_alive():
            proc.kill()
    finally:
        release.set()
        t.join()
    assert got == 2  # the child's copy of the lock was not left held by a thread it lacks
