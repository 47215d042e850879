"""`runplane runtime describe ID`: one runtime, kubectl-describe style — its
record, its last error, its health, its recent operations and recent events.
`-o json|yaml` prints the same as one document:
`{runtime, last_error, health, operations, events}`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from runplane.cli.events import recent
from runplane.cli.output import (
    Column,
    Format,
    OutputOpt,
    age,
    cell,
    chosen,
    is_document,
    print_document,
    styled,
    table_of,
)
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, out
from runplane.cli.runtime import OPERATION_COLUMNS, runtime_app, show_runtime

RECENT = 10
BAD_HEALTH = {"probe_failed", "inspect_unhealthy", "exited", "oom", "disappeared", "host_down"}
BAD_STATUS = {"error", "engine_unreachable"}


def last_error(
    runtime: dict[str, Any], operations: list[dict[str, Any]], health: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What went wrong last: the newest failed operation, and the health problem
    when the runtime is in a bad status or its health says so (None: nothing)."""
    failed = next((o for o in operations if o["outcome"] == "failure"), None)
    problem: dict[str, Any] | None = None
    summary = runtime.get("engine_health")
    if runtime.get("status") in BAD_STATUS or summary in BAD_HEALTH:
        snapshot = (health or {}).get("snapshot") or {}
        problem = {
            "status": runtime.get("status"),
            "engine_health": summary,
            "event_type": snapshot.get("event_type"),
            "observed_at": snapshot.get("observed_at"),
            "details": snapshot.get("details") or {},
        }
    if failed is None and problem is None:
        return None
    operation = None
    if failed is not None:
        operation = {
            k: failed[k]
            for k in ("op", "outcome", "error_code", "error_message", "finished_at", "operation_id")
        }
    return {"operation": operation, "health": problem}


def gather(client: Client, runtime_id: str) -> dict[str, Any]:
    path = f"/v1/runtimes/{quote(runtime_id, safe='')}"
    runtime = client.call("GET", path)
    operations = client.call("GET", f"{path}/operations", params={"limit": RECENT})["operations"]
    health = client.call("GET", f"{path}/health", params={"limit": 5})
    return {
        "runtime": runtime,
        "last_error": last_error(runtime, operations, health),
        "health": health,
        "operations": operations,
        "events": recent(client, {"runtime_id": runtime_id}, RECENT),
    }


def _heading(title: str) -> Text:
    return Text(f"\n{title}:", style="bold")


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data") or {}
    actor = data.get("actor") or {}
    return {
        "time": event.get("time"),
        "type": event.get("type"),
        "change": f"{data.get('status_from') or '-'} -> {data.get('status_to') or '-'}",
        "outcome": data.get("outcome"),
        "actor": actor.get("name") or actor.get("id") or actor.get("type"),
        "reason": data.get("reason"),
    }


EVENT_COLUMNS = (
    Column("AGE", lambda e: age(e["time"]), table_only=True),
    Column("TIME", lambda e: cell(e["time"]), wide=True),
    Column("TYPE", lambda e: cell(e["type"])),
    Column("CHANGE", lambda e: e["change"]),
    Column("OUTCOME", lambda e: styled(e["outcome"])),
    Column("ACTOR", lambda e: cell(e["actor"])),
    Column("REASON", lambda e: cell(e["reason"])),
)


def _error_lines(error: dict[str, Any] | None) -> Text:
    if error is None:
        return Text("  none")
    lines = Text()
    if operation := error.get("operation"):
        lines.append(f"  {operation['op']} {operation['outcome']}", style="red")
        lines.append(f" ({cell(operation['error_code'])}, {age(operation['finished_at'])} ago): ")
        lines.append(cell(operation["error_message"]))
    if problem := error.get("health"):
        if lines:
            lines.append("\n")
        lines.append(f"  {problem['status']}, health {cell(problem['engine_health'])}", style="red")
        if problem.get("event_type"):
            lines.append(f": {problem['event_type']} {age(problem['observed_at'])} ago")
        if problem.get("details"):
            lines.append(f" {problem['details']}")
    return lines


def _health_line(health: dict[str, Any]) -> Text:
    line = Text("  ")
    line.append_text(styled(health.get("engine_health")))
    snapshot = health.get("snapshot")
    if snapshot:
        line.append(f"  (latest {snapshot['event_type']}, {age(snapshot['observed_at'])} ago)")
    return line


def show_description(described: dict[str, Any], fmt: Format) -> None:
    if is_document(fmt):
        print_document(described, fmt)
        return
    show_runtime(described["runtime"], fmt)
    events = [_event_row(e) for e in described["events"]]
    parts: list[Any] = [
        _heading("Last error"),
        _error_lines(described["last_error"]),
        _heading("Health"),
        _health_line(described["health"]),
        _heading(f"Operations (newest {RECENT})"),
        Padding(table_of(described["operations"], OPERATION_COLUMNS, fmt), (0, 0, 0, 2))
        if described["operations"]
        else Text("  none"),
        _heading(f"Events (last {RECENT})"),
        Padding(table_of(events, EVENT_COLUMNS, fmt), (0, 0, 0, 2)) if events else Text("  none"),
    ]
    out.print(Group(*parts))


@runtime_app.command("describe")
def describe(
    runtime_id: Annotated[str, typer.Argument(help="the runtime")],
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A runtime in full: record, last error, health, recent operations and events."""
    show_description(gather(Client(url, api_key), runtime_id), chosen(output, as_json))
