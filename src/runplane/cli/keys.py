"""`runplane keys ...`: API keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, err, out

keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    team: Annotated[str | None, typer.Option(help="the team the key is scoped to")] = None,
    admin: Annotated[bool, typer.Option(help="an admin key sees every team")] = False,
    name: Annotated[str, typer.Option(help="a label")] = "",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key (needs an admin key). The key is printed once."""
    if not team and not admin:
        err.print("give --team T or --admin")
        raise typer.Exit(2)
    body = Client(url, api_key).call(
        "POST", "/v1/keys", json={"team_id": team, "admin": admin, "name": name}
    )
    if as_json:
        out.print_json(data=body)
    else:
        sys.stdout.write(body["key"] + "\n")
