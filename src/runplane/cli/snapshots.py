"""`runplane snapshots ...`: take, list, show, delete snapshots, and run one."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

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


def _show(snapshot: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(data=snapshot)
        return
    table = Table(show_header=False, box=None)
    for field in ("snapshot_id", "runtime_id", "team_id", "driver", "host_id", "ref"):
        table.add_row(field, str(snapshot[field]))
    table.add_row("size", _size(snapshot["size_bytes"]))
    table.add_row("created_at", str(snapshot["created_at"]))
    table.add_row("spec", json.dumps(snapshot["spec"]))
    out.print(table)


@snapshots_app.command("create")
def create(
    runtime_id: str,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take a snapshot of a runtime (docker: an image; process: its work dir)."""
    path = f"/v1/runtimes/{quote(runtime_id, safe='')}/snapshot"
    _show(Client(url, api_key).call("POST", path), as_json)


@snapshots_app.command("ls")
def list_snapshots(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The snapshots your key may see."""
    body = Client(url, api_key).call("GET", "/v1/snapshots", params={"limit": 1000})
    if as_json:
        out.print_json(data=body["snapshots"])
        return
    table = Table("SNAPSHOT", "FROM RUNTIME", "DRIVER", "HOST", "SIZE", "CREATED")
    for s in body["snapshots"]:
        table.add_row(
            s["snapshot_id"], s["runtime_id"], s["driver"], s["host_id"], _size(s["size_bytes"]),
            str(s["created_at"]),
        )  # fmt: skip
    out.print(table)


@snapshots_app.command("show")
def show(
    snapshot_id: str, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """One snapshot."""
    _show(Client(url, api_key).call("GET", f"/v1/snapshots/{quote(snapshot_id, safe='')}"), as_json)


@snapshots_app.command("rm")
def remove(snapshot_id: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete a snapshot and its image or copy."""
    Client(url, api_key).call("DELETE", f"/v1/snapshots/{quote(snapshot_id, safe='')}")
    out.print(f"deleted {snapshot_id}")


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
