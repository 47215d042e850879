"""`runplane runtime ...`: the runtime commands of the CLI."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Annotated, Any

import typer

from runplane.cli.output import (
    Column,
    Format,
    OutputOpt,
    age,
    cell,
    chosen,
    show_fields,
    show_list,
    styled,
)
from runplane.cli.rest_client import Client, ExitCode, JsonOpt, KeyOpt, UrlOpt, fail, out
from runplane.cli.spec_input import parse_object

CommandOpt = Annotated[str | None, typer.Option(help="the command line to run (process driver)")]
SpecOpt = Annotated[str | None, typer.Option("--spec", help="the spec as a JSON object")]
PortOpt = Annotated[int | None, typer.Option(help="the port the runtime listens on")]
EnvOpt = Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE, repeatable")]
CwdOpt = Annotated[str | None, typer.Option(help="working directory")]
JobOpt = Annotated[str | None, typer.Option("--job-id", help="idempotency key")]


def _operate(
    op: str,
    runtime_id: str,
    url: str | None,
    api_key: str | None,
    as_json: bool,
    body: dict[str, Any] | None = None,
    job_id: str | None = None,
) -> None:
    headers = {"Idempotency-Key": job_id} if job_id else {}
    method, path = (
        ("DELETE", f"/v1/runtimes/{runtime_id}")
        if op == "remove"
        else ("POST", f"/v1/runtimes/{runtime_id}/{op}")
    )
    result = Client(url, api_key).call(method, path, json=body, headers=headers)
    show_result(result, as_json)


runtime_app = typer.Typer(help="Create, inspect and operate runtimes.", no_args_is_help=True)


def _moment(field: str) -> Callable[[dict[str, Any]], str]:
    def shown(record: dict[str, Any]) -> str:
        value = record.get(field)
        return f"{value} ({age(value)} ago)" if value else "-"

    return shown


def _plain(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda record: cell(record.get(field))


def _json(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda record: json.dumps(record.get(field) or {}) if record.get(field) else "-"


RUNTIME_FIELDS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("runtime_id", _plain("runtime_id")),
    ("team_id", _plain("team_id")),
    ("status", lambda r: styled(r.get("status"))),
    ("health", lambda r: styled(r.get("engine_health"))),
    ("version", _plain("version")),
    ("driver", _plain("driver")),
    ("host_id", _plain("host_id")),
    ("container_id", _plain("container_id")),
    ("engine_endpoint", _plain("engine_endpoint")),
    ("created_at", _moment("created_at")),
    ("started_at", _moment("started_at")),
    ("stopped_at", _moment("stopped_at")),
    ("updated_at", _moment("updated_at")),
    ("spec", lambda r: json.dumps(r.get("spec", {}))),
    ("labels", _json("labels")),
    ("timeout", _json("timeout")),
    ("idle", _json("idle")),
)


def show_runtime(runtime: dict[str, Any], fmt: Format = Format.TABLE) -> None:
    show_fields(runtime, RUNTIME_FIELDS, fmt)


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
    spec: dict[str, Any] = parse_object(spec_json) if spec_json else {}
    if command:
        try:
            spec["command"] = shlex.split(command)
        except ValueError as exc:  # an unclosed quote
            fail(f"--command {command!r}: {exc}", exit_code=ExitCode.NOT_SENT)
    if port is not None:
        spec["port"] = port
    if env:
        if bad := [item for item in env if "=" not in item]:
            fail(f"--env {bad[0]!r}: give NAME=VALUE", exit_code=ExitCode.NOT_SENT)
        spec["env"] = dict(item.split("=", 1) for item in env)
    if cwd:
        spec["cwd"] = cwd
    return spec or None


@runtime_app.command("create")
def create(
    runtime_id: Annotated[str | None, typer.Argument(help="id (generated if omitted)")] = None,
    command: CommandOpt = None,
    spec: SpecOpt = None,
    port: PortOpt = None,
    env: EnvOpt = None,
    cwd: CwdOpt = None,
    team: Annotated[str | None, typer.Option(help="team (admin keys only)")] = None,
    driver: Annotated[str | None, typer.Option(help="process or docker")] = None,
    start: Annotated[bool, typer.Option(help="start it at once")] = True,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="k=v")] = None,
    timeout: Annotated[int | None, typer.Option(help="seconds until on_timeout fires")] = None,
    on_timeout: Annotated[str, typer.Option(help="stop, pause or remove")] = "stop",
    idle_after: Annotated[int | None, typer.Option(help="idle after these seconds")] = None,
    idle_action: Annotated[str, typer.Option(help="stop or pause when idle")] = "stop",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
    output: OutputOpt = None,
) -> None:
    """Create a runtime (and start it, unless --no-start)."""
    body = {
        "runtime_id": runtime_id,
        "team_id": team,
        "driver": driver,
        "start": start,
        "spec": spec_from(command, spec, port, env, cwd) or {},
        "labels": dict(item.partition("=")[::2] for item in label or []),
        "timeout_s": timeout,
        "on_timeout": on_timeout,
        "idle": {"after_s": idle_after, "action": idle_action} if idle_after else None,
    }
    runtime = Client(url, api_key).call("POST", "/v1/runtimes", json=body)
    show_runtime(runtime, chosen(output, as_json))


@runtime_app.command("get")
def get(
    runtime_id: str,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one runtime (`runtime describe` adds its errors, operations and events)."""
    runtime = Client(url, api_key).call("GET", f"/v1/runtimes/{runtime_id}")
    show_runtime(runtime, chosen(output, as_json))


@runtime_app.command("start")
def start(
    runtime_id: str,
    spec: SpecOpt = None,
    command: CommandOpt = None,
    job_id: JobOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a runtime (optionally with a new spec)."""
    new_spec = spec_from(command, spec, None, None, None)
    _operate("start", runtime_id, url, api_key, as_json, {"spec": new_spec}, job_id)


@runtime_app.command("patch")
def patch(
    runtime_id: str,
    spec: SpecOpt = None,
    command: CommandOpt = None,
    port: PortOpt = None,
    env: EnvOpt = None,
    cwd: CwdOpt = None,
    job_id: JobOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a running runtime's spec and restart it."""
    new_spec = spec_from(command, spec, port, env, cwd)
    _operate("patch", runtime_id, url, api_key, as_json, {"spec": new_spec}, job_id)


def _simple_operation(name: str, op: str, doc: str) -> None:
    """Register `runplane runtime <name> ID`: an operation that takes no body."""

    def command(
        runtime_id: str,
        job_id: JobOpt = None,
        url: UrlOpt = None,
        api_key: KeyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        _operate(op, runtime_id, url, api_key, as_json, None, job_id)

    command.__doc__ = doc
    runtime_app.command(name)(command)


_simple_operation("restart", "restart", "Stop and start a runtime under one lease.")
_simple_operation("pause", "pause", "Freeze a running runtime.")
_simple_operation("resume", "resume", "Thaw a paused runtime.")


@runtime_app.command("wait")
def wait(
    runtime_id: str,
    status: Annotated[str, typer.Option(help="status to wait for (comma-separated for any)")],
    timeout: Annotated[float, typer.Option(help="seconds")] = 30.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait until a runtime reaches a status (exit 1 on timeout)."""
    runtime = Client(url, api_key).call(
        "GET", f"/v1/runtimes/{runtime_id}/wait", params={"status": status, "timeout": timeout}
    )
    if as_json:
        out.print_json(data=runtime)
    else:
        out.print(f"{runtime['runtime_id']} is {runtime['status']}")


OPERATION_COLUMNS = (
    Column("AGE", lambda e: age(e["finished_at"]), table_only=True),
    Column("FINISHED", lambda e: e["finished_at"], wide=True),
    Column("OP", lambda e: e["op"]),
    Column("SOURCE", lambda e: e["op_source"]),
    Column("OUTCOME", lambda e: styled(e["outcome"])),
    Column("CODE", lambda e: cell(e["error_code"])),
    Column("FROM", lambda e: cell(e["status_from"])),
    Column("TO", lambda e: cell(e["status_to"])),
    Column("REASON", lambda e: cell(e["reason"])),
    Column("MESSAGE", lambda e: cell(e["error_message"])),
    Column("ACTOR", lambda e: cell(e["actor"]), wide=True),
    Column("JOB", lambda e: cell(e["job_id"]), wide=True),
    Column("OPERATION", lambda e: e["operation_id"], wide=True),
)


@runtime_app.command("ops")
def ops(
    runtime_id: str,
    limit: Annotated[int, typer.Option(help="the newest this many")] = 100,
    output: OutputOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a runtime's operation log, newest first."""
    path = f"/v1/runtimes/{runtime_id}/operations"
    body = Client(url, api_key).call("GET", path, params={"limit": limit})
    show_list(body["operations"], OPERATION_COLUMNS, chosen(output, as_json), document=body)
