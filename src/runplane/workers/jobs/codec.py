"""Stream entry -> Job: decoding and validation of the flat job fields (DESIGN §4).
Every problem becomes a readable message; nothing here raises past `decode_job`."""

from __future__ import annotations

from typing import Any

from runplane.domain.documents import (
    InvalidDocument,
    check_spec,
    check_text,
    is_valid_idempotency_key,
    is_valid_team_id,
    loads,
)
from runplane.domain.jobs import MAX_FIELD_CHARS, Job
from runplane.domain.operations import STOP_REASONS, OpKind
from runplane.domain.records import RUNTIME_ID_RULE, is_valid_runtime_id
from runplane.domain.seed_layout import ConflictingIds, entry_runtime_id
from runplane.logs import entry_correlation_id

KNOWN_FIELDS = frozenset(
    {
        "runtime_id",
        "game_id",
        "job_id",
        "reason",
        "requested_at_ms",
        "team_id",
        "spec",
        "actor",
        "restricted",
    }
)


class MalformedJob(ValueError):
    """The entry cannot be a job; the message says why."""


def decode_job(op: OpKind, stream: str, entry_id: str, fields: dict[str, str]) -> Job:
    default_job_id = f"{stream}/{entry_id}"
    oversized = [name for name, value in fields.items() if len(value) > MAX_FIELD_CHARS]
    if oversized or any(len(name) > 256 for name in fields):
        raise MalformedJob(f"field too large (limit {MAX_FIELD_CHARS} characters)")
    for name, value in fields.items():
        _text(name, value)
    try:
        runtime_id, seed_layout = entry_runtime_id(fields)
    except ConflictingIds as exc:
        raise MalformedJob(str(exc)) from None
    if not is_valid_runtime_id(runtime_id):
        raise MalformedJob(f"runtime_id (or game_id) is required: {RUNTIME_ID_RULE}")
    job_id = fields.get("job_id") or default_job_id  # an empty field is no job_id
    if not is_valid_idempotency_key(job_id):
        raise MalformedJob("job_id must be 1-256 printable ASCII characters, no spaces")
    reason = fields.get("reason", "")
    if op is OpKind.STOP and reason not in STOP_REASONS:
        raise MalformedJob(f"stop needs a reason, one of: {', '.join(sorted(STOP_REASONS))}")
    team_id = fields.get("team_id") or None
    if team_id is not None and not is_valid_team_id(team_id):
        raise MalformedJob("team_id must be 1-64 letters, digits, '_' or '-'")
    return Job(
        op=op,
        runtime_id=runtime_id,
        job_id=job_id,
        source_ref=entry_id,
        reason=reason,
        team_id=team_id,
        spec=_spec(op, fields.get("spec")),
        requested_at_ms=_int_or_none("requested_at_ms", fields.get("requested_at_ms")),
        actor=_actor(fields.get("actor")),
        restricted=_restricted(fields.get("restricted"), team_id),
        seed_layout=seed_layout,
    )


def _actor(raw: str | None) -> str:
    if not raw:
        return "system:stream"
    if len(raw) > 128:
        raise MalformedJob("actor is longer than 128 characters")
    return raw


def _restricted(raw: str | None, team_id: str | None) -> bool:
    if raw in (None, "", "false"):
        return False
    if raw != "true":
        raise MalformedJob("restricted must be 'true' or 'false'")
    if team_id is None:
        raise MalformedJob("a restricted job names its team_id")
    return True


def job_id_of(stream: str, entry_id: str, fields: dict[str, str]) -> str:
    """The job id a result carries, even for an entry that is not a valid job."""
    return entry_correlation_id(stream, entry_id, fields)


def _spec(op: OpKind, raw: str | None) -> dict[str, Any] | None:
    if raw is None or raw == "":
        if op is OpKind.PATCH:
            raise MalformedJob("patch needs a spec (a JSON object)")
        return None
    if op not in (OpKind.START, OpKind.PATCH):
        raise MalformedJob(f"{op} takes no spec")
    try:
        # Bounded depth, size and valid Unicode: a 10,000-deep or "\\ud800" spec
        # is this entry's invalid_request, never a RecursionError or a store fault.
        spec = loads(raw)
        check_spec(spec)
    except InvalidDocument as exc:
        raise MalformedJob(f"spec: {exc}") from exc
    if not isinstance(spec, dict):
        raise MalformedJob("spec must be a JSON object")
    return spec


def _text(name: str, value: str) -> None:
    """Field names and values must be valid Unicode (no lone surrogates)."""
    try:
        check_text("field name", name)
        check_text(f"field {name[:64]!r}", value)
    except InvalidDocument as exc:
        raise MalformedJob(str(exc)) from exc


def _int_or_none(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise MalformedJob(f"{name} must be an integer") from exc
