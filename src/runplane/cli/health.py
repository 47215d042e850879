"""`runplane runtime health ID`: a runtime's health summary, snapshot and recent
health events (GET /v1/runtimes/{id}/health)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, out


def runtime_health(
    runtime_id: str,
    limit: Annotated[int, typer.Option(help="recent health events to show")] = 20,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a runtime's health: summary, latest health event and recent ones."""
    body = Client(url, api_key).call(
        "GET", f"/v1/runtimes/{runtime_id}/health", params={"limit": limit}
    )
    if as_json:
        out.print_json(data=body)
        return
    show_health(body)


def show_health(body: dict[str, Any]) -> None:
    out.print(
        f"{body['runtime_id']} is {body['status']}, health: {body.get('engine_health') or '-'}"
    )
    snapshot = body.get("snapshot")
    if snapshot:
        out.print(
            f"latest: {snapshot['event_type']} at {_when(snapshot['observed_at'])} "
            f"({snapshot['container_id'] or '-'}) {_details(snapshot['details'])}"
        )
    events = body.get("events") or []
    if not events:
        out.print("no recent health events")
        return
    table = Table("OCCURRED (UTC)", "EVENT", "CONTAINER", "DETAILS")
    for column in table.columns:
        column.overflow = "fold"
    for event in events:
        table.add_row(
            _when(event["occurred_at"]),
            event["event_type"],
            event["container_id"] or "-",
            _details(event["details"]),
        )
    out.print(table)


def _when(timestamp: str) -> str:
    return timestamp[:23].replace("T", " ")


def _details(details: dict[str, Any]) -> str:
    shown = {k: v for k, v in details.items() if v not in (None, "")}
    return json.dumps(shown, sort_keys=True) if shown else "-"
