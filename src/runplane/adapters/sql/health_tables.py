"""The health tables, on the shared `metadata` of tables.py (migration 0004)."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from runplane.adapters.sql.tables import JsonDocument, UtcDateTime, identifier, metadata

health_snapshots = Table(
    "health_snapshots",
    metadata,
    Column("runtime_id", identifier(128), primary_key=True),
    Column("container_id", String(256), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("summary", String(32), nullable=False),
    Column("details", JsonDocument, nullable=False),
    Column("observed_at", UtcDateTime, nullable=False),
)
"""One row per runtime: the latest health event the monitor reported about it
(its type, the engine-health summary it means, its details) and when."""
