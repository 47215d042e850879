"""`runplane snapshots ...`: take, list, show, delete snapshots, and run one."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer

from runplane.cli.output import (
    Column,
    Format,
    OutputOpt,
    age,
    cell,
    chosen,
    resolve_id,
    short_id,
    show_fields,
    show_list,
)
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, out

snapshots_app = typer.Typer(
    help="Snapshots: reusable templates taken from runtimes.", no_args_is_help=True
)


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return "-"


SNAPSHOT_FIELDS = (
    ("snapshot_id", lambda s: s["snapshot_id"]),
    ("runtime_id", lambda s: s["runtime_id"]),
    ("team_id", lambda s: s["team_id"]),
    ("driver", lambda s: s["driver"]),
    ("host_id", lambda s: cell(s["host_id"])),
    ("ref", lambda s: s["ref"]),
    ("size", lambda s: _size(s["size_bytes"])),
    ("created_at", lambda s: f"{s['created_at']} ({age(s['created_at'])} ago)"),
    ("spec", lambda s: json.dumps(s["spec"])),
)

SNAPSHOT_COLUMNS = (
    Column("SNAPSHOT", lambda s: short_id(s["snapshot_id"]), table_only=True),
    Column("SNAPSHOT", lambda s: s["snapshot_id"], wide=True),
    Column("FROM RUNTIME", lambda s: s["runtime_id"]),
    Column("TEAM", lambda s: s["team_id"], wide=True),
    Column("DRIVER", lambda s: s["driver"]),
    Column("HOST", lambda s: cell(s["host_id"])),
    Column("SIZE", lambda s: _size(s["size_bytes"])),
    Column("AGE", lambda s: age(s["created_at"]), table_only=True),
    Column("CREATED", lambda s: s["created_at"], wide=True),
    Column("REF", lambda s: s["ref"], wide=True),
)


def _show(snapshot: dict[str, Any], fmt: Format) -> None:
    show_fields(snapshot, SNAPSHOT_FIELDS, fmt)


def _listed(client: Client) -> list[dict[str, Any]]:
    snapshots: list[dict[str, Any]] = client.call("GET", "/v1/snapshots", params={"limit": 1000})[
        "snapshots"
    ]
    return snapshots


def _path(client: Client, snapshot_id: str) -> str:
    """The snapshot `snapshot_id` names, whole or short as `ls` shows it."""
    known = [s["snapshot_id"] for s in _listed(client)]
    return f"/v1/snapshots/{quote(resolve_id(snapshot_id, known), safe='')}"


@snapshots_app.command("create")
def create(
    runtime_id: str,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take a snapshot of a runtime (docker: an image; process: its work dir)."""
    path = f"/v1/runtimes/{quote(runtime_id, safe='')}/snapshot"
    _show(Client(url, api_key).call("POST", path), chosen(None, as_json))


@snapshots_app.command("ls")
def list_snapshots(
    output: OutputOpt = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """The snapshots your key may see."""
    show_list(_listed(Client(url, api_key)), SNAPSHOT_COLUMNS, chosen(output, as_json))


@snapshots_app.command("show")
def show(
    snapshot_id: str,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One snapshot (its id whole, or short as `ls` shows it)."""
    client = Client(url, api_key)
    _show(client.call("GET", _path(client, snapshot_id)), chosen(output, as_json))


@snapshots_app.command("rm")
def remove(snapshot_id: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete a snapshot and its image or copy."""
    client = Client(url, api_key)
    path = _path(client, snapshot_id)
    client.call("DELETE", path)
    out.print(f"deleted {path.rsplit('/', 1)[1]}", highlight=False, markup=False)


@snapshots_app.command("run")
def run(
    snapshot_id: str,
    runtime_id: Annotated[str | None, typer.Option("--id", help="the new runtime's id")] = None,
    spec: Annotated[
        str | None, typer.Option("--spec", help="JSON fields over the snapshot's spec")
    ] = None,
    start: Annotated[bool, typer.Option("--start/--no-start")] = True,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a new runtime from a snapshot (on the host that holds it)."""
    try:
        overrides = json.loads(spec) if spec else {}
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--spec is not JSON: {exc}") from None
    body: dict[str, Any] = {"spec": overrides, "start": start}
    if runtime_id:
        body["runtime_id"] = runtime_id
    path = f"/v1/snapshots/{quote(snapshot_id, safe='')}/runtimes"
    made = Client(url, api_key).call("POST", path, json=body)
    if as_json:
        out.print_json(data=made)
        return
    out.print(f"{made['runtime_id']} is {made['status']} (from {snapshot_id})")
