"""`runplane hooks ls`: the extension hooks and how far each has got (admin key)."""

from __future__ import annotations

from typing import Any

import typer

from runplane.cli.output import Column, OutputOpt, chosen, show_list
from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt

hooks_app = typer.Typer(
    help="Extension hooks: code run on every lifecycle event.", no_args_is_help=True
)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


HOOK_COLUMNS = (
    Column("HOOK", lambda h: h["name"]),
    Column("TARGET", lambda h: _cell(h["target"]) if h["target"] else "(not run here)"),
    Column("FROM", lambda h: _cell(h["origin"])),
    Column("CONSUMERS", lambda h: _cell(h["consumers"])),
    Column("PENDING", lambda h: _cell(h["pending"])),
    Column("LAG", lambda h: _cell(h["lag"])),
    Column("LAST DELIVERED", lambda h: _cell(h["last_delivered_id"])),
)


@hooks_app.command("ls")
def list_hooks(
    output: OutputOpt = None, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Hooks this instance runs, with their group's pending events and lag."""
    body = Client(url, api_key).call("GET", "/v1/hooks")
    show_list(body["hooks"], HOOK_COLUMNS, chosen(output, as_json))
