"""The seeds' layout (DESIGN §4): `game_id` names the runtime on job and health
entries, and a job in that layout is answered in it."""

from __future__ import annotations

import pytest

from runplane.domain.health.reactions import MalformedHealthEvent, decode_health_event
from runplane.domain.jobs import JobResult
from runplane.domain.operations import OpKind, Outcome
from runplane.domain.seed_layout import snapshot_fields
from runplane.workers.jobs.codec import MalformedJob, decode_job

SEED_STOP = {"game_id": "game-1", "reason": "finished", "requested_at_ms": "1700000000000"}


def test_a_stop_job_in_the_seeds_layout_decodes_as_is() -> None:
    job = decode_job(OpKind.STOP, "runtime:stop_jobs", "1-0", SEED_STOP)
    assert (job.runtime_id, job.reason, job.requested_at_ms) == (
        "game-1",
        "finished",
        1_700_000_000_000,
    )
    assert job.seed_layout
    assert job.job_id == "runtime:stop_jobs/1-0"


def test_runtime_id_and_game_id_may_agree_but_not_differ() -> None:
    same = decode_job(OpKind.STOP, "s", "1-0", {**SEED_STOP, "runtime_id": "game-1"})
    assert same.runtime_id == "game-1"
    with pytest.raises(MalformedJob, match="different runtimes"):
        decode_job(OpKind.STOP, "s", "1-0", {**SEED_STOP, "runtime_id": "other"})


def test_a_seed_job_without_a_game_id_or_reason_is_refused() -> None:
    with pytest.raises(MalformedJob, match="game_id"):
        decode_job(OpKind.STOP, "s", "1-0", {"game_id": "", "reason": "finished"})
    with pytest.raises(MalformedJob, match="reason"):
        decode_job(OpKind.STOP, "s", "1-0", {"game_id": "g"})


@pytest.mark.parametrize(("seed", "id_field"), [(True, "game_id"), (False, "runtime_id")])
def test_a_result_names_its_runtime_as_its_job_did(seed: bool, id_field: str) -> None:
    result = JobResult("j", "game-1", "stop", Outcome.SUCCESS, 1, seed_layout=seed)
    fields = result.as_fields()
    assert fields[id_field] == "game-1"
    assert {"game_id", "runtime_id"} - {id_field} & fields.keys() == set()


def test_a_seed_health_event_decodes() -> None:
    event = decode_health_event(
        {"game_id": "game-2", "event_type": "container_oom", "occurred_at_ms": "1700000000000"}
    )
    assert (event.runtime_id, str(event.event_type)) == ("game-2", "container_oom")
    with pytest.raises(MalformedHealthEvent, match="different runtimes"):
        decode_health_event(
            {
                "game_id": "a",
                "runtime_id": "b",
                "event_type": "container_oom",
                "occurred_at_ms": "1",
            }
        )


def test_snapshot_fields_in_each_layout() -> None:
    fields = {"runtime_id": "g", "status": "running", "engine_health": "oom", "occurred_at_ms": "5"}
    assert snapshot_fields(fields, seed=False, entry_type="") == fields
    seed = snapshot_fields(fields, seed=True, entry_type="runtime_snapshot_update")
    assert seed == {
        **fields,
        "event_type": "runtime_snapshot_update",
        "game_id": "g",
        "runtime_status": "running",
        "engine_health_summary": "oom",
    }
