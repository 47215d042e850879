"""`jobs submit --wait` (cli/job_results.py) against a stand-in server (an
httpx MockTransport): it reads results after the job's entry id less the
clock-skew margin, waits through not_found, and gives up with TIMED_OUT."""

from __future__ import annotations

import httpx
import pytest

from runplane.cli.job_results import exit_code_of, wait_for_result
from runplane.cli.rest_client import Client, CliError, ExitCode

SUBMITTED = {"job_id": "runtime:stop_jobs/1700000060000-0", "entry_id": "1700000060000-0"}
RESULT = {
    "job_id": SUBMITTED["job_id"],
    "runtime_id": "demo",
    "op": "stop",
    "outcome": "success",
    "error_code": "",
    "error_message": "",
    "status": "stopped",
    "finished_at_ms": 1700000060100,
    "entry_id": "1700000060100-0",
}
NOT_YET = {"error": {"code": "not_found", "message": "no result for this job (yet)"}}


def client_answering(answers: list[httpx.Response], seen: list[httpx.Request]) -> Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    client = Client("http://runplane.test", "rp_key")
    client.http = httpx.Client(base_url=client.base, transport=httpx.MockTransport(handle))
    return client


def test_the_result_is_read_once_the_consumer_has_answered() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(404, json=NOT_YET)] * 2 + [httpx.Response(200, json=RESULT)]
    result = wait_for_result(client_answering(answers, seen), SUBMITTED, timeout_s=30)
    assert result == RESULT
    assert exit_code_of(result) == 0
    assert len(seen) == 3
    assert seen[0].url.path == "/v1/jobs/runtime:stop_jobs/1700000060000-0"
    assert seen[0].url.params["after"] == "1700000000000-0"


def test_no_result_in_time_is_a_timeout_that_names_the_job() -> None:
    seen: list[httpx.Request] = []
    client = client_answering([httpx.Response(404, json=NOT_YET)], seen)
    with pytest.raises(CliError) as timed_out:
        wait_for_result(client, SUBMITTED, timeout_s=0.3)
    assert timed_out.value.exit_code == ExitCode.TIMED_OUT
    assert timed_out.value.line() == (
        "error: timeout: job runtime:stop_jobs/1700000060000-0 has no result after 0.3s; "
        "it may still run (runplane jobs result runtime:stop_jobs/1700000060000-0)"
    )
    assert seen


def test_another_error_ends_the_wait_at_once() -> None:
    seen: list[httpx.Request] = []
    refused = {"error": {"code": "unauthorized", "message": "unknown API key"}}
    client = client_answering([httpx.Response(401, json=refused)], seen)
    with pytest.raises(CliError) as failed:
        wait_for_result(client, SUBMITTED, timeout_s=30)
    assert failed.value.line() == "error: unauthorized: unknown API key"
    assert len(seen) == 1


def test_a_failed_job_exits_refused() -> None:
    assert exit_code_of(RESULT | {"outcome": "failure"}) == ExitCode.REFUSED
