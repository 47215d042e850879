"""The file formats a runtime's supervisor shares with the `process` driver,
for the supervisor's side: file names, the container id, the launch answer,
the /proc read that tells a live process from a reused pid, and just enough
JSON. `process_files` builds the driver's API on top of this module.

Every runtime start pays for the supervisor's interpreter start-up, so this
module imports only `os`, `sys` and `_json`, the C half of `json`: not `json`
itself (which imports `re` and `enum`), `pathlib`, `dataclasses` or `typing`.
Paths are strings.
"""

from __future__ import annotations

import os
import sys

try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # not CPython
    from json.encoder import encode_basestring_ascii as _quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

META_FILE = "meta.json"
STATE_FILE = "state.json"
EXIT_FILE = "exit.json"
LOG_FILE = "output.log"
SUPERVISOR_LOG_FILE = "supervisor.log"

_HAS_PROC = sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")


def make_container_id(pid: int, start_ticks: int) -> str:
    """`p-<pid>-<start ticks>`: the start time makes the id outlive pid reuse."""
    return f"p-{pid}-{start_ticks}"


def launch_result_name(launch_dir_name: str) -> str:
    """The name of the file, beside the launch dir, holding the supervisor's answer."""
    return f"{launch_dir_name}.json"


def proc_stat(pid: int) -> tuple[str, int] | None:
    """A live (or zombie) process's one-letter state and its start time in clock
    ticks since boot; None when there is no such process."""
    if not _HAS_PROC:
        return _psutil_stat(pid)
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _psutil_stat(pid: int) -> tuple[str, int] | None:
    """Where there is no /proc: psutil's create time stands in for the ticks."""
    import psutil

    try:
        proc = psutil.Process(pid)
        status = proc.status()
        ticks = round(proc.create_time() * 100)
    except psutil.NoSuchProcess:
        return None
    letters = {psutil.STATUS_STOPPED: "T", psutil.STATUS_ZOMBIE: "Z"}
    return letters.get(status, "R"), ticks


def write_flat_json(path: str, record: dict[str, str | int | float | None]) -> None:
    """Write a JSON object of scalars as `json.dump` would, atomically: to a
    temporary file renamed over `path`, so a reader sees all or nothing.

    No fsync and mode 0600, as with `process_files.write_json_atomic`."""
    items = ", ".join(f"{_quote(key)}: {_scalar(value)}" for key, value in record.items())
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{{{items}}}")
    os.replace(tmp, path)


def read_json_object(path: str) -> dict[str, Any] | None:
    """The object in `path`, or None when it is absent or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = _loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _scalar(value: str | int | float | None) -> str:
    # As `json` writes them: the int's or float's own repr, whatever a subclass says.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and abs(value) < float("inf"):
        return float.__repr__(value)
    raise ValueError(f"not a finite JSON scalar: {value!r}")


class _DecoderContext:
    """The settings `json.loads` hands its scanner: strict, no hooks."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float({"-Infinity": "-inf", "Infinity": "inf", "NaN": "nan"}[name])


def _scanner() -> Callable[[str, int], tuple[object, int]]:
    """The C scanner behind `json.loads`, fed the same settings; `json`'s own
    where there is no `_json` that takes them."""
    try:
        from _json import make_scanner

        return make_scanner(_DecoderContext())  # type: ignore[arg-type]
    except (ImportError, AttributeError, TypeError):
        from json import JSONDecoder

        return JSONDecoder().scan_once  # type: ignore[attr-defined, no-any-return]


def _loads(text: str) -> object:
    """`json.loads(text)`; ValueError when `text` is not one JSON value."""
    text = text.strip(" \t\n\r")
    try:
        value, end = _scanner()(text, 0)
    except StopIteration:
        raise ValueError("no JSON value") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return value
