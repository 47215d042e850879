"""`runplane hosts ...`: list, show, drain, cordon and uncordon hosts (admin key)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from runplane.cli.output import Column, OutputOpt, age, cell, chosen, show_list, styled
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, out

hosts_app = typer.Typer(help="Hosts: the machines runtimes live on.", no_args_is_help=True)


def _capacity(host: dict[str, Any]) -> str:
    capacity = host.get("capacity") or {}
    parts = [
        f"{capacity['cpus']:g} cpus" if capacity.get("cpus") else "",
        f"{capacity['memory_mb']} MiB" if capacity.get("memory_mb") else "",
        f"max {capacity['max_runtimes']}" if capacity.get("max_runtimes") else "",
    ]
    return ", ".join(p for p in parts if p) or "-"


def _labels(host: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(host.get("labels", {}).items())) or "-"


HOST_COLUMNS = (
    Column("HOST", lambda h: h["host_id"]),
    Column("STATUS", lambda h: styled(h["status"])),
    Column("ADMIN", lambda h: h.get("admin_status") or "-", wide=True),
    Column("ADDRESS", lambda h: cell(h.get("address")), wide=True),
    Column("DRIVERS", lambda h: ",".join(h["drivers"]) or "-"),
    Column("CAPACITY", _capacity),
    Column("LABELS", _labels),
    Column("HEARTBEAT", lambda h: f"{age(h['last_heartbeat_at'])} ago", table_only=True),
    Column("AGE", lambda h: age(h.get("registered_at")), table_only=True),
    Column("LAST HEARTBEAT", lambda h: h["last_heartbeat_at"], wide=True),
    Column("REGISTERED", lambda h: cell(h.get("registered_at")), wide=True),
)


@hosts_app.command("ls")
def hosts_ls(
    status: Annotated[str | None, typer.Option(help="up, down, draining or cordoned")] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="key=value; repeat it, all must match")
    ] = None,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List hosts."""
    params: dict[str, Any] = {}
    if status:
        params["status"] = status
    if label:
        params["label"] = label
    hosts = Client(url, api_key).call("GET", "/v1/hosts", params=params)["hosts"]
    show_list(hosts, HOST_COLUMNS, chosen(output, as_json))


@hosts_app.command("get")
def hosts_get(
    host_id: str,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one host."""
    host = Client(url, api_key).call("GET", f"/v1/hosts/{quote(host_id, safe='')}")
    show_list([host], HOST_COLUMNS, chosen(output, as_json), document=host)


def _act(action: str, host_id: str, url: str | None, api_key: str | None, as_json: bool) -> None:
    path = f"/v1/hosts/{quote(host_id, safe='')}/{action}"
    host = Client(url, api_key).call("POST", path)
    if as_json:
        out.print_json(data=host)
    else:
        out.print(f"{host['host_id']}: {host['status']}")


@hosts_app.command("drain")
def hosts_drain(
    host_id: str, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Place nothing new on the host (moving its runtimes off is not built yet)."""
    _act("drain", host_id, url, api_key, as_json)


@hosts_app.command("cordon")
def hosts_cordon(
    host_id: str, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Place nothing new on the host; its runtimes stay."""
    _act("cordon", host_id, url, api_key, as_json)


@hosts_app.command("uncordon")
def hosts_uncordon(
    host_id: str, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Make the host `up` again."""
    _act("uncordon", host_id, url, api_key, as_json)
