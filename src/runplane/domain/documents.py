"""Limits every JSON document from outside passes (REST bodies, stream fields,
specs): size, nesting depth, and text that is valid Unicode without NUL.

A lone surrogate (`"\\ud800"`) decodes into a Python str but cannot be encoded
as UTF-8, so it would be stored and then break every later read of the record;
a NUL character (`"\\u0000"`) is text PostgreSQL refuses to store at all (and
no command, environment or path can carry one); deep nesting makes the
decoder or a later copy recurse until RecursionError. All three are refused
here, before anything is stored, on every backend alike."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""Objects and lists nested deeper than this are refused."""
MAX_SPEC_BYTES = 64 * 1024
"""A spec larger than this (as compact JSON) is refused."""
TEAM_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Team ids: no `:` or `.`, so `<team>:` is an unambiguous runtime-id prefix."""
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,256}$")
"""1-256 printable ASCII characters, no spaces (DESIGN §3)."""


class InvalidDocument(ValueError):
    """The document breaks a limit; the message says which, for the caller."""


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads` that raises InvalidDocument, never RecursionError, for any input.
    The C decoder stops a hostile nesting at the interpreter's recursion limit;
    `check` then holds the document to `max_depth`."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            raise InvalidDocument(f"JSON is nested deeper than {max_depth} levels") from exc
        raise InvalidDocument(f"not valid JSON: {exc}") from exc
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> None:
    """Raise InvalidDocument unless `value` is JSON-shaped, at most `max_depth`
    deep, all its text valid Unicode, and (when given) at most `max_bytes` as JSON."""
    _walk(value, max_depth, 0)
    if max_bytes is not None:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size > max_bytes:
            raise InvalidDocument(f"document is {size} bytes; the limit is {max_bytes}")


def check_spec(spec: Any) -> None:
    check(spec, max_bytes=MAX_SPEC_BYTES)


def check_text(name: str, text: str) -> None:
    """A single string field: valid Unicode, without NUL."""
    problem = _text_problem(text)
    if problem is not None:
        raise InvalidDocument(f"{name} {problem}")


def is_valid_team_id(team_id: str) -> bool:
    return bool(TEAM_ID_PATTERN.fullmatch(team_id))


def is_valid_idempotency_key(key: str) -> bool:
    return bool(IDEMPOTENCY_KEY_PATTERN.fullmatch(key))


def _walk(value: Any, max_depth: int, depth: int) -> None:
    # Iterative over siblings, recursive in depth only (bounded by max_depth).
    if isinstance(value, dict | list):
        if depth >= max_depth:
            raise InvalidDocument(f"JSON is nested deeper than {max_depth} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidDocument("object keys must be strings")
                check_text("text", key)
                _walk(item, max_depth, depth + 1)
        else:
            for item in value:
                _walk(item, max_depth, depth + 1)
    elif isinstance(value, str):
        check_text("text", value)
    elif value is not None and not isinstance(value, bool | int | float):
        raise InvalidDocument(f"{type(value).__name__} is not a JSON value")


def _text_problem(text: str) -> str | None:
    """Why `text` cannot be stored ("is not valid Unicode ...", "holds a NUL
    ..."), or None."""
    if "\x00" in text:
        return NUL_PROBLEM
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate?)"
    return None


NUL_PROBLEM = "holds a NUL character (U+0000), which no field accepts"
