"""The REST client every CLI command uses, and the options they share. The key
comes from --api-key, RUNPLANE_API_KEY or `<data dir>/admin.key`.

Failures are raised as `CliError` (one line, an exit code); `cli/main.py`
prints them, so every command reports them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console

from runplane.config import Settings

# emoji=False: ids such as `alpha:ghost:1` are printed as they are, not as 👻.
# soft_wrap: an error or a long value stays on one line whatever the width.
out = Console(emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="RUNPLANE_URL", help="API base URL")]
KeyOpt = Annotated[str | None, typer.Option("--api-key", envvar="RUNPLANE_API_KEY", help="API key")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the raw JSON answer")]

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for runplane to accept a connection. Reads wait as long as
the call takes (a stop waits for its runtime's stop timeout)."""


class ExitCode:
    """What the CLI's exit status means (docs: the CLI's failure cases)."""

    REFUSED = 1
    """runplane answered with an error, or the job failed."""
    NOT_SENT = 2
    """Nothing was done: bad usage or input, no key, or runplane unreachable."""
    TIMED_OUT = 3
    """Gave up waiting; the work may still finish."""
    INTERRUPTED = 130


class CliError(Exception):
    """A failure the CLI reports as `error: [<code>: ]<message>` and exits on."""

    def __init__(self, message: str, *, code: str = "", exit_code: int = ExitCode.REFUSED) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code

    def __repr__(self) -> str:
        return f"CliError({self.code!r}, {self.message!r}, exit_code={self.exit_code})"

    def line(self) -> str:
        text = f"{self.code}: {self.message}" if self.code else self.message
        return "error: " + " ".join(text.split())  # one line, whatever the server said


def fail(message: str, *, code: str = "", exit_code: int = ExitCode.REFUSED) -> NoReturn:
    raise CliError(message, code=code, exit_code=exit_code)


def error_of(response: httpx.Response) -> CliError:
    """The runplane error a response carries (`{"error": {"code", "message"}}`),
    or its status and text when it is not runplane's (a proxy's page)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        return CliError(str(error.get("message", "")), code=str(error["code"]))
    text = response.text.strip()[:200] or response.reason_phrase
    return CliError(text, code=f"http_{response.status_code}")


class Client:
    """A thin synchronous client for the REST API; every failure is a CliError."""

    def __init__(self, url: str | None, api_key: str | None) -> None:
        settings = Settings()
        self.base = (url or settings.base_url).rstrip("/")
        key = api_key or read_admin_key(settings.admin_key_path)
        self.http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {key}"},
            timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_S),
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.base, exc) from exc
        if response.is_error:
            raise error_of(response)
        try:
            return response.json() if response.content else {}
        except ValueError as exc:
            fail(f"{self.base} answered with something that is not JSON: {response.text[:80]!r}")
            raise AssertionError from exc  # pragma: no cover  (fail never returns)


def unreachable(base: str, exc: httpx.HTTPError) -> CliError:
    """A transport failure as the line the user sees."""
    if isinstance(exc, httpx.TimeoutException):
        return CliError(
            f"runplane at {base} did not answer in time ({type(exc).__name__})",
            exit_code=ExitCode.TIMED_OUT,
        )
    reason = str(exc) or type(exc).__name__
    return CliError(
        f"cannot reach runplane at {base}: {reason} (is serve running?)",
        exit_code=ExitCode.NOT_SENT,
    )


def read_admin_key(path: Path) -> str:
    """The key `serve` wrote, when no key was given; a clear error without one."""
    hint = "pass --api-key or set RUNPLANE_API_KEY"
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        fail(
            f"no API key: {path} does not exist ({hint}, or run the CLI where serve's "
            "data dir is, RUNPLANE_DATA_DIR)",
            exit_code=ExitCode.NOT_SENT,
        )
    except OSError as exc:
        fail(
            f"cannot read the admin key {path}: {exc.strerror or exc} ({hint})",
            exit_code=ExitCode.NOT_SENT,
        )
    if not key:
        fail(f"the admin key file {path} is empty ({hint})", exit_code=ExitCode.NOT_SENT)
    return key
