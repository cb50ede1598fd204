"""Prompt files of ``truthtrace diffuse``: plain text (one prompt a line) or JSONL (``{"id", "prompt"}``).

Ids become trace ids and image file names, so they must be unique and safe as file names; a text file's
prompts get ``p-00000``, ``p-00001``, ... by line order (blank lines and ``#`` comments skipped, counted).
"""

from __future__ import annotations

import re
from pathlib import Path

from truthtrace.fileio import parse_json

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check(pid, prompt, where: str) -> tuple[str, str]:
    if not isinstance(pid, str) or not _ID_RE.match(pid):
        raise ValueError(f"{where}: field 'id' is {repr(pid)[:40]}; ids are letters, digits, '.', '_' or '-' "
                         "(at most 128, starting with a letter or digit)")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: field 'prompt' must be a non-empty string, got {repr(prompt)[:40]}")
    return pid, prompt.strip()


def _jsonl(path: Path, lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        doc = parse_json(line, f"{path}:{n}")
        if not isinstance(doc, dict):
            raise ValueError(f"{path}:{n}: expected an object with 'prompt' (and 'id'), got {type(doc).__name__}")
        out.append(_check(doc.get("id", f"p-{n - 1:05d}"), doc.get("prompt"), f"{path}:{n}"))
    return out


def load_prompts(path) -> list[tuple[str, str]]:
    """``[(id, prompt)]`` from a ``.jsonl`` file or a text file.

    Raises:
        ValueError: naming the file and line of a malformed record, a duplicate id, or an empty file.
        OSError: the file cannot be read.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        prompts = _jsonl(path, lines)
    else:
        prompts = [_check(f"p-{n - 1:05d}", line, f"{path}:{n}") for n, line in enumerate(lines, 1)
                   if line.strip() and not line.lstrip().startswith("#")]
    seen: set[str] = set()
    for pid, _ in prompts:
        if pid in seen:
            raise ValueError(f"{path}: id {pid!r} appears twice; ids must be unique")
        seen.add(pid)
    if not prompts:
        raise ValueError(f"{path}: no prompts (one a line, or JSONL objects with 'prompt')")
    return prompts
