"""`runplane jobs submit` and `runplane dlq ls|replay|drop`."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer

from runplane.cli.job_results import exit_code_of, show_result, wait_for_result
from runplane.cli.output import Column, OutputOpt, chosen, show_list
from runplane.cli.rest_client import Client, ExitCode, JsonOpt, KeyOpt, UrlOpt, fail, out
from runplane.cli.spec_input import parse_object
from runplane.domain.dead_letters import ID_RULE
from runplane.domain.jobs import submission_problem
from runplane.domain.operations import STOP_REASONS, OpKind

jobs_app = typer.Typer(help="Submit lifecycle jobs to the job streams.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Dead letters: job entries that failed past their retries.", no_args_is_help=True
)
OPS = ", ".join(OpKind)


@jobs_app.command("submit")
def submit(
    op: Annotated[str, typer.Argument(help=OPS)],
    runtime_id: str,
    reason: Annotated[
        str | None, typer.Option(help=f"why (stop needs one of: {', '.join(sorted(STOP_REASONS))})")
    ] = None,
    job_id: Annotated[str | None, typer.Option("--job-id", help="idempotency key")] = None,
    spec: Annotated[
        str | None, typer.Option(help="spec as a JSON object, or @file (start, patch)")
    ] = None,
    team: Annotated[str | None, typer.Option(help="team of a runtime a start creates")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the result and print it")] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits", min=0)] = 60.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a job; its result arrives on runtime:job_results (--wait prints
    it, exiting 1 if the job failed, 3 if none came in --timeout)."""
    body = _job_body(op, runtime_id, reason, job_id, spec, team)
    client = Client(url, api_key)
    submitted = client.call("POST", "/v1/jobs", json=body)
    if not wait:
        if as_json:
            out.print_json(data=submitted)
        else:
            out.print(
                f"submitted {submitted['job_id']} ({submitted['stream']} {submitted['entry_id']})",
                markup=False,
            )
        return
    result = wait_for_result(client, submitted, timeout)
    if as_json:
        out.print_json(data=result)
    else:
        show_result(result)
    raise typer.Exit(exit_code_of(result))


@jobs_app.command("result")
def result(
    job_id: str, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Print a job's result (not_found until its consumer has answered)."""
    path = "/v1/jobs/" + quote(job_id, safe="/:").replace(".", "%2E")
    answer = Client(url, api_key).call("GET", path)
    if as_json:
        out.print_json(data=answer)
    else:
        show_result(answer)
    raise typer.Exit(exit_code_of(answer))


def _job_body(
    op: str,
    runtime_id: str,
    reason: str | None,
    job_id: str | None,
    spec: str | None,
    team: str | None,
) -> dict[str, Any]:
    """The `POST /v1/jobs` body; what the job's consumer would refuse is refused
    here, before anything is sent."""
    try:
        kind = OpKind(op)
    except ValueError:
        fail(
            f"op must be one of {OPS}, not {op!r}",
            code="invalid_request",
            exit_code=ExitCode.NOT_SENT,
        )
    parsed_spec = parse_object(spec) if spec is not None else None
    problem = submission_problem(kind, reason or "", parsed_spec is not None)
    if problem is not None:
        fail(problem, code="invalid_request", exit_code=ExitCode.NOT_SENT)
    return {
        "op": op,
        "runtime_id": runtime_id,
        "reason": reason,
        "job_id": job_id,
        "team_id": team,
        "spec": parsed_spec,
    }


DEAD_LETTER_COLUMNS = (
    Column("ID", lambda d: str(d["id"])),
    Column("STREAM", lambda d: str(d["stream"])),
    Column("ENTRY", lambda d: str(d["entry_id"])),
    Column("DELIVERIES", lambda d: str(d["deliveries"])),
    Column("ERROR", lambda d: str(d["error"])),
    Column("FIELDS", lambda d: json.dumps(d["fields"])),
)


@dlq_app.command("ls")
def dlq_list(
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    after: Annotated[str | None, typer.Option(help="the last id of the previous page")] = None,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters, oldest first."""
    params: dict[str, str | int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    letters = Client(url, api_key).call("GET", "/v1/dead-letters", params=params)
    # show_list prints every cell as Text: a dead letter's content is never markup.
    show_list(letters, DEAD_LETTER_COLUMNS, chosen(output, as_json))


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
        fail(f"dead_letter_id: {ID_RULE}", code="invalid_request")
    return quote(dead_letter_id, safe="").replace(".", "%2E")
