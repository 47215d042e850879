"""The health events consumer's batches on SQLite and a real Redis: a burst
over many runtimes folds to the same records as one event at a time would, and
an entry a batch cannot apply keeps the saved position before it until it is
applied, however many later entries of other runtimes were."""

from __future__ import annotations

from pathlib import Path

from runplane.adapters.redis.offsets import RedisOffsetStore
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.operations import OpSource
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.streams.offset import OffsetConsumer
from runplane.testing.driver import InMemoryDriver
from runplane.workers.health_consumer import health_events_consumer
from tests.support.health_real import RealHealth, looping, real_health
from tests.support.redis import RedisServer
from tests.support.streams import fast, wait_until

E = HealthEventType


async def create_on(system: RealHealth, runtime_id: str) -> RuntimeRecord:
    created = await system.lifecycle.create.handle(
        CreateRequest(spec={"command": ["x"]}, op_source=OpSource.CLI, runtime_id=runtime_id)
    )
    assert created.record is not None, created
    return created.record


async def add(system: RealHealth, events: list[HealthEvent]) -> list[str]:
    async with system.client.pipeline(transaction=False) as pipe:
        for one in events:
            pipe.xadd(system.health_stream, one.as_fields())  # type: ignore[arg-type]
        ids: list[str] = await pipe.execute()
    return ids


async def record_of(system: RealHealth, runtime_id: str) -> RuntimeRecord:
    record = await system.deps.runtimes.get(runtime_id)
    assert record is not None
    return record


async def test_a_burst_over_many_runtimes_ends_in_the_states_its_events_make(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with real_health(tmp_path, redis_server.url, InMemoryDriver()) as system:
        records = [await create_on(system, f"r{n}") for n in range(6)]
        now = system.deps.clock.now()
        cycle = [E.PROBE_FAILED, E.CONTAINER_EXITED, E.CONTAINER_EXITED, E.PROBE_RECOVERED]
        events = [
            HealthEvent(r.runtime_id, r.container_id or "", kind, now)
            for kind in cycle * 5 + [E.INSPECT_UNHEALTHY] * 20
            for r in records
        ]
        ids = await add(system, events)
        consumer = system.consumer()
        async with looping(consumer):
            await wait_until(lambda: consumer.position == ids[-1], timeout_s=40)
        for record in records:
            after = await record_of(system, record.runtime_id)
            assert (after.status, after.engine_health) == (Status.RUNNING, "inspect_unhealthy")
            assert after.version == record.version + 10  # five round trips to unreachable
            shown = [
                (s["status"], s["engine_health"])
                for s in await system.snapshot_entries(record.runtime_id)
            ]
            assert shown[-1] == ("running", "inspect_unhealthy")
            assert shown.count(("engine_unreachable", "exited")) == 5


async def test_an_entry_a_batch_cannot_apply_holds_the_position_until_applied(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with real_health(tmp_path, redis_server.url, InMemoryDriver()) as system:
        held, free = await create_on(system, "held"), await create_on(system, "free")
        assert await system.leases.try_acquire("held", "a-slow-operation", 60_000)
        now = system.deps.clock.now()
        ids = await add(
            system,
            [
                HealthEvent("free", free.container_id or "", E.PROBE_FAILED, now),
                HealthEvent("held", held.container_id or "", E.CONTAINER_EXITED, now),
                HealthEvent("free", free.container_id or "", E.INSPECT_UNHEALTHY, now),
            ],
        )
        offsets = RedisOffsetStore(system.client)
        settings = fast(max_deliveries=1_000, backoff_base_s=0.02, backoff_cap_s=0.02)

        def consumer() -> OffsetConsumer:
            return health_events_consumer(
                system.stream_client,
                offsets,
                system.applier(lease_wait_ms=10),
                settings=settings,
                stream=system.health_stream,
                consumer="batch-test",
            )

        async def free_applied() -> bool:
            return (await record_of(system, "free")).engine_health == "inspect_unhealthy"

        async with looping(consumer()):
            await wait_until(free_applied, timeout_s=10)
        # The later entry of another runtime was applied, the held one was not,
        # and the saved position stops before it.
        assert (await record_of(system, "free")).engine_health == "inspect_unhealthy"
        assert await record_of(system, "held") == held
        assert await offsets.load("batch-test", system.health_stream) == ids[0]
        await system.leases.release("held", "a-slow-operation")
        second = consumer()
        async with looping(second):
            await wait_until(lambda: second.position == ids[-1], timeout_s=20)
        after = await record_of(system, "held")
        assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, "exited")
        assert (await record_of(system, "free")).engine_health == "inspect_unhealthy"


async def test_a_batch_that_fails_outright_is_applied_one_by_one(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with real_health(tmp_path, redis_server.url, InMemoryDriver()) as system:
        record = await create_on(system, "r")
        applier = system.applier()

        async def broken(_events: object) -> list[bool]:
            raise RuntimeError("a bug in the batch path")

        applier.apply_batch = broken  # type: ignore[method-assign]
        now = system.deps.clock.now()
        cid = record.container_id or ""
        ids = await add(
            system,
            [
                HealthEvent("r", cid, E.PROBE_FAILED, now),
                HealthEvent("r", cid, E.CONTAINER_EXITED, now),
                HealthEvent("r", cid, E.PROBE_FAILED, now),
            ],
        )
        consumer = system.consumer(applier)
        async with looping(consumer):
            await wait_until(lambda: consumer.position == ids[-1], timeout_s=20)
        after = await record_of(system, "r")
        assert (after.status, after.engine_health) == (Status.ENGINE_UNREACHABLE, "probe_failed")
