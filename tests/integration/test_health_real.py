"""Health monitoring end to end on real processes, SQLite and a real Redis:
kill -9 to engine_unreachable and back (restart policy), probes failing then
recovering, a stop cut between its two writes settled by the reconciler,
10,000 repeated events that publish snapshots only on changes, and a burst of
repeats that writes only what its first event writes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.process_files import parse_container_id
from runplane.domain.drivers import ContainerState
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.records import RuntimeRecord, StatusChange
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.testing.driver import InMemoryDriver
from tests.support.health_real import RealHealth, looping, real_health
from tests.support.redis import RedisServer
from tests.support.streams import wait_until

E = HealthEventType


@pytest.fixture
async def system(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[RealHealth]:
    driver = ProcessDriver(tmp_path / "runtimes")
    async with real_health(tmp_path, redis_server.url, driver) as built:
        yield built
        for info in await driver.list_containers():
            await driver.remove(info.container_id)


async def create(system: RealHealth, runtime_id: str, spec: dict[str, Any]) -> RuntimeRecord:
    result = await system.lifecycle.create.handle(
        CreateRequest(spec=spec, op_source=OpSource.CLI, runtime_id=runtime_id)
    )
    assert result.record is not None, result
    assert result.record.status is Status.RUNNING
    return result.record


async def record_of(system: RealHealth, runtime_id: str) -> RuntimeRecord:
    record = await system.deps.runtimes.get(runtime_id)
    assert record is not None
    return record


def kill_9(record: RuntimeRecord) -> None:
    parsed = parse_container_id(record.container_id or "")
    assert parsed is not None
    os.kill(parsed[0], signal.SIGKILL)


SLEEPER = {
    "command": ["sleep", "300"],
    "health": {"type": "exec", "command": ["true"], "initial_delay_s": 0, "period_s": 1},
}


async def test_kill_9_makes_it_unreachable_within_a_period_and_a_second(
    system: RealHealth,
) -> None:
    record = await create(system, "victim", SLEEPER)
    async with looping(system.monitor(), system.consumer()):
        await wait_until(
            lambda: _health_is(system, "victim", "healthy"), timeout_s=5
        )  # announced and consumed
        # The snapshot is published after the record is written: wait for it too.
        await wait_until(lambda: _last_snapshot_is(system, "victim", "healthy"), timeout_s=5)
        before = len(await system.snapshot_entries("victim"))
        kill_9(record)
        await wait_until(
            lambda: _status_is(system, "victim", Status.ENGINE_UNREACHABLE), timeout_s=5
        )
        await asyncio.sleep(2.1)  # two more rounds: nothing is reported twice
    after = await record_of(system, "victim")
    assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, "exited")
    exits = [e for e in await system.health_events("victim") if e.event_type is E.CONTAINER_EXITED]
    assert len(exits) == 1
    assert exits[0].details["signal"] == signal.SIGKILL
    assert exits[0].details["exit_code"] == 128 + signal.SIGKILL
    new = (await system.snapshot_entries("victim"))[before:]
    assert [(s["status"], s["engine_health"]) for s in new] == [("engine_unreachable", "exited")]
    row = await system.rows.get("victim")
    assert row is not None
    assert row.event_type is E.CONTAINER_EXITED


async def test_on_failure_brings_a_killed_runtime_back(system: RealHealth) -> None:
    spec = {**SLEEPER, "restart_policy": {"mode": "on-failure"}}
    record = await create(system, "phoenix", spec)
    async with looping(system.monitor(), system.consumer(), system.scheduler):
        await wait_until(lambda: _health_is(system, "phoenix", "healthy"), timeout_s=20)
        kill_9(record)
        await wait_until(lambda: _running_again(system, "phoenix", record), timeout_s=30)
        await wait_until(lambda: _health_is(system, "phoenix", "healthy"), timeout_s=20)
    after = await record_of(system, "phoenix")
    assert (await system.driver.inspect(after.container_id or "")).state is ContainerState.RUNNING
    entries = await system.deps.operations.list_for_runtime("phoenix")
    restart = entries[0]
    assert (restart.op, restart.op_source, restart.outcome) == (
        OpKind.RESTART,
        OpSource.HEALTH,
        Outcome.SUCCESS,
    )
    assert restart.status_from is Status.ENGINE_UNREACHABLE
    assert restart.reason == "restart_policy on-failure: container_exited"


async def test_a_probe_failing_three_times_then_recovering_fires_once_each(
    system: RealHealth,
) -> None:
    statuses = [500, 500, 500, 503, 200]
    server = await asyncio.start_server(_answering(statuses), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = {
        "command": ["sleep", "300"],
        "health": {
            "type": "http",
            "port": port,
            "path": "/healthz",
            "initial_delay_s": 0,
            "period_s": 0.1,
            "failure_threshold": 3,
        },
    }
    async with server:
        await create(system, "flaky", spec)
        async with looping(system.monitor(interval_s=0.05), system.consumer()):
            await wait_until(lambda: _reported(system, "flaky", E.PROBE_RECOVERED), timeout_s=5)
            await asyncio.sleep(0.5)  # healthy probes keep coming: no more events
            await wait_until(lambda: _health_is(system, "flaky", "healthy"), timeout_s=5)
    kinds = [e.event_type for e in await system.health_events("flaky")]
    assert kinds == [E.CONTAINER_STARTED, E.PROBE_FAILED, E.PROBE_RECOVERED]
    shown = [s["engine_health"] for s in await system.snapshot_entries("flaky")]
    assert shown == ["healthy", "probe_failed", "healthy"]


def _answering(statuses: list[int]) -> Any:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        status = statuses.pop(0) if statuses else 200
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return answer


@pytest.mark.parametrize("driver_called", [True, False])
async def test_a_stop_cut_between_its_two_writes_is_settled_by_the_reconciler(
    system: RealHealth, driver_called: bool
) -> None:
    record = await create(system, "halfway", {"command": ["sleep", "300"]})
    # What a stop did before runplane was killed: its lease (never released), the
    # first CAS into `stopping`, and perhaps the driver call.
    assert await system.leases.try_acquire("halfway", "dead-instance", 500)
    now = system.deps.clock.now()
    await system.deps.runtimes.compare_and_swap(
        StatusChange(
            "halfway",
            Status.RUNNING,
            record.version,
            Status.STOPPING,
            now,
            status_deadline=now + timedelta(seconds=1),
        )
    )
    if driver_called:
        await system.driver.stop(record.container_id or "")
    reconciler = system.reconciler()  # "after restart": a new instance
    assert not await reconciler.reconcile_once()  # its lease is still held
    await asyncio.sleep(1.1)
    found = await reconciler.reconcile_once()
    assert found["settled_stopping"] == 1
    after = await record_of(system, "halfway")
    assert after.status is Status.STOPPED
    assert (await system.driver.inspect(record.container_id or "")).state is ContainerState.EXITED
    entry = (await system.deps.operations.list_for_runtime("halfway"))[0]
    assert (entry.op, entry.op_source, entry.status_from, entry.status_to) == (
        OpKind.STOP,
        OpSource.RECONCILER,
        Status.STOPPING,
        Status.STOPPED,
    )
    assert entry.details["inferred"] is True
    assert entry.reason.startswith("stopping: its operation was interrupted")


async def test_ten_thousand_repeated_events_publish_snapshots_only_on_changes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with real_health(tmp_path, redis_server.url, InMemoryDriver()) as system:
        containers = {}
        for n in range(5):
            created = await system.lifecycle.create.handle(
                CreateRequest(spec={"command": ["x"]}, op_source=OpSource.CLI, runtime_id=f"r{n}")
            )
            assert created.record is not None
            containers[f"r{n}"] = created.record.container_id or ""
        now = system.deps.clock.now()
        async with system.client.pipeline(transaction=False) as pipe:
            for i in range(10_000):
                runtime_id = f"r{i % 5}"
                kind = E.PROBE_FAILED if (i // 1_000) % 2 else E.CONTAINER_STARTED
                fields = HealthEvent(runtime_id, containers[runtime_id], kind, now).as_fields()
                pipe.xadd(system.health_stream, fields)  # type: ignore[arg-type]
            ids = await pipe.execute()
        consumer = system.consumer()
        async with looping(consumer):
            await wait_until(lambda: consumer.position == ids[-1], timeout_s=40)
        assert await system.client.xlen(system.snapshots_stream) == 50
        for n in range(5):
            shown = [s["engine_health"] for s in await system.snapshot_entries(f"r{n}")]
            assert shown == ["healthy", "probe_failed"] * 5


class Statements:
    """Counts the SQL statements every engine runs while counting: writes by
    their first word, reads of the runtimes table apart."""

    def __init__(self) -> None:
        self.writes: collections.Counter[str] = collections.Counter()
        self.record_reads = 0

    def __call__(self, _conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            self.writes[verb] += 1
        elif verb == "SELECT" and "FROM runtimes" in statement:
            self.record_reads += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        event.listen(Engine, "before_cursor_execute", self)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self)


async def test_a_burst_of_repeats_writes_what_its_first_event_writes(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """2,000 alike inspect_unhealthy events: one summary write, one snapshot,
    one read of the record (trusted for the whole burst here), nothing else."""
    async with real_health(tmp_path, redis_server.url, InMemoryDriver()) as system:
        record = await create_on(system, "burst")
        fields = HealthEvent(
            "burst", record.container_id or "", E.INSPECT_UNHEALTHY, system.deps.clock.now()
        ).as_fields()
        async with system.client.pipeline(transaction=False) as pipe:
            for _ in range(2_000):
                pipe.xadd(system.health_stream, fields)  # type: ignore[arg-type]
            ids = await pipe.execute()
        consumer = system.consumer(system.applier(trust_record_s=3_600))
        statements = Statements()
        with statements.counting():
            async with looping(consumer):
                await wait_until(lambda: consumer.position == ids[-1], timeout_s=40)
        assert statements.writes == {"UPDATE": 1}  # the summary, without a version bump
        assert statements.record_reads == 1
        after = await record_of(system, "burst")
        assert (after.version, after.engine_health) == (record.version, "inspect_unhealthy")
        shown = [(s["status"], s["engine_health"]) for s in await system.snapshot_entries("burst")]
        assert shown == [("running", "inspect_unhealthy")]
        assert (
            await system.deps.operations.list_for_runtime("burst")
            == (await system.deps.operations.list_for_runtime("burst"))[-1:]
        )  # the create's entry only


async def create_on(system: RealHealth, runtime_id: str) -> RuntimeRecord:
    created = await system.lifecycle.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.CLI, runtime_id=runtime_id)
    )
    assert created.record is not None, created
    return created.record


async def _last_snapshot_is(system: RealHealth, runtime_id: str, summary: str) -> bool:
    entries = await system.snapshot_entries(runtime_id)
    return bool(entries) and entries[-1]["engine_health"] == summary


async def _health_is(system: RealHealth, runtime_id: str, summary: str) -> bool:
    return (await record_of(system, runtime_id)).engine_health == summary


async def _status_is(system: RealHealth, runtime_id: str, status: Status) -> bool:
    return (await record_of(system, runtime_id)).status is status


async def _running_again(system: RealHealth, runtime_id: str, before: RuntimeRecord) -> bool:
    now = await record_of(system, runtime_id)
    return now.status is Status.RUNNING and now.container_id != before.container_id


async def _reported(system: RealHealth, runtime_id: str, kind: E) -> bool:
    return any(e.event_type is kind for e in await system.health_events(runtime_id))
