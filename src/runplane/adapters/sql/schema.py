"""The whole schema: every table module, so `metadata` holds all of them
(migration autogenerate, the schema check, tests that empty every table)."""

from __future__ import annotations

from runplane.adapters.sql import health_tables, label_tables, webhook_tables
from runplane.adapters.sql.tables import metadata

__all__ = ["health_tables", "label_tables", "metadata", "webhook_tables"]
