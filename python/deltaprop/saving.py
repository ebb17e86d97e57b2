"""The model file: an .npz archive (no pickle) holding a JSON header and the parameters.
A file is checked before anything is built from it: that it is a regular file whose members
are stored uncompressed (as np.savez writes them) within its bytes, so no member can ask for
memory the file does not hold; each array's .npy header against the bytes its member holds
before its data is read; the header's layer sizes against the arrays before the network is
built; and every array against that network before it is used."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import stat
import zipfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from ._typing import FloatArray, PathArg
from .activations import Activation
from .validation import check_int

if TYPE_CHECKING:
    from .model import MLP

    _Net = TypeVar("_Net", bound=MLP)

FORMAT = "deltaprop-mlp"
VERSION = 3  # 2 added per-layer activations, residual blocks, losses, dropout, learned
# activation parameters; 3 added state arrays (an estimator's optimizer); 1 and 2 are still read


class SavedNetwork(Protocol):
    """What save_mlp reads from a network: an MLP, or a scikit-learn estimator's network
    (deltaprop.sklearn writes its estimators in the same format)."""

    @property
    def layer_sizes(self) -> Sequence[int]: ...
    @property
    def activation(self) -> object: ...
    @property
    def output(self) -> str: ...
    @property
    def loss(self) -> str | None: ...
    @property
    def huber_delta(self) -> float: ...
    @property
    def residual(self) -> object: ...
    @property
    def dropout(self) -> object: ...
    @property
    def alpha_dropout(self) -> bool: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def seed(self) -> int: ...
    @property
    def grad_at_zero(self) -> float: ...
    @property
    def epochs_trained_(self) -> int: ...
    @property
    def coefs_(self) -> Sequence[FloatArray]: ...
    @property
    def intercepts_(self) -> Sequence[FloatArray]: ...
    @property
    def activation_params_(self) -> Sequence[Mapping[str, FloatArray]]: ...


def save_mlp(net: SavedNetwork, path: PathArg, extra: Mapping[str, object] | None = None,
             state: Mapping[str, FloatArray] | None = None) -> None:
    """``extra``: more JSON-able header entries (the scikit-learn estimators' settings), which
    MLP.load ignores; ``state``: more arrays by name (an estimator's optimizer state), which the
    header lists under "state_arrays", MLP.load ignores too, and their reader checks."""
    state = dict(state or {})
    header = {
        "format": FORMAT,
        "version": VERSION if state else 2,  # (a file without state arrays: as version 2 wrote it)
        "layer_sizes": net.layer_sizes,
        "activation": _activation_to_json(net.activation),
        "output": net.output,
        "loss": net.loss,
        "huber_delta": net.huber_delta,
        "residual": net.residual,
        "dropout": net.dropout,
        "alpha_dropout": net.alpha_dropout,
        "dtype": net.dtype.name,
        "seed": net.seed,
        "grad_at_zero": net.grad_at_zero,
        "epochs_trained": net.epochs_trained_,
        "state_arrays": sorted(state),
        **(extra or {}),
    }
    parameters = _parameters(net)
    for name, array in parameters.items():  # load refuses these: never write one
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or inf: a model file keeps finite parameters only")
    text = json.dumps(header, default=_json_value)
    arrays: dict[str, npt.NDArray[Any]] = {"header": np.array(text), **parameters, **state}
    _write_whole(path, arrays)


def _write_whole(path: PathArg, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Replacing a model file, the archive is written to a new file beside it, then renamed over
    it: a save cut short (Ctrl-C, a full disk) leaves the model that was there, not half of a
    new one. The new file is private until it has the old one's mode. Written in place, as
    open() writes: a new file (there is nothing to keep), a device or a FIFO, a file we may not
    write (open's PermissionError), one that another user owns or that has other hard links
    (a rename would take them from it), and any whose directory takes no new file."""
    target = os.path.realpath(os.fsdecode(path))  # through a symlink: the file it points to
    try:
        status = os.stat(target)
    except FileNotFoundError:
        status = None
    replace = (status is not None and stat.S_ISREG(status.st_mode) and status.st_nlink == 1
               and status.st_uid == getattr(os, "geteuid", lambda: status.st_uid)()
               and os.access(target, os.W_OK))
    temporary = f"{target}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) if replace else None
    except OSError:  # (a directory we may not write in, a name past the length limit)
        fd = None
    if fd is None:
        with open(path, "wb") as f:
            _savez(f, arrays)
        return
    try:
        with open(fd, "wb") as f:
            _savez(f, arrays)
        assert status is not None
        os.chmod(temporary, stat.S_IMODE(status.st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _savez(f: BinaryIO, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    # an open file: np.savez would otherwise append ".npz" to the path; numpy's stub fears
    # **arrays could hold its allow_pickle, which the names here never are
    np.savez(f, **arrays)  # type: ignore[arg-type]


def _json_value(value: object) -> object:
    """json.dumps' fallback: NumPy scalars and arrays (options a grid search or a user gave as
    np.float32(0.1), np.bool_(True), ...) as the Python values they hold."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _activation_to_json(activation: object) -> object:
    """A name stays a name; an Activation becomes the dict of its fields; a list, a list."""
    if isinstance(activation, (list, tuple)):
        return [_activation_to_json(a) for a in activation]
    if isinstance(activation, str):
        return activation
    return dataclasses.asdict(cast(Activation, activation))  # MLP resolved it: an Activation


def _activation_from_json(activation: Any) -> Any:
    """The reverse, on the header's JSON value (anything: MLP checks what it gets)."""
    if isinstance(activation, list):
        return [_activation_from_json(a) for a in activation]
    return Activation(**activation) if isinstance(activation, dict) else activation


def _parameters(net: SavedNetwork) -> dict[str, FloatArray]:
    """The model's parameter arrays by their names in the file."""
    return named_parameters(net.coefs_, net.intercepts_, net.activation_params_)


def named_parameters(coefs: Sequence[FloatArray], intercepts: Sequence[FloatArray],
                     learned: Sequence[Mapping[str, FloatArray]]) -> dict[str, FloatArray]:
    """Parameter arrays by their names in the file."""
    arrays: dict[str, FloatArray] = {}
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        arrays[f"coefs_{l}"] = W
        arrays[f"intercepts_{l}"] = b
    for l, params in enumerate(learned):
        for name, value in params.items():
            arrays[f"activation_params_{l}_{name}"] = value
    return arrays


def _bad(path: PathArg, why: str) -> ValueError:
    return ValueError(f"{path} is not a readable deltaprop model file: {why}")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> npt.NDArray[Any]:
    """One .npy member. Its header is checked against the bytes the member holds before any
    data is read, so a damaged or hostile header cannot ask for memory the file does not hold;
    numpy's header parser can raise what its tokenizer raises, so any error there means a
    damaged file."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[version]
            shape, fortran, dtype = read_header(f)
        except Exception as error:
            raise ValueError(f"{info.filename} has a damaged .npy header "
                             f"({type(error).__name__}: {error})") from error
        if dtype.hasobject:
            raise ValueError(f"{info.filename} holds Python objects")
        size = math.prod(shape) * dtype.itemsize
        if size != info.file_size - f.tell():
            raise ValueError(f"{info.filename}'s header describes {size} bytes of data, the "
                             f"member holds {info.file_size - f.tell()}")
        data = bytearray(size)  # filled in pieces: never twice the array in memory
        view, filled = memoryview(data), 0
        while filled < size:
            piece = f.read(min(1 << 24, size - filled))
            if not piece:
                raise ValueError(f"{info.filename} is truncated")
            view[filled:filled + len(piece)] = piece
            filled += len(piece)
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _check_members(archive: zipfile.ZipFile, file_bytes: int) -> None:
    """Every member an .npy array, stored, its declared sizes together within the file: a
    directory's sizes can lie, and a compressed member can inflate far past the file's size,
    so the memory _read_member takes is bounded by what the file holds."""
    declared = 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ValueError(f"it holds {info.filename!r}, not only .npy arrays")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{info.filename} is compressed; a model file stores its arrays "
                             f"as they are (np.savez)")
        if info.file_size != info.compress_size:
            raise ValueError(f"{info.filename} is stored, but its sizes in the directory differ")
        declared += info.file_size
    if declared > file_bytes:
        raise ValueError(f"its directory declares {declared} bytes of arrays, the file holds "
                         f"{file_bytes}")


def _open_regular(path: PathArg) -> BinaryIO:
    """``path`` opened to read, or ValueError if it is not a regular file: zipfile would read a
    device such as /dev/zero without end (O_NONBLOCK: opening a FIFO would wait for a writer)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError("not a regular file")
    return open(fd, "rb")


def _read_archive(path: PathArg) -> dict[str, npt.NDArray[Any]]:
    """Every array of the archive at `path`, read whole; ValueError if it is not one of ours.
    The file is opened here so it is closed however reading fails."""
    try:
        with _open_regular(path) as f, zipfile.ZipFile(f) as archive:
            _check_members(archive, os.fstat(f.fileno()).st_size)
            return {info.filename[:-len(".npy")]: _read_member(archive, info)
                    for info in archive.infolist()}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, KeyError, NotImplementedError, RuntimeError,
            zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        raise _bad(path, f"{type(error).__name__}: {error}") from error


def read_model_file(path: PathArg) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """(header, arrays) of a model file, its format and version checked; ValueError if it is
    not one this deltaprop reads."""
    contents = _read_archive(path)
    try:
        header = json.loads(str(contents["header"]))
    except (KeyError, ValueError, RecursionError) as error:  # (JSON nested past the stack)
        raise _bad(path, "no header") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(path, "the header does not name the deltaprop-mlp format")
    version = header.get("version")
    if not (type(version) is int and 1 <= version <= VERSION):
        raise _bad(path, f"format version {version!r}; this deltaprop reads "
                         f"versions 1 to {VERSION}")
    return header, contents


def dense_layer_arrays(sizes: Sequence[int], dtype: npt.DTypeLike) -> dict[str, FloatArray]:
    """coefs_l and intercepts_l of a network of these layer sizes, by their names in the file:
    empty arrays, to check a file's shapes and dtypes against (np.empty touches no memory).
    ValueError or TypeError for sizes or a dtype no network has."""
    sizes = [check_int(n, "layer_sizes", 1) for n in sizes]
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    arrays: dict[str, FloatArray] = {}
    for l, (i, o) in enumerate(zip(sizes, sizes[1:])):
        arrays[f"coefs_{l}"] = np.empty((i, o), dtype)
        arrays[f"intercepts_{l}"] = np.empty(o, dtype)
    return arrays


def check_parameter_arrays(path: PathArg, contents: Mapping[str, npt.NDArray[Any]],
                           expected: Mapping[str, npt.NDArray[Any]]) -> None:
    """Every array named in ``expected`` is there, shaped and typed like it, and finite."""
    for name, like in expected.items():
        array = contents.get(name)
        if array is None or array.shape != like.shape or array.dtype != like.dtype:
            seen = "missing" if array is None else f"{array.dtype} {array.shape}"
            raise _bad(path, f"{name} should be {like.dtype} {like.shape}, got {seen}")
        if not np.isfinite(array).all():
            raise _bad(path, f"{name} holds NaN or inf")


def state_arrays(path: PathArg, header: Mapping[str, Any],
                 contents: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """The state arrays the header lists (save lists them from version 3 on), each in the
    archive: what reads them (an estimator's load) checks them against what they are the state
    of."""
    names = header.get("state_arrays", [])
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)
            and len(set(names)) == len(names)):
        raise _bad(path, f"bad header: state_arrays must be a list of names, got {names!r:.80}")
    missing = [name for name in names if name not in contents or name == "header"]
    if missing:
        raise _bad(path, f"its header lists state arrays it does not hold: {missing!r:.80}")
    return {name: contents[name] for name in names}


def load_mlp(cls: type[_Net], path: PathArg, *, backend: str = "cpp",
             n_threads: int | None = None) -> _Net:
    # The caller's own arguments first: a bad one is their mistake, not the file's.
    if backend not in ("cpp", "numpy"):
        raise ValueError(f"backend must be 'cpp' or 'numpy', got {backend!r}")
    if n_threads is not None:
        check_int(n_threads, "n_threads", 1, 1024)
    header, contents = read_model_file(path)
    return mlp_from_file(cls, path, header, contents, backend=backend, n_threads=n_threads)


def mlp_from_file(cls: type[_Net], path: PathArg, header: Mapping[str, Any],
                  contents: Mapping[str, npt.NDArray[Any]], *, backend: str = "cpp",
                  n_threads: int | None = None) -> _Net:
    """The network a model file's header and arrays (read_model_file's) describe, as
    ``cls.load`` gives it; ValueError naming ``path`` if they do not describe one."""
    try:
        epochs = check_int(header["epochs_trained"], "epochs_trained", 0)
        dense = dense_layer_arrays(header["layer_sizes"], header["dtype"])
    except (KeyError, TypeError, ValueError, MemoryError) as error:
        raise _bad(path, f"bad header: {type(error).__name__}: {error}") from error
    # the weights the file must hold, before a network that size is built and initialised
    check_parameter_arrays(path, contents, dense)
    try:
        activation = _activation_from_json(header["activation"])
        net = cls(header["layer_sizes"], activation, header["output"],
                  loss=header.get("loss"), huber_delta=header.get("huber_delta", 1.0),
                  residual=header.get("residual", False), dropout=header.get("dropout", 0.0),
                  alpha_dropout=header.get("alpha_dropout", False),
                  dtype=header["dtype"], seed=header["seed"], backend=backend,
                  n_threads=n_threads, grad_at_zero=header["grad_at_zero"])
    except (KeyError, TypeError, ValueError, MemoryError) as error:
        raise _bad(path, f"bad header: {type(error).__name__}: {error}") from error
    expected = _parameters(net)  # the freshly built model's arrays: names, shapes, dtypes
    check_parameter_arrays(path, contents, expected)
    if set(contents) != {"header", *expected, *state_arrays(path, header, contents)}:
        raise _bad(path, "it holds arrays the header does not describe")
    for name, like in expected.items():  # in place: the lists and dicts keep their identity
        np.copyto(like, contents[name])
    net.epochs_trained_ = epochs
    return net
