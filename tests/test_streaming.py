"""Data larger than memory: chunk streams through a shuffle buffer, memory-mapped inputs,
streaming standardization (fastgd.streaming)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgd as fg
from fastgd.models import LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor
from fastgd.models._data import weighted_moments
from fastgd.shuffling import permutation
from fastgd.streaming import ChunkStream, RunningMoments, is_chunk_source, is_memmap


def _data(n=600, d=7, seed=0, dtype=np.float64, classes=2):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d) * 4).astype(dtype)
    z = X @ rng.normal(size=d)
    if classes == 0:
        return X, z + rng.normal(size=n)
    y = np.digitize(z, np.quantile(z, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, y


def _chunks(X, y, sizes, w=None):
    out, start = [], 0
    for s in sizes:
        part = (X[start:start + s], y[start:start + s]) + (() if w is None else (w[start:start + s],))
        out.append(part)
        start += s
    assert start == len(X)
    return out


def _memmap(tmp_path, a, name):
    path = tmp_path / f"{name}.npy"
    np.save(path, a)
    return np.load(path, mmap_mode="r")


# -- streaming moments --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_moments_merge_chunks_like_the_whole(dtype):
    X, _ = _data(1000, 5, dtype=dtype)
    w = np.random.default_rng(1).uniform(0, 2, len(X))
    w[100:200] = 0  # a chunk of weight 0 counts for nothing
    whole = weighted_moments(X, w)
    m = RunningMoments()
    for a, b in [(0, 7), (7, 100), (100, 200), (200, 999), (999, 1000)]:
        m.update(X[a:b], w[a:b])
    mean, std = m.mean_std(dtype)
    np.testing.assert_allclose(mean, whole[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std, whole[1], rtol=1e-10)
    # Against plain NumPy
    np.testing.assert_allclose(mean, np.average(X.astype(np.float64), axis=0, weights=w), rtol=1e-12)
    var = np.average((X.astype(np.float64) - mean) ** 2, axis=0, weights=w)
    np.testing.assert_allclose(std, np.sqrt(var), rtol=1e-10)


def test_weighted_moments_in_blocks_match_one_block():
    X, _ = _data(5000, 3)
    w = np.random.default_rng(2).uniform(0.1, 1, len(X))
    one = weighted_moments(X, w)
    blocks = weighted_moments(X, w, block_bytes=24 * 32)  # 32 rows of 3 float64 per block
    np.testing.assert_allclose(blocks[0], one[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocks[1], one[1], rtol=1e-10)
    # A constant feature has scale 1 either way.
    X[:, 1] = 3.0
    assert weighted_moments(X, w, block_bytes=24 * 32)[1][1] == 1.0


# -- the shuffle buffer -------------------------------------------------------------------

@pytest.mark.parametrize("shuffle", [True, "batches", False])
@pytest.mark.parametrize("buffer_size", [5, 16, 33, 100, 1000])
@pytest.mark.parametrize("bs", [1, 4, 7])
def test_every_sample_once_per_epoch(shuffle, buffer_size, bs):
    n = 97
    X = np.arange(n, dtype=np.float64)[:, None]
    stream = ChunkStream(_chunks(X, np.arange(n), [10, 1, 30, 56]), buffer_size=buffer_size)
    rng = np.random.default_rng(0)
    seen = []
    segs = list(stream.segments(rng, bs, shuffle))
    for Xs, ys, ws, order, m in stream.segments(rng, bs, shuffle):
        assert ws is None and len(Xs) <= -(-buffer_size // bs) * bs
        rows = np.arange(m) if order is None else order[:m]
        np.testing.assert_array_equal(Xs[rows, 0], ys[rows])
        seen.extend(ys[rows].tolist())
    assert sorted(seen) == list(range(n))
    # Every segment but the last is a whole number of batches.
    assert all(m % bs == 0 for *_, m in segs[:-1])
    if buffer_size < n and shuffle is True:
        assert seen != list(range(n))


def test_a_buffer_that_holds_everything_is_one_permutation():
    X, y = _data(100, 2)
    stream = ChunkStream(_chunks(X, y, [30, 30, 40]), buffer_size=98)  # rounded up to 13 batches
    segs = list(stream.segments(np.random.default_rng(5), 8, True))
    assert len(segs) == 1
    np.testing.assert_array_equal(segs[0][3], permutation(np.random.default_rng(5), 100))
    np.testing.assert_array_equal(segs[0][0], X)



def test_segments_take_the_shuffle_modes_of_the_one_table():
    X, y = _data(40, 2)
    stream = ChunkStream(_chunks(X, y, [20, 20]), buffer_size=16)
    with pytest.raises(ValueError, match="shuffle must be True"):
        next(stream.segments(np.random.default_rng(0), 8, "rows"))
    # A NumPy boolean is the mode it stands for: the same segments as True.
    a = list(ChunkStream(_chunks(X, y, [20, 20]), buffer_size=16).segments(np.random.default_rng(0), 8, np.True_))
    b = list(ChunkStream(_chunks(X, y, [20, 20]), buffer_size=16).segments(np.random.default_rng(0), 8, True))
    assert [m for *_, m in a] == [m for *_, m in b]
    for sa, sb in zip(a, b):
        np.testing.assert_array_equal(sa[3], sb[3])

def test_memmap_is_streamed_in_blocks_never_copied_whole(tmp_path):
    X, y = _data(1000, 4, dtype=np.float32)
    Xm = _memmap(tmp_path, X, "X")
    assert is_memmap(Xm) and is_memmap(Xm[10:20]) and not is_memmap(X)
    stream = ChunkStream(Xm, y, chunk_rows=64, buffer_size=128)
    blocks = list(stream.chunks())
    assert len(blocks) == 16 and all(is_memmap(b[0]) for b in blocks)
    sizes = [len(Xs) for Xs, *_ in stream.segments(np.random.default_rng(0), 32, True)]
    assert max(sizes) == 128


def test_chunk_source_kinds():
    X, y = _data(50, 3)
    chunks = _chunks(X, y, [20, 30])
    assert is_chunk_source(chunks) and is_chunk_source(iter(chunks)) and is_chunk_source(lambda: iter(chunks))
    assert not is_chunk_source(X) and not is_chunk_source([[1.0, 2.0]])
    assert not is_chunk_source([(1.0, 2.0), (3.0, 4.0)])  # rows given as tuples
    gen = ChunkStream(c for c in chunks)
    assert gen.one_shot
    assert len(list(gen.chunks())) == 2
    with pytest.raises(ValueError, match="one-shot iterator"):
        list(gen.chunks())
    again = ChunkStream(lambda: iter(chunks))
    assert len(list(again.chunks())) == 2 and len(list(again.chunks())) == 2


# -- train() ------------------------------------------------------------------------------

def _lsq(params, X, y, w):
    (coef,) = params
    r = X @ coef - y
    if w is None:
        return 0.5 * np.mean(r**2), [X.T @ r / len(y)]
    return 0.5 * np.sum(w * r**2) / np.sum(w), [X.T @ (w * r) / np.sum(w)]


@pytest.mark.parametrize("shuffle", [True, "batches", False])
@pytest.mark.parametrize("weighted", [False, True])
def test_train_on_chunks_equals_train_on_arrays_when_the_buffer_holds_all(shuffle, weighted):
    X, y = _data(301, 5, classes=0)
    w = np.random.default_rng(3).uniform(0, 2, len(X)) if weighted else None
    runs = []
    for data in ((X, y), (ChunkStream(_chunks(X, y, [100, 1, 200], w), buffer_size=400), None)):
        coef = np.zeros(5)
        h = fg.train(_lsq, [coef], data[0], data[1], lr=0.05, batch_size=16, max_epochs=4, random_state=7,
                     shuffle=shuffle, sample_weight=w if data[1] is not None else None)
        runs.append((coef, h))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert [r["train_loss"] for r in runs[0][1]] == [r["train_loss"] for r in runs[1][1]]


def test_train_on_chunks_with_a_small_buffer_converges_and_is_reproducible():
    X, y = _data(2000, 4, classes=0)
    order = np.argsort(X[:, 0])  # a sorted stream: the buffer mixes it locally
    X, y = X[order], y[order]
    exact = np.linalg.lstsq(X, y, rcond=None)[0]

    def run():
        coef = np.zeros(4)
        fg.train(_lsq, [coef], ChunkStream(lambda: iter(_chunks(X, y, [100] * 20)), buffer_size=300), None,
                 lr=0.05, batch_size=32, max_epochs=40, random_state=3)
        return coef

    a, b = run(), run()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, exact, rtol=0.05, atol=0.05)


def test_train_stream_errors():
    X, y = _data(40, 3, classes=0)
    with pytest.raises(ValueError, match="batch_size=None"):
        fg.train(_lsq, [np.zeros(3)], _chunks(X, y, [20, 20]), None, batch_size=None)
    with pytest.raises(ValueError, match="inside each chunk"):
        fg.train(_lsq, [np.zeros(3)], _chunks(X, y, [20, 20]), y, batch_size=8)
    with pytest.raises(ValueError, match="chunk 1: X has shape"):
        fg.train(_lsq, [np.zeros(3)], [(X[:20], y[:20]), (X[20:, :2], y[20:])], None, batch_size=8)


# -- estimators ---------------------------------------------------------------------------

def _lin(**kw):
    return LogisticRegression(batch_size=16, max_epochs=3, tol=None, random_state=0, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shuffle", [True, "batches"])
def test_logistic_fit_on_a_memmap_equals_the_array(tmp_path, dtype, shuffle):
    X, y = _data(500, 6, dtype=dtype, classes=3)
    Xm = _memmap(tmp_path, X, "X")
    a = _lin(shuffle=shuffle).fit(X, y)
    b = _lin(shuffle=shuffle).fit(Xm, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.history_.records[-1]["train_loss"] == b.history_.records[-1]["train_loss"]
    np.testing.assert_array_equal(a.predict(Xm), b.predict(X))


@pytest.mark.parametrize("est", [LinearRegression, LogisticRegression])
def test_fit_on_chunks_matches_the_array(est):
    X, y = _data(600, 5, classes=0 if est is LinearRegression else 2)
    w = np.random.default_rng(4).uniform(0.2, 2, len(X))
    kw = dict(batch_size=20, max_epochs=4, tol=None, random_state=1)
    a = est(**kw).fit(X, y, sample_weight=w)
    # Several chunks: the moments are merged, equal to the array's up to rounding.
    b = est(**kw).fit(_chunks(X, y, [250, 50, 300], w), None)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=1e-9, atol=1e-12)
    assert b.n_features_in_ == 5 and b.n_iter_ == 4


def test_sample_weights_through_chunks_count():
    X, y = _data(400, 4)
    w = np.where(np.arange(400) < 200, 3.0, 0.5)
    b = _lin().fit(_chunks(X, y, [100] * 4, w), None)
    c = _lin().fit(_chunks(X, y, [100] * 4), None)
    a = _lin().fit(X, y, sample_weight=w)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-9)
    assert not np.allclose(b.coef_, c.coef_)
    # Doubling every weight changes nothing (they are divided by their mean).
    d = _lin().fit(_chunks(X, y, [100] * 4, 2 * w), None)
    np.testing.assert_allclose(d.coef_, b.coef_, rtol=1e-12)


def test_fit_on_a_generator_function_runs_epochs_and_is_reproducible():
    X, y = _data(1000, 5, classes=3)

    def chunks():
        for start in range(0, 1000, 128):
            yield X[start:start + 128], y[start:start + 128]

    kw = dict(batch_size=32, max_epochs=10, tol=None, random_state=0)
    a = LogisticRegression(**kw).fit(ChunkStream(chunks, buffer_size=256), None)
    b = LogisticRegression(**kw).fit(ChunkStream(chunks, buffer_size=256), None)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.n_iter_ == 10 and list(a.classes_) == [0, 1, 2]
    ref = LogisticRegression(**kw).fit(X, y)
    assert abs(a.score(X, y) - ref.score(X, y)) < 0.03


@pytest.mark.parametrize("est", [MLPClassifier, MLPRegressor])
def test_mlp_fit_on_a_memmap_and_chunks(tmp_path, est):
    X, y = _data(400, 6, dtype=np.float32, classes=0 if est is MLPRegressor else 2)
    kw = dict(hidden_layer_sizes=(8,), batch_size=32, max_epochs=3, tol=None, random_state=0)
    a = est(**kw).fit(X, y)
    b = est(**kw).fit(_memmap(tmp_path, X, "X"), y)
    c = est(**kw).fit(_chunks(X, y, [150, 250]), None)
    for other in (b, c):
        for p, q in zip(a.coefs_, other.coefs_):
            np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)
    if est is MLPClassifier:
        for p, q in zip(a.coefs_, b.coefs_):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("est", [LogisticRegression, MLPClassifier])
def test_partial_fit_on_memmap_slices_and_chunks(tmp_path, est):
    X, y = _data(600, 5, dtype=np.float32, classes=3)
    Xm = _memmap(tmp_path, X, "X")
    kw = dict(batch_size=25, random_state=0)
    if est is MLPClassifier:
        kw.update(hidden_layer_sizes=(6,), lr=0.01)
    a, b = est(**kw), est(**kw)
    for start in range(0, 600, 200):
        a.partial_fit(X[start:start + 200], y[start:start + 200], classes=[0, 1, 2])
        b.partial_fit(Xm[start:start + 200], y[start:start + 200], classes=[0, 1, 2])
    for p, q in zip(np.atleast_1d(a.coef_) if est is LogisticRegression else a.coefs_,
                    np.atleast_1d(b.coef_) if est is LogisticRegression else b.coefs_):
        np.testing.assert_array_equal(p, q)
    # One partial_fit over chunks: one epoch through the buffer; then one-shot iterators.
    c = est(**kw).partial_fit(_chunks(X, y, [300, 300]), None, classes=[0, 1, 2])
    c.partial_fit((part for part in _chunks(X, y, [100] * 6)), None)
    assert c.n_iter_ == 2 and c.score(X, y) > 0.5


def test_partial_fit_keeps_the_first_calls_standardization():
    X, y = _data(600, 5, dtype=np.float64, classes=0)
    m = LinearRegression(batch_size=20, random_state=0).partial_fit(_chunks(X[:300], y[:300], [100] * 3), None)
    first = m._scaling.mean.copy()
    m.partial_fit(_chunks(X[300:] + 100, y[300:], [100] * 3), None)
    np.testing.assert_array_equal(m._scaling.mean, first)
    np.testing.assert_allclose(first, X[:300].mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda X, y: [(X[:10], y[:10]), (X[10:, :3], y[10:])], "chunk 1: X has shape"),
    (lambda X, y: [(X[:10], y[:10]), (X[10:].astype(np.float32), y[10:])], "chunk 1: X has dtype float32"),
    (lambda X, y: [(X[:10], y[:10]), (X[10:10], y[10:10]), (X[10:], y[10:])], "chunk 1: X has no rows"),
    (lambda X, y: [(X[:10], None), (X[10:], None)], "chunk 0: y is missing"),
    (lambda X, y: [(X[:10], y[:10]), (X[10:], y[11:])], "chunk 1: X has 30 rows but y has shape"),
    (lambda X, y: [(X[:10], y[:10], np.ones(10)), (X[10:], y[10:])], "chunk 1: sample_weight is missing"),
    (lambda X, y: [(X[:10], y[:10], -np.ones(10)), (X[10:], y[10:], np.ones(30))], "finite and >= 0"),
    (lambda X, y: [(X[:10], y[:10]), X[10:]], "chunk 1: each chunk must be a tuple"),
    (lambda X, y: [(X[:10],), (X[10:],)], "chunk 0: each chunk must be a tuple"),
    (lambda X, y: [(np.where(X[:10] > 0, np.nan, X[:10]), y[:10]), (X[10:], y[10:])], "chunk 0: Input X contains NaN"),
    (lambda X, y: (c for c in [(X, y)]), "one-shot iterator"),
    (lambda X, y: lambda: None, "must return an iterable"),
])
def test_bad_chunks_are_clear_errors(make, match):
    X, y = _data(40, 4)
    m = LogisticRegression(batch_size=8, max_epochs=2)
    with pytest.raises(ValueError, match=match) if match != "must return an iterable" else \
            pytest.raises(TypeError, match=match):
        m.fit(make(X, y), None)
    assert not hasattr(m, "coef_")


def test_streamed_fit_refuses_what_needs_the_whole_set(tmp_path):
    X, y = _data(100, 3)
    chunks = _chunks(X, y, [50, 50])
    with pytest.raises(ValueError, match="solver='newton' needs the whole data set"):
        LogisticRegression(solver="newton").fit(chunks, None)
    with pytest.raises(ValueError, match="batch_size=None"):
        LogisticRegression(batch_size=None).fit(chunks, None)
    with pytest.raises(ValueError, match="batch_size=None"):
        MLPClassifier(batch_size=None).fit(chunks, None)
    with pytest.raises(ValueError, match="median"):
        LinearRegression(loss="huber").fit(_chunks(X, y.astype(float), [50, 50]), None)
    with pytest.raises(ValueError, match="inside each chunk"):
        LogisticRegression().fit(chunks, y)
    with pytest.raises(ValueError, match="classes must be passed"):
        LogisticRegression().partial_fit(chunks, None)


def test_stream_options_are_checked():
    with pytest.raises(ValueError, match="buffer_size"):
        ChunkStream([], buffer_size=0)
    with pytest.raises(ValueError, match="chunk_rows"):
        ChunkStream(np.zeros((3, 2)), chunk_rows=1.5)
    with pytest.raises(TypeError, match="source must be"):
        ChunkStream(3)
    with pytest.raises(ValueError, match="no chunks"):
        list(ChunkStream([]).chunks())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(ChunkStream(np.zeros((10, 2)), np.zeros(10), chunk_rows=3).chunks())) == 4


# -- memory: a file several times larger than the buffer ------------------------------------

_MEASURE = r"""
import json, sys
import numpy as np
from fastgd.models import LogisticRegression
from fastgd.streaming import ChunkStream
sys.path.insert(0, sys.argv[4])
from anon_memory import PeakAnon

X = np.load(sys.argv[1], mmap_mode="r")
y = np.load(sys.argv[2], mmap_mode="r")
buffer_rows = int(sys.argv[3])
m = LogisticRegression(batch_size=1024, max_epochs=1, tol=None, random_state=0)
with PeakAnon() as mem:
    m.fit(ChunkStream(X, y, buffer_size=buffer_rows), None)
print(json.dumps({"base_kb": mem.base_kb, "peak_kb": mem.peak_kb, "score": float(m.score(X[:20000], y[:20000]))}))
"""


def test_training_on_a_file_larger_than_the_buffer_keeps_anonymous_memory_bounded(tmp_path):
    import json
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status (Linux) for RssAnon")
    n, d = 655_360, 100                        # 256 MiB of float32
    xpath, ypath = tmp_path / "X.npy", tmp_path / "y.npy"
    X = np.lib.format.open_memmap(xpath, mode="w+", dtype=np.float32, shape=(n, d))
    y = np.lib.format.open_memmap(ypath, mode="w+", dtype=np.int8, shape=(n,))
    rng = np.random.default_rng(0)
    w = rng.normal(size=d).astype(np.float32)
    for start in range(0, n, 65_536):
        block = rng.standard_normal((65_536, d), dtype=np.float32)
        X[start:start + 65_536] = block
        y[start:start + 65_536] = block @ w > 0
    X.flush()
    y.flush()
    del X, y
    buffer_rows = 32 * 2**20 // (4 * d)       # a 32 MiB buffer: an eighth of the file
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(xpath), str(ypath), str(buffer_rows),
                          os.path.dirname(os.path.abspath(__file__))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    growth_mb = (r["peak_kb"] - r["base_kb"]) / 1024
    # The file is 256 MiB (a standardized copy would add as much, a float64 one twice
    # that); the buffer 32 MiB, plus the chunk being read and its transformed copy (4 MiB
    # each) and the moments pass's float64 temporaries of one chunk.
    assert growth_mb < 80, r
    assert r["score"] > 0.9


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning: 5 epochs only
def test_a_memmap_is_read_whole_only_where_the_whole_set_is_needed(tmp_path):
    X, y = _data(200, 3)
    Xm = _memmap(tmp_path, X, "X")
    for kw in (dict(solver="newton"), dict(batch_size=None), dict(early_stopping=True)):
        a = LogisticRegression(random_state=0, max_epochs=5, **kw).fit(X, y)
        b = LogisticRegression(random_state=0, max_epochs=5, **kw).fit(Xm, y)
        np.testing.assert_array_equal(a.coef_, b.coef_)


def test_memmap_with_scalar_and_array_sample_weight(tmp_path):
    X, y = _data(300, 4)
    Xm = _memmap(tmp_path, X, "X")
    w = np.random.default_rng(0).uniform(0.5, 2, 300)
    np.testing.assert_array_equal(_lin().fit(Xm, y, sample_weight=w).coef_, _lin().fit(X, y, sample_weight=w).coef_)
    np.testing.assert_allclose(_lin().fit(Xm, y, sample_weight=3.0).coef_, _lin().fit(X, y).coef_, rtol=1e-12)
    assert fg.ChunkStream is ChunkStream


def test_checkpoint_and_resume_with_chunks(tmp_path):
    X, y = _data(400, 4, classes=3)
    chunks = _chunks(X, y, [150, 250])
    kw = dict(batch_size=16, tol=None, random_state=0)
    full = LogisticRegression(max_epochs=6, **kw).fit(ChunkStream(chunks, buffer_size=200), None)
    ck = tmp_path / "ck.npz"
    LogisticRegression(max_epochs=3, **kw).fit(ChunkStream(chunks, buffer_size=200), None, checkpoint=ck)
    resumed = fg.load(ck).set_params(max_epochs=6).fit(ChunkStream(chunks, buffer_size=200), None, resume=True)
    np.testing.assert_array_equal(resumed.coef_, full.coef_)
    with pytest.raises(ValueError, match="resume"):
        fg.load(ck).set_params(max_epochs=6).fit(_chunks(X[:300], y[:300], [300]), None, resume=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standardize_in_blocks_gives_the_same_bits(dtype):
    from fastgd.models._inputs import standardize

    X, _ = _data(1001, 7, dtype=dtype)
    mean, scale = weighted_moments(X, np.ones(len(X)))
    expect = ((X - mean) / scale).astype(dtype, copy=False)
    for block in (8 * 7 * 3, 16 << 20):
        got = standardize(X, mean, scale, dtype, block_bytes=block)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expect)


def test_train_reads_a_one_shot_iterator_for_one_epoch_only():
    X, y = _data(100, 3, classes=0)
    coef = np.zeros(3)
    h = fg.train(_lsq, [coef], (c for c in _chunks(X, y, [50, 50])), None, batch_size=10, max_epochs=1, lr=0.1)
    assert len(h) == 1 and np.all(coef != 0)
    with pytest.raises(ValueError, match="one-shot iterator"):
        fg.train(_lsq, [coef], (c for c in _chunks(X, y, [50, 50])), None, batch_size=10, max_epochs=2)


def test_string_labels_across_chunks_and_batch_norm():
    X, y = _data(300, 4, classes=3)
    labels = np.array(["a", "b", "c"])[y]
    # The first chunk shows two of the classes only.
    order = np.argsort(y, kind="stable")
    X, labels = X[order], labels[order]
    chunks = _chunks(X, labels, [100, 200])
    a = LogisticRegression(batch_size=16, max_epochs=5, tol=None, random_state=0).fit(chunks, None)
    b = LogisticRegression(batch_size=16, max_epochs=5, tol=None, random_state=0).fit(X, labels)
    assert list(a.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-12)
    # Batch norm keeps its running statistics (no exact pass at the end of a streamed fit).
    kw = dict(batch_norm=True, batch_size=32, max_epochs=10, lr=0.01, tol=None, random_state=0)
    m = MLPClassifier((8,), **kw).fit(ChunkStream(chunks, buffer_size=300), None)
    ref = MLPClassifier((8,), **kw).fit(X, labels)
    assert abs(m.score(X, labels) - ref.score(X, labels)) < 0.1 and np.all(np.isfinite(m.batch_norm_vars_[0]))


def test_streamed_fit_gives_the_same_bits_on_1_and_2_threads(tmp_path):
    X, y = _data(3000, 40, dtype=np.float32, classes=3)
    Xm = _memmap(tmp_path, X, "X")
    fits = []
    for threads in (1, 2):
        with fg.num_threads(threads):
            m = LogisticRegression(batch_size=64, max_epochs=3, tol=None, random_state=0)
            fits.append(m.fit(ChunkStream(Xm, y, chunk_rows=500, buffer_size=1024), None).coef_)
    np.testing.assert_array_equal(fits[0], fits[1])


def test_a_held_buffer_is_reused_only_when_it_holds_everything():
    X, y = _data(97, 2)
    calls = []

    def source():
        calls.append(1)
        return iter(_chunks(X, y, [40, 57]))

    for src in (_chunks(X, y, [40, 57]), source):
        stream = ChunkStream(src, buffer_size=200)
        for _ in range(3):
            segs = list(stream.segments(np.random.default_rng(0), 8, True))
            np.testing.assert_array_equal(np.sort(segs[0][1][segs[0][3]]), np.sort(y))
        assert (stream._held is not None) == (src is not source)
    assert len(calls) == 3  # a callable is read every epoch (it may give other data)
    # A buffer smaller than the data is refilled every epoch.
    stream = ChunkStream(_chunks(X, y, [40, 57]), buffer_size=32)
    for _ in range(2):
        seen = [v for Xs, ys, ws, order, m in stream.segments(np.random.default_rng(0), 8, True)
                for v in (ys[order[:m]] if order is not None else ys[:m])]
        assert sorted(seen) == sorted(y.tolist())


@pytest.mark.parametrize("shuffle", [True, "batches", False])
@pytest.mark.parametrize("buffer_size", [8, 24, 1000])
def test_segments_padded_to_the_agreed_number_of_samples(shuffle, buffer_size):
    # Data-parallel streams: an epoch visits pad_to samples (the largest shard's), all of the
    # stream's own and then some again, in whole batches but the last; a buffer that holds
    # the stream pads with the first samples of the epoch's order, as train does an array.
    X = np.arange(45, dtype=np.float64)[:, None]
    stream = ChunkStream([(X[i:i + 10], X[i:i + 10, 0]) for i in range(0, 45, 10)], buffer_size=buffer_size)
    for epoch in range(2):  # the second epoch of a held buffer takes another path
        seen, sizes = [], []
        for Xs, _, _, order, n in stream.segments(np.random.default_rng(epoch), 8, shuffle, pad_to=61):
            rows = Xs[:n, 0] if order is None else Xs[order[:n], 0]
            seen.extend(rows.tolist())
            sizes.extend([8] * (n // 8) + ([n % 8] if n % 8 else []))
        assert len(seen) == 61 and set(seen) == set(range(45))
        assert sizes[:-1] == [8] * (len(sizes) - 1) and sizes[-1] == 61 - 8 * (len(sizes) - 1)
        if buffer_size == 1000:
            assert seen[45:] == seen[:16]
    with pytest.raises(ValueError, match="more"):
        list(stream.segments(np.random.default_rng(0), 8, shuffle, pad_to=40))


@pytest.mark.filterwarnings("ignore::UserWarning")  # ConvergenceWarning of short fits
@pytest.mark.parametrize("make", [LogisticRegression, MLPClassifier])
def test_early_stopping_holds_out_a_bounded_sample_of_a_stream(make, tmp_path):
    # validation_fraction of the samples, at most the buffer's size, left out of every epoch;
    # the run stops on their loss, and a checkpointed run resumes with the same bits.
    X, y = _data(1000, 4)
    chunks = _chunks(X, y, [300, 300, 400])
    kw = dict(batch_size=32, early_stopping=True, random_state=0, n_iter_no_change=2)
    if make is MLPClassifier:
        kw["hidden_layer_sizes"] = (8,)
    m = make(max_epochs=40, **kw).fit(chunks, None)
    assert m.history_["step"][0] == -(-900 // 32)       # 100 samples held out
    assert m.history_["val_loss"][0] is not None
    assert m.history_.stop_reason.startswith(("early", "reached")) and m.score(X, y) > 0.85
    small = make(max_epochs=2, **kw).fit(ChunkStream(chunks, buffer_size=64), None)
    assert small.history_["step"][0] == -(-936 // 32)   # at most 64 held out
    whole = make(max_epochs=6, **kw).fit(chunks, None)
    path = tmp_path / "run.fgd"
    make(max_epochs=3, **kw).fit(chunks, None, checkpoint=path)
    resumed = fg.load(path).set_params(max_epochs=6).fit(chunks, None, resume=True)
    np.testing.assert_array_equal(resumed._theta, whole._theta)
    with pytest.raises(ValueError, match="validation_fraction"):
        make(max_epochs=2, validation_fraction=0.0001, **kw).fit(chunks, None)


def test_running_moments_merge_as_update():
    # Merging the moments of two parts == updating with the second part, bit for bit.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((17, 4)) + 2
    wa, wb = rng.random(30), rng.random(17)
    one = RunningMoments()
    one.update(a, wa)
    one.update(b, wb)
    left, right = RunningMoments(), RunningMoments()
    left.update(a, wa)
    right.update(b, wb)
    left.merge(right)
    left.merge(RunningMoments())  # nothing to add
    np.testing.assert_array_equal(left.mean, one.mean)
    np.testing.assert_array_equal(left.var, one.var)
    assert (left.weight, left.count) == (one.weight, one.count)


def test_chunk_stream_count():
    X, y = _data(40, 3, classes=0)
    stream = ChunkStream(_chunks(X, y, [25, 15]))
    assert stream.count() == (40, (3,))
    assert ChunkStream(X, y).count() == (40, (3,))
    with pytest.raises(ValueError, match="one-shot"):
        ChunkStream(iter(_chunks(X, y, [25, 15]))).count()


def test_a_memmap_larger_than_one_block_fits_as_the_array(tmp_path):
    # 30,000 x 50 float32: 6 MB, two blocks of the moments and of the memmap alike.
    X, y = _data(30_000, 50, dtype=np.float32)
    kw = dict(batch_size=512, max_epochs=2, tol=None, random_state=0)
    a = LogisticRegression(**kw).fit(X, y)
    b = LogisticRegression(**kw).fit(_memmap(tmp_path, X, "X"), y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
