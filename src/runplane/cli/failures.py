"""How the `runplane` command ends: every failure is one line on stderr,
`error: [<code>: ]<message>`, and an exit code (rest_client.ExitCode), with no
traceback. With `debug` on (RUNPLANE_DEBUG=1 or --debug), a failure that is not
a usage error raises on, traceback and all."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import pydantic
import typer

# Typer carries its own copy of click: its exceptions are these, not click's.
from typer._click import exceptions as click_errors

from runplane.cli.rest_client import CliError, ExitCode, err, unreachable


def report(app: typer.Typer, args: Sequence[str], *, debug: Callable[[], bool]) -> int:
    """Run the command line `args`; the exit code."""
    try:
        # standalone_mode=False: click hands failures here instead of printing
        # them (usage errors in a multi-line box) or leaving them to traceback.
        result = app(args=list(args), prog_name="runplane", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        # `runplane jobs` alone: its help (typer's rich help prints itself
        # while it is formatted; plain click's comes back as the message).
        if help_text := exc.format_message().strip():
            err.print(help_text, markup=False, highlight=False)
        return ExitCode.NOT_SENT
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "runplane"
        return _say(f"error: {exc.format_message()} (see '{where} --help')", ExitCode.NOT_SENT)
    except click_errors.ClickException as exc:
        return _say(f"error: {exc.format_message()}", exc.exit_code)
    except typer.Abort:
        return _say("error: aborted", ExitCode.REFUSED)
    except KeyboardInterrupt:
        return _say("error: interrupted", ExitCode.INTERRUPTED)
    except Exception as exc:
        if debug():
            raise
        return _say(*_describe(exc))
    if result == ExitCode.INTERRUPTED:  # typer turns Ctrl-C in a command into Exit(130)
        return _say("error: interrupted", ExitCode.INTERRUPTED)
    return result if isinstance(result, int) else 0


def _describe(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, CliError):
        return exc.line(), exc.exit_code
    if isinstance(exc, pydantic.ValidationError):  # a RUNPLANE_* setting (config.py)
        problems = "; ".join(
            f"RUNPLANE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        return f"error: bad setting: {problems}", ExitCode.NOT_SENT
    if isinstance(exc, httpx.HTTPError):
        # A command that used the client's httpx directly (a stream, say).
        try:
            base = str(exc.request.url.copy_with(path="/", query=None)).rstrip("/")
        except RuntimeError:  # no request attached
            base = "the server"
        failure = unreachable(base, exc)
        return failure.line(), failure.exit_code
    # A bug, not a user's mistake: say what it was and how to see more.
    text = " ".join(str(exc).split()) or "(no message)"
    return (
        f"error: internal: {type(exc).__name__}: {text} (RUNPLANE_DEBUG=1 shows the traceback)",
        ExitCode.REFUSED,
    )


def _say(line: str, exit_code: int) -> int:
    err.print(line, markup=False, highlight=False)
    return exit_code
