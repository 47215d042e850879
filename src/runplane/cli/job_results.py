"""`jobs submit --wait`: poll `GET /v1/jobs/{job_id}` until the job's result
is on `runtime:job_results`, and print it."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from runplane.cli.rest_client import Client, CliError, ExitCode, fail, out
from runplane.domain.event_reading import parse_stream_id

CLOCK_SKEW_MS = 60_000
"""Results are read from this long before the job's own entry id on: the job
and results streams may live on different Redis nodes, with clocks apart."""

POLL_S = (0.1, 0.2, 0.5, 1.0)
"""Pauses between reads: quick at first (most jobs finish in milliseconds)."""


def wait_for_result(client: Client, submitted: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """The result of the job `POST /v1/jobs` answered with, once it is there;
    a CliError (exit TIMED_OUT) after `timeout_s`."""
    job_id = submitted["job_id"]
    ms, _ = parse_stream_id(submitted["entry_id"])
    params = {"after": f"{max(ms - CLOCK_SKEW_MS, 0)}-0"}
    path = "/v1/jobs/" + quote(job_id, safe="/:").replace(".", "%2E")
    deadline = time.monotonic() + timeout_s
    for attempt in range(1_000_000):
        try:
            result: dict[str, Any] = client.call("GET", path, params=params)
            return result
        except CliError as exc:
            if exc.code != "not_found":
                raise
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(POLL_S[min(attempt, len(POLL_S) - 1)], left))
    fail(
        f"job {job_id} has no result after {timeout_s:g}s; it may still run "
        f"(runplane jobs result {job_id})",
        code="timeout",
        exit_code=ExitCode.TIMED_OUT,
    )


def show_result(result: dict[str, Any]) -> None:
    """One line: the job, its outcome, the error if any, the runtime's status."""
    parts = [f"job {result['job_id']}: {result['op']} {result['runtime_id']}: {result['outcome']}"]
    if result["error_code"]:
        detail = ": ".join(filter(None, (result["error_code"], result["error_message"])))
        parts.append(f" ({detail})")
    if result["status"]:
        parts.append(f"; {result['runtime_id']} is {result['status']}")
    out.print("".join(parts), markup=False, highlight=False, soft_wrap=True)


def exit_code_of(result: dict[str, Any]) -> int:
    return 0 if result["outcome"] == "success" else ExitCode.REFUSED
