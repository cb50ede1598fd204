"""File I/O shared by every stage: atomic writes and the one reader of versioned JSON manifests.

Writes go to a temp file beside the target, are fsynced and renamed: a crash leaves either the
old file or the whole new one, never a truncated file that looks complete. Files get the usual
permissions (0666 less the umask), not mkstemp's 0600. Every versioned manifest truthtrace
writes (``docs/FORMAT.md``) is read back through :func:`read_versioned_json`, which names the file
and the field on any problem. A stage that replaces its output (``--overwrite``, ``--force``)
deletes only the files it writes: :func:`foreign_files` / :func:`clear_own_output` tell them apart
and refuse a folder that holds anything else.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np
from safetensors.numpy import save_file


try:
    _IOV_MAX = os.sysconf("SC_IOV_MAX")
except (AttributeError, ValueError, OSError):  # not POSIX
    _IOV_MAX = 1024


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: Path) -> None:
    """Flush directory ``path`` so renames inside it survive a power cut (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, fsync it and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines untranslated) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_buffers(fd: int, buffers: list) -> None:
    """Write ``buffers`` (bytes-like, C-contiguous) back to back at file descriptor ``fd``'s position.

    One ``os.writev`` per ``IOV_MAX`` buffers: no joined copy, one system call for many small writes
    (a trace store's 62 chunks per trace: 27 vs 45 ms per 83 MB written chunk by chunk). A short write is
    finished with ``os.write``. Raises OSError as ``write`` does (e.g. a full disk).
    """
    views = [view for view in (memoryview(b).cast("B") for b in buffers) if view.nbytes]
    for i in range(0, len(views), _IOV_MAX):
        group = views[i:i + _IOV_MAX]
        done = os.writev(fd, group) if hasattr(os, "writev") else 0  # Windows: piece by piece below
        for view in group:
            if done >= view.nbytes:
                done -= view.nbytes
                continue
            rest = view[done:]
            done = 0
            while rest.nbytes:
                n = os.write(fd, rest)
                if n <= 0:
                    raise OSError(f"write to file descriptor {fd} made no progress")
                rest = rest[n:]


def json_safe(obj: Any) -> Any:
    """Return ``obj`` with numpy scalars made Python and NaN/inf floats made ``None``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None  # strict JSON has no NaN
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented strict JSON (NaN -> null) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def save_tensors_atomic(path: str | Path, tensors: dict[str, np.ndarray]) -> None:
    """Save numpy arrays to a safetensors file atomically."""
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(arrays, tmp))


def check_output_apart(out: str | Path, inputs: dict[str, str | Path | None], field: str = "--out") -> None:
    """Refuse an output that equals, contains or lies inside one of the stage's inputs.

    A stage may replace its output (``--overwrite``, ``--force``); it must never be able to reach
    the files it reads.

    Args:
        out: the output file or directory.
        inputs: ``{name: path}`` of the inputs (None values are skipped).
        field: how the user named the output, for the message.
    Raises:
        ValueError: naming both paths and how they overlap.
    """
    target = Path(out).expanduser().resolve()
    for name, path in inputs.items():
        if path is None:
            continue
        source = Path(path).expanduser().resolve()
        how = ("is" if target == source else "contains" if target in source.parents
               else "lies inside" if source in target.parents else None)
        if how:
            raise ValueError(f"{field} {out} {how} the input {name} {path}: choose an output apart from the "
                             "inputs (truthtrace never writes over what it reads)")


# what a stage writes: a test of an entry's path relative to the folder (posix, a dir ends in "/"),
# or regexes one of which must match that path in full
Ours = Union[Callable[[str], bool], Iterable[Union[str, re.Pattern]]]
SHOWN_FOREIGN = 5  # foreign entries a refusal names


def temp_pattern(name: str) -> str:
    """Regex of the temp file :func:`atomic_write` leaves beside ``name`` when interrupted (``.NAME.XXXX.tmp``)."""
    return rf"\.{re.escape(name)}\.[A-Za-z0-9_]+\.tmp"


def _own_test(ours: Ours) -> Callable[[str], bool]:
    if callable(ours):
        return ours
    patterns = [re.compile(p) if isinstance(p, str) else p for p in ours]
    return lambda rel: any(p.fullmatch(rel) for p in patterns)


def scan_output(folder: str | Path, ours: Ours) -> tuple[list[Path], list[Path]]:
    """Split what is under ``folder`` into ``(own, foreign)`` entries.

    An entry is tested by its path relative to ``folder`` (posix; a directory's ends in "/"). Our
    directories are descended into, a foreign entry is reported whole; symlinks are never followed.
    ``own`` lists children before their directory, the order to delete them in.
    """
    test, own, foreign = _own_test(ours), [], []

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            is_dir = entry.is_dir(follow_symlinks=False)
            rel = prefix + entry.name + ("/" if is_dir else "")
            if not test(rel):
                foreign.append(Path(entry.path))
                continue
            if is_dir:
                walk(Path(entry.path), rel)
            own.append(Path(entry.path))

    walk(Path(folder), "")
    return own, foreign


def _scan(folder: Path, ours: Ours) -> tuple[list[Path], list[Path]]:
    """:func:`scan_output`, with a missing folder empty and a non-folder (or symlink) foreign itself."""
    if not folder.exists() and not folder.is_symlink():
        return [], []
    if folder.is_symlink() or not folder.is_dir():
        return [], [folder]
    return scan_output(folder, ours)


def foreign_files(folder: str | Path, ours: Ours) -> list[Path]:
    """The entries of ``folder`` (recursively, see :func:`scan_output`) that are not ``ours``.

    A missing folder holds none; a file where the folder should be is itself foreign.
    """
    return _scan(Path(folder), ours)[1]


def refuse_foreign(folder: str | Path, ours: Ours, field: str = "--out", owner: str = "truthtrace",
                   error: type[Exception] = ValueError) -> list[Path]:
    """The entries of ``folder`` that are ``ours``, after making sure it holds nothing else.

    Args:
        folder: the output folder a stage is about to replace.
        ours: what the stage writes (see :data:`Ours`).
        field: how the user named the folder, for the message.
        owner: who writes the files that are ours, for the message.
        error: the exception class to raise.
    Raises:
        ``error``: naming the folder and the first foreign entries; nothing was deleted.
    """
    folder = Path(folder)
    own, foreign = _scan(folder, ours)
    if foreign == [folder]:
        raise error(f"{field} {folder} is not a folder {owner} wrote; nothing was deleted: pick another {field}")
    if foreign:
        names = [str(p.relative_to(folder)) + ("/" if p.is_dir() else "") for p in foreign[:SHOWN_FOREIGN]]
        more = f" and {len(foreign) - SHOWN_FOREIGN} more" if len(foreign) > SHOWN_FOREIGN else ""
        raise error(f"{field} {folder} holds files {owner} did not write ({', '.join(names)}{more}); "
                    f"nothing was deleted: move them away or pick another {field}")
    return own


def clear_own_output(folder: str | Path, ours: Ours, field: str = "--out", owner: str = "truthtrace",
                     error: type[Exception] = ValueError, remove_folder: bool = False) -> None:
    """Delete what a stage wrote in ``folder``; refuse, deleting nothing, when anything else is there.

    Args:
        folder: the stage's output folder (a missing one is fine).
        ours: what the stage writes (see :data:`Ours`).
        field, owner, error: as for :func:`refuse_foreign`.
        remove_folder: remove ``folder`` itself too once it is empty.
    Raises:
        ``error``: ``folder`` holds files the stage did not write (named).
    """
    folder = Path(folder)
    for path in refuse_foreign(folder, ours, field, owner, error):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    if remove_folder and folder.is_dir():
        folder.rmdir()


def parse_json(data: bytes | str, where: str | Path, error: type[Exception] = ValueError):
    """Parse a JSON document (any top-level value).

    Raises:
        ``error`` (ValueError by default): naming ``where`` when it is not valid JSON.
    """
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{where}: not valid JSON ({err})") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply") from None


def parse_json_object(data: bytes | str, where: str | Path, error: type[Exception] = ValueError) -> dict:
    """Parse a JSON document that must be an object.

    Raises:
        ``error`` (ValueError by default): naming ``where`` when it is not valid JSON or not an object.
    """
    doc = parse_json(data, where, error)
    if not isinstance(doc, dict):
        raise error(f"{where}: expected a JSON object")
    return doc


def check_format(doc: dict, kind: str, versions: tuple[int, ...], where: str | Path,
                 version_field: str = "version", error: type[Exception] = ValueError) -> None:
    """Check that manifest ``doc`` is of format ``kind`` at one of ``versions``.

    Raises:
        ``error``: naming ``where`` and the field (``format`` or ``version_field``) that is wrong.
    """
    if doc.get("format") != kind:
        raise error(f"{where}: field 'format' is {doc.get('format')!r}, expected {kind!r} (not a truthtrace file?)")
    version = doc.get(version_field)
    if version not in versions:
        raise error(f"{where}: field {version_field!r} is {version!r}; this truthtrace reads versions "
                    f"{', '.join(map(str, versions))} (upgrade truthtrace for a newer file)")


def read_versioned_json(path: str | Path, kind: str, versions: tuple[int, ...], version_field: str = "version",
                        error: type[Exception] = ValueError) -> dict:
    """Read a versioned manifest (``{"format": kind, version_field: v, ...}``) and check its header.

    Args:
        path: the JSON file.
        kind: the expected ``format`` field, e.g. ``"truthtrace.detector"``.
        versions: the versions this truthtrace reads.
        version_field: the name of the version field (``"version"`` or ``"format_version"``).
        error: the exception class to raise (a stage's own error type).

    Raises:
        FileNotFoundError: no such file.
        ``error``: not JSON, not an object, another format or an unknown version (the message names the file).
    """
    path = Path(path)
    doc = parse_json_object(path.read_bytes(), path, error)
    check_format(doc, kind, versions, path, version_field, error)
    return doc
