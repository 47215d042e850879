"""The dispatcher on fakes: the fan-out from event entries to deliveries
(matching, idempotent, malformed entries), and the delivery loop's rounds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from runplane.domain.lifecycle_events import EVENT_FIELD
from runplane.domain.webhooks.model import DeliveryStatus
from runplane.streams.entries import StreamEntry
from runplane.workers.webhook_dispatcher import WebhookDeliveryLoop, WebhookFanout
from tests.support.tokens import SequentialTokens
from tests.support.webhooks import WebhookWorld, make_event, make_webhook, status


def entry_of(event_json: str, entry_id: str = "1-0") -> StreamEntry:
    return StreamEntry("runplane:events", entry_id, {EVENT_FIELD: event_json})


@pytest.fixture
def hooks() -> WebhookWorld:
    return WebhookWorld.build(schedule=(1, 2))


def fanout_for(hooks: WebhookWorld, woken: list[int] | None = None) -> WebhookFanout:
    def wake() -> None:
        if woken is not None:
            woken.append(1)

    return WebhookFanout(hooks.store, hooks.clock, SequentialTokens("dlv"), on_added=wake)


async def test_each_matching_webhook_gets_one_delivery(hooks: WebhookWorld) -> None:
    at = hooks.clock.now()
    for webhook in [
        make_webhook("wh-a", at=at),
        make_webhook("wh-every", at=at, team_id=None),
        make_webhook("wh-b", at=at, team_id="team-b"),
        make_webhook("wh-stops", at=at, event_types=("runtime.stop",)),
        make_webhook("wh-off", at=at, enabled=False),
    ]:
        await hooks.store.add(webhook, "whsec_AAAA")
    woken: list[int] = []
    fanout = fanout_for(hooks, woken)
    event = make_event("evt-1", at=at + timedelta(seconds=1))
    await fanout(entry_of(event.to_json()))
    await fanout(entry_of(event.to_json(), "1-1"))  # the same event again: nothing new
    deliveries = sorted(hooks.store.deliveries.values(), key=lambda d: d.webhook_id)
    assert [d.webhook_id for d in deliveries] == ["wh-a", "wh-every"]
    assert all(d.payload == event.to_json() for d in deliveries)
    assert all(
        (d.event_id, d.event_type, d.runtime_id) == ("evt-1", "runtime.start", "rt-1")
        for d in deliveries
    )
    assert all(
        d.status is DeliveryStatus.PENDING and d.next_attempt_at == hooks.clock.now()
        for d in deliveries
    )
    assert woken == [1]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {EVENT_FIELD: "not json"},
        {EVENT_FIELD: "[1, 2]"},
        {EVENT_FIELD: '{"type": "runtime.start"}'},
        {EVENT_FIELD: '{"id": "%s", "type": "runtime.start"}' % ("x" * 129)},
        {EVENT_FIELD: '{"id": "", "type": "runtime.start"}'},
        {
            EVENT_FIELD: '{"id": "e", "type": "runtime.start", "data": '
            + "[" * 10_000
            + "]" * 10_000
            + "}"
        },
        {EVENT_FIELD: '{"id": "e", "type": "runtime.start", "subject": "\\ud800"}'},
    ],
)
async def test_entries_that_are_not_events_are_skipped(
    hooks: WebhookWorld, fields: dict[str, str]
) -> None:
    await hooks.store.add(make_webhook(at=hooks.clock.now()), "whsec_AAAA")
    await fanout_for(hooks)(StreamEntry("runplane:events", "1-0", fields))
    assert hooks.store.deliveries == {}


async def test_a_round_attempts_what_is_due(hooks: WebhookWorld) -> None:
    await hooks.store.add(make_webhook(at=hooks.clock.now()), "whsec_AAAA")
    fanout = fanout_for(hooks)
    for n in range(3):
        await fanout(entry_of(make_event(f"evt-{n}").to_json()))
    loop = WebhookDeliveryLoop(hooks.store, hooks.deliverer, hooks.clock, batch_size=2)
    hooks.sender.answer(status(500))
    assert await loop.run_once() == 2
    assert await loop.run_once() == 1
    assert await loop.run_once() == 0  # the failed ones wait for their retry
    hooks.clock.advance(1)
    hooks.sender.answer(status(200))
    assert await loop.run_once() == 2
    assert await loop.run_once() == 1
    assert {d.status for d in hooks.store.deliveries.values()} == {DeliveryStatus.SUCCEEDED}
    assert len(hooks.sender.requests) == 6


async def test_rounds_say_full_some_or_idle_for_the_loops_idle_backoff(
    hooks: WebhookWorld,
) -> None:
    await hooks.store.add(make_webhook(at=hooks.clock.now()), "whsec_AAAA")
    fanout = fanout_for(hooks)
    for n in range(3):
        await fanout(entry_of(make_event(f"evt-{n}").to_json()))
    loop = WebhookDeliveryLoop(
        hooks.store, hooks.deliverer, hooks.clock, batch_size=2, idle_poll_max_s=2.0
    )
    hooks.sender.answer(status(200))
    assert await loop._round() is True  # a full batch: the next round at once
    assert await loop._round() is None  # some: the usual interval
    assert await loop._round() is False  # none: idle, the wait grows


async def test_the_loop_runs_until_stopped(hooks: WebhookWorld) -> None:
    await hooks.store.add(make_webhook(at=hooks.clock.now()), "whsec_AAAA")
    loop = WebhookDeliveryLoop(hooks.store, hooks.deliverer, hooks.clock, poll_interval_s=30)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.05)
    await WebhookFanout(hooks.store, hooks.clock, SequentialTokens(), on_added=loop.wake)(
        entry_of(make_event().to_json())
    )
    for _ in range(100):  # woken, not waiting for the 30 s poll
        if hooks.sender.requests:
            break
        await asyncio.sleep(0.01)
    assert len(hooks.sender.requests) == 1
    await asyncio.wait_for(loop.stop(), 1)
    await asyncio.wait_for(task, 1)


async def test_a_round_purges_old_finished_deliveries(hooks: WebhookWorld) -> None:
    await hooks.store.add(make_webhook(at=hooks.clock.now()), "whsec_AAAA")
    await fanout_for(hooks)(entry_of(make_event().to_json()))
    loop = WebhookDeliveryLoop(
        hooks.store, hooks.deliverer, hooks.clock, retention_s=60, purge_interval_s=0.01
    )
    await loop.run_once()
    assert [d.status for d in hooks.store.deliveries.values()] == [DeliveryStatus.SUCCEEDED]
    hooks.clock.advance(61)
    await asyncio.sleep(0.02)
    await loop.run_once()
    assert hooks.store.deliveries == {}
    assert hooks.store.attempts == []
