"""`runplane jobs submit` and `runplane dlq ls|replay|drop`."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, err, out
from runplane.domain.dead_letters import ID_RULE

jobs_app = typer.Typer(help="Submit lifecycle jobs to the job streams.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Dead letters: job entries that failed past their retries.", no_args_is_help=True
)


@jobs_app.command("submit")
def submit(
    op: Annotated[str, typer.Argument(help="start, stop, restart, patch, pause, resume or remove")],
    runtime_id: str,
    reason: Annotated[str | None, typer.Option(help="why (required for stop)")] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="idempotency key")] = None,
    spec: Annotated[str | None, typer.Option(help="spec as a JSON object (start, patch)")] = None,
    team: Annotated[str | None, typer.Option(help="team of a runtime a start creates")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a job; its result arrives on runtime:job_results."""
    try:
        parsed_spec = json.loads(spec) if spec else None
    except ValueError as exc:
        err.print(f"[red]invalid_request[/red]: --spec is not JSON: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    body = {
        "op": op,
        "runtime_id": runtime_id,
        "reason": reason,
        "job_id": job_id,
        "team_id": team,
        "spec": parsed_spec,
    }
    submitted = Client(url, api_key).call("POST", "/v1/jobs", json=body)
    if as_json:
        out.print_json(data=submitted)
    else:
        out.print(
            f"submitted {submitted['job_id']} ({submitted['stream']} {submitted['entry_id']})"
        )


@dlq_app.command("ls")
def dlq_list(
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    after: Annotated[str | None, typer.Option(help="the last id of the previous page")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters, oldest first."""
    params: dict[str, str | int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    letters = Client(url, api_key).call("GET", "/v1/dead-letters", params=params)
    if as_json:
        out.print_json(data=letters)
        return
    table = Table("ID", "STREAM", "ENTRY", "DELIVERIES", "ERROR", "FIELDS")
    for column in table.columns:
        column.overflow = "fold"
    for letter in letters:
        # Text, not str: a dead letter's content is not console markup ("[/x]"
        # in an error message would otherwise fail the listing).
        table.add_row(
            *(
                Text(str(value))
                for value in (
                    letter["id"],
                    letter["stream"],
                    letter["entry_id"],
                    letter["deliveries"],
                    letter["error"],
                    json.dumps(letter["fields"]),
                )
            )
        )
    out.print(table)


@dlq_app.command("replay")
def dlq_replay(dead_letter_id: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Put a dead letter back on its stream."""
    answer = Client(url, api_key).call(
        "POST", f"/v1/dead-letters/{_segment(dead_letter_id)}/replay"
    )
    out.print(f"replayed as {answer['entry_id']}")


@dlq_app.command("drop")
def dlq_drop(dead_letter_id: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Delete a dead letter."""
    Client(url, api_key).call("DELETE", f"/v1/dead-letters/{_segment(dead_letter_id)}")
    out.print("dropped")


def _segment(dead_letter_id: str) -> str:
    """The id as one path segment. An id with a `/` could never reach the
    dead-letter route (it would name another path): refused here with the
    server's own answer to a malformed id."""
    if "/" in dead_letter_id:
        err.print(f"[red]invalid_request[/red]: dead_letter_id: {escape(ID_RULE)}")
        raise typer.Exit(1)
    return quote(dead_letter_id, safe="").replace(".", "%2E")
