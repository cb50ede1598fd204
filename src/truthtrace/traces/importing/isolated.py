"""Parse an untrusted pickle in a child process, so that a crash costs one file, not the run.

:mod:`truthtrace.traces.importing.safe_pickle` refuses every global and dtype it knows to be
dangerous, but the pickle still drives numpy's C code. Here a fresh Python process
(``python -m truthtrace.traces.importing.isolated FILE OUT``) unpickles the file with the
restricted unpickler and hands the result back in formats that cannot run code: a JSON tree
(``tree.json``) whose arrays live in an ``.npz`` read with ``allow_pickle=False``. If the
child dies (a segfault, the out-of-memory killer) or runs past the timeout, the parent raises
:class:`PickleCrashed` for that file and the import goes on with the next one.

Only plain data crosses: ``None``, bools, ints, floats, strings, bytes, complex numbers, lists,
tuples, sets, dicts (any hashable keys of those types) and plain numpy arrays and scalars.
"""

from __future__ import annotations

import base64
import json
import pickle
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from truthtrace.fileio import parse_json_object
from truthtrace.traces.importing.safe_pickle import PickleRefused, load_pickle, plain_dtype

TIMEOUT_S = 600.0
_TREE, _ARRAYS, _ERROR = "tree.json", "arrays.npz", "error.json"


class PickleCrashed(pickle.UnpicklingError):
    """The child process reading a pickle died or timed out (the file is malformed or hostile)."""


def encode_tree(obj, arrays: dict[str, np.ndarray]):
    """``obj`` as a JSON-able tree; arrays and numpy scalars go into ``arrays`` under ``a{n}``.

    Raises:
        TypeError: a value of a type not listed in the module docstring.
    """
    if isinstance(obj, (np.ndarray, np.generic)):
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(obj)
        return {"array": name, "scalar": isinstance(obj, np.generic)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, complex):
        return {"complex": [obj.real, obj.imag]}
    if isinstance(obj, (list, tuple, set, frozenset)):
        kind = "list" if isinstance(obj, list) else "tuple" if isinstance(obj, tuple) else "set"
        return {kind: [encode_tree(v, arrays) for v in obj]}
    if isinstance(obj, dict):
        return {"dict": [[encode_tree(k, arrays), encode_tree(v, arrays)] for k, v in obj.items()]}
    raise TypeError(f"cannot carry a {type(obj).__name__} out of the pickle")


def decode_tree(node, arrays):
    """Inverse of :func:`encode_tree`; ``arrays`` maps names to arrays (an open ``.npz``)."""
    if not isinstance(node, dict):
        return node
    if "array" in node:
        arr = np.asarray(arrays[node["array"]])
        plain_dtype(arr.dtype, _ARRAYS)
        return arr[()] if node["scalar"] else arr
    (kind, value), = node.items()
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "complex":
        return complex(*value)
    items = [decode_tree(v, arrays) for v in value] if kind != "dict" else None
    if kind in ("list", "tuple", "set"):
        return {"list": list, "tuple": tuple, "set": set}[kind](items)
    return {decode_tree(k, arrays): decode_tree(v, arrays) for k, v in value}


def _crash_reason(returncode: int) -> str:
    """``killed by SIGSEGV`` for a negative return code, else ``exit code N``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def load_isolated(path, timeout: float = TIMEOUT_S):
    """Load an untrusted ``.pkl``/``.pkl.gz`` with the restricted unpickler in a child process.

    Args:
        path: the file.
        timeout: seconds the child may take.

    Returns:
        the unpickled plain data (see the module docstring).

    Raises:
        PickleRefused: the file names a refused global or dtype.
        PickleCrashed: the child died or timed out.
        pickle.UnpicklingError: any other reason the file could not be read (message from the child).
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="truthtrace-pickle-") as tmp:
        cmd = [sys.executable, "-m", "truthtrace.traces.importing.isolated", str(path), tmp]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PickleCrashed(f"{path.name}: reading it took over {timeout:.0f} s; the file is malformed "
                                "or hostile (the reader process was stopped)") from None
        out = Path(tmp)
        if (out / _ERROR).is_file():
            err = parse_json_object((out / _ERROR).read_bytes(), _ERROR, pickle.UnpicklingError)
            raise (PickleRefused if err["type"] == "PickleRefused" else pickle.UnpicklingError)(err["message"])
        if proc.returncode != 0 or not (out / _TREE).is_file():
            raise PickleCrashed(f"{path.name}: reading it crashed the reader process ({_crash_reason(proc.returncode)})"
                                "; the file is malformed or hostile, the other files are not affected")
        with np.load(out / _ARRAYS, allow_pickle=False) as arrays:
            tree = parse_json_object((out / _TREE).read_bytes(), _TREE, pickle.UnpicklingError)
            return decode_tree(tree["root"], arrays)


def child_main(argv: list[str]) -> int:
    """The child: unpickle ``argv[0]`` (restricted) and write the tree and arrays into folder ``argv[1]``."""
    src, out = Path(argv[0]), Path(argv[1])
    try:
        arrays: dict[str, np.ndarray] = {}
        tree = encode_tree(load_pickle(src, trusted=False), arrays)
        np.savez(out / _ARRAYS, **arrays)
        (out / _TREE).write_text(json.dumps({"root": tree}))
    except Exception as err:  # every failure goes back to the parent as a message
        message = str(err) if isinstance(err, PickleRefused) else f"{src.name}: {type(err).__name__}: {err}"
        (out / _ERROR).write_text(json.dumps({"type": type(err).__name__, "message": message}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
