"""`runplane runtime ls [-o ...] [-w]`: the runtime table, and its live redraw.

`--watch` follows `/v1/events/stream` in a thread and lists again whenever
events arrive (a burst is one new list, not one per event); it lists every
POLL_S as well while the stream is down, and tries the stream again. Ctrl-C
ends it with exit 0. On a terminal the table is redrawn in place; piped, a new
table is printed each time the list changes."""

from __future__ import annotations

import queue
import threading
import time
from contextlib import nullcontext
from typing import Annotated, Any

import httpx
import httpx_sse
import typer
from rich.live import Live

from runplane.cli.output import (
    Column,
    Format,
    OutputOpt,
    age,
    cell,
    chosen,
    is_document,
    labels_text,
    print_document,
    styled,
    table_of,
)
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, err, out
from runplane.cli.runtime import runtime_app

LabelOpt = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="label selector term: k=v, k!=v, k or !k (repeatable: AND)"),
]
POLL_S = 2.0
"""How often --watch lists while the event stream is down."""
QUIET_S = 30.0
"""With the stream up, --watch still lists this often (ages move on; nothing is missed
if an event was)."""
RETRY_S = 5.0
STREAM_PATH = "/v1/events/stream"


def list_all(client: Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of `GET /v1/runtimes` with `params`."""
    params = dict(params)
    runtimes: list[dict[str, Any]] = []
    while True:
        page = client.call("GET", "/v1/runtimes", params=params)
        runtimes.extend(page["runtimes"])
        if not page.get("next_cursor"):
            return runtimes
        params["cursor"] = page["next_cursor"]


def ports(runtime: dict[str, Any]) -> str:
    spec = runtime.get("spec") or {}
    found = [spec["port"]] if spec.get("port") else []
    found += [p for p in spec.get("ports") or [] if p not in found]
    return ",".join(str(p) for p in found) or "-"


COLUMNS = (
    Column("RUNTIME", lambda r: r["runtime_id"]),
    Column("TEAM", lambda r: r["team_id"], wide=True),
    Column("STATUS", lambda r: styled(r["status"])),
    Column("DRIVER", lambda r: r["driver"]),
    Column("HOST", lambda r: cell(r.get("host_id"))),
    Column("ENDPOINT", lambda r: cell(r.get("engine_endpoint"))),
    Column("PORTS", ports, wide=True),
    Column("LABELS", lambda r: labels_text(r.get("labels")), wide=True),
    Column("AGE", lambda r: age(r.get("created_at")), table_only=True),
    Column("CREATED", lambda r: cell(r.get("created_at")), wide=True),
    Column("UPDATED", lambda r: cell(r.get("updated_at")), wide=True),
)


@runtime_app.command("ls")
def list_runtimes(
    status: Annotated[str | None, typer.Option(help="only this status")] = None,
    team: Annotated[str | None, typer.Option(help="only this team")] = None,
    host: Annotated[str | None, typer.Option(help="only the runtimes on this host")] = None,
    label: LabelOpt = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="redraw as runtimes change, until Ctrl-C")
    ] = False,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List runtimes (every page), optionally by label: -l app=web -l tier."""
    fmt = chosen(output, as_json)
    wanted = {"status": status, "team_id": team, "host_id": host, "label": label}
    params = {k: v for k, v in wanted.items() if v}
    client = Client(url, api_key)
    if watch:
        try:
            Watch(client, params, fmt).run()
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
        return
    runtimes = list_all(client, params)
    if is_document(fmt):
        print_document(runtimes, fmt)
    else:
        out.print(table_of(runtimes, COLUMNS, fmt))


class StreamRefused(Exception):
    """The API answered the event stream with an error (a 429, a 503...)."""


def refusal(response: httpx.Response) -> str:
    """`code: message` of an error answer, or its HTTP status."""
    response.read()
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if error.get("code"):
        return f"{error['code']}: {error.get('message', '')}"
    return f"HTTP {response.status_code}"


class Watch:
    """The list, drawn again after each burst of events (or poll)."""

    def __init__(self, client: Client, params: dict[str, Any], fmt: Format) -> None:
        self.client, self.params, self.fmt = client, params, fmt
        self.changes: queue.Queue[str] = queue.Queue()
        self.stream_up = threading.Event()

    def run(self) -> None:
        threading.Thread(target=self.follow, name="watch-events", daemon=True).start()
        # The first list waits (briefly) for the stream to be open, so an event
        # between the list and the stream's start is not missed.
        self.stream_up.wait(timeout=POLL_S)
        shown: list[dict[str, Any]] | None = None
        live = Live(console=out, auto_refresh=False) if out.is_terminal else None
        with live if live is not None else nullcontext():
            while True:
                runtimes = list_all(self.client, self.params)
                if runtimes != shown or live is not None:
                    self.draw(runtimes, live)
                    shown = runtimes
                self.wait_for_change()

    def draw(self, runtimes: list[dict[str, Any]], live: Live | None) -> None:
        if live is not None:
            live.update(table_of(runtimes, COLUMNS, self.fmt), refresh=True)
        elif is_document(self.fmt):
            print_document(runtimes, self.fmt)
        else:
            out.print(table_of(runtimes, COLUMNS, self.fmt))
            out.print()

    def wait_for_change(self) -> None:
        timeout = QUIET_S if self.stream_up.is_set() else POLL_S
        try:
            self.changes.get(timeout=timeout)
        except queue.Empty:
            return
        while True:  # the rest of the burst: one list covers them all
            try:
                self.changes.get_nowait()
            except queue.Empty:
                return

    def follow(self) -> None:
        """Runs in its thread: each event's id goes to the queue; on a failure,
        polling covers until the stream is open again."""
        last: str | None = None
        warned = False
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            try:
                with httpx_sse.connect_sse(
                    self.client.http,
                    "GET",
                    STREAM_PATH,
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=60.0),
                ) as source:
                    if source.response.is_error:
                        raise StreamRefused(refusal(source.response))
                    self.stream_up.set()
                    warned = False
                    for message in source.iter_sse():
                        last = message.id or last
                        self.changes.put(message.event)
            except (httpx.HTTPError, httpx_sse.SSEError, StreamRefused) as exc:
                if not warned:  # once per outage, not once per retry
                    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    err.print(
                        f"no event stream ({why}); polling every {POLL_S:g}s",
                        style="yellow",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,  # one line, however narrow the terminal
                    )
                    warned = True
            self.stream_up.clear()
            self.changes.put("poll")  # list at once: something may have changed meanwhile
            time.sleep(RETRY_S)
