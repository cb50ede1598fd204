"""Field values of one question record: dotted lookup, and text and answer checks that name the field.

A list or an object where text is expected is an error, never turned into its Python repr
(``"['What', '?']"``); :func:`describe` shows the offending value in the message.
"""

from __future__ import annotations

from typing import Any


def get_field(record: dict, path: str) -> Any:
    """Value at dotted ``path`` in ``record``, keys matched ignoring case and underscores
    (so ``question_id`` finds ``QuestionId``); ``None`` when absent."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        keys = {k.lower().replace("_", ""): k for k in value}
        value = value.get(keys.get(part.lower().replace("_", ""), part))
    return value


def describe(value: Any) -> str:
    """``value`` described for an error: ``a list (['What', '?'])``, ``an object ({...})``, ``True``."""
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return f"a list ({shown})" if isinstance(value, list) else f"an object ({shown})" \
        if isinstance(value, dict) else shown


def text_field(value: Any, where: str, field: str) -> str | None:
    """``value`` as text (not stripped), None when absent or blank; ValueError for a list or an object."""
    if isinstance(value, (list, dict)):
        raise ValueError(f"{where}: field {field!r} is {describe(value)}, expected a string")
    if value is None or not str(value).strip():
        return None
    return str(value)


def require_text(value: Any, where: str, field: str) -> str:
    """``value`` as a stripped non-empty string, else ValueError naming ``field``."""
    text = text_field(value, where, field)
    if text is None:
        raise ValueError(f"{where}: missing field {field!r}")
    return text.strip()


def answer_list(value: Any, where: str, field: str) -> list[str]:
    """Turn an answers value (list, string, number) into a non-empty list of stripped, distinct strings.

    Raises:
        ValueError: naming ``where`` and ``field`` for an object, a list or object among the answers, or no answer.
    """
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{where}: field {field!r} must be a string or a list of strings, got {describe(value)}")
    for i, answer in enumerate(value, 1):
        if not isinstance(answer, (str, int, float)):
            raise ValueError(f"{where}: field {field!r} must be a string or a list of strings; answer {i} is "
                             f"{describe(answer)}")
    out = list(dict.fromkeys(str(a).strip() for a in value if str(a).strip()))
    if not out:
        raise ValueError(f"{where}: field {field!r} is empty")
    return out
