"""Load research pickles without letting them run code: an allow-list ``pickle.Unpickler``.

Unpickling calls whatever global a file names (``os.system`` included), so by default only
plain containers, numbers, strings and numpy arrays may be rebuilt. The allow-list was
taken from what numpy 1.x and 2.x actually pickle (protocols 0-5) for float16/float32/int64
arrays, scalars and dtypes. ``trusted=True`` lifts it for files the user vouches for.
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
from pathlib import Path

ALLOWED_GLOBALS = frozenset({
    # containers and numbers that older protocols build through a global
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("builtins", "slice"), ("builtins", "range"), ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # protocol <= 2 stores bytes as latin-1 text
    # numpy arrays, scalars and dtypes (numpy 1.x lives in numpy.core, 2.x in numpy._core)
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
})
# numpy 2 pickles dtype classes such as numpy.dtypes.Float16DType by name
_DTYPE_CLASS = re.compile(r"^[A-Z][A-Za-z0-9]*DType$")


class PickleRefused(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list."""


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` accepts only :data:`ALLOWED_GLOBALS`.

    Args:
        file: binary file object.
        source: file name used in the refusal message.
    """

    def __init__(self, file, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # Python 2 pickles
            module = "builtins"
        if (module, name) in ALLOWED_GLOBALS or (module == "numpy.dtypes" and _DTYPE_CLASS.match(name)):
            return super().find_class(module, name)
        raise PickleRefused(f"refusing to load {module}.{name} from {self.source}: pickle may run code; "
                            "pass --trust-pickle if you trust this file")


def _open(path: Path):
    """The file's bytes stream, gunzipped for ``*.gz``."""
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def load_pickle(path, trusted: bool = False):
    """Load a ``.pkl`` or ``.pkl.gz`` file.

    Args:
        path: the file.
        trusted: use the plain unpickler (the file may run code); else :class:`SafeUnpickler`.

    Returns:
        the unpickled object.

    Raises:
        PickleRefused: the file names a global outside the allow-list (untrusted mode).
        pickle.UnpicklingError, EOFError, OSError: unreadable file.
    """
    path = Path(path)
    with _open(path) as f:
        data = io.BytesIO(f.read())  # gzip streams are slow to unpickle from directly
    if trusted:
        return pickle.Unpickler(data).load()
    return SafeUnpickler(data, source=path.name).load()
