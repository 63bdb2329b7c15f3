"""Save fitted fastgd estimators to ``.npz`` files and load them back, without pickle.

::

    from fastgd import load
    from fastgd.models import LogisticRegression

    clf = LogisticRegression().fit(X, y)
    clf.save("clf.npz")                 # or fastgd.persistence.save(clf, "clf.npz")
    same = load("clf.npz")
    assert (same.predict(X) == clf.predict(X)).all()

An optimizer's state alone goes to a file of its own (format ``"fastgd-optimizer-state"``, see
:mod:`fastgd.optim._flat`): ``save_state(path, opt)``, ``load_state(path, opt)``.

File format (``"fastgd-model"``, version :data:`FORMAT_VERSION`): an ordinary NumPy ``.npz``
archive. The entry ``__fastgd__`` holds UTF-8 JSON metadata (as a uint8 array): the format
name and version, the estimator's class name, its ``get_params()``, a description of every
other attribute, and optional ``info`` (a JSON dict of the caller's, e.g. the column names the
command line tool trained on). Arrays are stored as entries ``a0``, ``a1``, ... that the
metadata refers to; nothing in the file is ever unpickled (``np.load(allow_pickle=False)``),
and the class is looked up in a registry of fastgd estimators (:func:`register`, which
fastgd.models fills as it is imported), never imported by name.

What is stored:

* The hyperparameters (``get_params(deep=False)``): numbers, strings, None, lists, tuples and
  dicts of those, :mod:`fastgd.schedules` schedules (by ``get_config()``) and fastgd's
  optimizer classes (by name). Anything else, typically ``callbacks`` or a custom callable
  ``lr``, **is dropped with a warning**: it only matters for training, and the loaded
  estimator gets the class default for it (``load_info(path)["dropped_params"]`` lists
  them). Saving never fails because of a training hook.
* Every fitted attribute (a name ending in ``_``, not starting with ``_``): arrays (string
  labels of dtype object included), lists and tuples of arrays (``coefs_``), NumPy and
  JSON scalars, ``history_`` (a :class:`fastgd.History`, by its records). A fitted attribute
  that cannot be stored raises ``ValueError``.
* The estimator's private state (``_scaling``, ``_theta``, ``_dtype``, an MLP's layer
  structure and batch-norm statistics...), so that ``load(path).predict(X)`` equals
  ``model.predict(X)`` bit for bit, and the state of the random generator that
  ``partial_fit`` continues. The estimator says what to store, ``__fastgd_state__()``:
  not the attributes it rebuilds from others (an MLP's ``coefs_`` and ``intercepts_``,
  views of its parameter buffer), which are not stored twice (format version 3; older
  files hold them); and it takes the restored attributes back,
  ``__fastgd_restore__(state, optimizers)``, through its ``__setstate__`` (as in
  unpickling).
* The training state (format version 2): the optimizer (its class, options, moments and
  step count, hence the position of an lr schedule, by ``state_dict()``), rebuilt over the
  loaded parameters (the estimator builds it as ``fit`` does, through
  :func:`fastgd.optim.get_optimizer`, and the stored state is loaded into it); the
  training loop's random generator and reference gradient norm; and the history.
  ``fit(X, y, resume=True)`` on the loaded model then continues the run with the same bits
  as if it had never stopped; ``fit(..., checkpoint=path)`` writes such a file
  after every epoch (or every ``checkpoint_every``-th) and when the fit ends. Format version 3
  adds, for a run with ``early_stopping``, the generator of the validation split, the
  criterion's state (best value, epochs without improvement, best weights) and the last
  epoch's parameters. An optimizer with a custom callable ``lr`` has no file representation:
  it is dropped (``None`` after loading; ``partial_fit`` then starts a fresh one, and
  ``resume`` is refused). Other private state without a file representation is dropped the
  same way (``load_info(path)["dropped_state"]``).

Versions: a file records the format version that wrote it; this fastgd reads versions 1 (no
training state), 2 and 3 (early-stopping state), and refuses a newer version with a ValueError
that says so. Loading never unpickles anything (``allow_pickle=False``); a truncated, damaged or
foreign file is a ValueError naming the path and what is wrong with it.

Files from elsewhere: :func:`load` reads only regular files and checks every size a file
declares before it decompresses or allocates anything, against ``max_bytes``
(:data:`DEFAULT_MAX_BYTES`, 16 GiB, by default) and against the file's own size (see
:func:`load`), so a crafted file is a ValueError, never a hang, gigabytes of memory or a
RecursionError.

Files are written atomically: to a temporary file in the same directory, flushed to disk
(fsync), then renamed over ``path`` (and the directory synced), so a failed or interrupted
save leaves an existing file untouched. ``path`` is used as given (no ``.npz`` is appended).
The temporary file is named after ``path`` and its writer (``.model.npz.fastgd-<host>-<pid>-
<random>.tmp``); a writer killed before its rename leaves it behind, and the next save to the
same path removes it once that process is gone (never the file of a writer that is alive).
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import numbers
import os
import re
import reprlib
import secrets
import socket
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from fastgd import _archive
from fastgd.history import History
from fastgd.optim import Optimizer
from fastgd.optim._flat import META_KEY as _STATE_META_KEY
from fastgd.optim.registry import OPTIMIZERS
from fastgd.schedules import Schedule, from_config

__all__ = ["save", "load", "load_info", "save_state", "load_state", "FORMAT_NAME", "FORMAT_VERSION",
           "DEFAULT_MAX_BYTES"]

FORMAT_NAME = "fastgd-model"
FORMAT_VERSION = 3
_META_KEY = "__fastgd__"
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class _Unencodable(TypeError):
    """A value that has no representation in the file."""


@dataclasses.dataclass
class _SavedOptimizer:
    """A stored optimizer, rebuilt over the loaded parameters once the estimator is."""

    cls: str
    state: dict[str, Any]


# -- registries (never import by name) ---------------------------------------------------

# The classes a file may name, filled by fastgd.models as it is imported (this module imports
# no estimator): the estimators, the private-state dataclasses stored field by field, and the
# MLP's network (stored by its structure).
_REGISTRY: dict[str, dict[str, type]] = {"estimator": {}, "dataclass": {}, "network": {}}


def register(kind: str) -> Callable[[type], type]:
    """A class decorator that lets files hold instances of the class: ``kind`` is
    ``"estimator"`` (a fastgd estimator: :func:`save` and :func:`load` take it),
    ``"dataclass"`` (a private-state container, stored field by field) or ``"network"``."""
    classes = _REGISTRY[kind]

    def add(cls: type) -> type:
        classes[cls.__name__] = cls
        return cls

    return add


# fastgd's optimizer classes by name, from the optimizer registry (fixed once fastgd.optim is
# imported).
_OPTIMIZER_CLASSES: dict[str, type] = {cls.__name__: cls for cls, _ in OPTIMIZERS.values()}


# -- encoding ----------------------------------------------------------------------------

class _Encoder:
    """Turns attribute values into JSON nodes, collecting the arrays they refer to."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _add(self, a: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a
        return key

    def encode(self, v: Any) -> dict[str, Any]:
        if v is None or isinstance(v, (bool, str)):
            return {"t": "py", "v": v}
        if isinstance(v, (int, float)) and type(v) in (int, float):
            return {"t": "py", "v": v}
        if isinstance(v, np.ndarray):
            if v.dtype.kind == "O":
                if not all(isinstance(x, str) for x in v.ravel()):
                    raise _Unencodable("an array of Python objects other than strings")
                return {"t": "array", "k": self._add(v.astype(str)), "object": True}
            if not _archive.plain_dtype(v.dtype):  # what load reads back
                raise _Unencodable(f"an array of dtype {v.dtype}")
            return {"t": "array", "k": self._add(v)}
        if isinstance(v, np.generic):
            if not _archive.plain_dtype(v.dtype):
                raise _Unencodable(f"a NumPy scalar of dtype {v.dtype}")
            return {"t": "scalar", "k": self._add(np.asarray(v))}
        if isinstance(v, np.dtype):
            if not _archive.plain_dtype(v):
                raise _Unencodable(f"dtype {v}")
            return {"t": "dtype", "v": v.str}
        if isinstance(v, (list, tuple)):
            return {"t": "list" if isinstance(v, list) else "tuple", "v": [self.encode(x) for x in v]}
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v):
                return {"t": "dict", "v": {k: self.encode(x) for k, x in v.items()}}
            if all(isinstance(k, int) and not isinstance(k, bool) for k in v):
                return {"t": "intdict", "v": [[k, self.encode(x)] for k, x in v.items()]}
            raise _Unencodable("a dict with keys that are neither all strings nor all integers")
        if isinstance(v, History):
            try:
                records = json.loads(json.dumps(v.records))
            except (TypeError, ValueError):
                raise _Unencodable("a History with records that are not plain numbers and strings") from None
            return {"t": "history", "records": records, "stop_reason": v.stop_reason,
                    "restored_epoch": v.restored_epoch}
        if isinstance(v, Schedule):
            return {"t": "schedule", "v": v.get_config()}
        if isinstance(v, type) and _OPTIMIZER_CLASSES.get(v.__name__) is v:
            return {"t": "optimizer_class", "v": v.__name__}
        if isinstance(v, Optimizer):
            name = type(v).__name__
            if _OPTIMIZER_CLASSES.get(name) is not type(v):
                raise _Unencodable(f"an optimizer of class {name}")
            return {"t": "optimizer", "cls": name, "v": self.encode(v.state_dict())}
        if isinstance(v, np.random.Generator):
            name = type(v.bit_generator).__name__
            if name not in _BIT_GENERATORS:
                raise _Unencodable(f"a random generator over {name}")
            return {"t": "generator", "v": self.encode(v.bit_generator.state)}
        if _REGISTRY["network"].get(type(v).__name__) is type(v):
            return self._network(v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type) \
                and _REGISTRY["dataclass"].get(type(v).__name__) is type(v):
            return {"t": "dataclass", "cls": type(v).__name__,
                    "v": {f.name: self.encode(getattr(v, f.name)) for f in dataclasses.fields(v)}}
        raise _Unencodable(f"a {type(v).__module__}.{type(v).__qualname__}")

    def _network(self, net: Any) -> dict[str, Any]:
        """An MLP's layer structure (its constructor's arguments) and running batch-norm
        statistics; its scratch buffers are rebuilt."""
        try:
            init = {"sizes": [int(s) for s in net.sizes], "activation": str(net.activation),
                    "dropout": float(net.dropout), "batch_norm": bool(any(net.bn)), "dtype": np.dtype(net.dtype).str}
            stats = {"running_mean": self.encode(dict(net.running_mean)),
                     "running_var": self.encode(dict(net.running_var))}
        except (AttributeError, TypeError) as e:
            raise _Unencodable(f"a network whose structure cannot be read ({e})") from None
        return {"t": "network", "init": init, **stats}


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    t = node["t"]
    if t == "py":
        return node["v"]
    if t == "array":
        a = arrays[node["k"]]
        if not node.get("object"):
            return a
        if a.dtype.kind != "U":  # save stores object arrays as strings, nothing else
            raise ValueError(f"an object array stored as {a.dtype}, not as strings")
        return a.astype(object)
    if t == "scalar":
        return arrays[node["k"]][()]
    if t == "dtype":
        return _plain_dtype(node["v"])
    if t in ("list", "tuple"):
        items = [_decode(x, arrays) for x in node["v"]]
        return items if t == "list" else tuple(items)
    if t == "dict":
        return {k: _decode(x, arrays) for k, x in node["v"].items()}
    if t == "intdict":
        return {int(k): _decode(x, arrays) for k, x in node["v"]}
    if t == "generator":
        state = _decode(node["v"], arrays)
        name = state["bit_generator"]
        if name not in _BIT_GENERATORS:
            raise ValueError(f"unknown bit generator {name!r}")
        bit_generator = getattr(np.random, name)()
        bit_generator.state = state
        return np.random.Generator(bit_generator)
    if t == "network":
        (network,) = _REGISTRY["network"].values()  # the MLP's, the one network class
        init = node["init"]
        sizes, dtype = _network_shape(init["sizes"], init["dtype"], arrays)
        net = network(sizes, init["activation"], float(init["dropout"]), bool(init["batch_norm"]), dtype)
        for name in ("running_mean", "running_var"):
            stats = getattr(net, name)
            for k, v in _decode(node[name], arrays).items():
                if k not in stats or np.shape(stats[k]) != np.shape(v):
                    raise ValueError(f"batch-norm statistics {name}[{k}] do not fit the network")
                stats[k][...] = v
        return net
    if t == "history":
        return History(node["records"], node["stop_reason"], node.get("restored_epoch"))
    if t == "schedule":
        return from_config(node["v"])
    if t == "optimizer":
        if node["cls"] not in _OPTIMIZER_CLASSES:
            raise ValueError(f"unknown optimizer {node['cls']!r}")
        return _SavedOptimizer(node["cls"], _decode(node["v"], arrays))
    if t == "optimizer_class":
        return _OPTIMIZER_CLASSES[node["v"]]
    if t == "dataclass":
        cls = _REGISTRY["dataclass"][node["cls"]]
        return cls(**{k: _decode(x, arrays) for k, x in node["v"].items()})
    raise ValueError(f"unknown entry type {t!r}")


def _plain_dtype(text: Any) -> np.dtype:
    """The dtype that a file names by ``text``, if arrays of it are plain data."""
    if not isinstance(text, str):
        raise ValueError(f"a dtype is named by a string, not by {reprlib.repr(text)}")
    dtype = np.dtype(text)
    if not _archive.plain_dtype(dtype):
        raise ValueError(f"dtype {dtype} is not plain data")
    return dtype


def _network_shape(sizes: Any, dtype: Any, arrays: dict[str, np.ndarray]) -> tuple[list[int], np.dtype]:
    """A stored network's layer sizes and dtype, checked before the network is built: it
    allocates for its parameters, which the file holds (the estimator's parameter buffer),
    so their count may not exceed what the file's arrays hold."""
    if not isinstance(sizes, list) or len(sizes) < 2 or any(type(s) is not int or s < 1 for s in sizes):
        raise ValueError(f"network layer sizes {reprlib.repr(sizes)}: expected two or more positive integers")
    dtype = _plain_dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"network dtype {dtype}: expected float32 or float64")
    n_params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))  # weights and biases
    held = sum(a.nbytes for a in arrays.values())
    if n_params * dtype.itemsize > held:
        raise ValueError(f"network layer sizes {reprlib.repr(sizes)} make {n_params} parameters of {dtype}, more "
                         f"than the file's arrays hold ({held} bytes)")
    return sizes, dtype


# -- save --------------------------------------------------------------------------------

def save(model: Any, path: str | os.PathLike, *, info: dict[str, Any] | None = None) -> None:
    """Write the fitted estimator ``model`` to ``path`` (an ``.npz`` file, see the module
    docstring), atomically. ``info``: an optional JSON-serializable dict stored alongside,
    read back by :func:`load_info`.

    Raises ``TypeError`` for an object that is not a fastgd estimator, ``ValueError`` for an
    unfitted one or a fitted attribute that cannot be stored. Hyperparameters that cannot be
    stored (callbacks, custom callables) are dropped with a ``UserWarning``.
    """
    cls = type(model)
    estimators = _REGISTRY["estimator"]
    if estimators.get(cls.__name__) is not cls:
        raise TypeError(f"save: {cls.__name__} is not a fastgd estimator; expected one of {sorted(estimators)}")
    if not model.__sklearn_is_fitted__():
        raise ValueError(f"save: this {cls.__name__} is not fitted yet; call fit before saving it")
    enc = _Encoder()

    params: dict[str, Any] = {}
    dropped_params: list[str] = []
    hyper = model.get_params(deep=False)
    for name, value in hyper.items():
        try:
            params[name] = enc.encode(value)
        except _Unencodable as e:
            dropped_params.append(name)
            warnings.warn(f"save: parameter {name}={value!r} of {cls.__name__} is not stored ({e} has no "
                          "file representation); the loaded model gets its default value, which does not change "
                          "its predictions", UserWarning, stacklevel=2)

    attrs: dict[str, Any] = {}
    dropped_state: list[str] = []
    # Not the attributes that the estimator rebuilds from others (an MLP's coefs_ are views
    # of its parameter buffer): stored once, as that buffer.
    for name, value in model.__fastgd_state__().items():
        fitted = name.endswith("_") and not name.startswith("_")
        try:
            attrs[name] = enc.encode(value)
        except _Unencodable as e:
            if fitted:
                raise ValueError(f"save: the fitted attribute {name} of {cls.__name__} cannot be stored: it is "
                                 f"{e}") from None
            # Training-only state: the optimizer, a random generator.
            dropped_state.append(name)

    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "class": cls.__name__,
        "params": params,
        "attributes": attrs,
        "dropped_params": dropped_params,
        "dropped_state": dropped_state,
        "info": info or {},
    }
    try:
        text = json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"save: info must be a JSON-serializable dict: {e}") from None
    entries = dict(enc.arrays)
    entries[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, entries)


# A save's temporary file is named after its target and its writer,
# ".{target}.fastgd-{host}-{pid}-{random}.tmp", so that a later save to the same path can tell
# the files that a killed writer left behind (_remove_stale_temps). The target's name is cut
# to _TEMP_NAME_CHARS characters so that the whole name stays within 255 bytes.
_TEMP_NAME_CHARS = 48
_TEMP_WRITER = re.compile(r"(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-\w+\.tmp")


def _host_tag() -> str:
    return format(zlib.crc32(socket.gethostname().encode("utf-8", "replace")), "08x")


def _writer_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (this process included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, another user's
        return True
    except (OverflowError, ValueError, OSError):  # not a process id at all
        return False
    return True


def _remove_stale_temps(directory: str, prefix: str) -> None:
    """Remove the temporary files of earlier saves to the same path whose writer was killed
    between creating its file and renaming it over the path (SIGKILL, a power cut).

    The rule: a temporary file's name holds its writer's host and process id, and the file is
    stale when its writer ran on this host and no process of that id exists any more. A writer
    that is alive, another thread of this process or another process saving to the same path
    at the same time, keeps its file: concurrent saves never delete each other's file in
    progress. A dead writer's id taken by a new process only delays the removal to a later
    save; a file of another host is left alone (its process ids mean nothing here). Nothing
    is removed on Windows, where ``os.kill`` cannot ask whether a process exists.
    """
    if os.name != "posix":
        return
    host = _host_tag()
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        writer = _TEMP_WRITER.fullmatch(name, len(prefix))
        if writer is None or writer["host"] != host or _writer_alive(int(writer["pid"])):
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:  # gone already (another save removed it), or not ours to remove
            pass


def _create_temp(directory: str, prefix: str) -> tuple[int, str]:
    """A new file of a fresh name in ``directory``, opened for writing: ``(fd, path)``.

    Unlike ``tempfile.mkstemp`` (always mode 0600), the file is created with mode 0666, which
    the process's umask reduces as it does for any file the user writes (0644 under umask
    022), so that the saved file, which this one becomes, has the mode the user expects.
    ``O_EXCL`` makes the creation fail rather than open a file (or follow a link) that is
    there already."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f"{prefix}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


def _atomic_write(path: str | os.PathLike, entries: dict[str, np.ndarray]) -> None:
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    prefix = f".{base[:_TEMP_NAME_CHARS]}.fastgd-"
    _remove_stale_temps(directory, prefix)
    tmp = None
    try:
        fd, tmp = _create_temp(directory, prefix)
        with os.fdopen(fd, "wb") as f:
            # The keys are array names ("a0", ..., the metadata's), never savez's own
            # allow_pickle, which numpy's stub cannot rule out of **entries.
            np.savez(f, **entries)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError) and e.errno is not None:
            # Name the file the caller asked for: the temporary name is an implementation detail.
            raise OSError(e.errno, e.strerror, path) from None
        raise
    # The rename itself is durable once the directory is synced (POSIX; Windows cannot open a
    # directory, and its rename is journaled by the file system).
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# -- load --------------------------------------------------------------------------------

# The default bound of load's max_bytes: what a file may make load allocate.
DEFAULT_MAX_BYTES = 2**34
# Parsed JSON takes up to about 35 times its size as Python objects (a dict or a list for every
# few bytes), so the metadata counts this many times its size against max_bytes.
_METADATA_COST = 64
# The metadata's nesting, far deeper than fastgd writes (about a dozen levels) and shallow
# enough for the recursive decoding.
_MAX_DEPTH = 100


def _check_max_bytes(max_bytes: Any) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an integer (a number of bytes), got {max_bytes!r}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
    return int(max_bytes)


def _read(path: str | os.PathLike, max_bytes: int, *, arrays: bool = True
          ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked metadata of a model file and, with ``arrays``, every array; everything
    checked against ``max_bytes`` before it is read (fastgd._archive)."""
    shown = os.fspath(path)
    try:
        with _archive.Archive(shown, max_bytes) as archive:
            meta = _metadata(archive, shown, max_bytes)
            loaded = {k: archive.read(k) for k in archive.headers if k != _META_KEY} if arrays else {}
    except _archive.Foreign as e:
        raise ValueError(f"{shown!r} is not a fastgd model file ({e})") from None
    except _archive.Refused as e:
        raise ValueError(f"{shown!r} is not a valid fastgd model file: {e}") from None
    except FileNotFoundError:
        raise
    except OSError as e:
        raise OSError(f"cannot read {shown!r}: {e.strerror or e}") from None
    return meta, loaded


def _metadata(archive: _archive.Archive, shown: str, max_bytes: int) -> dict[str, Any]:
    """The archive's metadata, parsed within bounds and of a format version this fastgd reads."""
    header = archive.headers.get(_META_KEY)
    if header is None:
        raise _archive.Foreign("an .npz archive without fastgd's metadata")
    if header.dtype != np.uint8 or len(header.shape) != 1:
        raise ValueError(f"{shown!r} has corrupted fastgd metadata: metadata entry of the wrong type")
    cost = archive.cost + (_METADATA_COST - 1) * header.nbytes
    if cost > max_bytes:
        raise _archive.Refused(f"its arrays and metadata would take about {cost} bytes of memory, more than "
                               f"max_bytes={max_bytes}")
    try:
        meta = _parse_json(archive.read(_META_KEY).tobytes().decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("metadata is not a JSON object")
    except ValueError as e:
        raise ValueError(f"{shown!r} has corrupted fastgd metadata: {e}") from None
    if meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{shown!r} is not a fastgd model file (format {meta.get('format')!r}, expected "
                         f"{FORMAT_NAME!r})")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{shown!r} has fastgd model format version {version!r}; this fastgd reads versions "
                         f"1 to {FORMAT_VERSION} (a newer fastgd wrote it?)")
    return meta


def _parse_json(text: str) -> Any:
    """``json.loads(text)``, refused (``ValueError``) if nested deeper than ``_MAX_DEPTH``."""
    too_deep = f"nested deeper than {_MAX_DEPTH} levels"
    try:
        value = json.loads(text)
    except RecursionError:  # deeper than the parser's recursion allows
        raise ValueError(too_deep) from None
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ValueError(too_deep)
        if isinstance(v, (dict, list)):
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return value


def _restored(saved: _SavedOptimizer, optimizer: Optimizer) -> Optimizer:
    """``optimizer`` (the estimator's new one over its loaded parameters) in the stored state."""
    if type(optimizer).__name__ != saved.cls:
        raise ValueError(f"the stored optimizer is a {saved.cls}, but the estimator's optimizer parameter makes a "
                         f"{type(optimizer).__name__}")
    optimizer.load_state_dict(saved.state)
    return optimizer


def load_info(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """The metadata of a model file, without building the estimator: ``class``, ``version``,
    ``info`` (what :func:`save` was given), ``dropped_params`` and ``dropped_state``. The file
    is checked as :func:`load` checks it (``max_bytes`` the same bound), but its arrays are
    not read."""
    meta, _ = _read(path, _check_max_bytes(max_bytes), arrays=False)
    return {k: meta.get(k) for k in ("format", "version", "class", "info", "dropped_params", "dropped_state")}


def load(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Read an estimator written by :func:`save` (or ``estimator.save``).

    A file from elsewhere cannot make ``load`` hang or allocate beyond a bound. ``path`` must
    be a regular file (a FIFO or a device is refused before anything is read). Before any
    array is read, the sizes that the zip directory and the ``.npy`` headers declare are
    checked: the arrays and the metadata together may take at most ``max_bytes`` (default
    :data:`DEFAULT_MAX_BYTES`, 16 GiB; the metadata counts 64 times its size, what its parsed
    JSON may take; arrays of strings count their Python strings too), and compressed members
    may expand to at most 100 times the file's size in all, or 16 MiB (fastgd writes them
    uncompressed). Each array must have a plain dtype (numbers, booleans, strings; never
    object, void or structured) and exactly the data its header declares; the metadata may
    nest at most 100 levels deep; and a network's layer sizes must describe no more parameters
    than the file holds, before the network is built. Lower ``max_bytes`` to read untrusted
    files with less memory; a model larger than the default needs a higher one.

    Raises ``FileNotFoundError`` for a missing file, ``ValueError`` for anything that is not
    an intact fastgd model file of a known format version and estimator class or that exceeds
    the bounds (``"... is not a valid fastgd model file: ..."`` says which), and ``TypeError``
    or ``ValueError`` for a ``max_bytes`` that is not a positive integer.
    """
    shown = os.fspath(path)
    meta, arrays = _read(path, _check_max_bytes(max_bytes))
    classes = _REGISTRY["estimator"]
    name = meta.get("class")
    if name not in classes:
        raise ValueError(f"{shown!r} holds a {name!r}, which is not a fastgd estimator this fastgd knows "
                         f"({', '.join(sorted(classes))})")
    cls = classes[name]
    try:
        params = {k: _decode(v, arrays) for k, v in meta["params"].items()}
        unknown = sorted(set(params) - set(cls().get_params(deep=False)))
        if unknown:
            raise ValueError(f"parameters {unknown} that {name} does not have")
        model = cls(**params)
        state: dict[str, Any] = {}
        for attr, node in meta["attributes"].items():
            if not isinstance(attr, str) or not attr.isidentifier():
                raise ValueError(f"bad attribute name {attr!r}")
            state[attr] = _decode(node, arrays)
        for attr in meta.get("dropped_state", []):
            if isinstance(attr, str) and attr.isidentifier() and attr.startswith("_"):
                state[attr] = None
        optimizers = {k: v for k, v in state.items() if isinstance(v, _SavedOptimizer)}
        state.update(dict.fromkeys(optimizers))
        # Through the estimator's unpickling hook (e.g. to make coefs_ views of its parameter
        # buffer again); then each optimizer, rebuilt over that buffer.
        model.__fastgd_restore__(state, {k: functools.partial(_restored, saved) for k, saved in optimizers.items()})
    # (Every error that metadata out of reach of save can cause: a missing or mistyped entry,
    # a number too large for a float, a bad value for a class.)
    except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as e:
        raise ValueError(f"{shown!r} is corrupted: cannot rebuild the {name}: {type(e).__name__}: {e}") from None
    return model


# -- optimizer state -----------------------------------------------------------------------

def save_state(path: str | os.PathLike, optimizer: Any) -> None:
    """Write ``optimizer``'s state (any fastgd optimizer, or a
    :class:`fastgd.distributed.DistributedOptimizer`) to ``path``, an ``.npz`` archive that
    ``np.load(path)`` reads without ``allow_pickle``: its ``state_dict(flat=True)`` (the groups'
    options, schedules by their config, step counts, every state array), atomically as
    :func:`save` writes. :func:`load_state` reads it back, and the optimizer then continues
    with the same bits as the one saved. ``TypeError`` for an ``lr`` (or another option)
    that is a callable other than a :mod:`fastgd.schedules` schedule."""
    state_dict = getattr(optimizer, "state_dict", None)
    if state_dict is None or not isinstance(getattr(optimizer, "optimizer", optimizer), Optimizer):
        raise TypeError(f"save_state: expected a fastgd optimizer, got {type(optimizer).__name__}")
    _atomic_write(path, state_dict(flat=True))


def load_state(path: str | os.PathLike, optimizer: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Load the state that :func:`save_state` wrote into ``optimizer`` (built over the same
    parameter shapes, of the same rule), checked whole before anything changes.

    The file is read as :func:`load` reads a model file, within ``max_bytes`` and the same
    bounds, without pickle. A file that fastgd's ``save_state`` did not write (a model file,
    ``torch.save``'s, any other ``.npz``) is a ``ValueError`` saying it is not a fastgd state
    dict; ``FileNotFoundError`` for a missing file."""
    shown = os.fspath(path)
    max_bytes = _check_max_bytes(max_bytes)
    try:
        with _archive.Archive(shown, max_bytes) as archive:
            header = archive.headers.get(_STATE_META_KEY)
            if header is None:
                raise _archive.Foreign(f"an .npz archive without a {_STATE_META_KEY!r} entry" +
                                       (" (a fastgd model file: read it with fastgd.load)"
                                        if _META_KEY in archive.headers else ""))
            cost = archive.cost + (_METADATA_COST - 1) * header.nbytes
            if cost > max_bytes:
                raise _archive.Refused(f"its arrays and metadata would take about {cost} bytes of memory, more "
                                       f"than max_bytes={max_bytes}")
            arrays = {key: archive.read(key) for key in archive.headers}
    except _archive.Refused as e:
        raise ValueError(f"{shown!r} is not a fastgd state dict: {e}") from None
    except FileNotFoundError:
        raise
    except OSError as e:
        raise OSError(f"cannot read {shown!r}: {e.strerror or e}") from None
    try:
        optimizer.load_state_dict(arrays)
    except (LookupError, TypeError, ValueError) as e:
        raise ValueError(f"{shown!r}: cannot load the optimizer state: {e}") from None
