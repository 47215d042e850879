"""The schema, as SQLAlchemy Core tables. Migrations (migrations/versions) create it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def as_given(value: Any) -> Any:
    """A direct processor (direct.py) for values the driver already reads as
    the column's own: none is applied."""
    return value


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Postgres stores `timestamptz`; SQLite has no time zones, so values are written
    as UTC and read back with `tzinfo=UTC`. Naive datetimes are a bug and refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: runplane stores timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # The compiled hot statements (direct.py) convert values with these: the
    # same values as SQLAlchemy's chain (this decorator, then the dialect's
    # DATETIME), in one call instead of three.

    def direct_bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            if dialect.type_descriptor(self.impl_instance).bind_processor(dialect) is not None:
                return None  # the dialect converts too: SQLAlchemy's own chain
            return lambda value: self.process_bind_param(value, dialect)
        chained = self._cached_bind_processor(dialect)
        sample = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
        if chained is None or chained(sample) != _sqlite_text(sample):
            return None  # another storage format: SQLAlchemy's own chain

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"naive datetime {value!r}: runplane stores timezone-aware UTC")
            return _sqlite_text(value)

        return process

    def direct_result_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.driver == "asyncpg":
            return as_given  # it reads every timestamptz as a UTC-aware datetime
        if dialect.name != "sqlite":
            impl = dialect.type_descriptor(self.impl_instance)
            if impl.result_processor(dialect, None) is not None:
                return None  # the dialect converts too: SQLAlchemy's own chain
            return lambda value: self.process_result_value(value, dialect)
        parse: Callable[[Any], Any] | None = self.impl_instance._cached_result_processor(
            dialect, None
        )
        if parse is None:
            return None

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            parsed: datetime = parse(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)

        return process


def _sqlite_text(value: datetime) -> str:
    """A UTC datetime as SQLAlchemy's SQLite DATETIME stores it."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def identifier(length: int) -> String:
    """Ids compare byte-wise ("C" collation on Postgres), as in SQLite and Python,
    so keyset pagination orders the same on every backend."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


JsonDocument = JSON().with_variant(JSONB(), "postgresql")

runtimes = Table(
    "runtimes",
    metadata,
    Column("runtime_id", identifier(128), primary_key=True),
    Column("team_id", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("driver", String(64), nullable=False),
    Column("spec", JsonDocument, nullable=False),
    Column("container_id", String(256)),
    Column("engine_endpoint", Text),
    Column("engine_health", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("stopped_at", UtcDateTime),
    Column("removed_at", UtcDateTime),
    Column("last_op_at", UtcDateTime),
    Column("status_deadline", UtcDateTime),
    Column("host_id", String(128)),
    Column("labels", JsonDocument, nullable=False, server_default="{}"),
    Column("timeout_at", UtcDateTime),
    Column("on_timeout", String(16)),
    Column("idle_after_s", Integer),
    Column("idle_action", String(16)),
    Column("active_at", UtcDateTime),
    Index("ix_runtimes_team_id_runtime_id", "team_id", "runtime_id"),
    Index("ix_runtimes_status_runtime_id", "status", "runtime_id"),
    Index("ix_runtimes_status_deadline", "status_deadline"),
    Index("ix_runtimes_host_id_status", "host_id", "status"),
    Index("ix_runtimes_timeout_at", "timeout_at"),
    Index("ix_runtimes_status_idle_after_s", "status", "idle_after_s"),
)

operations = Table(
    "operations",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("operation_id", String(128), nullable=False, unique=True),
    Column("runtime_id", String(128), nullable=False),
    Column("team_id", String(128)),
    Column("op", String(16), nullable=False),
    Column("op_source", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error_code", String(32)),
    Column("error_message", Text, nullable=False),
    Column("job_id", String(512)),
    Column("job_team", String(128), nullable=False, server_default=""),
    Column("source_ref", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("status_from", String(32)),
    Column("status_to", String(32)),
    Column("container_id", String(256)),
    Column("actor", Text, nullable=False),
    Column("details", JsonDocument, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Index("ix_operations_runtime_id_finished_at", "runtime_id", "finished_at", "seq"),
    UniqueConstraint("job_team", "job_id", name="uq_operations_job_team_job_id"),
)
"""One row per operation call. `seq` is monotonic: the tie-break for equal
`finished_at`. No foreign key to runtimes: a `not_found` call is logged too.
Job ids are unique per team: `job_team` is `team_id`, or "" for a call of no
team (no team id is empty), since NULLs would never collide in a unique key."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("team_id", String(128)),
    Column("admin", Boolean, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("runtime_id", String(128), nullable=False),
    Column("team_id", String(128)),
    Column("type", String(64), nullable=False),
    Column("durable", Boolean, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Index("ix_outbox_sent_at_seq", "sent_at", "seq"),
)
"""Lifecycle events written in the same transaction as the state change they
describe; the relay publishes them in `seq` order and sets `sent_at`."""


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values as the drivers take them: enums become their string values."""
    return {name: v.value if isinstance(v, Enum) else v for name, v in values.items()}


def as_row(record: Any) -> dict[str, Any]:
    """A domain dataclass (RuntimeRecord, OperationEntry, ApiKey) as column values."""
    return plain_values({f.name: getattr(record, f.name) for f in fields(record)})


team_policies = Table(
    "team_policies",
    metadata,
    Column("team_id", identifier(64), primary_key=True),
    Column("commands", JsonDocument, nullable=False),
    Column("images", JsonDocument, nullable=False),
    Column("networks", JsonDocument, nullable=False),
    Column("max_runtimes", Integer),
    Column("max_running", Integer),
)
"""One row per team an admin gave a policy (domain/policy.py); no row: deny."""

hosts = Table(
    "hosts",
    metadata,
    Column("host_id", identifier(128), primary_key=True),
    Column("address", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("admin_status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("labels", JsonDocument, nullable=False),
    Column("cpus", Float),
    Column("memory_mb", Integer),
    Column("max_runtimes", Integer),
    Column("drivers", JsonDocument, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("last_heartbeat_at", UtcDateTime, nullable=False),
)
"""One row per host (domain/hosts.py). `version` moves with every status or
details write, not with heartbeats: a heartbeat only sets `last_heartbeat_at`."""

snapshots = Table(
    "snapshots",
    metadata,
    Column("snapshot_id", identifier(128), primary_key=True),
    Column("team_id", identifier(64), nullable=False),
    Column("runtime_id", identifier(128), nullable=False),
    Column("driver", String(32), nullable=False),
    Column("host_id", String(128), nullable=False),
    Column("ref", Text, nullable=False),
    Column("spec", JsonDocument, nullable=False),
    Column("size_bytes", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_snapshots_team_id_snapshot_id", "team_id", "snapshot_id"),
)
"""One row per snapshot (domain/snapshots.py); its image or copy is on `host_id`."""
