"""fastgd.io's svmlight reader: a scipy.sparse CSR matrix (float64 values, int32 indices while
they fit, each row's indices sorted), never a dense array; the same matrix as a plain
token-by-token reading of the file, from its fast path and its slow one, across chunks; and
one-line errors naming the line."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from svmlight_files import random_sparse_rows, write_svmlight

from fastgd import cli, io

sp = pytest.importorskip("scipy.sparse")


def _write(tmp_path, text, name="d.svm"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _reference(text):
    """Labels and {(row, index): value} of svmlight ``text``, token by token."""
    labels, entries = [], {}
    for line in text.splitlines():
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        labels.append(float(tokens[0]))
        for tok in tokens[1:]:
            key, _, value = tok.partition(":")
            if key != "qid":
                entries[len(labels) - 1, int(key)] = float(value)
    return labels, entries


def _entries(X, shift):
    coo = X.tocoo()
    return {(int(r), int(c) + shift): float(v) for r, c, v in zip(coo.row, coo.col, coo.data)}


def _assert_csr(X, shape):
    assert sp.issparse(X) and X.format == "csr" and X.shape == shape
    assert X.dtype == np.float64 and X.indices.dtype == X.indptr.dtype == np.int32
    for r in range(X.shape[0]):  # sorted and distinct within each row
        row = X.indices[X.indptr[r]:X.indptr[r + 1]]
        assert np.all(np.diff(row) > 0)
    assert X.has_sorted_indices


@pytest.mark.parametrize("ext", io.SVMLIGHT_EXTENSIONS)
def test_extensions_read_as_sparse(tmp_path, ext):
    path = _write(tmp_path, "1 1:0.5 3:2\n0 2:-1.25\n", f"d{ext}")
    table = io.read_table(path, None, None, train=True)
    _assert_csr(table.X, (2, 3))
    assert table.X.toarray().tolist() == [[0.5, 0, 2], [0, -1.25, 0]]
    assert table.y.tolist() == [1, 0] and table.y.dtype == np.int64
    assert table.fmt == "svmlight" and table.extra == {"zero_based": False}


def test_comments_blank_lines_qid_and_line_endings(tmp_path):
    text = ("# a comment line\n\n   \n1 qid:3 1:1.5 2:2 # trailing comment\r\n"
            "-1 qid:3 2:1e3\t4:.5   \n# another\n0.5 3:-2 qid:7\n2\n")
    table = io.read_svmlight(_write(tmp_path, text))
    _assert_csr(table.X, (4, 4))
    assert table.X.toarray().tolist() == [[1.5, 2, 0, 0], [0, 1000, 0, 0.5], [0, 0, -2, 0], [0, 0, 0, 0]]
    assert table.y.tolist() == [1, -1, 0.5, 2]  # not all whole numbers: float64


def test_zero_and_one_based(tmp_path):
    one = io.read_svmlight(_write(tmp_path, "1 1:1 3:3\n0 2:2\n"))
    assert one.extra["zero_based"] is False and one.X.shape == (2, 3)
    zero = io.read_svmlight(_write(tmp_path, "1 0:1 3:3\n0 2:2\n"))
    assert zero.extra["zero_based"] is True and zero.X.toarray().tolist() == [[1, 0, 0, 3], [0, 0, 2, 0]]
    # As a model trained on 0-based (or 1-based) indices reads a file: its choice, not the file's.
    assert io.read_svmlight(_write(tmp_path, "1 1:1\n"), zero_based=True).X.toarray().tolist() == [[0, 1]]
    with pytest.raises(io.DataFileError, match="has feature index 0, but the model was trained on 1-based"):
        io.read_svmlight(_write(tmp_path, "1 0:1\n"), zero_based=False)


def test_n_features_widens_and_bounds(tmp_path):
    path = _write(tmp_path, "1 1:1 3:3\n0 2:2\n")
    wide = io.read_svmlight(path, n_features=1_000_000)
    _assert_csr(wide.X, (2, 1_000_000))
    assert wide.X.nnz == 3 and wide.X[:, :3].toarray().tolist() == [[1, 0, 3], [0, 2, 0]]
    with pytest.raises(io.DataFileError, match="has feature indices up to 3, but the model has 2 features"):
        io.read_svmlight(path, n_features=2)


def test_out_of_order_indices_are_sorted(tmp_path):
    table = io.read_svmlight(_write(tmp_path, "1 5:5 1:1 3:3\n0 2:2 1:1\n1 4:4\n"))
    _assert_csr(table.X, (3, 5))
    assert table.X.toarray().tolist() == [[1, 0, 3, 0, 5], [1, 2, 0, 0, 0], [0, 0, 0, 4, 0]]


@pytest.mark.parametrize("line", ["1 2:1 2:3", "1 3:1 1:2 3:4", "1 qid:1 2:1 2:1"])
def test_duplicate_index_names_the_line(tmp_path, line):
    path = _write(tmp_path, f"1 1:1\n# comment\n{line}\n0 1:2\n")
    index = line.split()[-1].split(":")[0]
    with pytest.raises(io.DataFileError, match=rf"line 3: the feature index {index} appears twice"):
        io.read_svmlight(path)


def test_huge_index_gives_int64_indices(tmp_path):
    table = io.read_svmlight(_write(tmp_path, "1 1:1 3000000000:2\n0 7:3\n"))
    X = table.X
    assert sp.issparse(X) and X.shape == (2, 3_000_000_000) and X.nnz == 3
    assert X.indices.dtype == X.indptr.dtype == np.int64
    assert X.indices.tolist() == [0, 2_999_999_999, 6] and X.data.tolist() == [1, 2, 3]
    with pytest.raises(io.DataFileError, match="line 2: the feature index 100000000000000000000 is too large"):
        io.read_svmlight(_write(tmp_path, "1 1:1\n1 100000000000000000000:1\n"))


@pytest.mark.parametrize("line, message", [
    ("1 1:0.5 oops", "'oops' is not index:value"),
    ("1 1:0.5 2", "'2' is not index:value"),
    ("1 a:1", "'a:1' is not index:value"),
    ("1 -1:1", "'-1:1' is not index:value"),
    ("1 1:", "'1:' is not index:value"),
    ("1 1:abc", "'1:abc' is not index:value"),
    # Made of a number's characters, but not one number: np.fromstring would read 1.5.3 as two.
    ("1 1:1.5.3", "'1:1.5.3' is not index:value"),
    ("1 1:1e 2:3", "'1:1e' is not index:value"),
    ("1 1:1-2", "'1:1-2' is not index:value"),
    ("1 1:2:3", "'1:2:3' is not index:value"),
    ("x 1:1", "the label 'x' is not a number"),
    ("1 1:nan", "the value nan is not finite"),
    ("1 2:1e400", "the value inf is not finite"),
])
def test_malformed_lines_name_the_line(tmp_path, line, message):
    path = _write(tmp_path, f"1 1:1\n\n{line}\n1 2:1\n")
    with pytest.raises(io.DataFileError, match=f"line 3: {message}"):
        io.read_svmlight(path)


@pytest.mark.parametrize("text, message", [("", "has no samples"), ("# only a comment\n\n", "has no samples"),
                                           ("1\n0\n", "has no features")])
def test_no_samples_or_features(tmp_path, text, message):
    with pytest.raises(io.DataFileError, match=message):
        io.read_svmlight(_write(tmp_path, text))


def test_unreadable_file(tmp_path):
    path = tmp_path / "d.svm"
    path.write_bytes(b"1 1:1\n\xff\xfe 2:1\n")
    with pytest.raises(io.DataFileError, match="cannot read .* as svmlight"):
        io.read_svmlight(str(path))


# A token's forms: the plain ones of the fast path, and ones only the slow path reads.
_VALUES = st.one_of(st.integers(-10**6, 10**6).map(str),
                    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
                    st.sampled_from(["1.", ".5", "-0", "+2.5e-3", "1E5", "1_0", "+1_0.5", "00"]))
_LINES = st.lists(st.tuples(st.sampled_from(["1", "-1", "0", "2.5", "+3"]),
                            st.lists(st.tuples(st.integers(0, 40), _VALUES), max_size=8,
                                     unique_by=lambda pair: pair[0]),
                            st.sampled_from(["", " qid:4", " # c"]),
                            st.sampled_from([" ", "  ", "\t"])), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(lines=_LINES, chunk=st.sampled_from([1, 7, 64, 1 << 23]))
def test_same_matrix_as_a_token_by_token_reading(tmp_path_factory, lines, chunk):
    text = "".join(label + (qid if qid.startswith(" qid") else "") + "".join(f"{sep}{i}:{v}" for i, v in pairs)
                   + (qid if qid.startswith(" #") else "") + "\n" for label, pairs, qid, sep in lines)
    labels, entries = _reference(text)
    path = _write(tmp_path_factory.mktemp("h"), text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "_CHUNK_CHARS", chunk)  # many chunks, boundaries anywhere
        if not entries:
            with pytest.raises(io.DataFileError, match="has no features"):
                io.read_svmlight(path)
            return
        table = io.read_svmlight(path)
    shift = 0 if table.extra["zero_based"] else 1
    assert table.extra["zero_based"] == (min(i for _, i in entries) == 0)
    assert table.X.shape == (len(labels), max(i for _, i in entries) + 1 - shift)
    assert _entries(table.X, shift) == entries
    assert table.y.tolist() == labels


def test_a_bad_token_in_a_later_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_CHUNK_CHARS", 10)
    path = _write(tmp_path, "".join(f"1 {i + 1}:1\n" for i in range(50)) + "1 3:1.5.3\n" + "1 1:1\n")
    with pytest.raises(io.DataFileError, match=r"line 51: '3:1.5.3' is not index:value"):
        io.read_svmlight(path)


def test_never_a_dense_array(tmp_path):
    """2,000 rows of 1,000,000 features: 16 GB dense; the reader's peak stays a few MB."""
    rows, labels = random_sparse_rows(2000, 1_000_000, 20, seed=1)
    path = write_svmlight(tmp_path / "wide.svm", rows, labels)
    tracemalloc.start()
    try:
        table = io.read_svmlight(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _assert_csr(table.X, (2000, 1_000_000))
    assert table.X.nnz == sum(map(len, rows))
    assert peak < 32 * 2**20, f"the reader took {peak / 2**20:.0f} MiB"


def test_without_scipy_the_message_says_how_to_install(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, "1 1:1\n0 2:1\n")
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match=r'reading svmlight files needs scipy.*pip install "fastgd\[sparse\]"'):
        io.read_svmlight(path)
    code = cli.main(["train", path, "--model", "logistic"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and 'pip install "fastgd[sparse]"' in err


def test_a_numpy_whose_fromstring_refuses_still_reads_the_file(tmp_path, monkeypatch):
    """The fast parse failing on a valid chunk (a NumPy that warns or refuses) costs time only."""
    def refuse(*args, **kwargs):
        raise DeprecationWarning("string or file could not be read to its end")
    text = "1 qid:2 1:0.5 3:2\n0 2:-1.25 4:1_0\n"
    expected = io.read_svmlight(_write(tmp_path, text)).X.toarray()
    monkeypatch.setattr(io.np, "fromstring", refuse)
    assert io.read_svmlight(_write(tmp_path, text)).X.toarray().tolist() == expected.tolist()
    with pytest.raises(io.DataFileError, match=r"line 2: '2:1.5.3' is not index:value"):
        io.read_svmlight(_write(tmp_path, "1 1:1\n0 2:1.5.3\n"))
