"""Lifecycle events on fakes: what each operation commits to the outbox."""

from __future__ import annotations

import json

from cloudevents.v1.http import from_json

from runplane.domain.lifecycle_events import DURABLE_TYPES, STATE_CHANGED
from runplane.domain.operations import OpKind
from tests.support.world import World


def envelopes(world: World) -> list[dict[str, object]]:
    return [json.loads(e.payload) for e in world.log.outbox.events]


async def test_create_start_stop_commit_their_events(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP, actor="key_abc")
    events = envelopes(world)
    kinds = [(e["type"], e["data"]["status_from"], e["data"]["status_to"]) for e in events]  # type: ignore[index]
    assert kinds == [
        ("runtime.create", None, "pending"),
        (STATE_CHANGED, "pending", "starting"),
        ("runtime.start", "pending", "running"),
        (STATE_CHANGED, "starting", "running"),
        (STATE_CHANGED, "running", "stopping"),
        ("runtime.stop", "running", "stopped"),
        (STATE_CHANGED, "stopping", "stopped"),
    ]
    stop = events[5]
    assert stop["data"]["actor"] == {"type": "api_key", "id": "key_abc", "name": ""}  # type: ignore[index]
    assert stop["data"]["reason"] == "requested"  # type: ignore[index]
    assert stop["data"]["team_id"] == "team-a"  # type: ignore[index]
    assert stop["subject"] == "rt-1"


async def test_every_event_is_a_valid_cloudevent_with_a_unique_id(world: World) -> None:
    await world.create()
    for op in (OpKind.PAUSE, OpKind.RESUME, OpKind.RESTART, OpKind.STOP, OpKind.REMOVE):
        await world.do(op)
    ids = set()
    for row in world.log.outbox.events:
        event = from_json(row.payload)
        assert event["specversion"] == "1.0"
        assert event["id"] == row.event_id
        assert event["datacontenttype"] == "application/json"
        assert event["type"] in DURABLE_TYPES | {STATE_CHANGED}
        assert row.durable == (event["type"] != STATE_CHANGED)
        ids.add(event["id"])
    assert len(ids) == len(world.log.outbox.events)


async def test_sequence_follows_the_record_version(world: World) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    await world.do(OpKind.START)
    durable = [e for e in envelopes(world) if e["type"] != STATE_CHANGED]
    sequences = [int(str(e["sequence"])) for e in durable]
    assert sequences == sorted(sequences)
    assert sequences[-1] == (await world.record()).version


async def test_failures_on_a_runtime_are_events_replays_and_unknowns_are_not(
    world: World,
) -> None:
    await world.create()
    await world.do(OpKind.STOP)
    before = len(world.log.outbox.events)
    await world.do(OpKind.STOP)  # replay: no state change, no event
    await world.do(OpKind.STOP, runtime_id="ghost")  # no runtime: nobody to show it to
    assert len(world.log.outbox.events) == before
    await world.do(OpKind.PAUSE)  # invalid_state on an existing runtime
    [failed] = envelopes(world)[before:]
    assert failed["type"] == "runtime.pause"
    assert failed["data"]["outcome"] == "failure"  # type: ignore[index]
    assert failed["data"]["error"]["code"] == "invalid_state"  # type: ignore[index]
