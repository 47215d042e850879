"""Log lines: every extra field and the correlation id in text and JSON, the
correlation of requests and stream entries, and the X-Request-ID rules."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runplane.domain.operations import OpKind
from runplane.logs import (
    CorrelationFilter,
    JsonFormatter,
    TextFormatter,
    correlation,
    current_correlation_id,
    entry_correlation_id,
    is_valid_request_id,
    iso_time,
    logging_config,
    request_id_from,
)
from runplane.streams.batch import call_handler
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from tests.support.world import World

LOGGER = "runplane.test_logs"


@contextmanager
def captured(formatter: logging.Formatter, name: str = LOGGER) -> Iterator[io.StringIO]:
    """What `name` logs at INFO and above, formatted as serve's handler does."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(CorrelationFilter())
    logger = logging.getLogger(name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_text_line_shows_every_extra_field_and_the_correlation_id() -> None:
    with captured(TextFormatter()) as out, correlation("req-abc"):
        logging.getLogger(LOGGER).info(
            "operation finished", extra={"runtime_id": "rt-1", "op": "stop", "attempt": 2}
        )
    line = out.getvalue().rstrip("\n")
    time, level, logger, rest = line.split(" ", 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", time)
    assert (level, logger) == ("INFO", LOGGER)
    assert rest == "operation finished runtime_id=rt-1 op=stop attempt=2 correlation_id=req-abc"


def test_text_values_are_quoted_when_they_need_it_and_none_is_left_out() -> None:
    with captured(TextFormatter()) as out:
        logging.getLogger(LOGGER).warning(
            "round failed",
            extra={
                "error": "ConnectionError('refused')",
                "path": "/tmp/a b",
                "empty": "",
                "job_id": None,
                "details": {"code": 1},
                "line": "one\ntwo",
            },
        )
    line = out.getvalue().rstrip("\n")
    assert line.endswith(
        " round failed error=ConnectionError('refused') "
        'path="/tmp/a b" empty="" details="{\\"code\\":1}" line="one\\ntwo"'
    )
    assert "job_id" not in line
    assert "correlation_id" not in line  # outside any request or entry


def test_a_text_line_carries_the_traceback() -> None:
    with captured(TextFormatter()) as out:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger(LOGGER).exception("round failed", extra={"stream": "s"})
    first, *rest = out.getvalue().splitlines()
    assert first.endswith(" ERROR runplane.test_logs round failed stream=s")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_a_json_line_holds_every_field_the_correlation_id_and_the_traceback() -> None:
    with captured(JsonFormatter()) as out, correlation("runtime:stop_jobs/1-0"):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger(LOGGER).exception(
                "operation crashed", extra={"runtime_id": "rt-1", "op": "stop", "job_id": None}
            )
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["time"].endswith("Z")
    assert {k: record[k] for k in ("level", "logger", "message")} == {
        "level": "ERROR",
        "logger": LOGGER,
        "message": "operation crashed",
    }
    assert (record["runtime_id"], record["op"], record["job_id"]) == ("rt-1", "stop", None)
    assert record["correlation_id"] == "runtime:stop_jobs/1-0"
    assert "ValueError: boom" in record["exc_info"]


def test_the_correlation_id_lives_in_its_block_and_an_explicit_one_wins() -> None:
    assert current_correlation_id() == ""
    with captured(JsonFormatter()) as out:
        with correlation("outer"):
            with correlation("inner"):
                assert current_correlation_id() == "inner"
            assert current_correlation_id() == "outer"
            logging.getLogger(LOGGER).info("given", extra={"correlation_id": "mine"})
        logging.getLogger(LOGGER).info("after")
    given, after = (json.loads(line) for line in out.getvalue().splitlines())
    assert given["correlation_id"] == "mine"
    assert "correlation_id" not in after
    assert current_correlation_id() == ""


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("req-abc", True),
        ("a", True),
        ("x" * 128, True),
        ("with space ~!", True),
        ("", False),
        ("x" * 129, False),
        ("tab\there", False),
        ("line\nbreak", False),
        ("caf\u00e9", False),
        (None, False),
    ],
)
def test_a_request_id_is_1_to_128_printable_ascii_characters(
    value: str | None, valid: bool
) -> None:
    assert is_valid_request_id(value) is valid


def test_a_valid_request_id_is_kept_and_any_other_replaced() -> None:
    assert request_id_from("req-abc") == "req-abc"
    made = request_id_from("x" * 200)
    assert re.fullmatch("[0-9a-f]{32}", made)  # uuid4 hex
    assert request_id_from(None) != request_id_from(None)
    assert request_id_from("bad\nid", lambda: "fixed") == "fixed"


def test_a_stream_entry_is_correlated_by_its_job_id() -> None:
    assert entry_correlation_id("runtime:stop_jobs", "1-0", {"job_id": "j-7"}) == "j-7"
    default = "runtime:stop_jobs/1-0"
    assert entry_correlation_id("runtime:stop_jobs", "1-0", {"runtime_id": "rt"}) == default
    assert entry_correlation_id("runtime:stop_jobs", "1-0", {"job_id": ""}) == default
    assert entry_correlation_id("runtime:stop_jobs", "1-0", {"job_id": "j" * 257}) == default


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
async def test_the_operation_line_names_runtime_op_outcome_source_and_correlation(
    world: World, formatter: logging.Formatter
) -> None:
    await world.create()
    with (
        captured(formatter, "runplane.services.lifecycle.outcomes") as out,
        correlation("req-abc"),
    ):
        result = await world.do(OpKind.STOP)
    assert result.ok
    assert (await world.entries())[-1].source_ref == "req-abc"
    [line] = out.getvalue().splitlines()
    wanted = {
        "runtime_id": "rt-1",
        "op": "stop",
        "outcome": "success",
        "op_source": "rest",
        "correlation_id": "req-abc",
    }
    if isinstance(formatter, JsonFormatter):
        record = json.loads(line)
        assert record["message"] == "operation finished"
        assert {key: record[key] for key in wanted} == wanted
    else:
        assert " operation finished " in line
        assert all(f" {key}={value}" in line for key, value in wanted.items())


async def test_every_line_of_a_stream_entry_carries_its_job_id() -> None:
    async def handler(entry: StreamEntry) -> None:
        logging.getLogger(LOGGER).info("handling", extra={"entry_id": entry.entry_id})
        raise RetryLater("database unreachable")

    entry = StreamEntry("runtime:stop_jobs", "5-0", {"runtime_id": "rt-1", "job_id": "j-5"})
    with (
        captured(TextFormatter()) as out,
        captured(TextFormatter(), "runplane.streams.batch") as batch_out,
    ):
        error = await call_handler(handler, entry)
    assert error == "RetryLater: database unreachable"
    assert out.getvalue().rstrip("\n").endswith(" handling entry_id=5-0 correlation_id=j-5")
    retry, *traceback = batch_out.getvalue().splitlines()
    assert " stream handler asked to retry later " in retry
    assert retry.endswith(" correlation_id=j-5")
    assert traceback[-1] == "runplane.streams.handler.RetryLater: database unreachable"
    assert current_correlation_id() == ""


def test_the_configuration_sends_uvicorn_lines_through_the_one_handler() -> None:
    config = logging_config("json")
    assert config["formatters"]["runplane"]["()"] is JsonFormatter
    assert config["handlers"]["stderr"]["filters"] == ["correlation", "chatter"]
    assert config["root"]["handlers"] == ["stderr"]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "level": "INFO", "propagate": True}
    assert logging_config("text")["formatters"]["runplane"]["()"] is TextFormatter
    with pytest.raises(ValueError, match="yaml"):
        logging_config("yaml")


def test_iso_time_gives_utc_milliseconds_across_seconds() -> None:
    # The text up to the second is kept between calls: moving to another second must show.
    times = [1700000000.123456, 1700000000.9994, 1700000001.0, 0.5, 1700000001.042]
    got = [iso_time(logging.makeLogRecord({"created": t})) for t in times]
    assert got == [
        "2023-11-14T22:13:20.123Z",
        "2023-11-14T22:13:20.999Z",
        "2023-11-14T22:13:21.000Z",
        "1970-01-01T00:00:00.500Z",
        "2023-11-14T22:13:21.042Z",
    ]
