"""Runtime labels as rows (migration 0010), for selection: one row per label,
found by (key, value) through an index. The runtime row keeps the same map as
JSON (`runtimes.labels`), read with the record; both are written together."""

from __future__ import annotations

from sqlalchemy import Column, Index, PrimaryKeyConstraint, String, Table

from runplane.adapters.sql.tables import identifier, metadata

runtime_labels = Table(
    "runtime_labels",
    metadata,
    Column("runtime_id", identifier(128), nullable=False),
    Column("key", String(317), nullable=False),
    Column("value", String(63), nullable=False),
    PrimaryKeyConstraint("runtime_id", "key", name="pk_runtime_labels"),
    Index("ix_runtime_labels_key_value", "key", "value"),
)
"""A key is at most 253 (prefix) + 1 + 63 characters (domain/runtime_settings.py)."""
