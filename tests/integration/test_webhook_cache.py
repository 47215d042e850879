"""The webhook set cached per instance (services/webhooks/cached.py) with the
change counter on a real Redis: two CachedWebhooks on one store stand for two
instances on one database. A change made through one is matched by the other's
next fan-out; with no change, the store is read once; with the counter
unreachable, a change still shows within the cache's age bound."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio

from runplane.adapters.redis.client import connect
from runplane.adapters.redis.counters import RedisChangeCounter
from runplane.domain.errors import StoreUnavailable
from runplane.domain.webhooks.model import Webhook
from runplane.services.webhooks.cached import CachedWebhooks
from runplane.testing.webhooks import InMemoryWebhookStore
from tests.support.clock import FakeClock
from tests.support.redis import RedisServer, free_port
from tests.support.webhooks import make_webhook


class CountingStore(InMemoryWebhookStore):
    def __init__(self) -> None:
        super().__init__()
        self.matching_reads = 0

    async def matching(self, team_id: str | None) -> list[Webhook]:
        self.matching_reads += 1
        return await super().matching(team_id)


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


def instances(
    client: redis.asyncio.Redis, store: InMemoryWebhookStore, clock: FakeClock
) -> tuple[CachedWebhooks, CachedWebhooks]:
    key = f"test:webhooks:{uuid.uuid4().hex}"
    return (
        CachedWebhooks(store, RedisChangeCounter(client, key), clock),
        CachedWebhooks(store, RedisChangeCounter(client, key), clock),
    )


async def test_a_webhook_added_on_one_instance_is_matched_on_the_other_at_once(
    client: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    here, there = instances(client, InMemoryWebhookStore(), clock)
    assert await there.matching("team-a") == []  # cached: no webhook
    await here.add(make_webhook("wh-1", at=clock.now()), "whsec_AAAA")
    assert [w.id for w in await there.matching("team-a")] == ["wh-1"]
    assert [w.id for w in await here.matching("team-a")] == ["wh-1"]


async def test_a_deleted_or_disabled_webhook_stops_matching_everywhere(
    client: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    here, there = instances(client, InMemoryWebhookStore(), clock)
    for webhook_id in ("wh-1", "wh-2"):
        await here.add(make_webhook(webhook_id, at=clock.now()), "whsec_AAAA")
    assert [w.id for w in await there.matching("team-a")] == ["wh-1", "wh-2"]
    assert await here.delete("wh-1")
    assert [w.id for w in await there.matching("team-a")] == ["wh-2"]
    assert await here.disable("wh-2", "failing", clock.now())
    assert await there.matching("team-a") == []


async def test_without_a_change_the_store_is_read_once_per_team(
    client: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    store = CountingStore()
    here, _ = instances(client, store, clock)
    await here.add(make_webhook("wh-1", at=clock.now()), "whsec_AAAA")
    for _ in range(5):
        assert [w.id for w in await here.matching("team-a")] == ["wh-1"]
    assert await here.matching("team-b") == []
    assert store.matching_reads == 2


async def test_a_change_not_signalled_shows_within_the_age_bound(
    client: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    store = InMemoryWebhookStore()
    key = f"test:webhooks:{uuid.uuid4().hex}"
    there = CachedWebhooks(store, RedisChangeCounter(client, key), clock, max_age_s=5)
    unreachable = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
    try:
        here = CachedWebhooks(store, RedisChangeCounter(unreachable, key), clock)
        assert await there.matching("team-a") == []
        await here.add(make_webhook("wh-1", at=clock.now()), "whsec_AAAA")  # not signalled
        assert await there.matching("team-a") == []  # the old set, still young
        clock.advance(5)
        assert [w.id for w in await there.matching("team-a")] == ["wh-1"]
        with pytest.raises(StoreUnavailable):
            await here.matching("team-a")  # the fan-out retries the entry later
    finally:
        await unreachable.aclose()


async def test_the_age_bound_holds_when_the_clock_is_set_back(
    client: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    store = CountingStore()
    here, _ = instances(client, store, clock)
    await here.matching("team-a")
    clock.set(clock.now() - timedelta(hours=1))
    await here.matching("team-a")
    assert store.matching_reads == 2


async def test_counter_reads_asked_together_share_one_get(client: redis.asyncio.Redis) -> None:
    key = f"test:webhooks:{uuid.uuid4().hex}"
    counter, other = RedisChangeCounter(client, key), RedisChangeCounter(client, key)
    await client.config_resetstat()
    assert await asyncio.gather(*(counter.current() for _ in range(20))) == [0] * 20
    stats = await client.info("commandstats")
    assert stats["cmdstat_get"]["calls"] == 1
    await other.bump()
    # A read asked after the bump returned is sent after it: it sees it.
    first = asyncio.create_task(counter.current())
    second = asyncio.create_task(counter.current())
    await asyncio.sleep(0)  # both have asked
    first.cancel()  # one caller giving up leaves the other's read alone
    assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_every_caller_of_a_shared_read_hears_redis_is_unreachable() -> None:
    unreachable = connect(f"redis://127.0.0.1:{free_port()}/0", retries=1)
    try:
        counter = RedisChangeCounter(unreachable, "test:webhooks:down")
        outcomes = await asyncio.gather(
            *(counter.current() for _ in range(3)), return_exceptions=True
        )
        assert [type(o) for o in outcomes] == [StoreUnavailable] * 3
    finally:
        await unreachable.aclose()
