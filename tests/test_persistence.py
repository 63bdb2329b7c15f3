"""fastgd.persistence: .npz model files without pickle (round trips, damaged and foreign files,
atomic writes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import datasets, persistence, schedules
from fastgd.models import LinearRegression, LogisticRegression


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.models.ConvergenceWarning)
        yield


def _clf_data(n_classes, dtype=np.float64, n=300):
    X, y = datasets.make_classification(n_samples=n, n_features=5, n_classes=n_classes, random_state=3)
    return X.astype(dtype), y


def _reg_data(dtype=np.float64):
    X, y = datasets.make_regression(n_samples=200, n_features=4, random_state=3)
    return X.astype(dtype), y


def _fitted_attrs(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def _assert_same_model(a, b, X):
    assert type(a) is type(b)
    assert a.get_params() == b.get_params()
    fa, fb = _fitted_attrs(a), _fitted_attrs(b)
    assert fa.keys() == fb.keys()
    for k, v in fa.items():
        if isinstance(v, np.ndarray):
            assert v.dtype == fb[k].dtype and np.array_equal(v, fb[k]), k
    pa, pb = a.predict(X), b.predict(X)
    assert pa.dtype == pb.dtype
    assert np.array_equal(pa, pb)  # bit for bit
    assert a.history_.records == b.history_.records
    assert a.history_.stop_reason == b.history_.stop_reason


@pytest.mark.parametrize("solver", ["gd", "newton"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_regression_round_trip(tmp_path, solver, dtype):
    X, y = _reg_data(dtype)
    model = LinearRegression(solver=solver, max_epochs=5, random_state=0, standardize=True).fit(X, y)
    path = tmp_path / "reg.npz"
    persistence.save(model, path)
    loaded = fastgd.load(path)
    _assert_same_model(model, loaded, X)
    assert loaded._scaling.standardized and np.array_equal(loaded._scaling.mean, model._scaling.mean)
    assert loaded._scaling.y_scale == model._scaling.y_scale


@pytest.mark.parametrize("solver", ["gd", "newton"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_regression_round_trip(tmp_path, solver, n_classes):
    X, y = _clf_data(n_classes)
    model = LogisticRegression(solver=solver, max_epochs=5, random_state=0).fit(X, y)
    path = tmp_path / "clf.npz"
    model.save(path)
    loaded = fastgd.load(path)
    _assert_same_model(model, loaded, X)
    assert np.array_equal(model.predict_proba(X), loaded.predict_proba(X))
    assert np.array_equal(model.decision_function(X), loaded.decision_function(X))


def test_string_labels_and_float32(tmp_path):
    X, y = _clf_data(3, np.float32)
    labels = np.array(["ant", "bee", "cow"], dtype=object)[y]
    model = LogisticRegression(max_epochs=3, random_state=0).fit(X, labels)
    model.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    assert loaded.classes_.dtype == object and list(loaded.classes_) == ["ant", "bee", "cow"]
    _assert_same_model(model, loaded, X)
    assert loaded.score(X, labels) == model.score(X, labels)


def test_params_schedule_and_options_survive(tmp_path):
    X, y = _clf_data(2)
    lr = schedules.warmup(schedules.cosine(0.05, T_max=50), warmup_steps=5)
    model = LogisticRegression(lr=lr, optimizer_options={"betas": (0.8, 0.99)}, penalty=None, max_epochs=2,
                               batch_size=None, random_state=np.int64(4)).fit(X, y)
    model.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    assert isinstance(loaded.lr, schedules.Schedule) and loaded.lr.get_config() == lr.get_config()
    assert loaded.optimizer_options == {"betas": (0.8, 0.99)}
    assert loaded.penalty is None and loaded.batch_size is None
    assert loaded.random_state == 4


def test_callbacks_are_dropped_with_a_warning(tmp_path):
    X, y = _clf_data(2)
    model = LogisticRegression(max_epochs=2, callbacks=[lambda h, p: None]).fit(X, y)
    with pytest.warns(UserWarning, match="callbacks"):
        model.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    assert loaded.callbacks == ()
    assert persistence.load_info(tmp_path / "m.npz")["dropped_params"] == ["callbacks"]
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_partial_fit_continues_after_load(tmp_path):
    X, y = _reg_data()
    model = LinearRegression(max_epochs=2, random_state=0).fit(X, y)
    model.save(tmp_path / "m.npz")
    loaded = fastgd.load(tmp_path / "m.npz")
    # The optimizer is stored (format version 2): partial_fit goes on exactly as on the original.
    loaded.partial_fit(X, y)
    assert loaded.n_iter_ == model.n_iter_ + 1
    model.partial_fit(X, y)
    assert np.array_equal(loaded.coef_, model.coef_)


def test_info_and_exact_path(tmp_path):
    X, y = _reg_data()
    model = LinearRegression(max_epochs=2).fit(X, y)
    path = tmp_path / "model.bin"  # used as given: no .npz appended
    persistence.save(model, path, info={"target": "y", "features": ["a", "b", "c", "d"]})
    assert path.exists() and not (tmp_path / "model.bin.npz").exists()
    info = persistence.load_info(path)
    assert info["class"] == "LinearRegression" and info["format"] == "fastgd-model"
    assert info["info"]["features"] == ["a", "b", "c", "d"]


def test_save_refuses_unfitted_and_foreign_objects(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        LinearRegression().save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="not a fastgd estimator"):
        persistence.save(object(), tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_mlp_round_trip(tmp_path):
    mlp = pytest.importorskip("fastgd.models.mlp")
    X, y = _clf_data(3, np.float32)
    for kwargs in ({}, {"batch_norm": True}):
        model = mlp.MLPClassifier(hidden_layer_sizes=(6, 4), max_epochs=2, random_state=0, **kwargs).fit(X, y)
        model.save(tmp_path / "mlp.npz")
        loaded = fastgd.load(tmp_path / "mlp.npz")
        _assert_same_model(model, loaded, X)
        assert np.array_equal(model.predict_proba(X), loaded.predict_proba(X))
    Xr, yr = _reg_data()
    reg = mlp.MLPRegressor(hidden_layer_sizes=(5,), max_epochs=2, random_state=0).fit(Xr, yr)
    reg.save(tmp_path / "reg.npz")
    _assert_same_model(reg, fastgd.load(tmp_path / "reg.npz"), Xr)


# -- damaged and foreign files -------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    X, y = _clf_data(2)
    path = tmp_path / "good.npz"
    LogisticRegression(max_epochs=2).fit(X, y).save(path)
    return path


def _rewrite_meta(src, dst, change):
    with np.load(src) as data:
        entries = {k: data[k] for k in data.files}
    meta = json.loads(entries["__fastgd__"].tobytes())
    change(meta)
    entries["__fastgd__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(dst, **entries)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastgd.load(tmp_path / "nope.npz")


def test_plain_npz_without_metadata(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.arange(3))
    with pytest.raises(ValueError, match="without fastgd's metadata"):
        fastgd.load(tmp_path / "plain.npz")


def test_text_and_npy_files(tmp_path):
    (tmp_path / "t.npz").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a fastgd model file"):
        fastgd.load(tmp_path / "t.npz")
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        fastgd.load(tmp_path / "a.npy")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="not a fastgd model file"):
        fastgd.load(tmp_path / "empty.npz")


def test_pickled_object_array_is_refused(tmp_path, saved):
    with np.load(saved) as data:
        entries = {k: data[k] for k in data.files}
    entries["a0"] = np.array([{"evil": 1}, None], dtype=object)  # np.savez pickles it
    np.savez(tmp_path / "pickled.npz", **entries)
    with pytest.raises(ValueError, match="pickled object array"):
        fastgd.load(tmp_path / "pickled.npz")


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_file(tmp_path, saved, cut):
    raw = saved.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(raw[:int(len(raw) * cut)])
    with pytest.raises(ValueError):
        fastgd.load(bad)


def test_corrupted_bytes(tmp_path, saved):
    raw = bytearray(saved.read_bytes())
    for i in range(200, min(len(raw), 600)):
        raw[i] ^= 0x5A
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        fastgd.load(bad)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(format="other-model"), "format 'other-model'"),
    (lambda m: m.update(version=99), "version 99"),
    (lambda m: m.update(version="1"), "version '1'"),
    (lambda m: m.update({"class": "os.system"}), "not a fastgd estimator"),
    (lambda m: m.update(params={"bogus": {"t": "py", "v": 1}}), "corrupted"),
    (lambda m: m["attributes"].update(coef_={"t": "array", "k": "a999"}), "corrupted"),
    (lambda m: m["attributes"].update(coef_={"t": "evil"}), "corrupted"),
])
def test_bad_metadata(tmp_path, saved, change, match):
    bad = tmp_path / "bad.npz"
    _rewrite_meta(saved, bad, change)
    with pytest.raises(ValueError, match=match):
        fastgd.load(bad)


def test_metadata_that_is_not_json(tmp_path, saved):
    with np.load(saved) as data:
        entries = {k: data[k] for k in data.files}
    entries["__fastgd__"] = np.frombuffer(b"{not json", np.uint8)
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(ValueError, match="corrupted fastgd metadata"):
        fastgd.load(tmp_path / "bad.npz")


# -- atomic writes -------------------------------------------------------------------------

def test_failed_save_leaves_the_old_file(tmp_path, saved, monkeypatch):
    before = saved.read_bytes()
    X, y = _reg_data()
    other = LinearRegression(max_epochs=2).fit(X, y)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        other.save(saved)
    assert saved.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert isinstance(fastgd.load(saved), LogisticRegression)
    other.save(saved)  # and a successful save replaces it
    assert isinstance(fastgd.load(saved), LinearRegression)


# A save in a subprocess that stops once its temporary file is written (before the fsync and
# the rename), says so, and goes on when it reads a line.
_STALLED_SAVE = """
import os, sys
import fastgd
model = fastgd.load(sys.argv[1])
real_fsync, stalled = os.fsync, []
def fsync(fd):
    if not stalled:
        stalled.append(1)
        print("writing", flush=True)
        sys.stdin.readline()
    real_fsync(fd)
os.fsync = fsync
model.save(sys.argv[1])
"""


def _stalled_save(path):
    proc = subprocess.Popen([sys.executable, "-c", _STALLED_SAVE, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    return proc


def _temporary_files(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process ids as POSIX has them")
def test_a_killed_writers_temporary_file_is_removed_by_the_next_save(tmp_path, saved):
    """A SIGKILL between writing the temporary file and renaming it leaves the file; the next
    save to the same path removes it."""
    before = saved.read_bytes()
    proc = _stalled_save(saved)
    (left,) = _temporary_files(tmp_path)
    assert left.startswith(".good.npz.fastgd-") and f"-{proc.pid}-" in left
    proc.kill()
    proc.communicate()  # and close its pipes
    assert saved.read_bytes() == before and _temporary_files(tmp_path) == [left]
    fastgd.load(saved).save(saved)
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]


@pytest.mark.skipif(os.name != "posix", reason="process ids as POSIX has them")
def test_a_live_writers_temporary_file_is_kept(tmp_path, saved):
    """Two processes saving to one path at once: neither removes the other's file in progress."""
    proc = _stalled_save(saved)
    (theirs,) = _temporary_files(tmp_path)
    fastgd.load(saved).save(saved)
    assert _temporary_files(tmp_path) == [theirs]
    proc.communicate("go\n", timeout=300)
    assert proc.returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]
    assert isinstance(fastgd.load(saved), LogisticRegression)


@pytest.mark.skipif(os.name != "posix", reason="process ids as POSIX has them")
def test_only_stale_temporary_files_of_the_same_target_are_removed(tmp_path, saved):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    host = persistence._host_tag()
    other_host = format((int(host, 16) + 1) % 2**32, "08x")
    stale = f".good.npz.fastgd-{host}-{dead}-k2j4h5g6.tmp"
    kept = [
        f".good.npz.fastgd-{host}-{os.getpid()}-a1b2c3d4.tmp",  # this process's (another thread's save)
        f".good.npz.fastgd-{host}-{os.getppid()}-a1b2c3d4.tmp",  # a live process's
        f".good.npz.fastgd-{other_host}-{dead}-a1b2c3d4.tmp",  # another host's: its ids mean nothing here
        f".other.npz.fastgd-{host}-{dead}-a1b2c3d4.tmp",  # another target's
        ".fastgd-a1b2c3d4.npz.tmp",  # whose writer is not known
        f".good.npz.fastgd-{host}-{dead}-a1b2c3d4.tmp.keep",  # not a temporary file of save
    ]
    for name in [stale, *kept]:
        (tmp_path / name).write_bytes(b"partial")
    fastgd.load(saved).save(saved)
    assert sorted(os.listdir(tmp_path)) == sorted(["good.npz", *kept])


def test_persistence_imports_no_estimator_module():
    """The dependency runs one way, models -> persistence: the estimators register their
    classes into persistence, which never imports fastgd.models (not even in a function)."""
    import ast

    with open(persistence.__file__) as f:
        tree = ast.parse(f.read())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [m for m in imported if m.startswith("fastgd.models")], imported
    assert sorted(persistence._REGISTRY["estimator"]) == ["LinearRegression", "LogisticRegression",
                                                          "MLPClassifier", "MLPRegressor"]
