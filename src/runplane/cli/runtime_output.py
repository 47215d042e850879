"""`runplane runtime logs` and `runplane runtime metrics`: a runtime's output
(the last lines, or followed until it stops) and its recent resource samples."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from runplane.cli.rest_client import Client, JsonOpt, KeyOpt, UrlOpt, err, error_of, out
from runplane.cli.runtime import runtime_app

READ_TIMEOUT_S = 60.0
"""The server sends a keepalive every 15 s while the runtime is quiet."""
_RELATIVE = re.compile(r"^([0-9]+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}

FollowOpt = Annotated[bool, typer.Option("-f", "--follow", help="follow until the runtime stops")]
TailOpt = Annotated[
    str | None, typer.Option("-n", "--tail", help="the last N lines (default 100), or all")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="lines from then on: 10m, 2h, epoch seconds or an RFC 3339 time"),
]
StampsOpt = Annotated[bool, typer.Option("-t", "--timestamps", help="prefix each line's time")]


def since_param(raw: str | None, now: float) -> str | None:
    """`10m` and the like become epoch seconds; anything else goes as given."""
    if raw is None:
        return None
    match = _RELATIVE.match(raw)
    if match:
        return f"{now - int(match.group(1)) * _UNIT_S[match.group(2)]:.6f}"
    return raw


@runtime_app.command("logs")
def logs(
    runtime_id: str,
    follow: FollowOpt = False,
    tail: TailOpt = None,
    since: SinceOpt = None,
    timestamps: StampsOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a runtime's output: its stdout here on stdout, its stderr on stderr."""
    client = Client(url, api_key)
    params = {"tail": tail, "since": since_param(since, time.time())}
    path = f"/v1/runtimes/{runtime_id}/logs"
    if not follow:
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        while True:
            page = client.call("GET", path, params=query)
            for line in page["lines"]:
                _show(line, timestamps, as_json)
            if not page["more"]:
                return
            query = {"cursor": page["cursor"]}
    try:
        with client.http.stream(
            "GET",
            path,
            params={**{k: v for k, v in params.items() if v is not None}, "follow": "true"},
            timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S),
        ) as response:
            _fail_on_error(response)
            for raw in response.iter_lines():
                if not raw.strip():
                    continue  # keepalive
                item = json.loads(raw)
                if "error" in item:
                    err.print(f"[red]{item['error']['code']}[/red]: {item['error']['message']}")
                    raise typer.Exit(1)
                if "end" in item:
                    return
                _show(item, timestamps, as_json)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except httpx.HTTPError as exc:
        err.print(f"[red]lost the log stream of {client.base}: {exc}[/red]")
        raise typer.Exit(2) from exc
    err.print("the server closed the log stream before the runtime stopped")
    raise typer.Exit(1)


def _fail_on_error(response: httpx.Response) -> None:
    if response.is_error:
        response.read()
        raise error_of(response)


def _show(line: dict[str, Any], timestamps: bool, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        return
    text = line["text"]
    if timestamps:
        text = f"{_stamp(line['ts'])} {text}"
    target = sys.stderr if line["stream"] == "stderr" else sys.stdout
    target.write(text + "\n")
    target.flush()


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@runtime_app.command("metrics")
def metrics(
    runtime_id: str,
    window: Annotated[float, typer.Option(help="seconds of recent samples")] = 300.0,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A runtime's recent CPU, memory and disk samples, taken on its host."""
    body = Client(url, api_key).call(
        "GET", f"/v1/runtimes/{runtime_id}/metrics", params={"window": window}
    )
    if as_json:
        out.print_json(data=body)
        return
    table = Table("time", "cpu %", "memory", "disk", "processes")
    for sample in body["samples"]:
        disk = sample["disk_bytes"]
        table.add_row(
            _stamp(sample["ts"]),
            f"{sample['cpu_percent']:.1f}",
            _size(sample["memory_bytes"]),
            "-" if disk is None else _size(disk),
            str(sample["processes"] or "-"),
        )
    out.print(table)
    state = "running" if body["running"] else "not running"
    out.print(f"{len(body['samples'])} samples, every {body['interval_s']:g}s; {state}")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
