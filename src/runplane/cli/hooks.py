"""`runplane hooks ls`: the extension hooks and how far each has got (admin key)."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, out

hooks_app = typer.Typer(
    help="Extension hooks: code run on every lifecycle event.", no_args_is_help=True
)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


@hooks_app.command("ls")
def list_hooks(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Hooks this instance runs, with their group's pending events and lag."""
    body = Client(url, api_key).call("GET", "/v1/hooks")
    if as_json:
        out.print_json(data=body["hooks"])
        return
    table = Table("HOOK", "TARGET", "FROM", "CONSUMERS", "PENDING", "LAG", "LAST DELIVERED")
    for hook in body["hooks"]:
        table.add_row(
            hook["name"],
            _cell(hook["target"]) if hook["target"] else "(not run here)",
            _cell(hook["origin"]),
            _cell(hook["consumers"]),
            _cell(hook["pending"]),
            _cell(hook["lag"]),
            _cell(hook["last_delivered_id"]),
        )
    out.print(table)
