"""Data files as arrays: the readers behind ``fastgd train`` and ``fastgd predict``.

Formats, by extension (or an explicit ``fmt``, one of :data:`FORMATS`):

* ``.csv``: a header row of column names; the target is a column named by the caller, every
  other column (or the ``features`` given) a numeric feature (finite numbers: no missing
  values, NaN or infinity). A first column without a name (a row index written by pandas) is
  dropped with a note, or the column ``index_col`` names.
* ``.tsv``: the same with tab-separated fields (other delimiters: ``delimiter``).
* ``.npy``: one 2-D numeric array; the target is a column index.
* ``.npz``: arrays ``X`` (2-D) and ``y`` (1-D).
* ``.svm``, ``.svmlight``, ``.libsvm``: ``label index:value ...`` lines (indices from 1, or
  from 0 when an index 0 appears; ``#`` starts a comment; ``qid:`` is ignored), read into a
  ``scipy.sparse`` CSR matrix, never a dense one (``pip install "fastgd[sparse]"``).

Each reader returns a :class:`Table`. Anything wrong with a file (missing, unreadable, a
non-numeric value, an unknown column, ...) raises :class:`DataFileError`, a ``ValueError``
whose message is one line naming the file and, where there is one, the line or column. The
messages name the command line's options (``--target``, ``--format``) where those are what
the user has to change.

::

    from fastgd import io
    table = io.read_table("data.csv", None, "label", train=True)
    table.X, table.y, table.feature_names
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DataFileError", "Table", "DELIMITERS", "DELIMITER_NAMES", "FORMATS", "SVMLIGHT_EXTENSIONS",
           "check_file", "delimiter", "read_csv", "read_npy", "read_npz", "read_svmlight", "read_table"]

#: Format names, as ``fmt`` and the command line's ``--format`` take them.
FORMATS = ("csv", "tsv", "npy", "npz", "svmlight")
#: The field delimiter of each delimited-text format (``delimiter`` may give another).
DELIMITERS = {"csv": ",", "tsv": "\t"}
#: Names the command line takes for delimiters that are awkward to type in a shell.
DELIMITER_NAMES = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
#: File extensions read as svmlight.
SVMLIGHT_EXTENSIONS = (".svm", ".svmlight", ".libsvm")


class DataFileError(ValueError):
    """A data file that cannot be read as asked; the message is one line for the user."""


@dataclass
class Table:
    """A data file's contents: features ``X`` (float64, samples x features: a NumPy array, or
    a ``scipy.sparse`` CSR matrix for an svmlight file), the target ``y``
    (None when the file has none), the format read, what is needed to read the same columns
    again (``feature_names`` and ``target`` of a CSV file, ``extra["zero_based"]`` of an
    svmlight file), and ``notes``: one line each about a decision the reader made (a column
    it dropped)."""

    X: Any  # np.ndarray, or scipy.sparse.csr_matrix (svmlight)
    y: np.ndarray | None
    fmt: str
    feature_names: list[str] | None = None
    target: Any = None  # the CSV column name or the .npy column index
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the reader decided for the user to know


def _format_of(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext[1:] in FORMATS and ext != ".svmlight":
        return ext[1:]
    if ext in SVMLIGHT_EXTENSIONS:
        return "svmlight"
    named = [f".{f}" for f in FORMATS if f != "svmlight"] + list(SVMLIGHT_EXTENSIONS)
    raise DataFileError(f"cannot tell the format of {path!r} from its extension; use {', '.join(named)} or pass "
                        f"--format {{{','.join(FORMATS)}}}")


def delimiter(text: str) -> str:
    """A delimiter as given on a command line: one character, a name of
    :data:`DELIMITER_NAMES` (``tab``), or ``\\t`` typed as two characters."""
    value = DELIMITER_NAMES.get(text.lower(), "\t" if text == "\\t" else text)
    if len(value) != 1 or value in "\"\r\n":
        raise DataFileError(f"--delimiter must be one character (other than a quote or a line break) or one of "
                            f"{', '.join(DELIMITER_NAMES)}, got {text!r}")
    return value


def check_file(path: str) -> None:
    """Raise :class:`DataFileError` unless ``path`` is an existing file (not a directory)."""
    if not os.path.exists(path):
        raise DataFileError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise DataFileError(f"{path!r} is a directory, not a data file")


def _target_values(values: np.ndarray, where: str) -> np.ndarray:
    """Target strings as int64 (whole numbers), float64 (other numbers) or strings."""
    if np.any(values == ""):
        raise DataFileError(f"{where} has an empty value (missing targets are not supported)")
    try:
        y = values.astype(np.float64)
    except ValueError:
        return values  # labels
    bad = _first_nonfinite(y[:, None])
    if bad is not None:
        raise _nonfinite_error(where, str(values[bad[0]]), bad[0])
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53):
        return y.astype(np.int64)
    return y


def read_csv(path: str, target: str | None, *, features: list[str] | None = None,
             target_required: bool = True, index_col: str | None = None, keep_unnamed: bool = False,
             delimiter: str = ",") -> Table:
    """A CSV file with a header row: the ``features`` columns (default: all but the target and
    the index column) as floats, and the ``target`` column (if it is there, or an error when
    required). Fields are separated by ``delimiter`` (a tab for a TSV file).

    The index column: ``index_col`` names a column that is not a feature (or gives its
    position from 0, when no column has that name); without it, a first column without a name
    (``""``, or pandas' ``"Unnamed: 0"``: what ``DataFrame.to_csv`` writes for the row index)
    is dropped with a line in ``Table.notes``, unless ``keep_unnamed``. Row numbers sorted by
    class would otherwise be a feature that gives away the label.

    Time and memory are linear in the file's size: columns are found through one dict of the
    header, never by searching the header once per column (files can have 100,000 columns)."""
    header, cells = _csv_cells(path, delimiter)
    column = {name: j for j, name in enumerate(header)}
    if target is not None and target not in column:
        if target_required:
            raise DataFileError(f"{path!r} has no column {target!r} (its columns: {', '.join(header)})"
                                + _delimiter_hint(header, delimiter))
        target = None
    notes: list[str] = []
    if features is None:
        index = _index_column(path, header, column, target, index_col, keep_unnamed, notes)
        features = [h for h in header if h != target and h != index]
    else:
        missing = [c for c in features if c not in column]
        if missing:
            raise DataFileError(f"{path!r} lacks the feature column(s) the model was trained on: "
                                f"{', '.join(map(repr, missing))}")
    if not features:
        raise DataFileError(f"{path!r} has no feature columns besides the target {target!r}")
    X = _feature_values(cells, [column[name] for name in features], path, features)
    y = None
    if target is not None:
        y = _target_values(cells[:, column[target]], f"{path!r} column {target!r}")
    return Table(X, y, "csv", feature_names=list(features), target=target, notes=notes)


# The names a row index written by pandas has in the header: none, or after a round trip
# through read_csv, "Unnamed: 0".
_UNNAMED = ("", "Unnamed: 0")


def _index_column(path: str, header: list[str], column: dict[str, int], target: str | None,
                  index_col: str | None, keep_unnamed: bool, notes: list[str]) -> str | None:
    """The name of the column that is an index, not a feature (None: there is none)."""
    if index_col is not None:
        name = index_col
        if name not in column:
            if not (name.isdigit() and int(name) < len(header)):
                raise DataFileError(f"--index-col {name!r}: no such column in {path!r} (its columns: "
                                    f"{', '.join(header)})")
            name = header[int(name)]
        if name == target:
            raise DataFileError(f"--index-col {name!r} is the target column of {path!r}")
        return name
    if keep_unnamed or header[0] not in _UNNAMED or header[0] == target:
        return None
    notes.append(f"{path!r}: dropped its first column, which has no name (a row index written by pandas?); "
                 "--index-col names the index column, --no-index-col keeps it as a feature")
    return header[0]
def _delimiter_hint(header: list[str], delimiter: str) -> str:
    """A hint when the header is one field that another common delimiter would split."""
    if len(header) != 1:
        return ""
    other = next((d for d in DELIMITER_NAMES.values() if d != delimiter and d in header[0].strip()), None)
    if other is None:
        return ""
    name = next(n for n, d in DELIMITER_NAMES.items() if d == other)
    return f"; are its fields separated by {other!r}? then pass --delimiter {name}"


def _csv_cells(path: str, delimiter: str = ",") -> tuple[list[str], np.ndarray]:
    """The header's names and the data rows' stripped cells (rows x columns) of a CSV file,
    after checking that the header has no duplicate and every row its number of fields."""
    check_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataFileError(f"cannot read {path!r} as CSV: {e}") from None
    rows = [r for r in rows if r]  # blank lines
    if not rows:
        raise DataFileError(f"{path!r} is empty (a CSV file needs a header row)")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header):
        dup = sorted(h for h, n in Counter(header).items() if n > 1)
        raise DataFileError(f"{path!r} has duplicate column names: {', '.join(map(repr, dup))}")
    body = rows[1:]
    if not body:
        raise DataFileError(f"{path!r} has a header but no data rows")
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DataFileError(f"{path!r} line {i} has {len(r)} fields, the header has {len(header)}")
    return header, np.char.strip(np.array(body, dtype=str))


def _feature_values(cells: np.ndarray, cols: list[int], path: str, names: list[str]) -> np.ndarray:
    """Columns ``cols`` of ``cells`` as float64, converted a block of columns per call (a
    call per column would cost more than the conversion in a file of few, very wide rows);
    a block holds at most ~64K cells, so the copy it makes stays small for tall files."""
    n_rows = cells.shape[0]
    X = np.empty((n_rows, len(cols)))
    width = max(1, 2**16 // n_rows)
    for start in range(0, len(cols), width):
        block = cols[start:start + width]
        try:
            X[:, start:start + len(block)] = cells[:, block].astype(np.float64)
        except ValueError:  # find the culprit, column by column
            for j in range(start, start + len(block)):
                X[:, j] = _numeric_column(cells[:, cols[j]], path, names[j])
    bad = _first_nonfinite(X)
    if bad is not None:
        row, j = bad
        raise _nonfinite_error(f"{path!r} column {names[j]!r}", str(cells[row, cols[j]]), row)
    return X


def _first_nonfinite(values: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN or infinity of 2-D ``values`` in file order, or None."""
    finite = np.isfinite(values)
    if finite.all():
        return None
    row, j = np.argwhere(~finite)[0]  # row-major: the first in the file
    return int(row), int(j)


def _nonfinite_error(where: str, cell: str, row: int) -> DataFileError:
    return DataFileError(f"{where} has the non-finite value {cell!r} on line {row + 2}; values must be finite "
                         "numbers (missing values are not supported)")


def _numeric_column(col: np.ndarray, path: str, name: str) -> np.ndarray:
    """``col`` as float64, or :class:`DataFileError` naming its first non-numeric cell."""
    try:
        return col.astype(np.float64)
    except ValueError:
        bad = next(i for i, v in enumerate(col) if not _is_float(v))
        value = str(col[bad])
        what = "an empty value (missing values are not supported)" if value == "" else \
            f"the non-numeric value {value!r}"
        raise DataFileError(f"{path!r} column {name!r} has {what} on line {bad + 2}; features must be "
                            "numbers") from None


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _column_index(target: Any, n_cols: int, path: str) -> int:
    try:
        t = int(target)
    except (TypeError, ValueError):
        raise DataFileError(f"for a .npy file --target is a column index, got {target!r}") from None
    if not -n_cols <= t < n_cols:
        raise DataFileError(f"--target {t} is out of range: {path!r} has {n_cols} columns")
    return t % n_cols


def _np_load(path: str) -> Any:
    check_file(path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        message = f"cannot read {path!r} as a NumPy file: {type(e).__name__}: {e}"
        raise DataFileError(message.replace("\n", " ")) from None


def _numeric_2d(a: Any, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise DataFileError(f"{what} must be a numeric array, got {kind}")
    if a.ndim != 2:
        raise DataFileError(f"{what} must be a 2-D array (samples x columns), got shape {a.shape}")
    return a.astype(np.float64, copy=False)


def read_npy(path: str, target: Any, *, n_features: int | None = None, target_required: bool = True) -> Table:
    """A 2-D array; ``target`` the index of the target column. At predict time
    (``n_features`` known) a file of exactly ``n_features`` columns has no target."""
    a = _numeric_2d(_np_load(path), f"the array in {path!r}")
    n_cols = a.shape[1]
    if not target_required and (target is None or n_cols == n_features):
        return Table(a, None, "npy")
    if target is None:
        raise DataFileError("a .npy file needs --target, the index of the target column")
    t = _column_index(target, n_cols, path)
    X = np.delete(a, t, axis=1)
    if X.shape[1] == 0:
        raise DataFileError(f"{path!r} has no feature columns besides the target")
    return Table(X, _float_target(a[:, t]), "npy", target=t)


def _float_target(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53):
        return y.astype(np.int64)
    return y


def read_npz(path: str, *, target_required: bool = True) -> Table:
    """Arrays ``X`` (2-D) and ``y`` (1-D)."""
    data = _np_load(path)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataFileError(f"{path!r} is not an .npz archive")
    with data:
        files = set(data.files)
        if "X" not in files:
            raise DataFileError(f"{path!r} has no array 'X' (it has: {', '.join(sorted(files)) or 'nothing'})")
        try:
            X = _numeric_2d(data["X"], f"array 'X' of {path!r}")
            y = data["y"] if "y" in files else None
        except DataFileError:
            raise
        except Exception as e:
            raise DataFileError(f"cannot read {path!r}: {type(e).__name__}: {e}") from None
    if y is None:
        if target_required:
            raise DataFileError(f"{path!r} has no array 'y' (the target)")
    else:
        if y.ndim != 1 or len(y) != len(X):
            raise DataFileError(f"array 'y' of {path!r} must be 1-D with one value per row of X ({len(X)}), got shape "
                                f"{y.shape}")
        if y.dtype.kind == "f":
            y = _float_target(y)
        elif y.dtype.kind not in "biuU":
            raise DataFileError(f"array 'y' of {path!r} has unsupported dtype {y.dtype}")
    return Table(X, y, "npz")


# A line's index:value pairs (and qid:, skipped) in the plain form the fast path parses: an
# index of digits, a value of the characters of a decimal number, each of which np.fromstring
# must read as exactly one number (checked by their count: a value such as 1.5.3 reads as two,
# 1e or 1-e stops the parse). Other lines (so every malformed one) take the slow path, token by
# token, which reads what int() and float() read or names the token that is not index:value.
_PAIRS = re.compile(r"(?:(?:[0-9]+:[-+.0-9eE]+|qid:\S*)(?:\s+|\Z))*")
_QID = re.compile(r"qid:\S*")
# Lines are parsed in chunks of about this many characters: the text a chunk joins for
# np.fromstring and its numbers stay small next to the matrix.
_CHUNK_CHARS = 1 << 23
# Indices are parsed as float64, exact below 2**53 (and no file has that many features).
_MAX_INDEX = 2**53


def _sparse_module() -> Any:
    try:
        import scipy.sparse as sp
    except ImportError:
        raise ImportError('reading svmlight files needs scipy, for the sparse matrix they are read into: '
                          'pip install "fastgd[sparse]"') from None
    return sp


def _pairs_slow(path: str, lineno: int, text: str) -> tuple[str, int]:
    """``text``'s pairs in the fast path's form and their count, token by token, or
    :class:`DataFileError` naming the token that is not ``index:value``."""
    out = []
    for tok in text.split():
        key, sep, value = tok.partition(":")
        if key == "qid":
            continue
        try:
            if not sep:
                raise ValueError
            i = int(key)
            v = float(value)
            if i < 0:
                raise ValueError
        except ValueError:
            raise DataFileError(f"{path!r} line {lineno}: {tok!r} is not index:value") from None
        out.append(f"{i}:{v!r}")
    return " ".join(out), len(out)


class _SvmlightPairs:
    """The index:value pairs of a file's lines, parsed a chunk of lines at a time into flat
    arrays."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.texts: list[str] = []  # the chunk's lines' pairs, "i:v i:v ..."
        self.linenos: list[int] = []
        self.chars = self.count = 0
        self.indices: list[np.ndarray] = []  # float64: as parsed, checked and cast at the end
        self.values: list[np.ndarray] = []

    def add(self, lineno: int, text: str) -> int:
        """Add one line's pairs (the text after its label); returns their count."""
        if _PAIRS.fullmatch(text) is None:
            text, count = _pairs_slow(self.path, lineno, text)
        else:
            if "q" in text:
                text = _QID.sub("", text)
            count = text.count(":")
        self.texts.append(text)
        self.linenos.append(lineno)
        self.chars += len(text)
        self.count += count
        if self.chars >= _CHUNK_CHARS:
            self.flush()
        return count

    def flush(self) -> None:
        if not self.count:  # (np.fromstring reads " " as an error, not as nothing)
            self.texts, self.linenos, self.chars = [], [], 0
            return
        text = " ".join(self.texts).replace(":", " ")
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # older NumPy stops at a bad number with it
            try:
                numbers = np.fromstring(text, sep=" ")
            except (ValueError, DeprecationWarning):
                numbers = None
        if numbers is None or len(numbers) != 2 * self.count:
            for lineno, line in zip(self.linenos, self.texts):
                _pairs_slow(self.path, lineno, line)  # raises for the bad token
            numbers = np.array(text.split(), dtype=np.float64)  # every token is one float() reads
        self.indices.append(numbers[0::2])
        self.values.append(numbers[1::2])
        self.texts, self.linenos = [], []
        self.chars = self.count = 0

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All the indices (float64, as parsed) and values, in file order."""
        self.flush()
        return np.concatenate(self.indices or [np.zeros(0)]), np.concatenate(self.values or [np.zeros(0)])


def read_svmlight(path: str, *, n_features: int | None = None, zero_based: bool | None = None) -> Table:
    """``label index:value ...`` lines as a ``scipy.sparse`` CSR matrix (float64 values,
    int32 indices and row pointers when the matrix's width and entry count fit, else int64;
    each row's indices sorted). Indices are 1-based unless an index 0 appears (or
    ``zero_based``); with ``n_features`` the matrix has that many columns. An index twice on
    a line, a value that is not a finite number, or a token that is not ``index:value`` is a
    :class:`DataFileError` naming the line.

    Memory is linear in the number of values: the lines are parsed into the matrix's flat
    arrays, never into a dense samples x features array (files can have millions of
    features). Needs scipy (``pip install "fastgd[sparse]"``)."""
    sp = _sparse_module()
    check_file(path)
    labels: list[float] = []
    counts: list[int] = []
    linenos: list[int] = []  # each row's line in the file
    pairs = _SvmlightPairs(path)
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                cut = line.find("#")
                head = (line if cut < 0 else line[:cut]).split(None, 1)
                if not head:
                    continue
                try:
                    labels.append(float(head[0]))
                except ValueError:
                    raise DataFileError(f"{path!r} line {lineno}: the label {head[0]!r} is not a number") from None
                counts.append(pairs.add(lineno, head[1] if len(head) > 1 else ""))
                linenos.append(lineno)
    except (OSError, UnicodeDecodeError) as e:
        raise DataFileError(f"cannot read {path!r} as svmlight: {e}") from None
    if not labels:
        raise DataFileError(f"{path!r} has no samples")
    index, data = pairs.arrays()
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])

    def line_of(k: int) -> int:  # the line of the k-th value
        return linenos[int(np.searchsorted(indptr, k, side="right")) - 1]

    bad = np.flatnonzero(~np.isfinite(data) | (index >= _MAX_INDEX))
    if len(bad):
        k = bad[0]
        if np.isfinite(data[k]):
            raise DataFileError(f"{path!r} line {line_of(k)}: the feature index {index[k]:.0f} is too large")
        raise DataFileError(f"{path!r} line {line_of(k)}: the value {float(data[k])!r} is not finite; values must "
                            "be finite numbers (missing values are not supported)")
    index = index.astype(np.int64)
    index, data = _sorted_rows(path, index, data, indptr, line_of)
    lowest = int(index.min()) if len(index) else None
    if zero_based is None:
        zero_based = lowest == 0
    shift = 0 if zero_based else 1
    if not zero_based and lowest == 0:
        raise DataFileError(f"{path!r} has feature index 0, but the model was trained on 1-based indices")
    width = (int(index.max()) if len(index) else shift - 1) + 1 - shift
    if n_features is not None:
        if width > n_features:
            raise DataFileError(f"{path!r} has feature indices up to {width - 1 + shift}, but the model has "
                                f"{n_features} features")
        width = n_features
    if width == 0:
        raise DataFileError(f"{path!r} has no features")
    if shift:
        index -= shift
    index_dtype = np.int32 if max(width, len(index)) <= np.iinfo(np.int32).max else np.int64
    X = sp.csr_matrix((data, index.astype(index_dtype, copy=False), indptr.astype(index_dtype, copy=False)),
                      shape=(len(labels), width))
    X.has_sorted_indices = True
    return Table(X, _float_target(np.array(labels)), "svmlight", extra={"zero_based": bool(zero_based)})


def _sorted_rows(path: str, index: np.ndarray, data: np.ndarray, indptr: np.ndarray,
                 line_of: Callable[[int], int]) -> tuple[np.ndarray, np.ndarray]:
    """``index`` and ``data`` with each row's entries in increasing index order (files
    usually have them so already: then they are returned as they are), or
    :class:`DataFileError` naming the line of an index that appears twice."""
    if len(index) < 2:
        return index, data
    new_row = np.zeros(len(index) - 1, dtype=bool)  # new_row[k]: entry k + 1 starts a row
    starts = indptr[1:-1]
    new_row[starts[(starts > 0) & (starts < len(index))] - 1] = True
    if np.all((np.diff(index) > 0) | new_row):
        return index, data
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.lexsort((index, rows))
    index, data = index[order], data[order]
    twice = np.flatnonzero((np.diff(index) == 0) & ~new_row)
    if len(twice):
        k = int(twice[0])
        raise DataFileError(f"{path!r} line {line_of(k)}: the feature index {index[k]} appears twice")
    return index, data


def read_table(path: str, fmt: str | None, target: Any, *, train: bool, info: dict[str, Any] | None = None,
               n_features: int | None = None, index_col: str | None = None, keep_unnamed: bool = False,
               delimiter: str | None = None) -> Table:
    """The data of ``path`` in format ``fmt`` (None: from the extension), for training
    (``train=True``: the target is required) or for prediction (the target is read if the
    file has it). ``target`` is a CSV column name or a .npy column index; ``info`` is what a
    model was saved with (a CSV file's ``features``, an svmlight file's ``zero_based``) and
    ``n_features`` its feature count, so that a file is read into the columns it expects.
    ``index_col`` and ``keep_unnamed`` say which CSV column is a row index (:func:`read_csv`);
    ``delimiter`` separates the fields of a CSV or TSV file (default: :data:`DELIMITERS`)."""
    fmt = _format_of(path, fmt)
    if fmt not in FORMATS:
        raise DataFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    info = info or {}
    if fmt in DELIMITERS:
        if train and target is None:
            raise DataFileError(f"a {fmt.upper()} file needs --target, the name of the target column")
        table = read_csv(path, None if target is None else str(target), features=info.get("features"),
                         target_required=train, index_col=index_col, keep_unnamed=keep_unnamed,
                         delimiter=delimiter or DELIMITERS[fmt])
        table.fmt = fmt
        return table
    if fmt == "npy":
        return read_npy(path, target, n_features=n_features, target_required=train)
    if fmt == "npz":
        return read_npz(path, target_required=train)
    return read_svmlight(path, n_features=n_features, zero_based=info.get("zero_based"))
