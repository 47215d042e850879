"""`runplane events tail`: follow the lifecycle event stream (SSE) of the API."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer

from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, err

events_app = typer.Typer(help="Lifecycle events.", no_args_is_help=True)

STREAM_PATH = "/v1/events/stream"
READ_TIMEOUT_S = 60.0
LAGGING = "runplane.lagging"
"""The last frame of a stream the server cut because this client fell behind."""
"""The server sends a keepalive every 15 s; this much silence means it is gone."""


@dataclass(frozen=True, slots=True)
class SseMessage:
    event: str
    data: str
    id: str | None


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Messages of a text/event-stream, one line at a time (the WHATWG rules:
    comments skipped, `data` lines joined by newlines, a blank line dispatches)."""
    event, entry_id = "", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event or "message", "\n".join(data), entry_id)
            event, entry_id, data = "", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            entry_id = value


def describe(envelope: dict[str, Any]) -> str:
    """One line: time, type, runtime, status change, outcome."""
    data = envelope.get("data") or {}
    change = f"{data.get('status_from') or '-'}->{data.get('status_to') or '-'}"
    fields = (
        str(envelope.get("time", "")),
        str(envelope.get("type", "")),
        str(envelope.get("subject", "")),
        change,
        str(data.get("outcome") or ""),
    )
    return "  ".join(fields)


@events_app.command("tail")
def tail(
    since: Annotated[
        str | None, typer.Option(help="replay events after this entry id (0: all retained)")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="only this type (repeatable)")
    ] = None,
    runtime: Annotated[str | None, typer.Option(help="only this runtime's events")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print lifecycle events as they happen, until Ctrl-C."""
    client = Client(url, api_key)
    params: dict[str, Any] = {"types": event_type or [], "runtime_id": runtime}
    headers = {"Accept": "text/event-stream"}
    if since is not None:
        headers["Last-Event-ID"] = since
    last = since
    try:
        while True:
            with client.http.stream(
                "GET",
                STREAM_PATH,
                params={k: v for k, v in params.items() if v},
                headers=headers,
                timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S),
            ) as response:
                _fail_on_error(response)
                lagging = False
                for message in parse_sse(response.iter_lines()):
                    last = message.id or last
                    lagging = message.event == LAGGING
                    if not lagging:
                        _show(message, as_json)
            if not lagging:
                break
            # Cut for falling behind: go on from the last event shown.
            err.print(f"[yellow]fell behind the live events; resuming after {last}[/yellow]")
            headers["Last-Event-ID"] = last or "0"
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]lost the event stream of {client.base}: {exc}[/red]")
        raise typer.Exit(2) from exc
    err.print(f"the server closed the event stream; resume with --since {last or 0}")
    raise typer.Exit(1)


def _fail_on_error(response: httpx.Response) -> None:
    if not response.is_error:
        return
    response.read()
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    err.print(f"[red]{error.get('code', response.status_code)}[/red]: {error.get('message', '')}")
    raise typer.Exit(1)


def _show(message: SseMessage, as_json: bool) -> None:
    if message.event == "resync":
        info = json.loads(message.data)
        err.print(
            f"[yellow]events after {info.get('last_event_id')} are no longer retained: "
            f"reload state, then continue with --since {info.get('resume_id')}[/yellow]"
        )
        raise typer.Exit(3)
    line = message.data if as_json else describe(json.loads(message.data))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
