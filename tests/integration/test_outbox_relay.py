"""The outbox relay on SQLite and a real Redis: order, crash safety (each event
published once), one leader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio
from sqlalchemy import text

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.event_publisher import RedisEventPublisher
from runplane.adapters.redis.leases import RedisLeaseStore
from runplane.adapters.redis.names import lease_key
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.migrate import upgrade_database
from runplane.adapters.sql.operation_log import SqlOperationLog
from runplane.adapters.sql.outbox import SqlOutbox, watch_commits
from runplane.adapters.sql.runtime_store import SqlRuntimeStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.bootstrap.assembly import wake_from_any_thread
from runplane.domain.lifecycle_events import OutboxEvent
from runplane.domain.operations import OpKind, OpSource
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle
from runplane.testing.driver import InMemoryDriver
from runplane.workers.leadership import Leadership
from runplane.workers.outbox_relay import OutboxRelay
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.streams import wait_until


class Setup:
    def __init__(self, db: SqlDatabase, client: redis.asyncio.Redis, stream: str) -> None:
        self.db = db
        self.client = client
        self.stream = stream
        self.outbox = SqlOutbox(db)
        self.leases = RedisLeaseStore(client)
        deps = Dependencies(
            runtimes=SqlRuntimeStore(db),
            operations=SqlOperationLog(db),
            leases=self.leases,
            drivers={"memory": InMemoryDriver()},
            clock=SystemClock(),
            tokens=SecretTokenGenerator(),
        )
        self.life = Lifecycle.build(deps, "memory")
        self.relays: list[OutboxRelay] = []

    def relay(self, publisher: object | None = None) -> OutboxRelay:
        leadership = Leadership(
            self.leases, SecretTokenGenerator(), f"relay-{self.stream}", ttl_ms=2_000
        )
        relay = OutboxRelay(
            self.outbox,
            publisher or RedisEventPublisher(self.client, stream=self.stream),  # type: ignore[arg-type]
            leadership,
            SystemClock(),
        )
        self.relays.append(relay)
        return relay

    async def stream_events(self) -> list[dict[str, object]]:
        entries = await self.client.xrange(self.stream)
        return [json.loads(fields["event"]) for _, fields in entries]

    async def churn(self, runtime_id: str) -> None:
        await self.life.create.handle(
            CreateRequest(spec={"command": ["x"]}, op_source=OpSource.CLI, runtime_id=runtime_id)
        )
        for op in (OpKind.STOP, OpKind.START, OpKind.PAUSE):
            request = OperationRequest(runtime_id, OpSource.CLI, reason="requested")
            await self.life[op].handle(request)


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def setup(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
) -> AsyncIterator[Setup]:
    # Postgres writes the hot statements on asyncpg itself: its commits wake the
    # relay another way than SQLAlchemy's commit event (native_pg.py).
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    else:
        url = postgres_server.create_database(f"relay_{uuid.uuid4().hex[:10]}")
    db = SqlDatabase.from_url(url)
    await upgrade_database(db)
    client = connect(redis_server.url)
    setup = Setup(db, client, f"events-{uuid.uuid4().hex[:8]}")
    yield setup
    for relay in setup.relays:
        await relay.leadership.release()
    await client.aclose()
    await db.dispose()


async def test_relay_publishes_durable_events_in_version_order(setup: Setup) -> None:
    for i in range(3):
        await setup.churn(f"r{i}")
    relay = setup.relay()
    while await relay.step():
        pass
    events = await setup.stream_events()
    assert {e["type"] for e in events} == {
        "runtime.create",
        "runtime.start",
        "runtime.stop",
        "runtime.pause",
    }
    for runtime_id in ("r0", "r1", "r2"):
        sequences = [int(str(e["sequence"])) for e in events if e["subject"] == runtime_id]
        assert sequences == sorted(sequences)
        assert len(sequences) == 5  # create, start, stop, start, pause
    assert await setup.outbox.pending() == []


async def test_transient_events_reach_the_live_channel_only(setup: Setup) -> None:
    pubsub = setup.client.pubsub()
    await pubsub.subscribe("runplane:events:live")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await setup.churn("live-1")
    await setup.relay().step()
    seen = []
    while (message := await pubsub.get_message(timeout=0.5)) is not None:
        seen.append(json.loads(message["data"])["type"])
    await pubsub.aclose()
    assert "runtime.state.changed" in seen
    assert "runtime.state.changed" not in {e["type"] for e in await setup.stream_events()}


class CrashAfterPublish:
    """Publishes, then fails as a crash before `mark_sent` would."""

    def __init__(self, inner: RedisEventPublisher) -> None:
        self.inner = inner

    async def publish(self, events: Sequence[OutboxEvent]) -> None:
        await self.inner.publish(events)
        raise ConnectionError("crashed after publishing")


async def test_a_crash_after_publishing_then_a_new_leader_publishes_each_event_once(
    setup: Setup,
) -> None:
    pubsub = setup.client.pubsub()
    await pubsub.subscribe("runplane:events:live")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await setup.churn("crash-1")
    publisher = RedisEventPublisher(setup.client, stream=setup.stream)
    crashing = setup.relay(CrashAfterPublish(publisher))
    with contextlib.suppress(ConnectionError):
        await crashing.step()
    await crashing.leadership.release()  # it died
    assert await setup.outbox.pending()  # nothing was marked sent
    relay = setup.relay()
    while await relay.step():
        pass
    ids = [e["id"] for e in await setup.stream_events()]
    assert ids
    assert len(ids) == len(set(ids))  # each durable event once on the stream
    live: list[str] = []
    while (
        message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
    ) is not None:
        live.append(json.loads(message["data"])["id"])
    await pubsub.aclose()
    assert set(ids) <= set(live)
    assert len(live) == len(set(live))  # and each event once on the channel
    assert await setup.outbox.pending() == []


async def test_only_one_relay_leads(setup: Setup) -> None:
    await setup.churn("lead-1")
    first, second = setup.relay(), setup.relay()
    published = await asyncio.gather(first.step(), second.step())
    assert sorted(published) == [False, True]
    await setup.churn("lead-2")
    assert not await (second if published[0] else first).step()


async def test_a_running_relay_publishes_and_gives_its_lease_back_on_stop(setup: Setup) -> None:
    relay = setup.relay()
    running = asyncio.create_task(relay.run())
    await setup.churn("run-1")

    async def all_sent() -> bool:
        return await setup.outbox.pending() == []

    await wait_until(all_sent)
    relay.request_stop()
    await asyncio.wait_for(running, 5)
    assert len(await setup.stream_events()) == 5
    assert await setup.client.get(lease_key(relay.leadership.name)) is None


async def test_a_commit_of_outbox_rows_wakes_an_idle_relay_and_other_commits_do_not(
    setup: Setup,
) -> None:
    woken: list[int] = []
    relay = OutboxRelay(
        setup.outbox,
        RedisEventPublisher(setup.client, stream=setup.stream),
        Leadership(setup.leases, SecretTokenGenerator(), f"relay-{setup.stream}", ttl_ms=2_000),
        SystemClock(),
        poll_interval_s=3600.0,  # only a wake can make it publish within the test
        idle_poll_max_s=3600.0,
    )
    setup.relays.append(relay)

    def wake() -> None:
        woken.append(1)
        relay.wake()

    watch_commits(setup.db, wake_from_any_thread(wake))
    running = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: relay.leadership.leading)  # its first round ran: idle

        await setup.db.write(lambda connection: connection.execute(text("SELECT 1")))
        assert not woken  # a commit that put no event in the outbox
        await setup.churn("woken-1")
        assert woken  # the churn's commits

        async def all_sent() -> bool:
            return await setup.outbox.pending() == [] and len(await setup.stream_events()) == 5

        await wait_until(all_sent, timeout_s=10)
    finally:
        relay.request_stop()
        await asyncio.wait_for(running, 10)
