"""Issue 10 item 1: pickles built only from allow-listed numpy globals must not corrupt memory.

Each variant below was a working attack on the old unpickler (an object array filled from
attacker bytes, i.e. forged pointers: SIGSEGV when touched). Now each is refused by name, the
good files of the same import are kept, and a crash of the reader process costs one file.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from truthtrace.traces.importing.isolated import PickleCrashed, load_isolated
from truthtrace.traces.importing.readers import ImportConfig
from truthtrace.traces.importing.run import import_traces
from truthtrace.traces.importing.safe_pickle import PickleRefused, load_pickle, plain_dtype

RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy._core.multiarray._reconstruct
SCALAR = np.float32(1).__reduce__()[0]  # numpy._core.multiarray.scalar
FORGED = b"\x41" * 8  # a forged object pointer


class Reduce:
    """Pickles as ``func(*args)`` then ``BUILD state``: how the attacks spell numpy's own opcodes."""

    def __init__(self, func, args, state=None):
        self.value = (func, args) if state is None else (func, args, state)

    def __reduce__(self):
        return self.value


def dtype(code: str, state: tuple) -> Reduce:
    return Reduce(np.dtype, (code, False, True), state)


def array(dt, data: bytes, shape=(1,)) -> Reduce:
    return Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, shape, dt, False, data))


NO_FLAGS = (3, "|", None, None, None, 8, 8, 0)  # object dtype state with flags cleared: bytes accepted
ATTACKS = {
    "object dtype with cleared flags": array(dtype("O8", NO_FLAGS), FORGED),
    "object dtype as numpy writes it": array(np.dtype("O"), FORGED),
    "object field in a structured dtype": array(dtype("V16", (3, "|", None, ("a", "b"), {
        "a": (np.dtype("f8"), 0), "b": (np.dtype("O"), 8)}, 16, 1, 0)), FORGED * 2),
    "object fields grafted onto a float dtype": array(dtype("f8", (3, "<", None, ("b",), {
        "b": (np.dtype("O"), 0)}, 8, 1, 0)), FORGED),
    "float dtype with object flags": array(dtype("f4", (3, "<", None, None, None, -1, -1, 63)), b"\0" * 4),
    "float dtype with a forged item size": array(dtype("f4", (3, "<", None, None, None, 4096, 1, 0)), b"\0" * 4),
    "object scalar from bytes": Reduce(SCALAR, (dtype("O8", NO_FLAGS), FORGED)),
    "object scalar, plain dtype": Reduce(SCALAR, (np.dtype("O"), FORGED)),
    "array subclass": Reduce(RECONSTRUCT, (np.matrix, (0,), b"b"), (1, (1,), np.dtype("f8"), False, b"\0" * 8)),
    "huge empty array": Reduce(RECONSTRUCT, (np.ndarray, (10**12,), b"b")),
}


def write(path, obj, protocol=2):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def good_records(n: int = 2) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"id": f"g{i}", "hidden_states": [rng.standard_normal((3, 4)).astype(np.float16) for _ in range(2)],
             "label": i % 2} for i in range(n)]


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_every_attack_is_refused_in_process(tmp_path, name, protocol):
    path = write(tmp_path / "bad.pkl", [{"hidden_states": ATTACKS[name]}], protocol)
    with pytest.raises(PickleRefused, match="bad.pkl"):
        load_pickle(path)


@pytest.mark.parametrize("name", ["object dtype with cleared flags", "object field in a structured dtype",
                                  "object scalar from bytes"])
def test_cli_import_survives_the_attack_and_keeps_the_good_file(tmp_path, name):
    """On the old code this process died with SIGSEGV (rc 139) and the good records were lost."""
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a_good.pkl", good_records())
    write(tmp_path / "in" / "b_bad.pkl", [{"id": "x", "hidden_states": [ATTACKS[name]] * 2}])
    cli = "import sys; from truthtrace.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", cli, "import", str(tmp_path / "in"), "--out", str(tmp_path / "store"),
                           "--json"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "b_bad.pkl" in proc.stdout + proc.stderr and "refusing" in proc.stdout + proc.stderr
    from truthtrace.store import TraceStore
    assert sorted(TraceStore(tmp_path / "store").ids()) == ["g0", "g1"]


def test_numpy_1x_pickles_still_load(tmp_path):
    """numpy 1.x names its module numpy.core: the same checked stand-ins serve it."""
    arr = np.arange(6, dtype=np.float16).reshape(2, 3)
    data = pickle.dumps({"a": arr, "s": np.int64(7), "t": np.dtype(">i4")}, protocol=2)
    path = tmp_path / "np1.pkl"
    path.write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    got = load_pickle(path)
    np.testing.assert_array_equal(got["a"], arr)
    assert got["s"] == 7 and got["t"] == np.dtype(">i4")


def test_plain_dtype_checks_after_construction():
    """A dtype whose state was changed after numpy built it is refused even though its type code is plain."""
    d = np.dtype("f4", copy=True)  # numpy ignores BUILD on its shared singletons, not on copies
    d.__setstate__((3, "<", None, None, None, -1, -1, 63))
    with pytest.raises(PickleRefused, match="flags"):
        plain_dtype(d)
    for ok in ("f2", ">i8", "U3", "S2", "M8[ns]", "?", "c8"):
        assert plain_dtype(ok) == np.dtype(ok)


@pytest.mark.parametrize("protocol", range(6))
def test_isolated_load_matches_in_process_load(tmp_path, protocol):
    obj = {"h": [np.ones((2, 3), np.float32), np.arange(4, dtype=np.int64)], "n": np.float16(1.5), 7: (1, 2.5, None),
           "s": {"x"}, "b": b"\x00\xff", "c": 1 + 2j, "t": "text", "d": np.array(["a", "bc"])}
    path = write(tmp_path / "ok.pkl", obj, protocol)
    got, want = load_isolated(path), load_pickle(path)
    assert got.keys() == want.keys() and got[7] == want[7] and got["s"] == {"x"} and got["c"] == 1 + 2j
    for a, b in zip(got["h"], want["h"]):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert got["n"] == want["n"] and got["n"].dtype == np.float16 and got["b"] == b"\x00\xff"
    assert list(got["d"]) == ["a", "bc"]


def test_refusal_crosses_the_process_boundary(tmp_path):
    path = write(tmp_path / "bad.pkl", ATTACKS["object dtype with cleared flags"])
    with pytest.raises(PickleRefused, match="bad.pkl: refusing dtype"):
        load_isolated(path)


def fake_python(tmp_path, action: str):
    """An interpreter that crashes (or hangs) on files named *bad*, and runs the real child otherwise."""
    script = tmp_path / "python"
    script.write_text(f'#!/bin/sh\ncase "$*" in *bad*) {action};; esac\nexec "{sys.executable}" "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_a_crashing_reader_costs_one_file(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "a_good.pkl", good_records())
    write(tmp_path / "in" / "b_bad.pkl", good_records())
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, "kill -SEGV $$"))
    with pytest.raises(PickleCrashed, match="SIGSEGV"):
        load_isolated(tmp_path / "in" / "b_bad.pkl")
    summary = import_traces([tmp_path / "in"], tmp_path / "store", ImportConfig(progress=False))
    assert summary["imported"] == 2 and len(summary["failed_files"]) == 1
    assert "b_bad.pkl" in summary["failed_files"][0]["file"] and "SIGSEGV" in summary["failed_files"][0]["reason"]


def test_a_hanging_reader_is_stopped(tmp_path, monkeypatch):
    path = write(tmp_path / "bad.pkl", good_records())
    monkeypatch.setattr(sys, "executable", fake_python(tmp_path, "sleep 30"))
    with pytest.raises(PickleCrashed, match="took over 1 s"):
        load_isolated(path, timeout=1)


@pytest.mark.parametrize("data", [b"", b"\x80\x05garbage", b"(lp0\nI1\n", pickle.dumps([1, 2])[:-3]])
def test_malformed_pickles_raise_one_documented_type(tmp_path, data):
    path = tmp_path / "m.pkl"
    path.write_bytes(data)
    with pytest.raises(pickle.UnpicklingError, match="m.pkl"):
        load_pickle(path)
