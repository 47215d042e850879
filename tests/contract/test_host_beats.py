"""HostBeats contract: the in-memory fake and Redis keep agents' beats alike;
on Redis a beat expires by itself, and a hostile beat key or set member is
skipped (logged), never a crash. Host ids are unique per test: the Redis is
shared by the session, so each test looks at its own hosts only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from runplane.adapters.redis.host_beats import RedisHostBeats
from runplane.adapters.redis.names import HOSTS_BEATING, host_beat_key
from runplane.domain.host_details import HostDetails
from runplane.domain.hosts import Capacity, InvalidHost
from runplane.ports.hosts import HostBeats
from runplane.testing.host_beats import InMemoryHostBeats
from tests.support.redis_target import RedisTarget


def details(host_id: str, zone: str = "a") -> HostDetails:
    return HostDetails(
        host_id=host_id,
        address="10.1.2.3",
        labels={"zone": zone},
        capacity=Capacity(cpus=2.0, memory_mb=1024),
        drivers=("process",),
    )


@pytest.fixture
def host_id() -> str:
    return f"h-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def client(redis_target: RedisTarget) -> AsyncIterator[redis.asyncio.Redis]:
    # Bytes, as the adapter needs: one non-UTF-8 member must not fail a read.
    client = redis_target.connect(decode_responses=False)
    yield client
    await client.aclose()


class HostBeatsContract:
    @pytest.fixture
    def beats(self) -> HostBeats:
        raise NotImplementedError

    async def test_a_beat_is_read_back_with_its_details(
        self, beats: HostBeats, host_id: str
    ) -> None:
        assert host_id not in await beats.read()
        await beats.beat(details(host_id), 30)
        assert (await beats.read())[host_id] == details(host_id)

    async def test_the_last_beat_wins(self, beats: HostBeats, host_id: str) -> None:
        await beats.beat(details(host_id), 30)
        await beats.beat(details(host_id, zone="b"), 30)
        assert (await beats.read())[host_id].labels == {"zone": "b"}

    async def test_invalid_details_are_never_written(self, beats: HostBeats, host_id: str) -> None:
        with pytest.raises(InvalidHost):
            await beats.beat(HostDetails(host_id, labels={"bad key": "v"}), 30)
        assert host_id not in await beats.read()


class TestInMemoryHostBeats(HostBeatsContract):
    @pytest.fixture
    def beats(self) -> HostBeats:
        return InMemoryHostBeats()


class TestRedisHostBeats(HostBeatsContract):
    @pytest.fixture
    def beats(self, client: redis.asyncio.Redis) -> HostBeats:
        return RedisHostBeats(client)

    async def test_a_beat_expires_by_itself_and_leaves_the_set(
        self, client: redis.asyncio.Redis, host_id: str
    ) -> None:
        beats = RedisHostBeats(client)
        await beats.beat(details(host_id), 0.2)
        assert 0 < await client.pttl(host_beat_key(host_id)) <= 200
        assert await client.sismember(HOSTS_BEATING, host_id)
        for _ in range(200):
            if not await client.exists(host_beat_key(host_id)):
                break
            await asyncio.sleep(0.05)
        assert host_id not in await beats.read()
        assert not await client.sismember(HOSTS_BEATING, host_id)

    async def test_hostile_beats_are_skipped_and_the_rest_read(
        self, client: redis.asyncio.Redis, host_id: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        beats = RedisHostBeats(client)
        await beats.beat(details(host_id), 30)
        garbage, other, wrong_name = (f"{host_id}-{n}" for n in ("garbage", "other", "wrong"))
        await client.set(host_beat_key(garbage), "{not json")
        await client.set(host_beat_key(other), '{"host_id": "x", "capacity": {"cpus": -1}}')
        await client.set(host_beat_key(wrong_name), '{"host_id": "someone-else"}')
        await client.sadd(HOSTS_BEATING, garbage, other, wrong_name, "bad:id", "x" * 300)
        await client.execute_command("SADD", HOSTS_BEATING, b"\xff\xfe")
        read = await beats.read()
        assert read[host_id] == details(host_id)
        assert not {garbage, other, wrong_name, "bad:id"} & set(read)
        # Invalid ids leave the set; a bad beat under a valid id stays until it expires.
        assert not await client.sismember(HOSTS_BEATING, "bad:id")
        assert not await client.sismember(HOSTS_BEATING, b"\xff\xfe")
        assert "host beat skipped" in caplog.text
        await client.delete(*(host_beat_key(h) for h in (garbage, other, wrong_name)))
        await client.srem(HOSTS_BEATING, garbage, other, wrong_name)
