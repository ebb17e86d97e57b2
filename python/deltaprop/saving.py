"""The model file: an .npz archive (no pickle) holding a JSON header and the parameters.
A file is checked whole before anything is built from it."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np

from .activations import Activation
from .validation import check_int

FORMAT = "deltaprop-mlp"
VERSION = 1


def save_mlp(net, path, extra=None) -> None:
    """``extra``: more JSON-able header entries (the scikit-learn estimators' settings), which
    MLP.load ignores."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "layer_sizes": net.layer_sizes,
        "activation": (net.activation if isinstance(net.activation, str)
                       else dataclasses.asdict(net.activation)),
        "output": net.output,
        "dtype": net.dtype.name,
        "seed": net.seed,
        "grad_at_zero": net.grad_at_zero,
        "epochs_trained": net.epochs_trained_,
        **(extra or {}),
    }
    arrays = {"header": np.array(json.dumps(header))}
    for l, (W, b) in enumerate(zip(net.coefs_, net.intercepts_)):
        arrays[f"coefs_{l}"] = W
        arrays[f"intercepts_{l}"] = b
    with open(path, "wb") as f:  # an open file: np.savez would otherwise append ".npz" to path
        np.savez(f, **arrays)


def _bad(path, why: str) -> ValueError:
    return ValueError(f"{path} is not a readable deltaprop model file: {why}")


def _read_archive(path) -> dict:
    """Every array of the archive at `path`, read whole; ValueError if it is not one of ours.
    The file is opened here so it is closed however reading fails."""
    try:
        with open(path, "rb") as f:
            archive = np.load(f, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            with archive:
                return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, KeyError, NotImplementedError, RuntimeError,
            zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        raise _bad(path, f"{type(error).__name__}: {error}") from error


def read_model_file(path):
    """(header, arrays) of a model file, its format and version checked; ValueError if it is
    not one this deltaprop reads."""
    contents = _read_archive(path)
    try:
        header = json.loads(str(contents["header"]))
    except (KeyError, ValueError) as error:
        raise _bad(path, "no header") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(path, "the header does not name the deltaprop-mlp format")
    if header.get("version") != VERSION:
        raise _bad(path, f"format version {header.get('version')!r}; this deltaprop reads "
                         f"version {VERSION}")
    return header, contents


def check_parameter_arrays(path, contents, like_coefs, like_intercepts) -> None:
    """Every coefs_{l} / intercepts_{l} is there, shaped and typed like the given arrays, and
    finite; and the archive holds nothing else but the header."""
    L = len(like_coefs)
    for l in range(L):
        for name, like in ((f"coefs_{l}", like_coefs[l]), (f"intercepts_{l}", like_intercepts[l])):
            array = contents.get(name)
            if array is None or array.shape != like.shape or array.dtype != like.dtype:
                seen = "missing" if array is None else f"{array.dtype} {array.shape}"
                raise _bad(path, f"{name} should be {like.dtype} {like.shape}, got {seen}")
            if not np.isfinite(array).all():
                raise _bad(path, f"{name} holds NaN or inf")
    if len(contents) != 1 + 2 * L:
        raise _bad(path, "it holds arrays the header does not describe")


def load_mlp(cls, path, *, backend="cpp", n_threads=None):
    # The caller's own arguments first: a bad one is their mistake, not the file's.
    if backend not in ("cpp", "numpy"):
        raise ValueError(f"backend must be 'cpp' or 'numpy', got {backend!r}")
    if n_threads is not None:
        check_int(n_threads, "n_threads", 1, 1024)
    header, contents = read_model_file(path)
    try:
        epochs = check_int(header["epochs_trained"], "epochs_trained", 0)
        activation = header["activation"]
        if isinstance(activation, dict):
            activation = Activation(**activation)
        net = cls(header["layer_sizes"], activation, header["output"],
                  dtype=header["dtype"], seed=header["seed"], backend=backend,
                  n_threads=n_threads, grad_at_zero=header["grad_at_zero"])
    except (KeyError, TypeError, ValueError, MemoryError) as error:
        raise _bad(path, f"bad header: {type(error).__name__}: {error}") from error
    L = len(net.layer_sizes) - 1
    check_parameter_arrays(path, contents, net.coefs_, net.intercepts_)
    net.coefs_ = [np.ascontiguousarray(contents[f"coefs_{l}"]) for l in range(L)]
    net.intercepts_ = [np.ascontiguousarray(contents[f"intercepts_{l}"]) for l in range(L)]
    net.epochs_trained_ = epochs
    return net
