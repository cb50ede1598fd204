"""Load research pickles without letting them run code or corrupt memory: a restricted unpickler.

Unpickling calls whatever global a file names (``os.system`` included), so by default only
plain containers, numbers, strings and numpy arrays may be rebuilt. The allow-list was
taken from what numpy 1.x and 2.x actually pickle (protocols 0-5) for float16/float32/int64
arrays, scalars and dtypes. ``trusted=True`` lifts it for files the user vouches for.

Names alone are not enough: with only numpy's own globals a pickle can build an object dtype
(``O8``, an object field, or a dtype whose saved state clears its flags) and fill an array of
it from attacker bytes, i.e. forged pointers. So every dtype is checked twice: its
constructor arguments must name a plain numeric, bool, string or datetime dtype, and the
state a ``BUILD`` opcode applies to it must be one numpy itself produces for that dtype; the
result is checked again after construction, as is every array and scalar. This needs the
pure-Python unpickler (``pickle._Unpickler``): the C one cannot intercept ``BUILD``.

A crash in C code can still not be ruled out for every input, so the import stage parses
untrusted pickles in a child process (:mod:`truthtrace.traces.importing.isolated`).
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path

import numpy as np

ALLOWED_GLOBALS = frozenset({
    # containers and numbers that older protocols build through a global
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("collections", "OrderedDict"),
})
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric")
PLAIN_KINDS = frozenset("biufcSUmM")  # bool, ints, floats, complex, bytes, str, timedelta, datetime
_UNSAFE_DTYPE_CLASSES = frozenset({"ObjectDType", "StringDType", "VoidDType"})  # hold pointers or fields


class PickleRefused(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list, or builds a dtype that could hold objects."""


def plain_dtype(dtype, source: str = "<pickle>") -> np.dtype:
    """``dtype`` as a ``numpy.dtype`` if it is plain (cannot hold Python objects), else raise.

    Plain: kind in :data:`PLAIN_KINDS`, no fields, no sub-array, no metadata, and the same
    flags numpy gives a freshly made dtype of that type.

    Raises:
        PickleRefused: object, structured, void or otherwise unusual dtype.
    """
    try:
        d = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
    except (TypeError, ValueError) as err:
        raise PickleRefused(f"{source}: not a dtype ({err})") from None
    if d.hasobject or d.kind not in PLAIN_KINDS or d.fields is not None or d.subdtype is not None \
            or d.metadata or d.flags != np.dtype(d.str).flags:
        raise PickleRefused(f"{source}: refusing dtype {d!r} (kind {d.kind!r}, flags {d.flags}): only plain numeric, "
                            "bool, string and datetime arrays are loaded from an untrusted pickle")
    return d


def _dtype_states(d: np.dtype) -> list:
    """The ``BUILD`` states numpy itself writes for ``d`` in either byte order."""
    return [np.dtype(d.str).newbyteorder(order).__reduce__()[2] for order in ("<", ">", "=")]


class _ArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: only the subtype argument of ``_reconstruct``, never called."""


ARRAY_TYPE = _ArrayType()


class _Checked:
    """Checked stand-ins for the numpy callables a pickle may name (bound to the file name)."""

    def __init__(self, source: str):
        self.source = source

    def dtype(self, obj, align=False, copy=True) -> np.dtype:
        """``numpy.dtype(obj, align, copy)`` for a type code of a plain dtype only, always a fresh copy."""
        if not isinstance(obj, (str, bytes)) or isinstance(align, np.ndarray) or isinstance(copy, np.ndarray):
            raise PickleRefused(f"{self.source}: refusing numpy.dtype({obj!r}, ...): expected a type code string")
        code = obj.decode("latin-1") if isinstance(obj, bytes) else obj
        return plain_dtype(np.dtype(code, bool(align), True), self.source)  # a copy: BUILD may change it

    def reconstruct(self, subtype, shape, typecode) -> np.ndarray:
        """numpy's ``_reconstruct``: an empty plain ``ndarray`` that ``BUILD`` fills."""
        if subtype is not ARRAY_TYPE or shape != (0,):  # numpy always writes (ndarray, (0,), b"b")
            raise PickleRefused(f"{self.source}: refusing _reconstruct({subtype!r}, {shape!r}, ...)")
        return np.ndarray.__new__(np.ndarray, (0,), plain_dtype(typecode, self.source))

    def scalar(self, dtype, data=None):
        """numpy's ``scalar``: a numpy scalar of a plain dtype from exactly ``itemsize`` bytes."""
        d = plain_dtype(dtype, self.source)
        if not isinstance(data, bytes) or len(data) != d.itemsize:
            raise PickleRefused(f"{self.source}: numpy scalar of {d} needs {d.itemsize} bytes")
        return np.frombuffer(data, dtype=d)[0].copy()

    def encode(self, text, encoding: str = "utf-8") -> bytes:
        """``_codecs.encode`` as protocols <= 2 use it: latin-1 text to bytes, no other codec."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise PickleRefused(f"{self.source}: refusing _codecs.encode with codec {encoding!r}")
        return text.encode("latin-1")

    def frombuffer(self, buf, dtype, shape, order) -> np.ndarray:
        """numpy's ``_frombuffer`` (protocol 5): a copied plain array of ``shape``."""
        d = plain_dtype(dtype, self.source)
        if order not in ("C", "F"):
            raise PickleRefused(f"{self.source}: bad array order {order!r}")
        return np.frombuffer(memoryview(buf).tobytes(), dtype=d).reshape(shape, order=order).copy()


class SafeUnpickler(pickle._Unpickler):
    """Unpickler that rebuilds only :data:`ALLOWED_GLOBALS` and plain numpy arrays, dtypes and scalars.

    Args:
        file: binary file object.
        source: file name used in refusal messages.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source
        checked = _Checked(source)
        self.numpy = {"dtype": checked.dtype, "ndarray": ARRAY_TYPE, "_reconstruct": checked.reconstruct,
                      "scalar": checked.scalar, "_frombuffer": checked.frombuffer, "encode": checked.encode}

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # Python 2 pickles
            module = "builtins"
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode") or (module == "numpy" and name in ("dtype", "ndarray")) \
                or (module in _NUMPY_MODULES and name in self.numpy and name != "encode"):
            return self.numpy[name]  # protocol <= 2 stores bytes through _codecs.encode
        if module == "numpy.dtypes" and name.endswith("DType") and name not in _UNSAFE_DTYPE_CLASSES:
            return super().find_class(module, name)
        raise PickleRefused(f"refusing to load {module}.{name} from {self.source}: pickle may run code; "
                            "pass --trust-pickle if you trust this file")

    def load_build(self) -> None:
        """``BUILD`` only for dtypes and arrays, with a state numpy would write, checked again afterwards."""
        state, inst = self.stack[-1], self.stack[-2]
        self.check_state(inst, state)
        pickle._Unpickler.load_build(self)
        plain_dtype(inst if isinstance(inst, np.dtype) else inst.dtype, self.source)

    def check_state(self, inst, state) -> None:
        """Refuse a ``BUILD`` of ``state`` onto ``inst`` unless numpy itself writes it (dtype or array)."""
        if isinstance(inst, np.dtype):
            if repr(state) not in map(repr, _dtype_states(plain_dtype(inst, self.source))):
                raise PickleRefused(f"{self.source}: refusing dtype state {state!r}: numpy never writes it for {inst}")
        elif type(inst) is np.ndarray:
            if not isinstance(state, tuple) or len(state) not in (4, 5) or type(state[-1]) not in (bytes, bytearray):
                raise PickleRefused(f"{self.source}: refusing array state: expected (shape, dtype, fortran, bytes)")
            plain_dtype(state[-3], self.source)
        else:
            raise PickleRefused(f"{self.source}: refusing to set the state of a {type(inst).__name__}")

    dispatch[pickle.BUILD[0]] = load_build


def _open(path: Path):
    """The file's bytes stream, gunzipped for ``*.gz``."""
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def load_pickle(path, trusted: bool = False):
    """Load a ``.pkl`` or ``.pkl.gz`` file in this process.

    Args:
        path: the file.
        trusted: use the plain unpickler (the file may run code); else :class:`SafeUnpickler`.

    Returns:
        the unpickled object.

    Raises:
        PickleRefused: the file names a global outside the allow-list or builds an unsafe dtype.
        pickle.UnpicklingError: (untrusted mode) any other reason the file is not a readable pickle.
        OSError: the file cannot be read.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            data = io.BytesIO(f.read())  # gzip streams are slow to unpickle from directly
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise pickle.UnpicklingError(f"{path.name}: not a readable gzip file ({err})") from None
    if trusted:
        return pickle.Unpickler(data).load()
    try:
        return SafeUnpickler(data, source=path.name).load()
    except pickle.UnpicklingError:
        raise
    except Exception as err:  # malformed opcodes end in all sorts of errors: one documented type
        raise pickle.UnpicklingError(f"{path.name}: not a readable pickle ({type(err).__name__}: {err})") from None
