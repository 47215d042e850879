"""A runtime's output and resource samples, as data: what a driver returns for
`logs` and `metrics`, their wire form (flat JSON, for a host's agent), and the
bounds every reader keeps. No I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STREAMS = ("stdout", "stderr")
MAX_TAIL = 10_000
"""The most lines one read answers: `tail` above it is refused."""
MAX_CHUNK_LINES = 1_000
"""The most lines one driver read returns: a follower's memory stays bounded,
and an answer over a host's call stream stays small."""
MAX_CHUNK_BYTES = 256 * 1024
MAX_LINE_BYTES = 16 * 1024
"""A longer line is cut into pieces of this size (as Docker does, at 16 KiB)."""
MAX_WINDOW_S = 3_600.0


class BadOutputQuery(ValueError):
    """A log query or cursor, or a metrics window, out of bounds, or a cursor
    this driver did not make (hostile or stale input)."""


@dataclass(frozen=True, slots=True)
class LogLine:
    ts: float
    """Epoch seconds when the driver received it."""
    stream: str
    """`stdout` or `stderr`."""
    text: str


@dataclass(frozen=True, slots=True)
class LogQuery:
    """One read. With a `cursor` the read goes on where the last one ended
    (tail and since are ignored); without, it starts at the last `tail` lines
    (None: the oldest line kept), skipping lines before `since`."""

    tail: int | None = None
    since: float | None = None
    cursor: str | None = None
    max_lines: int = MAX_CHUNK_LINES


@dataclass(frozen=True, slots=True)
class LogChunk:
    lines: list[LogLine]
    cursor: str
    """Where the next read goes on (opaque to everyone but the driver)."""
    running: bool
    """Whether the container was still running at the read: a follower stops
    once a read finds no more lines and the container not running."""
    dropped: bool = False
    """Lines were lost between the cursor and this chunk (rotated away)."""
    more: bool = False
    """The read stopped at its bound, not at the end of what is kept."""


@dataclass(frozen=True, slots=True)
class ResourceSample:
    ts: float
    cpu_percent: float
    """Of one core: 200.0 is two cores busy."""
    memory_bytes: int
    disk_bytes: int | None = None
    """None where the driver cannot tell cheaply."""
    processes: int | None = None


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    samples: list[ResourceSample] = field(default_factory=list)
    interval_s: float = 5.0
    running: bool = True


def query_to_wire(query: LogQuery) -> dict[str, Any]:
    return asdict(query)


def query_from_wire(wire: dict[str, Any]) -> LogQuery:
    """The query in a host call's arguments; BadOutputQuery when malformed."""
    tail, since, cursor = wire.get("tail"), wire.get("since"), wire.get("cursor")
    max_lines = wire.get("max_lines", MAX_CHUNK_LINES)
    if tail is not None and (not isinstance(tail, int) or not 0 <= tail <= MAX_TAIL):
        raise BadOutputQuery("tail must be an integer from 0 to 10000")
    if since is not None and not isinstance(since, int | float):
        raise BadOutputQuery("since must be a number")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 128):
        raise BadOutputQuery("cursor must be a short string")
    if not isinstance(max_lines, int) or not 1 <= max_lines <= MAX_CHUNK_LINES:
        raise BadOutputQuery("max_lines out of range")
    return LogQuery(tail, None if since is None else float(since), cursor, max_lines)


def chunk_to_wire(chunk: LogChunk) -> dict[str, Any]:
    return asdict(chunk)


def chunk_from_wire(wire: dict[str, Any]) -> LogChunk:
    lines = [LogLine(**line) for line in wire["lines"]]
    return LogChunk(
        lines,
        wire["cursor"],
        bool(wire["running"]),
        bool(wire.get("dropped")),
        bool(wire.get("more")),
    )


def window_to_wire(window: MetricsWindow) -> dict[str, Any]:
    return asdict(window)


def window_from_wire(wire: dict[str, Any]) -> MetricsWindow:
    samples = [ResourceSample(**sample) for sample in wire["samples"]]
    return MetricsWindow(samples, float(wire["interval_s"]), bool(wire["running"]))


def window_of(wire: dict[str, Any]) -> float:
    """The window of a metrics call's arguments; BadOutputQuery when malformed."""
    window_s = wire.get("window_s")
    if not isinstance(window_s, int | float) or not 0 < window_s <= MAX_WINDOW_S:
        raise BadOutputQuery("window_s must be a number of seconds from 0 to 3600")
    return float(window_s)
