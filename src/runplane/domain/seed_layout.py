"""The seeds' layout of stream entries (DESIGN §4): producers and consumers built
for the systems runplane descends from name a runtime `game_id`. Entries in
that layout are accepted on the job and health streams and answered in it."""

from __future__ import annotations

from collections.abc import Mapping

SEED_ID_FIELD = "game_id"
"""The seeds' name for `runtime_id` on job, result and health entries (DESIGN §4):
an entry that names its runtime this way is in the seeds' layout, and so is its
result."""


class ConflictingIds(ValueError):
    """An entry names two different runtimes, as `runtime_id` and `game_id`."""


def entry_runtime_id(fields: Mapping[str, str]) -> tuple[str, bool]:
    """The runtime an entry names, and whether the entry is in the seeds' layout
    (it carries `game_id`). Both names are accepted; two different ids are refused."""
    runtime_id = fields.get("runtime_id", "")
    seed_id = fields.get(SEED_ID_FIELD, "")
    if seed_id and runtime_id and seed_id != runtime_id:
        raise ConflictingIds("runtime_id and game_id name different runtimes")
    return runtime_id or seed_id, bool(seed_id)


SEED_SNAPSHOT_NAMES = {
    "runtime_id": SEED_ID_FIELD,
    "status": "runtime_status",
    "engine_health": "engine_health_summary",
}
"""runplane's snapshot fields under the names of the seeds' `runtime_snapshot_update`."""


def snapshot_fields(fields: Mapping[str, str], *, seed: bool, entry_type: str) -> dict[str, str]:
    """A snapshot entry's fields in the configured layout. The seeds' names are
    added beside runplane's, so both kinds of reader take the entry unchanged."""
    out = {"event_type": entry_type} if entry_type else {}
    out.update(fields)
    if seed:
        out.update(
            {SEED_SNAPSHOT_NAMES[k]: v for k, v in fields.items() if k in SEED_SNAPSHOT_NAMES}
        )
    return out
