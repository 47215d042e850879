"""Spec checks every driver shares: the object itself, its field names, the stop
timeout, the `health` / `restart_policy` objects passed through, and
`placement` (which host a runtime may go to; domain/placement.py)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from runplane.domain.errors import InvalidSpec
from runplane.domain.placement import placement_of
from runplane.domain.snapshots import SNAPSHOT_ID_RULE, SNAPSHOT_SPEC_KEY, is_valid_snapshot_id

DEFAULT_STOP_TIMEOUT_S = 10.0
MAX_STOP_TIMEOUT_S = 3600.0
PASSED_THROUGH = ("health", "restart_policy")
"""Objects every driver accepts; their fields are checked where they are used."""
PLACEMENT = "placement"
"""Every driver accepts it; checked here, as no driver uses it (placement does)."""


def checked_object(spec: object, fields: Sequence[str]) -> dict[str, Any]:
    """`spec` as a dict with only known field names; InvalidSpec otherwise."""
    if not isinstance(spec, dict):
        raise InvalidSpec(f"spec must be an object, not {kind(spec)}")
    unknown = sorted(str(key) for key in spec if key not in fields)
    if unknown:
        raise InvalidSpec(
            f"unknown spec field(s) {', '.join(unknown)}; allowed: {', '.join(fields)}"
        )
    return spec


def copy_passed_through(spec: dict[str, Any], normalised: dict[str, Any]) -> None:
    """Copy `health` and `restart_policy` (objects, when given) into `normalised`,
    `placement`, checked, as `{"host_labels": {...}}`, and `snapshot` (an id)."""
    for name in PASSED_THROUGH:
        value = spec.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidSpec(f"{name} must be an object, not {kind(value)}")
        normalised[name] = copy.deepcopy(value)  # a private copy
    if spec.get(PLACEMENT) is not None:
        normalised[PLACEMENT] = placement_of(spec).to_document()
    snapshot_id = spec.get(SNAPSHOT_SPEC_KEY)
    if snapshot_id is not None:
        if not is_valid_snapshot_id(snapshot_id):
            raise InvalidSpec(f"{SNAPSHOT_SPEC_KEY} must be a snapshot id: {SNAPSHOT_ID_RULE}")
        normalised[SNAPSHOT_SPEC_KEY] = snapshot_id


def stop_timeout(value: object) -> float:
    if value is None:
        return DEFAULT_STOP_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpec(f"stop_timeout_s must be a number of seconds, not {kind(value)}")
    if not math.isfinite(value) or not 0 <= value <= MAX_STOP_TIMEOUT_S:
        raise InvalidSpec(f"stop_timeout_s must be between 0 and {MAX_STOP_TIMEOUT_S:g}")
    return float(value)


def kind(value: object) -> str:
    """A JSON-ish name for what was given, for messages."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)
