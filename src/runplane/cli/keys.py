"""`runplane keys ...`: create, list and revoke API keys (admin key needed)."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from runplane.cli.output import Column, OutputOpt, age, chosen, show_list, styled, until
from runplane.cli.rest_client import Client, ExitCode, JsonOpt, KeyOpt, UrlOpt, fail, out

keys_app = typer.Typer(help="API keys.", no_args_is_help=True)

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")


def parse_duration_s(text: str) -> int:
    """`30d`, `12h`, `90m`, `45s`, `2w` or plain seconds, as whole seconds."""
    found = _DURATION.match(text.lower())
    if found is None or int(found.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 30d, 12h, 90m or 3600")
    return int(found.group(1)) * _UNIT_S[found.group(2) or "s"]


@keys_app.command("create")
def keys_create(
    team: Annotated[str | None, typer.Option(help="the team the key is scoped to")] = None,
    admin: Annotated[bool, typer.Option(help="an admin key sees every team")] = False,
    name: Annotated[str, typer.Option(help="a label")] = "",
    expires_in: Annotated[
        str | None, typer.Option(help="the key expires after this long: 30d, 12h, 90m, 3600")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key (needs an admin key). The key is printed once."""
    if not team and not admin:
        fail("give --team T or --admin", exit_code=ExitCode.NOT_SENT)
    body: dict[str, Any] = {"team_id": team, "admin": admin, "name": name}
    if expires_in is not None:
        body["expires_in_s"] = parse_duration_s(expires_in)
    answer = Client(url, api_key).call("POST", "/v1/keys", json=body)
    if as_json:
        out.print_json(data=answer)
    else:
        sys.stdout.write(answer["key"] + "\n")


KEY_COLUMNS = (
    Column("KEY", lambda k: k["key_id"]),
    Column("TEAM", lambda k: k["team_id"] or "-"),
    Column("ADMIN", lambda k: "yes" if k["admin"] else "no"),
    Column("STATE", lambda k: styled(k["state"])),
    Column("NAME", lambda k: k["name"] or "-"),
    Column("AGE", lambda k: age(k["created_at"]), table_only=True),
    Column(
        "EXPIRES",
        lambda k: f"in {until(k['expires_at'])}" if k["expires_at"] else "-",
        table_only=True,
    ),
    Column("CREATED", lambda k: k["created_at"], wide=True),
    Column("EXPIRES", lambda k: k["expires_at"] or "-", wide=True),
    Column("REVOKED", lambda k: k["revoked_at"] or "-", wide=True),
)


@keys_app.command("ls")
def keys_ls(
    team: Annotated[str | None, typer.Option(help="only this team's keys")] = None,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List API keys (every page), revoked and expired ones included."""
    client = Client(url, api_key)
    params: dict[str, Any] = {"team_id": team} if team else {}
    keys: list[dict[str, Any]] = []
    while True:
        page = client.call("GET", "/v1/keys", params=params)
        keys.extend(page["keys"])
        if not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]
    show_list(keys, KEY_COLUMNS, chosen(output, as_json))


@keys_app.command("revoke")
def keys_revoke(
    key_id: str, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke a key: it answers 401 at once. The last active admin key is refused."""
    answer = Client(url, api_key).call("DELETE", f"/v1/keys/{quote(key_id, safe='')}")
    if as_json:
        out.print_json(data=answer)
    else:
        out.print(f"{answer['key_id']} revoked at {answer['revoked_at']}")
