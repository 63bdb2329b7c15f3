"""fastgd.load on files crafted to hurt: a zip bomb, sizes and dtypes declared to allocate
gigabytes, nesting past the recursion limit, a FIFO or a device instead of a file. Each is a
ValueError ("... is not a valid fastgd model file: ..." or the damaged-file messages) raised
before the memory is taken (tracemalloc's peak stays small), never a hang, a MemoryError, a
RecursionError or a zipfile error; and ``fastgd predict`` prints one line for each."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import fastgd
from fastgd import cli, datasets, persistence
from fastgd.models import MLPClassifier

# What load may take while it refuses a probe (the probes would take from 64 MiB to terabytes).
PEAK_LIMIT = 16 * 2**20


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A checkpointed MLP: a network with batch-norm statistics, Adam's moments, generators."""
    X, y = datasets.make_classification(n_samples=200, n_features=4, n_classes=3, random_state=0)
    path = tmp_path_factory.mktemp("model") / "mlp.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.models.ConvergenceWarning)
        MLPClassifier(hidden_layer_sizes=(5,), batch_norm=True, max_epochs=3, random_state=0).fit(X, y).save(path)
    return path


def _contents(path):
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    return json.loads(entries.pop("__fastgd__").tobytes()), entries


def _write(path, meta, entries):
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(path, __fastgd__=np.frombuffer(text.encode(), np.uint8), **entries)
    return path


def _npy(a):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, allow_pickle=False)
    return f.getvalue()


def _npy_header(descr, shape, data=b""):
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue() + data


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def _members(model_file):
    """The model file's members as (name, .npy bytes)."""
    meta, entries = _contents(model_file)
    meta_bytes = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return [("__fastgd__.npy", _npy(meta_bytes))] + [(f"{k}.npy", _npy(v)) for k, v in entries.items()]


def _refused(path, match, **kwargs):
    """load(path) raises a ValueError matching ``match`` and takes less than PEAK_LIMIT."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match) as e:
            fastgd.load(path, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"load took {peak} bytes before refusing {path}"
    assert str(path.name) in str(e.value)
    return str(e.value)


# -- sizes, dtypes and nesting in the metadata ---------------------------------------------

def _network(meta):
    return meta["attributes"]["_net"]["init"]


@pytest.mark.parametrize("change, match", [
    (lambda m: _network(m).update(sizes=[4, 300_000_000, 1]), "more than the file's arrays hold"),
    (lambda m: _network(m).update(sizes=[4, 10**12, 1]), "more than the file's arrays hold"),
    (lambda m: _network(m).update(sizes=[4, 10**30, 10**30, 3]), "more than the file's arrays hold"),
    (lambda m: _network(m).update(sizes=[4, -5, 3]), "positive integers"),
    (lambda m: _network(m).update(sizes=[4, 2.5, 3]), "positive integers"),
    (lambda m: _network(m).update(sizes=[4, True, 3]), "positive integers"),
    (lambda m: _network(m).update(sizes="4,5,3"), "positive integers"),
    (lambda m: _network(m).update(dtype="|V100000000"), "not plain data"),
    (lambda m: _network(m).update(dtype="<i8"), "float32 or float64"),
    (lambda m: _network(m).update(dtype=["<f8", [1000000]]), "named by a string"),
    (lambda m: m["attributes"].update(_dtype={"t": "dtype", "v": "|V100000000"}), "not plain data"),
    (lambda m: m["attributes"].update(_dtype={"t": "dtype", "v": "(3,)f8"}), "not plain data"),
    (lambda m: m["attributes"].update(_dtype={"t": "dtype", "v": "(100000,100000)f8"}), "corrupted"),
    (lambda m: m["attributes"].update(_dtype={"t": "dtype", "v": "f8,f8"}), "not plain data"),
    (lambda m: m["attributes"].update(classes_={"t": "array", "k": "a1", "object": True}), "not as strings"),
    (lambda m: _network(m).update(dropout=10**400), "corrupted"),
])
def test_declared_sizes_and_dtypes_are_checked_before_allocating(tmp_path, model_file, change, match):
    meta, entries = _contents(model_file)
    change(meta)
    _refused(_write(tmp_path / "bad.npz", meta, entries), match)


@pytest.mark.parametrize("depth", [150, 450, 100_000])
def test_deep_nesting_is_a_value_error(tmp_path, model_file, depth):
    meta, entries = _contents(model_file)
    text = json.dumps(meta)
    # Nested nodes that the decoder would recurse through (and, deeper, the JSON parser).
    nodes = '{"t": "list", "v": [' * depth + '{"t": "py", "v": 0}' + "]}" * depth
    bad = _write(tmp_path / "nodes.npz", text.replace('"n_iter_": {"t": "py", "v": 3}', f'"n_iter_": {nodes}'),
                 entries)
    _refused(bad, "corrupted fastgd metadata: nested deeper than 100 levels")
    raw = _write(tmp_path / "raw.npz", text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}", entries)
    _refused(raw, "corrupted fastgd metadata: nested deeper than 100 levels")


def test_metadata_counts_against_max_bytes(tmp_path, model_file):
    meta, entries = _contents(model_file)
    meta["info"] = {"padding": "x" * 200_000}
    bad = _write(tmp_path / "big.npz", meta, entries)
    _refused(bad, r"arrays and metadata would take about \d+ bytes of memory, more than max_bytes=4000000",
             max_bytes=4_000_000)
    assert persistence.load_info(bad, max_bytes=20_000_000)["info"] == meta["info"]


# -- the zip directory and the .npy headers ------------------------------------------------

def test_a_zip_bomb_is_refused_before_decompressing(tmp_path, model_file):
    """A member of 64 MiB of zeros deflates to some 64 KiB: refused from the sizes that the
    zip directory declares (1000 times the file's), before a byte is inflated."""
    n = 8 * 2**20
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in _members(model_file):
            if name != "a1.npy":
                z.writestr(name, data)
        with z.open("a1.npy", "w") as f:
            f.write(_npy_header("<f8", (n,)))
            zeros = bytes(2**20)
            for _ in range(n * 8 // len(zeros)):
                f.write(zeros)
    assert os.path.getsize(bomb) < 2**20
    _refused(bomb, r"not a valid fastgd model file: its members declare \d+ bytes in all, \d+ times the file's "
                   "size.*zip bomb")


def test_declared_sizes_are_checked_without_reading_a_member(tmp_path, model_file, monkeypatch):
    """The central directory's size of a member, patched to 2 GiB: refused before any
    member is opened."""
    raw = bytearray(_zip(tmp_path / "m.npz", _members(model_file)).read_bytes())
    start = raw.find(b"PK\x01\x02")  # the central directory's entries
    patched = 0
    while start != -1:
        name_len = struct.unpack_from("<H", raw, start + 28)[0]
        if raw[start + 46:start + 46 + name_len] == b"a1.npy":
            struct.pack_into("<I", raw, start + 24, 2**31 - 1)  # uncompressed size
            patched += 1
        start = raw.find(b"PK\x01\x02", start + 4)
    assert patched == 1
    bad = tmp_path / "patched.npz"
    bad.write_bytes(bytes(raw))
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: (opened.append(a), real_open(self, *a, **k))[1])
    _refused(bad, "members declare")
    _refused(bad, "more than max_bytes=1000000", max_bytes=10**6)
    assert opened == []


@pytest.mark.parametrize("member, match", [
    (_npy_header("<f8", (10**12,), bytes(48 * 8)), r"declares \(1000000000000,\) of float64"),
    (_npy_header("<f8", (2**62, 2**62, 0), b""), "member 'a3.npy'"),  # no data, but no array has that shape
    (_npy_header("<f8", (0, 5), b""), None),  # a valid empty array, which the model cannot take
    (_npy_header("<f8", (-1,), bytes(8)), "declares the shape"),
    (_npy_header("|V100000000", (10,), bytes(10)), "not plain data"),
    (_npy_header([("a", "<f8"), ("b", "<i8")], (3,), bytes(48)), "not plain data"),
    (_npy_header([("a", "<f8", (10**6,))], (1,), bytes(8)), "not plain data|malformed"),
    (_npy_header("<U0", (10**12,), b""), "not plain data|malformed"),
    (_npy_header("|O", (3,), bytes(24)), "pickled object array"),
    (_npy_header("<f8", "(" * 2000 + ")" * 2000, b""), "malformed"),
    (b"\x93NUMPY\x01\x00" + struct.pack("<H", 60000) + b" " * 60000, "header of 60000 bytes"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{", "header of 2147483648 bytes"),
    (b"\x93NUMPY\x03\x00" + struct.pack("<I", 10) + b"{" * 10, "format version 1.0 or 2.0"),
    (b"PK\x03\x04 nested zip", "not an .npy array"),
])
def test_npy_headers_are_checked_before_reading(tmp_path, model_file, member, match):
    members = [(n, member if n == "a3.npy" else data) for n, data in _members(model_file)]
    bad = _zip(tmp_path / "bad.npz", members)
    if match is None:  # a legal header that fits its (empty) data; the model then does not fit it
        _refused(bad, "corrupted")
    else:
        _refused(bad, match)


@pytest.mark.parametrize("extra, match", [
    ([("notes.txt", b"hello")], "'notes.txt' is not an .npy array"),
    ([("a1.npy", _npy(np.zeros(3)))], "'a1.npy' appears twice"),
])
def test_zip_directory_is_checked(tmp_path, model_file, extra, match):
    _refused(_zip(tmp_path / "bad.npz", _members(model_file) + extra), match)


def test_other_compression_methods_are_refused(tmp_path, model_file):
    bad = _zip(tmp_path / "bz2.npz", _members(model_file), zipfile.ZIP_BZIP2)
    _refused(bad, "compression method 12")


def test_max_bytes_bounds_a_legitimate_file(tmp_path, model_file):
    size = os.path.getsize(model_file)
    _refused(model_file, f"the file has {size} bytes, more than max_bytes={size - 1}", max_bytes=size - 1)
    fastgd.load(model_file, max_bytes=size * 64)  # the metadata counts 64 times, the arrays once
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_bytes must be positive"):
            fastgd.load(model_file, max_bytes=bad)
    for bad in (1.5, True, "big", None):
        with pytest.raises(TypeError, match="max_bytes must be an integer"):
            fastgd.load(model_file, max_bytes=bad)


def test_a_compressed_copy_still_loads(tmp_path, model_file):
    """Deflated members are read (another tool may recompress a file), within the bounds."""
    meta, entries = _contents(model_file)
    copy = tmp_path / "compressed.npz"
    np.savez_compressed(copy, __fastgd__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **entries)
    X, _ = datasets.make_classification(n_samples=50, n_features=4, n_classes=3, random_state=1)
    assert np.array_equal(fastgd.load(copy).predict(X), fastgd.load(model_file).predict(X))


def test_a_larger_model_loads_with_the_default_bound(tmp_path):
    """A model of a few MiB (its moments included) loads as before."""
    X, y = datasets.make_classification(n_samples=64, n_features=300, n_classes=2, random_state=0)
    path = tmp_path / "large.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgd.models.ConvergenceWarning)
        model = MLPClassifier(hidden_layer_sizes=(1024, 64), max_epochs=1, random_state=0).fit(X, y)
    model.save(path)
    assert os.path.getsize(path) > 4 * 2**20
    assert np.array_equal(fastgd.load(path).predict(X), model.predict(X))


# -- files that are not regular files -----------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_at_once(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes; load refuses it without
    waiting (run in a subprocess, so that a hang fails the test instead of stopping it)."""
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    code = "import sys, fastgd\ntry:\n    fastgd.load(sys.argv[1])\nexcept ValueError as e:\n    print(e)\n" \
           "    sys.exit(3)"
    proc = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "is not a valid fastgd model file: it is a FIFO, not a regular file" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "fastgd", "predict", str(fifo), str(tmp_path / "data.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "FIFO" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("device", ["/dev/zero", os.devnull])
def test_a_device_is_refused(device):
    if not os.path.exists(device) or os.name != "posix":
        pytest.skip(f"no {device}")
    with pytest.raises(ValueError, match="character device, not a regular file"):
        fastgd.load(device)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="a directory, not a regular file"):
        fastgd.load(tmp_path)


# -- the command line ---------------------------------------------------------------------

def test_predict_prints_one_line_for_each_probe(tmp_path, model_file, capsys):
    meta, entries = _contents(model_file)
    probes = []
    for i, sizes in enumerate(([4, 300_000_000, 1], [4, 10**12, 1])):
        _network(meta).update(sizes=sizes)
        probes.append(_write(tmp_path / f"sizes{i}.npz", meta, entries))
    _network(meta).update(sizes=[4, 5, 3], dtype="|V100000000")
    probes.append(_write(tmp_path / "void.npz", meta, entries))
    probes.append(_write(tmp_path / "deep.npz", json.dumps(meta)[:-1] + ', "d": ' + "[" * 10**5 + "]" * 10**5 + "}",
                         entries))
    probes.append(_zip(tmp_path / "header.npz", [(n, _npy_header("<f8", (10**12,), bytes(8)) if n == "a1.npy"
                                                   else d) for n, d in _members(model_file)]))
    for probe in probes:
        code = cli.main(["predict", str(probe), str(tmp_path / "data.csv")])
        out, err = capsys.readouterr()
        assert code == 2 and out == ""
        assert err.startswith(f"fastgd: error: '{probe}'") and err.count("\n") == 1, err
