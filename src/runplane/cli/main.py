"""The runplane command line. This entry point adds every sub-app explicitly.
Everything but `serve`, `migrate` and `transitions` talks to the REST API
(`--url`, default the local server)."""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated

import typer

from runplane.cli import runtime_output as runtime_output  # adds `runtime logs`, `metrics`
from runplane.cli import runtime_select  # noqa: F401  (registers ls, stop, rm, timeout, ...)
from runplane.cli.agent import agent
from runplane.cli.events import events_app
from runplane.cli.failures import report
from runplane.cli.health import runtime_health
from runplane.cli.hooks import hooks_app
from runplane.cli.hosts import hosts_app
from runplane.cli.jobs import dlq_app, jobs_app
from runplane.cli.keys import keys_app
from runplane.cli.rest_client import ExitCode, fail, out
from runplane.cli.runtime import runtime_app
from runplane.cli.snapshots import snapshots_app
from runplane.cli.teams import teams_app
from runplane.cli.webhooks import webhooks_app
from runplane.config import Settings
from runplane.domain.statuses import transitions_as_json, transitions_as_mermaid

app = typer.Typer(help="runplane: a lifecycle control plane for runtimes.", no_args_is_help=True)
app.add_typer(runtime_app, name="runtime")
app.add_typer(events_app, name="events")
app.add_typer(jobs_app, name="jobs")
app.add_typer(dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")
app.add_typer(teams_app, name="teams")
app.add_typer(hosts_app, name="hosts")
app.add_typer(hooks_app, name="hooks")
app.add_typer(snapshots_app, name="snapshots")
app.add_typer(webhooks_app, name="webhooks")
runtime_app.command("health")(runtime_health)
app.command("agent")(agent)

DEBUG_ENV = "RUNPLANE_DEBUG"


def _show_version(wanted: bool) -> None:
    if wanted:
        out.print(f"runplane {package_version('runplane')}", highlight=False)
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_show_version, help="print the version"
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help=f"show a failure's traceback (or {DEBUG_ENV}=1)")
    ] = False,
) -> None:
    """runplane: a lifecycle control plane for runtimes."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where state lives")] = None,
) -> None:
    """Run the API and every worker."""
    from runplane.bootstrap.serve import serve as run_server

    overrides = {
        k: v for k, v in {"host": host, "port": port, "data_dir": data_dir}.items() if v is not None
    }
    run_server(Settings().model_copy(update=overrides))


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from runplane.bootstrap.infrastructure import migrate_database

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
        fail("--format is mermaid or json", exit_code=ExitCode.NOT_SENT)


def main() -> None:
    """The `runplane` command: every failure one line on stderr and an exit
    code (cli/failures.py), unless RUNPLANE_DEBUG=1 or --debug asks for the
    traceback."""
    sys.exit(
        report(app, sys.argv[1:], debug=lambda: os.environ.get(DEBUG_ENV, "") not in ("", "0"))
    )
