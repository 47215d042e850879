"""`runplane events tail|ls`: follow the lifecycle event stream (SSE) of the API,
or list its recent events, as aligned columns under a header or as json/yaml."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.text import Text

from runplane.cli.output import (
    Format,
    OutputOpt,
    chosen,
    document_text,
    is_document,
    print_document,
    status_style,
)
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, err, error_of, out

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


EVENT_PAGES = 50
"""Pages of 1000 read at most for the recent events (the stream is kept trimmed)."""


@dataclass(frozen=True, slots=True)
class EventColumn:
    header: str
    width: int
    value: Callable[[dict[str, Any], dict[str, Any]], str]
    wide: bool = False


def _change(envelope: dict[str, Any], data: dict[str, Any]) -> str:
    return f"{data.get('status_from') or '-'} -> {data.get('status_to') or '-'}"


def _actor(envelope: dict[str, Any], data: dict[str, Any]) -> str:
    actor = data.get("actor") or {}
    return str(actor.get("name") or actor.get("id") or actor.get("type") or "-")


EVENT_COLUMNS = (
    EventColumn("TIME", 24, lambda e, d: str(e.get("time", ""))),
    EventColumn("TYPE", 23, lambda e, d: str(e.get("type", ""))),
    EventColumn("SUBJECT", 20, lambda e, d: str(e.get("subject", ""))),
    EventColumn("TEAM", 12, lambda e, d: str(d.get("team_id") or "-"), wide=True),
    EventColumn("HOST", 16, lambda e, d: str(d.get("host_id") or "-"), wide=True),
    EventColumn("CHANGE", 29, _change),
    EventColumn("OUTCOME", 8, lambda e, d: str(d.get("outcome") or "-")),
    EventColumn("ACTOR", 12, _actor),
    EventColumn("REASON", 0, lambda e, d: str(d.get("reason") or "-"), wide=True),
)
"""Fixed widths, so lines printed one at a time line up under the header; a
longer value pushes the rest of its line along rather than being cut."""


def _columns(fmt: Format) -> list[EventColumn]:
    return [c for c in EVENT_COLUMNS if fmt is Format.WIDE or not c.wide]


def header(fmt: Format = Format.TABLE) -> str:
    return "  ".join(c.header.ljust(c.width) for c in _columns(fmt)).rstrip()


def describe(envelope: dict[str, Any], fmt: Format = Format.TABLE) -> Text:
    """One aligned line: time, type, subject, status change, outcome, actor (and,
    in wide, team, host and reason); the outcome coloured."""
    data = envelope.get("data") or {}
    line = Text()
    for n, column in enumerate(_columns(fmt)):
        value = column.value(envelope, data)
        line.append("  " if n else "")
        style = status_style(value) if column.header == "OUTCOME" else ""
        line.append(value.ljust(column.width), style=style)
    line.rstrip()
    return line


def recent(client: Client, params: dict[str, Any], keep: int) -> list[dict[str, Any]]:
    """The last `keep` durable events `params` select, oldest first, each its
    envelope with the stream entry `id` it has: read newest first
    (`order=desc`), page by page until `keep` are in."""
    kept: list[dict[str, Any]] = []
    params = {**params, "order": "desc", "limit": min(max(keep, 1), 1000)}
    for _ in range(EVENT_PAGES):
        page = client.call("GET", "/v1/events", params=params)
        kept.extend({"entry_id": e["id"], **e["event"]} for e in page["events"])
        if len(kept) >= keep or not page.get("next_cursor"):
            break
        params["after"] = page["next_cursor"]
    return kept[:keep][::-1]


TypeOpt = Annotated[list[str] | None, typer.Option("--type", help="only this type (repeatable)")]
RuntimeOpt = Annotated[str | None, typer.Option(help="only this runtime's events")]


@events_app.command("ls")
def list_events(
    event_type: TypeOpt = None,
    runtime: RuntimeOpt = None,
    limit: Annotated[int, typer.Option(help="the last this many")] = 50,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The last durable lifecycle events, oldest first (`tail` follows new ones)."""
    params: dict[str, Any] = {"type": event_type or [], "runtime_id": runtime}
    found = recent(Client(url, api_key), {k: v for k, v in params.items() if v}, limit)
    fmt = chosen(output, as_json)
    if is_document(fmt):
        print_document(found, fmt)
        return
    out.print(header(fmt), style="bold", highlight=False, soft_wrap=True)
    for envelope in found:
        out.print(describe(envelope, fmt), soft_wrap=True)


@events_app.command("tail")
def tail(
    since: Annotated[
        str | None, typer.Option(help="replay events after this entry id (0: all retained)")
    ] = None,
    event_type: TypeOpt = None,
    runtime: RuntimeOpt = None,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print lifecycle events as they happen, until Ctrl-C (-o json: one object a line)."""
    client = Client(url, api_key)
    fmt = chosen(output, as_json)
    if not is_document(fmt):
        out.print(header(fmt), style="bold", highlight=False, soft_wrap=True)
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
                        _show(message, fmt)
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
    raise error_of(response)


def _show(message: SseMessage, fmt: Format) -> None:
    if message.event == "resync":
        info = json.loads(message.data)
        err.print(
            f"[yellow]events after {info.get('last_event_id')} are no longer retained: "
            f"reload state, then continue with --since {info.get('resume_id')}[/yellow]"
        )
        raise typer.Exit(3)
    if fmt is Format.JSON:
        sys.stdout.write(message.data + "\n")  # as sent: one compact object a line
        sys.stdout.flush()
    elif fmt is Format.YAML:
        out.out("---\n" + document_text(json.loads(message.data), fmt), end="", highlight=False)
    else:
        out.print(describe(json.loads(message.data), fmt), soft_wrap=True)
