"""Closed sets documented in the OpenAPI document, taken from `domain/`.

A response field whose domain value is already an enum is typed with that enum
(its component is named after it). `closed` is for the fields that stay `str`
at run time, where an enum type would turn a value it does not know into a 500
(a record's `engine_health`) or change how a request is refused (a webhook's
`event_types`, checked by the service with its own message): it adds `enum` to
the schema's string branches only, so `null` stays allowed where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import Field
from pydantic.fields import FieldInfo

from runplane.domain.lifecycle_events import DURABLE_TYPES

EVENT_TYPES = tuple(sorted(DURABLE_TYPES))
"""The durable event types: what `GET /v1/events`, SSE and webhooks carry."""


def closed(values: Iterable[object]) -> Callable[[dict[str, Any]], None]:
    """A `json_schema_extra` that sets `enum` on every string branch of the schema
    (itself, an `anyOf` member, an array's items)."""
    names = sorted({str(value) for value in values})

    def extra(schema: dict[str, Any]) -> None:
        for branch in _string_branches(schema):
            branch["enum"] = list(names)

    return extra


def closed_field(values: Iterable[object], **kwargs: Any) -> Any:
    """`Field(**kwargs)` whose documented schema takes only `values`."""
    info: FieldInfo = Field(json_schema_extra=closed(values), **kwargs)
    return info


def _string_branches(schema: dict[str, Any]) -> Iterable[dict[str, Any]]:
    if schema.get("type") == "string":
        yield schema
    for branch in schema.get("anyOf", ()):
        yield from _string_branches(branch)
    items = schema.get("items")
    if isinstance(items, dict):
        yield from _string_branches(items)
