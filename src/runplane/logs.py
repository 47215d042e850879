"""Log lines that stand on their own.

Every field a call passes in `extra=` is printed, as `key=value` pairs after the
message (text) or as keys of one JSON object per line (json). Every record
emitted while a REST request or a stream entry is handled carries that
request's or entry's correlation id (`correlation_id`), kept in a ContextVar:
the `X-Request-ID` of the request (or one made for it), the job id of the entry
(its `job_id` field, else `<stream>/<entry id>`). An operation stores the same
id as its operation-log entry's `source_ref`, so one id leads from an operation
to every line its call logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.config
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

CORRELATION_FIELD = "correlation_id"
REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_CHARS = 128
MAX_JOB_ID_CHARS = 256

_REQUEST_ID = re.compile(rf"[\x20-\x7e]{{1,{MAX_REQUEST_ID_CHARS}}}")
_correlation: ContextVar[str | None] = ContextVar("runplane_correlation_id", default=None)

_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_NOT_FIELDS = _RECORD_ATTRS | {"color_message"}
"""LogRecord's own attributes, and uvicorn's coloured copy of its message: never
printed as fields. Everything else on a record came in through `extra=`."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    """`RUNPLANE_LOG_LEVEL`, any case: the lowest level printed. `debug` also
    prints the start-up chatter (STARTUP_CHATTER) and runplane's debug lines;
    other libraries never print below INFO."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @classmethod
    def _missing_(cls, value: object) -> LogLevel | None:
        return next((m for m in cls if isinstance(value, str) and m == value.lower()), None)


# -- correlation ids -------------------------------------------------------------


def current_correlation_id() -> str:
    """The correlation id of the request or entry being handled, or ""."""
    return _correlation.get() or ""


@contextlib.contextmanager
def correlation(correlation_id: str) -> Iterator[str]:
    """Every record logged inside the block (and in tasks started from it)
    carries `correlation_id`."""
    token = _correlation.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation.reset(token)


def enter_correlation(correlation_id: str) -> Token[str | None]:
    """`correlation()` without the context manager, for a hot path (a stream
    entry): records logged until `leave_correlation(token)` carry the id."""
    return _correlation.set(correlation_id)


def leave_correlation(token: Token[str | None]) -> None:
    _correlation.reset(token)


def is_valid_request_id(value: str | None) -> bool:
    """1-128 printable ASCII characters."""
    return value is not None and _REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None, new_id: Callable[[], str] = new_request_id) -> str:
    """The caller's `X-Request-ID` when it is valid, else a new one."""
    return header if header is not None and is_valid_request_id(header) else new_id()


def entry_correlation_id(stream: str, entry_id: str, fields: Mapping[str, str]) -> str:
    """A stream entry's job id: its `job_id` field (1-256 characters), else
    `<stream>/<entry id>`."""
    job_id = fields.get("job_id", "")
    return job_id if 0 < len(job_id) <= MAX_JOB_ID_CHARS else f"{stream}/{entry_id}"


class CorrelationFilter(logging.Filter):
    """Adds the current correlation id to a record that has none of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        correlation_id = _correlation.get()
        if correlation_id is not None and not hasattr(record, CORRELATION_FIELD):
            setattr(record, CORRELATION_FIELD, correlation_id)
        return True


# -- start-up chatter ------------------------------------------------------------

STARTUP_CHATTER = frozenset(
    {
        ("runplane.workers.periodic", "worker started"),
        ("runplane.workers.periodic", "worker stopped"),
        ("runplane.streams.loop", "stream consumer started"),
        ("runplane.streams.loop", "stream consumer stopped"),
        ("runplane.streams.group", "consumer group created"),
        ("runplane.workers.leadership", "leadership taken"),
        ("runplane.adapters.redis.embedded", "embedded redis started"),
        ("runplane.adapters.redis.embedded", "embedded redis stopped"),
        ("runplane.bootstrap.infrastructure", "embedded redis started"),
    }
)
"""(logger, message) of INFO lines that every start and stop prints dozens of
times (one per worker, stream, lease): shown at RUNPLANE_LOG_LEVEL=debug only.
`serve` says it is up in one line instead, `runplane serving`."""

CHATTY_LOGGERS = ("alembic", "uvicorn.error")
"""Loggers whose INFO lines are all start-up and shutdown notes (migrations
applied, "Uvicorn running on"); their warnings and errors always show."""


class StartupChatter(logging.Filter):
    """Drops the INFO lines of STARTUP_CHATTER and CHATTY_LOGGERS."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        if (record.name, record.msg) in STARTUP_CHATTER:
            return False
        return not any(
            record.name == name or record.name.startswith(name + ".") for name in CHATTY_LOGGERS
        )


# -- formats ---------------------------------------------------------------------


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given in `extra=` (the correlation id included)."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _NOT_FIELDS and not key.startswith("_")
    }


_second: list[Any] = [None, ""]
"""The last whole second `iso_time` formatted, and its text up to the seconds:
strftime was about a third of a log line's formatting, and lines come many a second."""


def iso_time(record: logging.LogRecord) -> str:
    """The record's time in UTC, ISO 8601 with milliseconds."""
    second, millis = divmod(int(record.created * 1000), 1000)
    seen, text = _second
    if second != seen:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second[:] = [second, text]  # one assignment: a racing thread sees a matching pair
    return f"{text}{millis:03d}Z"


def render_value(value: object) -> str:
    """A field's value as one token: JSON-quoted when it is empty or holds
    spaces, quotes, `=` or characters that are not printable."""
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str, separators=(",", ":"))
    else:
        text = str(value)
    if not text or any(c.isspace() or c in '"=\\' or not c.isprintable() for c in text):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...`, then the traceback, if any.
    A field whose value is None is left out."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{iso_time(record)} {record.levelname} {record.name} {record.getMessage()}"
        pairs = [
            f"{key}={render_value(value)}"
            for key, value in fields_of(record).items()
            if value is not None
        ]
        if pairs:
            line = f"{line} {' '.join(pairs)}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class JsonFormatter(_LibraryJsonFormatter):
    """One JSON object a line: `time`, `level`, `logger`, `message`, every field,
    and `exc_info` (the traceback) when there is one."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=sorted(_NOT_FIELDS),
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record)


def logging_config(
    log_format: LogFormat | str, level: LogLevel | str = LogLevel.INFO
) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration: one handler on the root
    logger, in `log_format`, that uvicorn's own loggers (errors and access) use
    too, printing `level` and up, without the start-up chatter unless debug."""
    formatter = JsonFormatter if LogFormat(log_format) is LogFormat.JSON else TextFormatter
    threshold = LogLevel(level).name
    debug = LogLevel(level) is LogLevel.DEBUG
    uvicorn: dict[str, Any] = {"handlers": [], "level": threshold, "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "correlation": {"()": CorrelationFilter},
            "chatter": {"()": StartupChatter},
        },
        "formatters": {"runplane": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "runplane",
                "level": threshold,
                "filters": ["correlation"] if debug else ["correlation", "chatter"],
            }
        },
        # Other libraries' debug lines (every SQL statement, every socket) are
        # not what RUNPLANE_LOG_LEVEL=debug asks for.
        "root": {"handlers": ["stderr"], "level": "INFO" if debug else threshold},
        "loggers": {
            "runplane": {"level": threshold},
            **{name: dict(uvicorn) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
        },
    }


def configure_logging(log_format: LogFormat | str, level: LogLevel | str = LogLevel.INFO) -> None:
    logging.config.dictConfig(logging_config(log_format, level))
