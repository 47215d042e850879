"""Webhooks end to end on real parts: events XADDed to a real Redis stream, the
dispatcher (group consumer + delivery loop) on SQLite, the httpx sender, and a
real HTTP receiver on loopback. Every delivery is checked with the
standardwebhooks library."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio
from standardwebhooks import Webhook as StandardWebhook

from runplane.adapters.http.webhook_sender import HttpWebhookSender
from runplane.adapters.redis.client import connect_bytes
from runplane.adapters.secrets import SecretBox
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.webhook_store import SqlWebhookStore
from runplane.adapters.system import SecretTokenGenerator, SystemClock
from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.domain.webhooks.model import DeliveryStatus, Trigger, Webhook
from runplane.domain.webhooks.rules import RetrySchedule, parse_retry_schedule
from runplane.services.webhooks.delivery import GONE_REASON, Deliverer
from runplane.services.webhooks.management import WebhookService
from runplane.workers.webhook_dispatcher import (
    WebhookDeliveryLoop,
    WebhookFanout,
    webhook_consumer,
)
from tests.support.redis import RedisServer
from tests.support.store_backends import migrated_sqlite_url
from tests.support.streams import fast, running, unique, wait_until
from tests.support.webhooks import FakeResolver, Received, Receiver, make_event


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def client(redis_server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect_bytes(redis_server.url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def database_url(tmp_path: Path) -> str:
    return await migrated_sqlite_url(tmp_path)


@dataclass
class Dispatcher:
    """One instance's webhook parts over the shared database and stream."""

    database: SqlDatabase
    store: SqlWebhookStore
    sender: HttpWebhookSender
    service: WebhookService
    loop: WebhookDeliveryLoop
    fanout: WebhookFanout
    disabled: list[tuple[str, str]] = field(default_factory=list)


@asynccontextmanager
async def dispatcher(
    url: str,
    key_path: Path,
    *,
    schedule: str = "0.2,0.2,0.5",
    allow_private: bool = True,
    timeout_s: float = 2.0,
) -> AsyncIterator[Dispatcher]:
    clock, tokens = SystemClock(), SecretTokenGenerator()
    database = SqlDatabase.from_url(url)
    store = SqlWebhookStore(database, SecretBox(key_path))
    sender = HttpWebhookSender(clock, allow_private=allow_private, timeout_s=timeout_s)
    disabled: list[tuple[str, str]] = []

    async def on_disabled(webhook: Webhook, reason: str) -> None:
        disabled.append((webhook.id, reason))

    deliverer = Deliverer(
        store,
        sender,
        clock,
        schedule=RetrySchedule(parse_retry_schedule(schedule)),
        on_disabled=on_disabled,
    )
    service = WebhookService(
        store, deliverer, clock, tokens, resolver=FakeResolver(), allow_private=allow_private
    )
    loop = WebhookDeliveryLoop(store, deliverer, clock, poll_interval_s=0.05, claim_s=5)
    fanout = WebhookFanout(store, clock, tokens, on_added=loop.wake)
    try:
        yield Dispatcher(database, store, sender, service, loop, fanout, disabled)
    finally:
        await sender.aclose()
        await database.dispose()


@asynccontextmanager
async def dispatching(
    parts: Dispatcher, client: redis.asyncio.Redis, stream: str
) -> AsyncIterator[None]:
    consumer = webhook_consumer(
        client, parts.fanout, consumer="c1", settings=fast(), stream=stream, group="webhooks"
    )
    async with running(consumer):
        task = asyncio.create_task(parts.loop.run())
        try:
            yield
        finally:
            await asyncio.wait_for(parts.loop.stop(), 10)
            await asyncio.wait_for(task, 10)


async def publish(
    client: redis.asyncio.Redis, stream: str, *event_ids: str, team: str = "team-a"
) -> None:
    for event_id in event_ids:
        await client.xadd(
            stream,
            {EVENT_FIELD: make_event(event_id, team_id=team, at=SystemClock().now()).to_json()},
        )


def verified(secret: str, received: Received) -> dict[str, object]:
    """The envelope, once the standardwebhooks library accepted the signature."""
    payload: dict[str, object] = StandardWebhook(secret).verify(received.body, received.headers)
    return payload


async def test_every_delivery_verifies_and_a_team_gets_only_its_events(
    receiver: Receiver, client: redis.asyncio.Redis, database_url: str, tmp_path: Path
) -> None:
    stream = unique("events")
    async with dispatcher(database_url, tmp_path / "webhook.key") as parts:
        webhook, secret = await parts.service.create(url=f"{receiver.url}/hook", team_id="team-a")
        async with dispatching(parts, client, stream):
            await publish(client, stream, "evt-other", team="team-b")
            await publish(client, stream, "evt-1", "evt-2", "evt-3")
            await wait_until(lambda: len(receiver.posts()) >= 3)
            await asyncio.sleep(0.2)  # nothing else comes
        posts = receiver.posts()
        envelopes = [verified(secret, post) for post in posts]
        assert sorted(e["id"] for e in envelopes) == ["evt-1", "evt-2", "evt-3"]  # type: ignore[type-var]
        assert all(
            p.headers["webhook-id"] == e["id"] for p, e in zip(posts, envelopes, strict=True)
        )
        assert all(p.headers["content-type"] == "application/json" for p in posts)
        assert all(p.headers["webhook-signature"].startswith("v1,") for p in posts)
        assert {e["data"]["team_id"] for e in envelopes} == {"team-a"}  # type: ignore[index]
        logs = await parts.service.deliveries(webhook.id, "team-a")
        assert logs is not None
        assert {log.delivery.status for log in logs} == {DeliveryStatus.SUCCEEDED}
        assert all(log.attempts[0].status_code == 200 for log in logs)


async def test_a_receiver_that_fails_gets_the_event_after_retries_with_one_id(
    receiver: Receiver, client: redis.asyncio.Redis, database_url: str, tmp_path: Path
) -> None:
    stream = unique("events")
    receiver.answer(500, 503)
    async with dispatcher(database_url, tmp_path / "webhook.key") as parts:
        webhook, secret = await parts.service.create(url=f"{receiver.url}/hook", team_id=None)
        async with dispatching(parts, client, stream):
            await publish(client, stream, "evt-1")
            await wait_until(lambda: len(receiver.posts()) >= 3)
        posts = receiver.posts()
        assert [p.headers["webhook-id"] for p in posts] == ["evt-1"] * 3
        assert all(verified(secret, p)["id"] == "evt-1" for p in posts)
        gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
        assert all(gap >= 0.15 for gap in gaps), gaps  # 0.2 s ±10 % apart
        [log] = await parts.service.deliveries(webhook.id, None) or []
        assert log.delivery.status is DeliveryStatus.SUCCEEDED
        assert [(a.number, a.status_code, a.succeeded) for a in log.attempts] == [
            (1, 500, False),
            (2, 503, False),
            (3, 200, True),
        ]
        assert all(a.latency_ms >= 0 for a in log.attempts)
        assert log.attempts[0].error == "HTTP 500"


async def test_pending_retries_survive_a_restart(
    receiver: Receiver, client: redis.asyncio.Redis, database_url: str, tmp_path: Path
) -> None:
    stream = unique("events")
    key_path = tmp_path / "webhook.key"
    receiver.behaviour = lambda _: (503, {}, b"down")
    async with dispatcher(database_url, key_path, schedule="0.5,0.5,0.5,0.5") as first:
        webhook, secret = await first.service.create(url=f"{receiver.url}/hook", team_id=None)
        async with dispatching(first, client, stream):
            await publish(client, stream, "evt-1")
            await wait_until(lambda: len(receiver.posts()) >= 1)
    # runplane is down: an event arrives meanwhile, and the receiver comes back.
    await publish(client, stream, "evt-2")
    receiver.answer()
    async with dispatcher(database_url, key_path, schedule="0.5,0.5,0.5,0.5") as second:
        async with dispatching(second, client, stream):
            await wait_until(lambda: {"evt-1", "evt-2"} <= _succeeded_ids(receiver, secret))
        logs = await second.service.deliveries(webhook.id, None) or []
        assert {log.delivery.status for log in logs} == {DeliveryStatus.SUCCEEDED}
        assert sorted(log.delivery.event_id for log in logs) == ["evt-1", "evt-2"]
    first_event = [p.answered for p in receiver.posts() if p.headers["webhook-id"] == "evt-1"]
    assert first_event[0] == 503
    assert first_event[-1] == 200  # failed first, delivered after the restart


def _succeeded_ids(receiver: Receiver, secret: str) -> set[str]:
    return {str(verified(secret, p)["id"]) for p in receiver.posts() if p.answered == 200}


async def test_410_disables_the_webhook(
    receiver: Receiver, client: redis.asyncio.Redis, database_url: str, tmp_path: Path
) -> None:
    stream = unique("events")
    receiver.answer(410)
    async with dispatcher(database_url, tmp_path / "webhook.key") as parts:
        webhook, _ = await parts.service.create(url=f"{receiver.url}/hook", team_id=None)
        async with dispatching(parts, client, stream):
            await publish(client, stream, "evt-1")
            await wait_until(lambda: parts.disabled)
            await publish(client, stream, "evt-2")
            await asyncio.sleep(0.3)
        stored = await parts.store.get(webhook.id)
        assert stored is not None
        assert (stored.enabled, stored.disabled_reason) == (False, GONE_REASON)
        assert parts.disabled == [(webhook.id, GONE_REASON)]
        [log] = await parts.service.deliveries(webhook.id, None) or []
        assert (log.delivery.event_id, log.delivery.status) == ("evt-1", DeliveryStatus.ABANDONED)
        assert len(receiver.posts()) == 1


async def test_redirects_are_not_followed(
    receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    receiver.behaviour = lambda got: (
        (307, {"location": f"{receiver.url}/elsewhere"}, b"")
        if got.path == "/hook"
        else (200, {}, b"")
    )
    async with dispatcher(database_url, tmp_path / "webhook.key") as parts:
        webhook, _ = await parts.service.create(url=f"{receiver.url}/hook", team_id=None)
        outcome = await parts.service.send_test(webhook.id, None)
    assert outcome is not None
    _, attempt = outcome
    assert attempt is not None
    assert (attempt.succeeded, attempt.status_code) == (False, 307)
    assert "not followed" in (attempt.error or "")
    assert [r.path for r in receiver.received] == ["/hook"]


async def test_private_targets_are_refused_at_connect_time(
    receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    async with dispatcher(database_url, tmp_path / "webhook.key") as allowing:
        # Created while private targets were allowed (or while DNS said public).
        direct, _ = await allowing.service.create(url=f"{receiver.url}/hook", team_id=None)
        named, _ = await allowing.service.create(url=f"http://localhost:{port}/hook", team_id=None)
    async with dispatcher(database_url, tmp_path / "webhook.key", allow_private=False) as strict:
        for webhook in (direct, named):
            outcome = await strict.service.send_test(webhook.id, None)
            assert outcome is not None
            attempt = outcome[1]
            assert attempt is not None
            assert attempt.status_code is None
            assert "refused" in (attempt.error or ""), attempt.error
    assert receiver.received == []


async def test_slow_and_large_answers_are_bounded(
    receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    def behaviour(got: Received) -> tuple[int, dict[str, str], bytes]:
        if got.path == "/slow":
            time.sleep(5)
            return 200, {}, b""
        return 500, {}, b"x" * (4 * 1024 * 1024)

    receiver.behaviour = behaviour
    async with dispatcher(database_url, tmp_path / "webhook.key", timeout_s=0.3) as parts:
        slow, _ = await parts.service.create(url=f"{receiver.url}/slow", team_id=None)
        large, _ = await parts.service.create(url=f"{receiver.url}/large", team_id=None)
        started = time.monotonic()
        slow_attempt = (await parts.service.send_test(slow.id, None) or (None, None))[1]
        assert time.monotonic() - started < 4  # gave up at 0.3 s, not after 5 s
        large_attempt = (await parts.service.send_test(large.id, None) or (None, None))[1]
    assert slow_attempt is not None
    assert (slow_attempt.status_code, slow_attempt.error) == (None, "timed out after 0.3 s")
    assert large_attempt is not None
    assert large_attempt.status_code == 500
    assert len(large_attempt.error or "") < 300


async def test_a_test_ping_verifies(receiver: Receiver, database_url: str, tmp_path: Path) -> None:
    async with dispatcher(database_url, tmp_path / "webhook.key") as parts:
        webhook, secret = await parts.service.create(url=f"{receiver.url}/hook", team_id="team-a")
        outcome = await parts.service.send_test(webhook.id, "team-a")
    assert outcome is not None
    assert outcome[0].delivery.status is DeliveryStatus.SUCCEEDED
    [post] = receiver.posts()
    envelope = verified(secret, post)
    assert envelope["type"] == "runplane.webhook.test"
    assert json.loads(post.body)["data"]["webhook_id"] == webhook.id
    assert outcome[1] is not None
    assert outcome[1].trigger is Trigger.TEST
