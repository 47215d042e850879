"""Bodies of `GET /v1/events`: lifecycle events as their CloudEvents envelopes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from runplane.api.schemas.enums import EVENT_TYPES

_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "CloudEvent",
    "description": "a CloudEvents 1.0 structured-mode envelope (DESIGN §5)",
    "type": "object",
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": _TEXT,
        "source": _TEXT,
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "subject": {**_TEXT, "description": "the runtime's id (a host's for host.*)"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "enum": ["application/json"]},
        "sequence": _TEXT,
        "data": {
            "type": "object",
            "properties": {
                "outcome": _MAYBE_TEXT,
                "team_id": _MAYBE_TEXT,
                "host_id": _MAYBE_TEXT,
                "status_from": _MAYBE_TEXT,
                "status_to": _MAYBE_TEXT,
                "reason": _MAYBE_TEXT,
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}
"""Documented only: the envelope is passed on as the stream holds it."""

EVENT_EXAMPLE: JsonDict = {
    "id": "1764480000000-0",
    "event": {
        "specversion": "1.0",
        "id": "0b6c7c0e-4f0d-4a55-9a57-3c0f5b1d2a10",
        "source": "/runplane",
        "type": "runtime.stop",
        "subject": "alpha:web",
        "time": "2026-11-30T05:20:00.000Z",
        "datacontenttype": "application/json",
        "sequence": "7",
        "data": {
            "outcome": "success",
            "team_id": "alpha",
            "status_from": "running",
            "status_to": "stopped",
            "reason": "requested",
            "labels": {},
        },
    },
}


class EventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    id: str = Field(description="the stream entry id: `after` or Last-Event-ID resumes after it")
    event: dict[str, Any] = Field(json_schema_extra=ENVELOPE_SCHEMA)


class EventPageOut(BaseModel):
    events: list[EventOut]
    next_cursor: str | None
