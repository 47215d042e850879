"""The floor of a stream job: the I/O runplane does for one stop or start job
with the in-memory driver, written directly in sqlite3 (or asyncpg) and
redis.asyncio with hiredis, and nothing else.

Per job, as runplane's GroupConsumer + JobHandler do it:

1. the job entry, read by XREADGROUP COUNT 64 (entries handled concurrently);
2. the runtime's lease: SET lease:{id} token NX PX;
3. the record: one SELECT;
4. the transient CAS: UPDATE ... WHERE status AND version, RETURNING, with the
   `runtime.state.changed` outbox row, in one transaction (on Postgres one
   statement: the UPDATE a data-modifying CTE the INSERTs select from);
5. the final CAS: the same UPDATE, the operation-log row and the two outbox rows
   (`runtime.<op>`, `runtime.state.changed`), in one transaction (the same);
6. the lease released by the same compare-and-delete Lua script;
7. the result XADDed to `runtime:job_results`;
8. the batch's entries XACKed in one call (as the GroupConsumer does).

It writes the same tables (created by runplane's migrations), the same
columns and the same JSON payloads, on the same SQLite settings (WAL,
synchronous=NORMAL). SQLite calls run inline on the event loop: no thread
hand-off at all, the cheapest way Python can do this I/O.

Used by bench/job_floor.py; not a consumer to run in production (no retry,
no dead letters, no replay of job ids)."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
LEASE_TTL_MS = 15_000
RESULTS_STREAM = "runtime:job_results"
TRANSIENT = {"stop": "stopping", "start": "starting"}
FINAL = {"stop": "stopped", "start": "running"}
TIME_BOUND = {"stop": timedelta(seconds=60), "start": timedelta(seconds=300)}


class Conflict(Exception):
    """The CAS matched no row."""


def new_id() -> str:
    return secrets.token_urlsafe(16)


def event_payload(
    event_id: str,
    event_type: str,
    record: dict[str, Any],
    now: datetime,
    status_from: str,
    status_to: str,
    sequence: int,
    reason: str,
) -> str:
    """The same CloudEvents envelope runplane puts in the outbox."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/runplane",
            "type": event_type,
            "subject": record["runtime_id"],
            "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "sequence": str(sequence),
            "data": {
                "outcome": "success",
                "team_id": record["team_id"],
                "actor": {"type": "system", "id": "", "name": ""},
                "resource": {"id": record["runtime_id"], "type": "runtime"},
                "host_id": record["host_id"],
                "status_from": status_from,
                "status_to": status_to,
                "reason": reason,
                "metadata": {},
                "error": None,
            },
        },
        separators=(",", ":"),
        sort_keys=True,
    )


class Plan:
    """The rows of one job, built from the record as read (backend-neutral)."""

    def __init__(self, op: str, record: dict[str, Any], fields: dict[str, str]) -> None:
        self.op = op
        self.record = record
        self.job_id = fields["job_id"]
        self.reason = fields.get("reason", "")
        self.started_at = datetime.now(UTC)
        self.status_from = record["status"]
        self.version = record["version"]
        self.transient = TRANSIENT[op]
        self.final = FINAL[op]

    def transient_event(self, now: datetime) -> tuple[Any, ...]:
        event_id = new_id()
        payload = event_payload(
            event_id,
            "runtime.state.changed",
            self.record,
            now,
            self.status_from,
            self.transient,
            self.version + 1,
            "",
        )
        return (event_id, "runtime.state.changed", False, payload)

    def final_events(self, now: datetime) -> list[tuple[Any, ...]]:
        events = []
        for event_type, durable, status_from, reason in (
            (f"runtime.{self.op}", True, self.status_from, self.reason),
            ("runtime.state.changed", False, self.transient, ""),
        ):
            event_id = new_id()
            payload = event_payload(
                event_id,
                event_type,
                self.record,
                now,
                status_from,
                self.final,
                self.version + 2,
                reason,
            )
            events.append((event_id, event_type, durable, payload))
        return events

    def final_columns(self, now: datetime) -> dict[str, Any]:
        if self.op == "stop":
            return {"stopped_at": now}
        return {
            "container_id": f"mem-{new_id()}",
            "engine_endpoint": "",
            "started_at": now,
            "stopped_at": None,
            "removed_at": None,
        }


# -- SQLite -------------------------------------------------------------------------


def sqlite_time(moment: datetime | None) -> str | None:
    """As SQLAlchemy stores a UTC datetime in SQLite."""
    return None if moment is None else moment.replace(tzinfo=None).isoformat(sep=" ")


class SqliteJobs:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            self.db.execute(pragma)

    async def close(self) -> None:
        self.db.close()

    def read(self, runtime_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM runtimes WHERE runtime_id = ?", (runtime_id,))
        found = row.fetchone()
        if found is None:
            raise Conflict(runtime_id)
        record = dict(found)
        record["spec"] = json.loads(record["spec"])
        return record

    def cas(self, plan: Plan, expected: tuple[str, int], columns: dict[str, Any]) -> None:
        names = sorted(columns)
        assignments = ", ".join(f"{name} = ?" for name in names)
        values = [
            sqlite_time(v) if isinstance(v, datetime) else v for v in (columns[n] for n in names)
        ]
        row = self.db.execute(
            f"UPDATE runtimes SET {assignments} WHERE runtime_id = ? AND status = ?"
            " AND version = ? RETURNING *",
            (*values, plan.record["runtime_id"], *expected),
        ).fetchone()
        if row is None:
            raise Conflict(plan.record["runtime_id"])

    def outbox(self, plan: Plan, events: list[tuple[Any, ...]], now: datetime) -> None:
        self.db.executemany(
            "INSERT INTO outbox (event_id, runtime_id, team_id, type, durable, payload,"
            " created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                (
                    event_id,
                    plan.record["runtime_id"],
                    plan.record["team_id"],
                    kind,
                    durable,
                    payload,
                    sqlite_time(now),
                )
                for event_id, kind, durable, payload in events
            ],
        )

    async def handle(self, op: str, fields: dict[str, str]) -> dict[str, str]:
        plan = Plan(op, self.read(fields["runtime_id"]), fields)
        now = datetime.now(UTC)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.cas(plan, (plan.status_from, plan.version), transient_columns(plan, now))
            self.outbox(plan, [plan.transient_event(now)], now)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        now = datetime.now(UTC)
        final = final_columns(plan, now)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.cas(plan, (plan.transient, plan.version + 1), final)
            self.db.execute(
                "INSERT INTO operations (operation_id, runtime_id, team_id, op, op_source,"
                " outcome, error_code, error_message, job_id, job_team, source_ref, reason,"
                " status_from, status_to, container_id, actor, details, started_at,"
                " finished_at) VALUES (?, ?, ?, ?, 'stream', 'success', NULL, '', ?, ?, ?, ?,"
                " ?, ?, ?, '', '{}', ?, ?)",
                (
                    new_id(),
                    plan.record["runtime_id"],
                    plan.record["team_id"],
                    op,
                    plan.job_id,
                    plan.record["team_id"] or "",
                    plan.job_id,
                    plan.reason,
                    plan.status_from,
                    plan.final,
                    final.get("container_id", plan.record["container_id"]),
                    sqlite_time(plan.started_at),
                    sqlite_time(now),
                ),
            )
            self.outbox(plan, plan.final_events(now), now)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return result_fields(plan, final, now)


# -- Postgres -----------------------------------------------------------------------


class PostgresJobs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresJobs:
        plain = url.replace("postgresql+asyncpg://", "postgresql://")
        return cls(await asyncpg.create_pool(plain, min_size=5, max_size=15))

    async def close(self) -> None:
        await self.pool.close()

    @staticmethod
    async def cas(
        connection: asyncpg.Connection,
        plan: Plan,
        expected: tuple[str, int],
        columns: dict[str, Any],
        events: list[tuple[Any, ...]],
        now: datetime,
        entry: tuple[Any, ...] | None = None,
    ) -> None:
        """The UPDATE, the entry's INSERT and the events' INSERT as one
        statement (data-modifying CTEs), as runplane writes a CAS on Postgres."""
        names = sorted(columns)
        arguments: list[Any] = [columns[n] for n in names]
        arguments += [plan.record["runtime_id"], *expected, now]

        def at(value: Any) -> str:
            arguments.append(value)
            return f"${len(arguments)}"

        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, 1))
        key = len(names)
        sql = (
            f"WITH moved AS (UPDATE runtimes SET {assignments} WHERE runtime_id = ${key + 1}"
            f" AND status = ${key + 2} AND version = ${key + 3} RETURNING *)"
        )
        if entry is not None:
            sql += (
                ", logged AS (INSERT INTO operations (operation_id, runtime_id, team_id, op,"
                " op_source, outcome, error_code, error_message, job_id, job_team, source_ref,"
                " reason, status_from, status_to, container_id, actor, details, started_at,"
                " finished_at) SELECT "
                + ", ".join(f"{at(v)}::{t}" for v, t in entry)
                + " FROM moved)"
            )
        rows = ", ".join(
            f"({n}, {at(event_id)}::text, {at(kind)}::text, {at(durable)}::boolean,"
            f" {at(payload)}::text)"
            for n, (event_id, kind, durable, payload) in enumerate(events)
        )
        sql += (
            ", told AS (INSERT INTO outbox (event_id, runtime_id, team_id, type, durable,"
            f" payload, created_at) SELECT e.event_id, moved.runtime_id, moved.team_id, e.type,"
            f" e.durable, e.payload, ${key + 4}::timestamptz FROM moved, (VALUES {rows})"
            " AS e(n, event_id, type, durable, payload) ORDER BY e.n)"
            " SELECT 1 FROM moved"
        )
        if await connection.fetchval(sql, *arguments) is None:
            raise Conflict(plan.record["runtime_id"])

    async def handle(self, op: str, fields: dict[str, str]) -> dict[str, str]:
        async with self.pool.acquire() as connection:
            found = await connection.fetchrow(
                "SELECT * FROM runtimes WHERE runtime_id = $1", fields["runtime_id"]
            )
            if found is None:
                raise Conflict(fields["runtime_id"])
            record = dict(found)
            record["spec"] = json.loads(record["spec"])
            plan = Plan(op, record, fields)
            now = datetime.now(UTC)
            transient = transient_columns(plan, now)
            expected = (plan.status_from, plan.version)
            await self.cas(connection, plan, expected, transient, [plan.transient_event(now)], now)
            now = datetime.now(UTC)
            final = final_columns(plan, now)
            entry = (
                (new_id(), "text"),
                (plan.record["runtime_id"], "text"),
                (plan.record["team_id"], "text"),
                (op, "text"),
                ("stream", "text"),
                ("success", "text"),
                (None, "text"),
                ("", "text"),
                (plan.job_id, "text"),
                (plan.record["team_id"] or "", "text"),
                (plan.job_id, "text"),
                (plan.reason, "text"),
                (plan.status_from, "text"),
                (plan.final, "text"),
                (final.get("container_id", plan.record["container_id"]), "text"),
                ("", "text"),
                ("{}", "jsonb"),
                (plan.started_at, "timestamptz"),
                (now, "timestamptz"),
            )
            expected = (plan.transient, plan.version + 1)
            await self.cas(connection, plan, expected, final, plan.final_events(now), now, entry)
        return result_fields(plan, final, now)


# -- shared -------------------------------------------------------------------------


def transient_columns(plan: Plan, now: datetime) -> dict[str, Any]:
    return {
        "status": plan.transient,
        "version": plan.version + 1,
        "updated_at": now,
        "last_op_at": now,
        "status_deadline": now + TIME_BOUND[plan.op],
    }


def final_columns(plan: Plan, now: datetime) -> dict[str, Any]:
    return {
        "status": plan.final,
        "version": plan.version + 2,
        "updated_at": now,
        "last_op_at": now,
        "status_deadline": None,
        **plan.final_columns(now),
    }


def result_fields(plan: Plan, final: dict[str, Any], now: datetime) -> dict[str, str]:
    return {
        "job_id": plan.job_id,
        "runtime_id": plan.record["runtime_id"],
        "op": plan.op,
        "outcome": "success",
        "error_code": "",
        "error_message": "",
        "status": plan.final,
        "container_id": final.get("container_id", plan.record["container_id"]) or "",
        "engine_endpoint": final.get("engine_endpoint", plan.record["engine_endpoint"]) or "",
        "finished_at_ms": str(int(now.timestamp() * 1000)),
    }


Store = SqliteJobs | PostgresJobs


async def floor_consumer(
    client: redis.asyncio.Redis,
    store: Store,
    streams: dict[str, str],
    group: str,
    on_result: Callable[[str], None],
    stopping: asyncio.Event,
    batch_size: int = 64,
) -> None:
    """XREADGROUP a batch from the job streams, handle its entries concurrently,
    XACK them in one call; `streams` maps a stream to its op."""
    release = client.register_script(RELEASE_SCRIPT)
    for stream in streams:
        await client.xgroup_create(stream, group, id="0", mkstream=True)

    async def one(stream: str, fields: dict[bytes, bytes]) -> None:
        job = {k.decode(): v.decode() for k, v in fields.items()}
        key = f"lease:{{{job['runtime_id']}}}"
        token = new_id()
        if not await client.set(key, token, nx=True, px=LEASE_TTL_MS):
            raise RuntimeError(f"lease of {job['runtime_id']} is held")
        try:
            result = await store.handle(streams[stream], job)
        finally:
            await release(keys=[key], args=[token])
        await client.xadd(RESULTS_STREAM, result, maxlen=1_000_000, approximate=True)  # type: ignore[arg-type]
        on_result(job["job_id"])

    while not stopping.is_set():
        reply = await client.xreadgroup(
            group, "floor-1", dict.fromkeys(streams, ">"), count=batch_size, block=50
        )
        for stream_raw, entries in reply or []:
            stream = stream_raw.decode()
            work: list[Awaitable[None]] = [one(stream, fields) for _, fields in entries]
            await asyncio.gather(*work)
            await client.xack(stream, group, *(entry_id for entry_id, _ in entries))
