"""Reading an ``.npz`` archive within stated bounds (for :mod:`fastgd.persistence`).

A file from elsewhere must not be able to make the reader hang or allocate more than its
caller allows, so everything is checked before it is decompressed or allocated:

* Only a regular file is read. It is opened without blocking (``O_NONBLOCK``) and checked
  with ``fstat`` before any byte is read, so a FIFO or a device is refused at once.
* The zip central directory states every member's size, and :mod:`zipfile` never inflates a
  member beyond its stated size. Those sizes are checked first: in all at most ``max_bytes``,
  and at most :data:`MAX_EXPANSION` times the file's own size (past :data:`SMALL_BYTES`).
  Deflate expands that much only data that is mostly one repeated byte, which trained
  parameters are not; fastgd itself writes its members uncompressed.
* Each member's ``.npy`` header (at most :data:`MAX_HEADER_BYTES`, NumPy's own limit, read
  alone) must declare a plain dtype (numbers, booleans, strings, datetimes; never object, void,
  structured or sub-array dtypes) and a shape of non-negative sizes whose data is exactly the
  rest of the member.

Only then are the arrays read, each by ``np.load(..., allow_pickle=False)``. What the arrays
cost in memory (:attr:`Header.cost`: their bytes, and for arrays of strings what their
Python strings would take) is summed for the caller to hold against its bound.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import stat
import zipfile
from typing import Any, BinaryIO

import numpy as np

__all__ = ["Archive", "Foreign", "Header", "Refused", "plain_dtype",
           "MAX_EXPANSION", "MAX_HEADER_BYTES", "SMALL_BYTES"]

MAX_EXPANSION = 100
SMALL_BYTES = 2**24
MAX_HEADER_BYTES = 10_000
# The kinds of dtype a member may have: numbers, booleans, byte and unicode strings,
# datetimes and durations (what numpy stores without pickle; never "O" or "V").
PLAIN_KINDS = "biufcSUmM"
# An array of strings may be turned into Python strings (string labels): at most this many
# bytes a string besides its characters (CPython's str header and the object array's pointer).
_STR_OBJECT_BYTES = 96
_NPY_MAGIC = b"\x93NUMPY"


class Refused(ValueError):
    """The file is not a valid archive of plain arrays, or exceeds a bound; the message says
    why (the caller names the file)."""


class Foreign(Refused):
    """A readable file that is not an ``.npz`` archive at all."""


def plain_dtype(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` are plain data: one of :data:`PLAIN_KINDS`, not structured,
    no sub-array, and items of at least one byte."""
    return (dtype.kind in PLAIN_KINDS and dtype.fields is None and dtype.subdtype is None
            and dtype.itemsize > 0)


def _kind_of_file(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file; ``FileNotFoundError`` if there is
    none, :class:`Refused` for a FIFO, a device or a directory (decided before reading: opening
    with ``O_NONBLOCK`` returns at once even for a FIFO without a writer)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path!r}") from None
    except IsADirectoryError:  # Windows cannot open a directory
        raise Refused("it is a directory, not a regular file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise Refused(f"it is {_kind_of_file(mode)}, not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclasses.dataclass(frozen=True)
class Header:
    """What a member's ``.npy`` header declares."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize

    @property
    def cost(self) -> int:
        """The bytes of the array, and for an array of strings those of its Python strings."""
        extra = self.count * (self.dtype.itemsize + _STR_OBJECT_BYTES) if self.dtype.kind == "U" else 0
        return self.nbytes + extra


class Archive:
    """An ``.npz`` archive whose central directory and ``.npy`` headers are checked (see the
    module docstring): ``headers`` maps each array's name to its :class:`Header`, ``cost`` is
    their sum; :meth:`read` reads one array. A context manager, closing the file."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self._file = open_regular(path)
        try:
            magic = self._file.read(len(_NPY_MAGIC))
            if magic.startswith(_NPY_MAGIC):
                raise Foreign("it holds a single .npy array, not an .npz archive")
            if not magic.startswith(b"PK"):
                raise Foreign("it is not an .npz archive")
            self._file.seek(0)
            size = os.fstat(self._file.fileno()).st_size
            if size > max_bytes:
                raise Refused(f"the file has {size} bytes, more than max_bytes={max_bytes}")
            try:
                self._zip = zipfile.ZipFile(self._file)
            except Exception as e:  # whatever a damaged archive raises
                raise Refused(f"not a readable .npz archive ({type(e).__name__}: {e})") from None
            self._members = _members(self._zip, size, max_bytes)
            self.headers = {key: self._header(key, info) for key, info in self._members.items()}
            self.cost = sum(h.cost for h in self.headers.values())
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._zip.close()
        self._file.close()

    def _header(self, key: str, info: zipfile.ZipInfo) -> Header:
        """The member's ``.npy`` header, read alone and checked against the member's size."""
        name = info.filename
        try:
            with self._zip.open(info) as f:
                magic = f.read(len(_NPY_MAGIC) + 2)
                version = tuple(magic[len(_NPY_MAGIC):])
                if not magic.startswith(_NPY_MAGIC) or version not in ((1, 0), (2, 0)):
                    raise Refused(f"member {name!r} is not an .npy array of format version 1.0 or 2.0")
                width = 2 if version == (1, 0) else 4
                length = f.read(width)
                n = int.from_bytes(length, "little")
                if n > MAX_HEADER_BYTES:
                    raise Refused(f"member {name!r} has an .npy header of {n} bytes (at most {MAX_HEADER_BYTES})")
                text = f.read(n)
        except Refused:
            raise
        except Exception as e:  # zip and zlib errors of a damaged member
            raise Refused(f"member {name!r} is damaged ({type(e).__name__}: {e})") from None
        if len(length) < width or len(text) < n:
            raise Refused(f"member {name!r} is truncated")
        header = _parse_header(name, version, length + text)
        if header.dtype.hasobject:
            raise Refused(f"entry {key!r} is a pickled object array, which fastgd never writes nor loads")
        data = info.file_size - len(magic) - width - n
        if header.nbytes != data:
            raise Refused(f"member {name!r} declares {header.shape} of {header.dtype} ({header.nbytes} bytes), "
                          f"but holds {data} bytes of data")
        return header

    def read(self, key: str) -> np.ndarray:
        """The array ``key``, read by ``np.load`` (no pickle) after its header was checked."""
        info, header = self._members[key], self.headers[key]
        try:
            with self._zip.open(info) as f:
                a = np.load(f, allow_pickle=False)
        except Exception as e:  # zip, zlib and CRC errors of a damaged member
            raise Refused(f"member {info.filename!r} is damaged ({type(e).__name__}: {e})") from None
        if not isinstance(a, np.ndarray) or a.shape != header.shape or a.dtype != header.dtype:
            raise Refused(f"member {info.filename!r} changed while it was read")
        return a


def _parse_header(name: str, version: tuple[int, ...], raw: bytes) -> Header:
    """The shape and dtype that the header ``raw`` (its length field, then its text) declares,
    parsed by NumPy and checked: a plain or an object dtype (the caller refuses the latter by
    name), sizes that are non-negative integers."""
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, _, dtype = read(io.BytesIO(raw))
    except Exception as e:  # a malformed header: whatever its parser raises
        raise Refused(f"member {name!r} has a malformed .npy header ({type(e).__name__}: {e})") from None
    if not (plain_dtype(dtype) or dtype.hasobject):
        raise Refused(f"member {name!r} has dtype {dtype}, which is not plain data")
    if not isinstance(shape, tuple) or any(type(s) is not int or s < 0 for s in shape):
        raise Refused(f"member {name!r} declares the shape {shape!r}")
    return Header(shape, dtype)


def _members(archive: zipfile.ZipFile, file_size: int, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
    """The members by array name, checked from the central directory alone: ``.npy`` names
    without repeats, stored or deflated, not encrypted, and declared sizes within the bounds."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise Refused(f"member {name!r} is not an .npy array")
        if name[:-4] in members:
            raise Refused(f"member {name!r} appears twice")
        if info.flag_bits & 0x1:
            raise Refused(f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Refused(f"member {name!r} uses zip compression method {info.compress_type} (only stored and "
                          "deflated members are read)")
        members[name[:-4]] = info
    declared = sum(info.file_size for info in members.values())
    if declared > max_bytes:
        raise Refused(f"its members declare {declared} bytes in all, more than max_bytes={max_bytes}")
    if declared > max(MAX_EXPANSION * file_size, SMALL_BYTES):
        raise Refused(f"its members declare {declared} bytes in all, {declared // max(file_size, 1)} times the "
                      f"file's size: more than {MAX_EXPANSION} times, which deflate reaches only on data that is "
                      "mostly one repeated byte (a zip bomb?)")
    return members
