"""The job handler on fakes: one result per entry, retries only for infrastructure."""

from __future__ import annotations

import logging

import pytest

from runplane.domain.errors import DriverError, ErrorCode, StoreUnavailable
from runplane.domain.operations import OpKind, Outcome
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.testing.jobs import InMemoryJobResults
from runplane.testing.stores import InMemoryRuntimeStore
from runplane.workers.jobs.handler import JobHandler
from tests.support.world import World


def handler(world: World, op: OpKind, results: InMemoryJobResults) -> JobHandler:
    return JobHandler(
        op, world.lifecycle, world.runtimes, results, world.clock, lease_wait_ms=0, max_deliveries=3
    )


def entry(
    fields: dict[str, str],
    entry_id: str = "1-0",
    deliveries: int = 1,
    stream: str = "runtime:stop_jobs",
    undecodable: bool = False,
) -> StreamEntry:
    return StreamEntry(stream, entry_id, fields, deliveries, undecodable)


async def test_stop_job_stops_and_publishes_one_result(world: World) -> None:
    await world.create()
    results = InMemoryJobResults()
    await handler(world, OpKind.STOP, results)(entry({"runtime_id": "rt-1", "reason": "idle"}))
    assert (await world.record()).status is Status.STOPPED
    [result] = results.results
    assert (result.job_id, result.outcome, result.status) == (
        "runtime:stop_jobs/1-0",
        Outcome.SUCCESS,
        "stopped",
    )
    last = (await world.entries())[-1]
    assert (last.op_source.value, last.source_ref, last.job_id) == (
        "stream",
        "runtime:stop_jobs/1-0",
        "runtime:stop_jobs/1-0",
    )


async def test_redelivered_entry_repeats_its_result_without_a_second_effect(world: World) -> None:
    await world.create()
    results = InMemoryJobResults()
    stop = handler(world, OpKind.STOP, results)
    job = entry({"runtime_id": "rt-1", "reason": "idle", "job_id": "j-1"})
    await stop(job)
    await world.do(OpKind.START)
    await stop(entry(job.fields, deliveries=2))
    assert (await world.record()).status is Status.RUNNING
    first, again = results.for_job("j-1")
    assert first.outcome is again.outcome is Outcome.SUCCESS
    assert again.error_code is ErrorCode.REPLAY_NO_OP


async def test_malformed_entries_get_invalid_request_results(world: World) -> None:
    results = InMemoryJobResults()
    stop = handler(world, OpKind.STOP, results)
    await stop(entry({"reason": "idle"}, "1-0"))
    await stop(entry({"runtime_id": "\ufffd", "reason": "\ufffd"}, "2-0", undecodable=True))
    await stop(entry({"runtime_id": "rt-1", "reason": "nah"}, "3-0"))
    assert [r.error_code for r in results.results] == [ErrorCode.INVALID_REQUEST] * 3
    assert [r.job_id for r in results.results] == [
        "runtime:stop_jobs/1-0",
        "runtime:stop_jobs/2-0",
        "runtime:stop_jobs/3-0",
    ]


async def test_a_refused_entry_is_logged_with_why(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    results = InMemoryJobResults()
    caplog.set_level(logging.INFO, logger="runplane.workers.jobs.handler")
    await handler(world, OpKind.STOP, results)(entry({"runtime_id": "rt-1", "job_id": "j-9"}))
    [record] = [r for r in caplog.records if r.getMessage() == "job entry refused"]
    assert (record.stream, record.entry_id, record.job_id, record.runtime_id) == (
        "runtime:stop_jobs",
        "1-0",
        "j-9",
        "rt-1",
    )
    assert record.error_code == "invalid_request"
    assert record.error == results.results[0].error_message
    assert "reason" in record.error


async def test_start_job_for_an_unknown_runtime_creates_it(world: World) -> None:
    results = InMemoryJobResults()
    start = handler(world, OpKind.START, results)
    await start(
        entry(
            {"runtime_id": "new-1", "spec": '{"command": ["x"]}', "team_id": "t"},
            stream="runtime:start_jobs",
        )
    )
    record = await world.record("new-1")
    assert (record.status, record.team_id) == (Status.RUNNING, "t")
    assert results.results[0].container_id == record.container_id


async def test_infrastructure_failure_retries_then_reports(world: World) -> None:
    await world.create()
    results = InMemoryJobResults()
    stop = handler(world, OpKind.STOP, results)
    world.driver.fail_next("stop", DriverError("engine down"))
    job = {"runtime_id": "rt-1", "reason": "idle"}
    with pytest.raises(RetryLater):
        await stop(entry(job, deliveries=1))
    assert results.results == []
    await world.do(OpKind.START)  # the failed stop left it in error
    world.driver.fail_next("stop", DriverError("engine down"))
    await stop(entry(job, deliveries=3))  # the last delivery reports instead of retrying
    assert results.results[-1].error_code is ErrorCode.SERVICE_UNAVAILABLE


async def test_unpublishable_result_leaves_the_entry_for_later(world: World) -> None:
    await world.create()
    results = InMemoryJobResults()
    results.unavailable = True
    with pytest.raises(RetryLater):
        await handler(world, OpKind.STOP, results)(entry({"runtime_id": "rt-1", "reason": "idle"}))


class UnreachableRuntimes(InMemoryRuntimeStore):
    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        raise StoreUnavailable("database unavailable: connection refused")


async def test_a_store_fault_before_the_operation_leaves_the_entry_for_later(
    world: World,
) -> None:
    results = InMemoryJobResults()
    start = JobHandler(
        OpKind.START, world.lifecycle, UnreachableRuntimes(world.log), results, world.clock, 0, 3
    )
    job = {"runtime_id": "rt-new", "spec": '{"command": ["x"]}', "job_id": "job-1"}
    with pytest.raises(RetryLater):  # not the StoreUnavailable itself: no "handler bug"
        await start(entry(job, stream="runtime:start_jobs"))
    assert results.results == []


async def test_an_unexpected_decoding_error_is_the_entrys_failure_not_a_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RecursionError("a decoder bug")

    monkeypatch.setattr("runplane.workers.jobs.handler.decode_job", broken)
    results = InMemoryJobResults()
    await handler(world, OpKind.STOP, results)(entry({"runtime_id": "rt-1", "job_id": "j-9"}))
    [result] = results.results
    assert (result.job_id, result.error_code) == ("j-9", ErrorCode.INVALID_REQUEST)
    assert result.error_message == "entry could not be decoded as a job"


async def test_text_that_is_not_unicode_is_never_echoed_into_a_result(world: World) -> None:
    results = InMemoryJobResults()
    fields = {"runtime_id": "rt-\ud800", "job_id": "j-\ud800", "reason": "idle"}
    await handler(world, OpKind.STOP, results)(entry(fields, "4-0"))
    [result] = results.results
    assert (result.job_id, result.runtime_id) == ("runtime:stop_jobs/4-0", "")
    assert result.error_code is ErrorCode.INVALID_REQUEST
