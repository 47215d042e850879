"""`runplane runtime stop|rm` with label selectors, and the commands for
timeouts, idle rules, labels and activity (issue 16). Registered on
`runtime_app` (cli/runtime.py); main.py imports this module."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from runplane.cli import runtime_describe as runtime_describe  # registers `describe`
from runplane.cli.rest_client import Client, ExitCode, JsonOpt, KeyOpt, UrlOpt, fail, out
from runplane.cli.runtime import JobOpt, _operate, runtime_app, show_runtime
from runplane.cli.runtime_list import LabelOpt, list_all  # registers `ls`

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]
ReasonOpt = Annotated[
    str,
    typer.Option(
        help="requested, finished, cancelled, ttl_expired, idle, admin, orphaned or shutdown"
    ),
]


def _bulk(
    op: str,
    verb: str,
    runtime_id: str | None,
    label: list[str] | None,
    body: dict[str, Any] | None,
    yes: bool,
    job_id: str | None,
    url: str | None,
    api_key: str | None,
    as_json: bool,
) -> None:
    """One runtime by id, or every runtime a selector picks (after a confirmation)."""
    if (runtime_id is None) == (not label):
        fail("name one runtime, or select some with -l/--label", exit_code=ExitCode.NOT_SENT)
    if runtime_id is not None:
        _operate(op, runtime_id, url, api_key, as_json, body, job_id)
        return
    client = Client(url, api_key)
    picked = [r["runtime_id"] for r in list_all(client, {"label": label})]
    if not picked:
        out.print("no runtime matches")
        return
    if not yes:
        out.print("\n".join(picked))
        if not typer.confirm(f"{verb} these {len(picked)} runtime(s)?", default=False):
            raise typer.Exit(1)
    results = [_one(client, op, rid, body) for rid in picked]
    if as_json:
        out.print_json(data=results)
    else:
        table = Table("RUNTIME", "OUTCOME", "STATUS", "CODE", "MESSAGE")
        for r in results:
            table.add_row(r["runtime_id"], r["outcome"], r["status"], r["code"], r["message"])
        out.print(table)
    if any(r["outcome"] != "success" for r in results):
        raise typer.Exit(1)


def _one(client: Client, op: str, runtime_id: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """One operation of a bulk command; its result whatever it is (never exits)."""
    method, path = (
        ("DELETE", f"/v1/runtimes/{runtime_id}")
        if op == "remove"
        else ("POST", f"/v1/runtimes/{runtime_id}/{op}")
    )
    try:
        response = client.http.request(method, path, json=body)
        answer = response.json() if response.content else {}
    except (httpx.HTTPError, ValueError) as exc:
        return _row(runtime_id, "failure", "-", "unreachable", str(exc))
    if response.is_error:
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        return _row(runtime_id, "failure", "-", error.get("code", ""), error.get("message", ""))
    runtime = answer.get("runtime") or {}
    return _row(
        runtime_id,
        answer.get("outcome", "?"),
        runtime.get("status", "?"),
        answer.get("error_code") or "-",
        answer.get("error_message") or "-",
    )


def _row(runtime_id: str, outcome: str, status: str, code: str, message: str) -> dict[str, Any]:
    return {
        "runtime_id": runtime_id,
        "outcome": outcome,
        "status": status,
        "code": code,
        "message": message,
    }


@runtime_app.command("stop")
def stop(
    runtime_id: Annotated[str | None, typer.Argument(help="the runtime (or use -l)")] = None,
    label: LabelOpt = None,
    reason: ReasonOpt = "requested",
    yes: YesOpt = False,
    job_id: JobOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop a runtime, or every runtime -l selects (asks first unless --yes)."""
    body = {"reason": reason}
    _bulk("stop", "Stop", runtime_id, label, body, yes, job_id, url, api_key, as_json)


@runtime_app.command("rm")
def remove(
    runtime_id: Annotated[str | None, typer.Argument(help="the runtime (or use -l)")] = None,
    label: LabelOpt = None,
    yes: YesOpt = False,
    job_id: JobOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a runtime (stopping it first if it runs), or every runtime -l selects."""
    _bulk("remove", "Remove", runtime_id, label, None, yes, job_id, url, api_key, as_json)


def _show(runtime: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(data=runtime)
    else:
        show_runtime(runtime)


@runtime_app.command("timeout")
def set_timeout(
    runtime_id: str,
    seconds: Annotated[int | None, typer.Argument(help="from now; leave out with --clear")] = None,
    clear: Annotated[bool, typer.Option(help="remove the deadline")] = False,
    shorten: Annotated[bool, typer.Option(help="allow an earlier deadline")] = False,
    on_timeout: Annotated[str | None, typer.Option(help="stop, pause or remove")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set or extend a runtime's timeout to SECONDS from now (never shorter
    than the current one unless --shorten)."""
    if (seconds is None) != clear:
        fail("give SECONDS, or --clear", exit_code=ExitCode.NOT_SENT)
    body: dict[str, Any] = {"timeout_s": seconds, "allow_shorten": shorten}
    if on_timeout:
        body["on_timeout"] = on_timeout
    path = f"/v1/runtimes/{runtime_id}/timeout"
    _show(Client(url, api_key).call("POST", path, json=body), as_json)


@runtime_app.command("idle")
def set_idle(
    runtime_id: str,
    after: Annotated[int | None, typer.Option(help="idle after this many seconds")] = None,
    action: Annotated[str, typer.Option(help="stop or pause")] = "stop",
    off: Annotated[bool, typer.Option(help="remove the idle rule")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set (or with --off remove) a runtime's idle rule."""
    if (after is None) != off:
        fail("give --after SECONDS, or --off", exit_code=ExitCode.NOT_SENT)
    idle = None if off else {"after_s": after, "action": action}
    path = f"/v1/runtimes/{runtime_id}"
    _show(Client(url, api_key).call("PATCH", path, json={"idle": idle}), as_json)


@runtime_app.command("label")
def set_labels(
    runtime_id: str,
    labels: Annotated[list[str], typer.Argument(help="k=v to set, k- to remove")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a runtime's labels: `app=web` sets one, `app-` removes it."""
    client = Client(url, api_key)
    current = dict(client.call("GET", f"/v1/runtimes/{runtime_id}").get("labels") or {})
    for item in labels:
        if "=" in item:
            key, _, value = item.partition("=")
            current[key] = value
        elif item.endswith("-"):
            current.pop(item[:-1], None)
        else:
            fail(f"{item!r}: use k=v to set a label, k- to remove one", exit_code=ExitCode.NOT_SENT)
    path = f"/v1/runtimes/{runtime_id}"
    _show(client.call("PATCH", path, json={"labels": current}), as_json)


@runtime_app.command("activity")
def activity(runtime_id: str, url: UrlOpt = None, api_key: KeyOpt = None) -> None:
    """Tell runplane a runtime is busy (its idle clock starts again)."""
    Client(url, api_key).call("POST", f"/v1/runtimes/{runtime_id}/activity")
    out.print(f"{runtime_id}: activity noted")
