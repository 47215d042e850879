"""`runplane teams policy get|set|rm T`: what a team's keys may run, its quotas."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from runplane.cli.output import Format, OutputOpt, print_document
from runplane.cli.rest_client import Client, ExitCode, KeyOpt, UrlOpt, fail, out

teams_app = typer.Typer(help="Teams: their policies and quotas.", no_args_is_help=True)
policy_app = typer.Typer(
    help="What a team's keys may run, and its quotas (admin keys; a team key may "
    "read its own team's).",
    no_args_is_help=True,
)
teams_app.add_typer(policy_app, name="policy")


def policy_body(
    file: Path | None,
    commands: list[str],
    images: list[str],
    networks: list[str],
    max_runtimes: int | None,
    max_running: int | None,
) -> dict[str, Any]:
    """The policy to PUT: the file's, or one built from the options (a --command
    is one template, split as a shell would: '/bin/sleep *' or '/usr/bin/env ...')."""
    if file is not None:
        if commands or images or networks or max_runtimes is not None or max_running is not None:
            raise ValueError("give --file or the options, not both")
        body: dict[str, Any] = json.loads(file.read_text())
        return body
    return {
        "commands": [shlex.split(command) for command in commands],
        "images": images,
        "networks": networks,
        "max_runtimes": max_runtimes,
        "max_running": max_running,
    }


def _path(team: str) -> str:
    return f"/v1/teams/{team}/policy"


@policy_app.command("get")
def policy_get(
    team: str, output: OutputOpt = None, url: UrlOpt = None, api_key: KeyOpt = None
) -> None:
    """Print the team's policy, JSON or -o yaml (404: it has none, and may run nothing)."""
    fmt = Format.YAML if output is Format.YAML else Format.JSON  # a document, not a table
    print_document(Client(url, api_key).call("GET", _path(team)), fmt)


@policy_app.command("set")
def policy_set(
    team: str,
    file: Annotated[
        Path | None, typer.Option("--file", help="a JSON policy document", exists=True)
    ] = None,
    command: Annotated[
        list[str] | None, typer.Option("--command", help="an allowed command template")
    ] = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="an image pattern")] = None,
    network: Annotated[list[str] | None, typer.Option("--network", help="a network")] = None,
    max_runtimes: Annotated[int | None, typer.Option(help="runtimes not removed")] = None,
    max_running: Annotated[int | None, typer.Option(help="runtimes up at once")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
) -> None:
    """Set (replace) the team's whole policy."""
    try:
        body = policy_body(
            file, command or [], image or [], network or [], max_runtimes, max_running
        )
    except ValueError as exc:
        fail(str(exc), exit_code=ExitCode.NOT_SENT)
    out.print_json(data=Client(url, api_key).call("PUT", _path(team), json=body))


@policy_app.command("rm")
def policy_rm(team: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Remove the team's policy: its keys may run nothing again."""
    Client(url, api_key).call("DELETE", _path(team))
    out.print(f"policy of {team} removed")
