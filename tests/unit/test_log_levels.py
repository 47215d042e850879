"""RUNPLANE_LOG_LEVEL and the start-up chatter (runplane.logs): a default
`serve` prints no line per worker, stream or lease; debug prints them all."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path

import pytest

import runplane
from runplane.config import Settings
from runplane.logs import (
    CHATTY_LOGGERS,
    STARTUP_CHATTER,
    LogLevel,
    logging_config,
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("runplane").setLevel(logging.NOTSET)


def emit_startup(level: str) -> list[str]:
    """What a configured `serve` prints of a start's lines, without the time."""
    logging.config.dictConfig(logging_config("text", level))
    [handler] = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    for name, message in sorted(STARTUP_CHATTER):
        logging.getLogger(name).info(message)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0001 -> 0002")
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:8080")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    logging.getLogger("runplane.workers.leadership").warning("leadership lost")
    logging.getLogger("runplane.bootstrap.serve").info("runplane serving")
    logging.getLogger("runplane.services.placement").debug("placed")
    logging.getLogger("aiosqlite").debug("executing")
    return [line.split(" ", 1)[1] for line in buffer.getvalue().splitlines()]


def test_the_default_level_drops_the_chatter_and_keeps_warnings() -> None:
    assert emit_startup("info") == [
        "WARNING uvicorn.error Invalid HTTP request received.",
        "WARNING runplane.workers.leadership leadership lost",
        "INFO runplane.bootstrap.serve runplane serving",
    ]


def test_debug_shows_the_chatter_and_runplanes_debug_lines_not_libraries() -> None:
    lines = emit_startup("DEBUG")
    assert len(lines) == len(STARTUP_CHATTER) + 6
    assert "INFO runplane.workers.leadership leadership taken" in lines
    assert "INFO alembic.runtime.migration Running upgrade 0001 -> 0002" in lines
    assert "DEBUG runplane.services.placement placed" in lines
    assert not any("aiosqlite" in line for line in lines)


def test_warning_leaves_out_info_lines() -> None:
    assert emit_startup("warning") == [
        "WARNING uvicorn.error Invalid HTTP request received.",
        "WARNING runplane.workers.leadership leadership lost",
    ]


def test_the_level_setting_takes_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPLANE_LOG_LEVEL", "Warning")
    assert Settings().log_level is LogLevel.WARNING
    assert Settings.model_construct().log_level is LogLevel.INFO


def test_every_chatter_line_is_one_the_code_logs() -> None:
    """A renamed message would show again at INFO: the list follows the code."""
    source = Path(runplane.__file__).parent
    for name, message in STARTUP_CHATTER:
        module = source.joinpath(*name.split(".")[1:]).with_suffix(".py")
        assert f'"{message}"' in module.read_text(), (name, message)
    assert CHATTY_LOGGERS == ("alembic", "uvicorn.error")
