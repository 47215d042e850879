"""The runplane command line. Everything but `serve` and `migrate` talks to the
REST API (`--url`, default the local server) with the key from RUNPLANE_API_KEY
or `<data dir>/admin.key`."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from runplane.config import Settings
from runplane.domain.statuses import transitions_as_json, transitions_as_mermaid

app = typer.Typer(help="runplane: a lifecycle control plane for runtimes.", no_args_is_help=True)
runtime_app = typer.Typer(help="Create, inspect and operate runtimes.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(runtime_app, name="runtime")
app.add_typer(keys_app, name="keys")

out = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str | None, typer.Option("--url", envvar="RUNPLANE_URL", help="API base URL")]
KeyOpt = Annotated[str | None, typer.Option("--api-key", envvar="RUNPLANE_API_KEY", help="API key")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the raw JSON answer")]


class Client:
    """A thin synchronous client for the REST API that turns errors into exit codes."""

    def __init__(self, url: str | None, api_key: str | None) -> None:
        settings = Settings()
        self.base = (url or settings.base_url).rstrip("/")
        key = api_key or _read_admin_key(settings.admin_key_path)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=None)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            err.print(f"[red]cannot reach runplane at {self.base}: {exc}[/red]")
            raise typer.Exit(2) from exc
        body = response.json() if response.content else {}
        if response.is_error:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            code = error.get("code", str(response.status_code))
            err.print(f"[red]{code}[/red]: {error.get('message', response.text)}")
            raise typer.Exit(1)
        return body


def _read_admin_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def show_runtime(runtime: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for field in (
        "runtime_id",
        "team_id",
        "status",
        "version",
        "driver",
        "container_id",
        "engine_endpoint",
        "started_at",
        "stopped_at",
        "updated_at",
    ):
        table.add_row(field, str(runtime.get(field) or "-"))
    table.add_row("spec", json.dumps(runtime.get("spec", {})))
    out.print(table)


def show_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(data=result)
        return
    runtime = result.get("runtime") or {}
    code = result.get("error_code")
    label = f"{result['outcome']}" + (f" ({code})" if code else "")
    out.print(f"{label}: {runtime.get('runtime_id', '')} is {runtime.get('status', '?')}")


def spec_from(
    command: str | None,
    spec_json: str | None,
    port: int | None,
    env: list[str] | None,
    cwd: str | None,
) -> dict[str, Any] | None:
    spec: dict[str, Any] = json.loads(spec_json) if spec_json else {}
    if command:
        spec["command"] = shlex.split(command)
    if port is not None:
        spec["port"] = port
    if env:
        spec["env"] = dict(item.split("=", 1) for item in env)
    if cwd:
        spec["cwd"] = cwd
    return spec or None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where state lives")] = None,
) -> None:
    """Run the API and every worker."""
    from runplane.server import serve as run_server

    overrides = {
        k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v is not None
    }
    run_server(Settings().model_copy(update=overrides))


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from runplane.bootstrap import migrate_database

    settings = Settings()
    migrate_database(settings)
    out.print("database is up to date")


@app.command()
def transitions(
    format: Annotated[str, typer.Option("--format", help="mermaid or json")] = "mermaid",
) -> None:
    """Print the status transition table."""
    if format == "json":
        sys.stdout.write(json.dumps(transitions_as_json(), indent=2) + "\n")
    elif format == "mermaid":
        sys.stdout.write(transitions_as_mermaid() + "\n")
    else:
        err.print("--format is mermaid or json")
        raise typer.Exit(2)


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


def main() -> None:
    from runplane import (  # noqa: F401 - they register commands
        cli_events,
        cli_health,
        cli_jobs,
        cli_runtime,
    )

    app()
