"""Reading a process runtime's output segments (written by `supervisor_output`):
the last lines, the lines since a time, and the lines after a cursor (the byte
offset in the runtime's whole output, stable across rotations). Blocking: the
driver runs it in a thread. Every read is bounded (MAX_CHUNK_LINES,
MAX_CHUNK_BYTES), whatever the files hold."""

from __future__ import annotations

import os
from pathlib import Path

from runplane.adapters.drivers.supervisor_output import segment_name, segments
from runplane.domain.runtime_output import (
    MAX_CHUNK_BYTES,
    BadOutputQuery,
    LogChunk,
    LogLine,
    LogQuery,
)

_STREAM = {b"o": "stdout", b"e": "stderr"}
_SCAN_BYTES = 1024 * 1024


def read_output(folder: Path, query: LogQuery, *, running: bool) -> LogChunk:
    offsets = segments(str(folder))
    if not offsets:
        return LogChunk([], query.cursor or "0", running)
    dropped = False
    if query.cursor is not None:
        position = _parse_cursor(query.cursor)
        if position < offsets[0]:
            position, dropped = offsets[0], True
    elif query.tail is not None:
        position = _tail_start(folder, offsets, query.tail)
    else:
        position = offsets[0]
    since = None if query.cursor is not None else query.since
    lines: list[LogLine] = []
    budget = MAX_CHUNK_BYTES
    full = False
    while not full:
        data, base = _read_at(folder, offsets, position, budget if since is None else _SCAN_BYTES)
        if data is None:
            offsets = segments(str(folder))  # rotated meanwhile: look again
            if offsets and position < offsets[0]:
                position, dropped = offsets[0], True
                continue
            break
        if not data:
            following = [offset for offset in offsets if offset > base]
            if not following or following[0] <= position:
                break
            position = following[0]
            continue
        for record in data.split(b"\n")[:-1]:
            position += len(record) + 1
            line = _parse(record)
            if line is None or (since is not None and line.ts < since):
                continue
            lines.append(line)
            budget -= len(record) + 1
            full = len(lines) >= query.max_lines or budget <= 0
            if full:
                break
    return LogChunk(lines, str(position), running, dropped, more=full)


def _parse_cursor(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > 20:
        raise BadOutputQuery("not a cursor of this runtime's output")
    return int(cursor)


def _segment_of(offsets: list[int], position: int) -> int:
    base = offsets[0]
    for offset in offsets:
        if offset <= position:
            base = offset
    return base


def _read_at(
    folder: Path, offsets: list[int], position: int, size: int
) -> tuple[bytes | None, int]:
    """Whole records from `position` (at most `size` bytes, at least one record)
    and the segment they are in; None when that segment was deleted."""
    base = _segment_of(offsets, position)
    try:
        with open(folder / segment_name(base), "rb") as handle:
            handle.seek(position - base)
            data = handle.read(size)
            while data and b"\n" not in data:
                more = handle.read(size)  # one record longer than the budget
                if not more:
                    break
                data += more
    except FileNotFoundError:
        return None, base
    cut = data.rfind(b"\n")
    return data[: cut + 1], base  # a record still being written waits for the next read


def _tail_start(folder: Path, offsets: list[int], tail: int) -> int:
    """The position of the first of the last `tail` whole records."""
    needed = tail
    for base in reversed(offsets):
        try:
            data = (folder / segment_name(base)).read_bytes()
        except FileNotFoundError:
            continue
        cut = data.rfind(b"\n")  # where the last whole record ends
        if needed == 0:
            return base + cut + 1
        while cut >= 0:
            previous = data.rfind(b"\n", 0, cut)  # where the record before it ends
            needed -= 1
            if needed == 0:
                return base + previous + 1
            cut = previous
    return offsets[0]


def _parse(record: bytes) -> LogLine | None:
    parts = record.split(b" ", 2)
    if len(parts) < 2 or parts[1] not in _STREAM:
        return None
    try:
        ts = float(parts[0])
    except ValueError:
        return None
    text = parts[2] if len(parts) == 3 else b""
    return LogLine(ts, _STREAM[parts[1]], text.decode("utf-8", "replace"))


def output_bytes(folder: Path) -> int:
    """What the kept segments hold on disk."""
    total = 0
    for base in segments(str(folder)):
        try:
            total += os.stat(folder / segment_name(base)).st_size
        except FileNotFoundError:
            continue
    return total
