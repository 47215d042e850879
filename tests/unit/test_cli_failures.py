"""How a command's failure ends the CLI (cli/failures.py): one line, an exit
code; the exception itself with debug on."""

from __future__ import annotations

import httpx
import pytest
import typer

from runplane.cli.failures import report
from runplane.cli.rest_client import ExitCode, fail

app = typer.Typer()


@app.command()
def run(what: str) -> None:
    request = httpx.Request("GET", "http://runplane.test:8080/v1/runtimes?x=1")
    if what == "bug":
        raise ValueError("a\nbug")
    if what == "timeout":
        raise httpx.ReadTimeout("timed out", request=request)
    if what == "refused":
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
    if what == "fail":
        fail("no such runtime", code="not_found")
    if what == "interrupt":
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("what", "line", "code"),
    [
        (
            "bug",
            "error: internal: ValueError: a bug (RUNPLANE_DEBUG=1 shows the traceback)",
            ExitCode.REFUSED,
        ),
        (
            "timeout",
            "error: runplane at http://runplane.test:8080 did not answer in time (ReadTimeout)",
            ExitCode.TIMED_OUT,
        ),
        (
            "refused",
            "error: cannot reach runplane at http://runplane.test:8080: "
            "[Errno 111] Connection refused (is serve running?)",
            ExitCode.NOT_SENT,
        ),
        ("fail", "error: not_found: no such runtime", ExitCode.REFUSED),
        ("interrupt", "error: interrupted", ExitCode.INTERRUPTED),
    ],
)
def test_a_failure_is_one_line_and_its_exit_code(
    capsys: pytest.CaptureFixture[str], what: str, line: str, code: int
) -> None:
    assert report(app, [what], debug=lambda: False) == code
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", line + "\n")


def test_debug_lets_the_exception_through() -> None:
    with pytest.raises(ValueError, match="bug"):
        report(app, ["bug"], debug=lambda: True)


def test_success_is_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert report(app, ["fine"], debug=lambda: False) == 0
    assert capsys.readouterr().err == ""
