"""serve's log as an operator reads it: a REST call and a stream job each leave an
`operation finished` line naming the runtime, op, outcome, source and the
correlation id the operation log stores as `source_ref`, in text and in JSON."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import remove_everything
from tests.support.e2e_backend import raw_redis
from tests.support.serve import RunplaneServer

TEXT_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_text(line: str) -> dict[str, Any]:
    """`time level logger message key=value ...` -> the fields, plus logger and message."""
    _, _, logger, rest = line.split(" ", 3)
    first = TEXT_FIELD.search(rest)
    message = rest[: first.start()].strip() if first else rest
    fields: dict[str, Any] = {"logger": logger, "message": message}
    for key, raw in TEXT_FIELD.findall(rest[first.start() :] if first else ""):
        fields[key] = json.loads(raw) if raw.startswith('"') else raw
    return fields


def log_records(server: RunplaneServer, log_format: str) -> list[dict[str, Any]]:
    lines = server.log_path.read_text().splitlines()
    if log_format == "json":
        return [json.loads(line) for line in lines if line.startswith("{")]
    return [parse_text(line) for line in lines if re.match(r"\d{4}-\d\d-\d\dT", line)]


def operation_line(
    server: RunplaneServer, log_format: str, correlation_id: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [
            r
            for r in log_records(server, log_format)
            if r["message"] == "operation finished" and r.get("correlation_id") == correlation_id
        ]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, server.log_path.read_text()
            return found[0]
        time.sleep(0.1)


def wait_result(url: str, job_id: str, timeout_s: float = 30.0) -> dict[str, str]:
    client = raw_redis(url, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for _, fields in client.xrange("runtime:job_results"):
            if fields["job_id"] == job_id:
                return fields
        time.sleep(0.1)
    raise AssertionError(f"no result for {job_id}")


@pytest.fixture(params=["text", "json"])
def logged_serve(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> Iterator[tuple[RunplaneServer, str]]:
    log_format: str = request.param
    server = RunplaneServer.launch(tmp_path / "data", redis_url=redis_url, log_format=log_format)
    try:
        yield server, log_format
    finally:
        remove_everything(server)
        server.stop()


def test_rest_and_stream_operations_are_logged_with_their_correlation_id(
    logged_serve: tuple[RunplaneServer, str], redis_url: str
) -> None:
    server, log_format = logged_serve
    spec = {"command": ["sleep", "300"], "stop_timeout_s": 5}
    with server.client() as http:
        created = http.post("/v1/runtimes", json={"runtime_id": "logged", "spec": spec})
        assert created.status_code == 201, created.text
        assert re.fullmatch("[0-9a-f]{32}", created.headers["X-Request-ID"])
        stopped = http.post("/v1/runtimes/logged/stop", headers={"X-Request-ID": "req-abc"})
        assert stopped.status_code == 200, stopped.text
        assert stopped.headers["X-Request-ID"] == "req-abc"
        [stop] = [
            o
            for o in http.get("/v1/runtimes/logged/operations").json()["operations"]
            if o["op"] == "stop"
        ]
    assert stop["source_ref"] == "req-abc"
    line = operation_line(server, log_format, "req-abc")
    assert line["logger"] == "runplane.services.lifecycle.outcomes"
    assert (line["runtime_id"], line["op"], line["outcome"], line["op_source"]) == (
        "logged",
        "stop",
        "success",
        "rest",
    )

    jobs = raw_redis(redis_url, decode_responses=True)
    jobs.xadd("runtime:start_jobs", {"runtime_id": "logged", "job_id": "job-abc"})
    assert wait_result(redis_url, "job-abc")["outcome"] == "success"
    job_line = operation_line(server, log_format, "job-abc")
    assert (job_line["runtime_id"], job_line["op"], job_line["outcome"]) == (
        "logged",
        "start",
        "success",
    )
    assert (job_line["op_source"], job_line["job_id"]) == ("stream", "job-abc")
    with server.client() as http:
        ops = http.get("/v1/runtimes/logged/operations").json()["operations"]
    assert ops[0]["source_ref"] == "job-abc"

    access = [
        r
        for r in log_records(server, log_format)
        if r["logger"] == "uvicorn.access" and "/v1/runtimes/logged/stop" in r["message"]
    ]
    assert [r.get("correlation_id") for r in access] == ["req-abc"]
