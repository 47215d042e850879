from __future__ import annotations

import pytest

from runplane.domain.jobs import MAX_FIELD_CHARS
from runplane.domain.operations import OpKind
from runplane.workers.jobs.codec import MalformedJob, decode_job, job_id_of

STREAM = "runtime:stop_jobs"


def test_a_full_stop_job_decodes() -> None:
    job = decode_job(
        OpKind.STOP,
        STREAM,
        "1-0",
        {
            "runtime_id": "rt-1",
            "job_id": "j1",
            "reason": "ttl_expired",
            "requested_at_ms": "1700000000000",
            "team_id": "t",
        },
    )
    assert (job.runtime_id, job.job_id, job.reason, job.team_id) == (
        "rt-1",
        "j1",
        "ttl_expired",
        "t",
    )
    assert job.requested_at_ms == 1_700_000_000_000
    assert job.source_ref == "1-0"


def test_job_id_defaults_to_stream_and_entry_id() -> None:
    job = decode_job(OpKind.STOP, STREAM, "5-1", {"runtime_id": "a", "reason": "idle"})
    assert job.job_id == "runtime:stop_jobs/5-1"


def test_start_and_patch_carry_a_json_spec() -> None:
    start = decode_job(OpKind.START, "s", "1-0", {"runtime_id": "a", "spec": '{"command": ["x"]}'})
    assert start.spec == {"command": ["x"]}
    assert decode_job(OpKind.START, "s", "1-0", {"runtime_id": "a"}).spec is None


@pytest.mark.parametrize(
    ("op", "fields", "problem"),
    [
        (OpKind.STOP, {"reason": "idle"}, "runtime_id"),
        (OpKind.STOP, {"runtime_id": "a b", "reason": "idle"}, "runtime_id"),
        (OpKind.STOP, {"runtime_id": "a"}, "reason"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "whim"}, "reason"),
        (OpKind.START, {"runtime_id": "a", "spec": "{nope"}, "JSON"),
        (OpKind.START, {"runtime_id": "a", "spec": "[1]"}, "object"),
        (OpKind.PATCH, {"runtime_id": "a"}, "spec"),
        (OpKind.PAUSE, {"runtime_id": "a", "spec": "{}"}, "no spec"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "idle", "requested_at_ms": "x"}, "integer"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "x" * (MAX_FIELD_CHARS + 1)}, "too large"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "idle", "job_id": "j" * 300}, "job_id"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "idle", "job_id": "j 1"}, "job_id"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "idle", "job_id": "j\t1"}, "job_id"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "idle", "job_id": "caf\xe9"}, "job_id"),
        (OpKind.STOP, {"runtime_id": "a", "reason": "idle", "job_id": "\x00"}, "job_id"),
    ],
)
def test_malformed_entries_say_why(op: OpKind, fields: dict[str, str], problem: str) -> None:
    with pytest.raises(MalformedJob, match=problem):
        decode_job(op, STREAM, "1-0", fields)


def test_an_empty_job_id_field_is_no_job_id() -> None:
    job = decode_job(
        OpKind.STOP, STREAM, "5-1", {"runtime_id": "a", "reason": "idle", "job_id": ""}
    )
    assert job.job_id == "runtime:stop_jobs/5-1"


def test_a_result_always_has_a_job_id() -> None:
    assert job_id_of(STREAM, "9-9", {}) == "runtime:stop_jobs/9-9"
    assert job_id_of(STREAM, "9-9", {"job_id": "mine"}) == "mine"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"runtime_id": "a", "spec": "[" * 10_000 + "]" * 10_000}, "deeper than 32"),
        ({"runtime_id": "a", "spec": '{"env": {"A": "\\ud800"}}'}, "not valid Unicode"),
        ({"runtime_id": "a", "team_id": "\ud800"}, "not valid Unicode"),
        ({"runtime_id": "a", "spec": '{"env": {"A": "x\\u0000"}}'}, "NUL"),
        ({"runtime_id": "a", "reason": "requested\x00"}, "NUL"),
        ({"runtime_id": "a", "team_id": "a:b"}, "team_id"),
        ({"runtime_id": "a", "\udcff": "x"}, "field name"),
    ],
)
def test_hostile_text_and_specs_are_malformed_jobs(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(MalformedJob, match=problem):
        decode_job(OpKind.START, STREAM, "1-0", fields)
