"""The REST benchmark's baseline: a bare FastAPI app doing a stop/start's I/O.

    python bench/rest_baseline.py --database URL --redis URL --port N --runtimes N

Run by bench/rest.py in a child process of its own, under the same uvicorn
settings as `runplane serve` (`uvicorn_config`, the h11 protocol with the
header deadline). Each POST /v1/runtimes/{id}/stop|start does what a runplane
stop or start does on the wire, and nothing else:

1. the API key: SHA-256 of the bearer token, one indexed read of its hash;
2. the runtime's lease in Redis: SET NX PX;
3. a compare-and-swap transaction: read the record, move it to the transient
   status (version + 1), one outbox row (on Postgres the record read once,
   then one statement, as runplane writes it there: the UPDATE a
   data-modifying CTE the INSERTs select from);
4. a second one: the final status, the op-log row and an outbox row;
5. the lease released (compare-and-delete, one Lua call).

SQLite through the sqlite3 module, each unit of work in one thread hand-off
(as runplane's SqlDatabase does) behind one writer lock; Postgres through
asyncpg's pool; Redis through redis.asyncio with hiredis, as runplane.
The schema is its own, shaped like runplane's tables.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import redis.asyncio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from runplane.bootstrap.serve import uvicorn_config
from runplane.config import Settings

TEAM = "bench"
TRANSIENT = {"stop": "stopping", "start": "starting"}
FINAL = {"stop": "stopped", "start": "running"}
RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (key_id VARCHAR(64) PRIMARY KEY,
  key_hash VARCHAR(128) NOT NULL UNIQUE, team_id VARCHAR(128), admin BOOLEAN NOT NULL,
  expires_at TEXT, revoked_at TEXT);
CREATE TABLE IF NOT EXISTS runtimes (runtime_id VARCHAR(128) PRIMARY KEY,
  team_id VARCHAR(128) NOT NULL, status VARCHAR(32) NOT NULL, version INTEGER NOT NULL,
  spec TEXT NOT NULL, container_id VARCHAR(256), updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operations (seq {serial} PRIMARY KEY,
  operation_id VARCHAR(128) NOT NULL UNIQUE, runtime_id VARCHAR(128) NOT NULL,
  team_id VARCHAR(128), op VARCHAR(16) NOT NULL, outcome VARCHAR(16) NOT NULL,
  status_from VARCHAR(32), status_to VARCHAR(32), actor TEXT NOT NULL, details TEXT NOT NULL,
  started_at TEXT NOT NULL, finished_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS operations_runtime ON operations (runtime_id, seq);
CREATE TABLE IF NOT EXISTS outbox (seq {serial} PRIMARY KEY,
  event_id VARCHAR(64) NOT NULL UNIQUE, runtime_id VARCHAR(128) NOT NULL,
  team_id VARCHAR(128), type VARCHAR(64) NOT NULL, payload TEXT NOT NULL,
  created_at TEXT NOT NULL, sent_at TEXT);
"""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


class Conflict(Exception):
    pass


class Sqlite:
    """sqlite3 with runplane's pragmas; one thread hand-off per unit of work."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pool = ThreadPoolExecutor(4)
        self.lock = asyncio.Lock()
        self.local: dict[int, sqlite3.Connection] = {}

    def connection(self) -> sqlite3.Connection:
        import threading

        ident = threading.get_ident()
        conn = self.local.get(ident)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL"):
                conn.execute(f"PRAGMA {pragma}")
            self.local[ident] = conn
        return conn

    async def setup(self) -> None:
        conn = self.connection()
        conn.executescript(SCHEMA.format(serial="INTEGER"))

    async def read(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        def work() -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = self.connection().execute(sql, args).fetchone()
            return row

        return await asyncio.get_running_loop().run_in_executor(self.pool, work)

    async def write(self, work: Callable[[Any], Any]) -> Any:
        def transaction() -> Any:
            conn = self.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        async with self.lock:
            return await asyncio.get_running_loop().run_in_executor(self.pool, transaction)

    def seed(self, runtimes: int, key_hash: str) -> None:
        conn = self.connection()
        conn.execute(
            "INSERT OR IGNORE INTO api_keys VALUES ('key_1', ?, ?, 0, NULL, NULL)", (key_hash, TEAM)
        )
        for i in range(runtimes):
            conn.execute(
                "INSERT OR IGNORE INTO runtimes VALUES (?, ?, 'running', 1, ?, 'm', ?)",
                (f"rest-{i:03d}", TEAM, json.dumps({"command": ["x"]}), now()),
            )


def sqlite_transition(rid: str, op: str, phase: str) -> Callable[[sqlite3.Connection], Any]:
    def work(conn: sqlite3.Connection) -> Any:
        row = conn.execute(
            "SELECT status, version, team_id FROM runtimes WHERE runtime_id = ?", (rid,)
        ).fetchone()
        if row is None or row[2] != TEAM:
            raise Conflict("no such runtime")
        status, version = row[0], row[1]
        to = TRANSIENT[op] if phase == "begin" else FINAL[op]
        updated = conn.execute(
            "UPDATE runtimes SET status = ?, version = ?, updated_at = ? "
            "WHERE runtime_id = ? AND version = ?",
            (to, version + 1, now(), rid, version),
        ).rowcount
        if updated != 1:
            raise Conflict("version moved")
        if phase == "end":
            conn.execute(
                "INSERT INTO operations (operation_id, runtime_id, team_id, op, outcome, "
                "status_from, status_to, actor, details, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, 'success', ?, ?, 'key_1', '{}', ?, ?)",
                (uuid.uuid4().hex, rid, TEAM, op, status, to, now(), now()),
            )
        conn.execute(
            "INSERT INTO outbox (event_id, runtime_id, team_id, type, payload, created_at) "
            "VALUES (?, ?, ?, 'status', ?, ?)",
            (uuid.uuid4().hex, rid, TEAM, json.dumps({"from": status, "to": to}), now()),
        )
        return to

    return work


class Postgres:
    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://")
        self.pool: asyncpg.Pool | None = None
        self.as_read: dict[str, tuple[str, int]] = {}
        """runtime_id -> (status, version) as read at "begin": the lease is held
        between the phases, as runplane holds it between its two writes."""

    async def setup(self) -> None:
        self.pool = await asyncpg.create_pool(self.url, min_size=2, max_size=10)
        async with self.pool.acquire() as conn:
            await conn.execute(SCHEMA.format(serial="BIGSERIAL"))

    async def read(self, sql: str, *args: Any) -> Any:
        assert self.pool is not None
        return await self.pool.fetchrow(sql.replace("?", "$1"), *args)

    async def transition(self, rid: str, op: str, phase: str) -> str:
        """The record read once (at "begin"), then each phase's write as one
        statement (data-modifying CTEs, one round trip), as runplane writes a
        compare-and-swap on Postgres: the UPDATE by version, the INSERTs
        selecting from the moved row. Three round trips a request, as runplane's."""
        assert self.pool is not None
        if phase == "begin":
            row = await self.pool.fetchrow(
                "SELECT status, version, team_id FROM runtimes WHERE runtime_id = $1", rid
            )
            if row is None or row[2] != TEAM:
                raise Conflict("no such runtime")
            self.as_read[rid] = (row[0], row[1])
        status, version = self.as_read.pop(rid) if phase == "end" else self.as_read[rid]
        to = TRANSIENT[op] if phase == "begin" else FINAL[op]
        payload = json.dumps({"from": status, "to": to})
        arguments: list[Any] = [rid, TEAM, to, version, now(), uuid.uuid4().hex, payload]
        logged = ""
        if phase == "end":
            arguments += [uuid.uuid4().hex, op, status]
            logged = (
                ", logged AS (INSERT INTO operations (operation_id, runtime_id, team_id, op,"
                " outcome, status_from, status_to, actor, details, started_at, finished_at)"
                " SELECT $8, $1, $2, $9, 'success', $10, $3, 'key_1', '{}', $5, $5 FROM moved)"
            )
        moved = await self.pool.fetchval(
            "WITH moved AS (UPDATE runtimes SET status = $3, version = $4 + 1, updated_at = $5"
            " WHERE runtime_id = $1 AND version = $4 RETURNING 1),"
            " told AS (INSERT INTO outbox (event_id, runtime_id, team_id, type, payload,"
            f" created_at) SELECT $6, $1, $2, 'status', $7, $5 FROM moved){logged}"
            " SELECT count(*) FROM moved",
            *arguments,
        )
        if not moved:
            raise Conflict("version moved")
        if phase == "begin":
            self.as_read[rid] = (to, version + 1)
        return to

    async def seed(self, runtimes: int, key_hash: str) -> None:
        assert self.pool is not None
        await self.pool.execute(
            "INSERT INTO api_keys VALUES ('key_1', $1, $2, false, NULL, NULL) "
            "ON CONFLICT DO NOTHING",
            key_hash,
            TEAM,
        )
        for i in range(runtimes):
            await self.pool.execute(
                "INSERT INTO runtimes VALUES ($1, $2, 'running', 1, $3, 'm', $4) "
                "ON CONFLICT DO NOTHING",
                f"rest-{i:03d}",
                TEAM,
                json.dumps({"command": ["x"]}),
                now(),
            )


def build_app(database: Sqlite | Postgres, client: redis.asyncio.Redis) -> FastAPI:
    app = FastAPI()

    async def transition(rid: str, op: str, phase: str) -> str:
        if isinstance(database, Sqlite):
            return str(await database.write(sqlite_transition(rid, op, phase)))
        return await database.transition(rid, op, phase)

    async def operate(op: str, runtime_id: str, request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key_hash = hashlib.sha256(token.encode()).hexdigest()
        key = await database.read(
            "SELECT key_id, team_id, revoked_at FROM api_keys WHERE key_hash = ?", key_hash
        )
        if scheme.lower() != "bearer" or key is None or key[2] is not None:
            return JSONResponse({"error": {"code": "unauthorized", "message": "?"}}, 401)
        lease, holder = f"lease:{runtime_id}", secrets.token_hex(16)
        if not await client.set(lease, holder, nx=True, px=10_000):
            return JSONResponse({"error": {"code": "conflict", "message": "busy"}}, 409)
        try:
            await transition(runtime_id, op, "begin")
            status = await transition(runtime_id, op, "end")
        except Conflict as exc:
            return JSONResponse({"error": {"code": "conflict", "message": str(exc)}}, 409)
        finally:
            await client.eval(RELEASE, 1, lease, holder)
        return JSONResponse(
            {"runtime_id": runtime_id, "op": op, "outcome": "success", "status": status}
        )

    @app.post("/v1/runtimes/{runtime_id}/stop")
    async def stop(runtime_id: str, request: Request) -> JSONResponse:
        return await operate("stop", runtime_id, request)

    @app.post("/v1/runtimes/{runtime_id}/start")
    async def start(runtime_id: str, request: Request) -> JSONResponse:
        return await operate("start", runtime_id, request)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True, help="sqlite:///path or postgresql://")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runtimes", type=int, required=True)
    parser.add_argument("--key", required=True, help="the team key's plaintext")
    args = parser.parse_args()
    database: Sqlite | Postgres
    if args.database.startswith("sqlite"):
        database = Sqlite(args.database.split("///", 1)[1])
        await database.setup()
        database.seed(args.runtimes, hashlib.sha256(args.key.encode()).hexdigest())
    else:
        database = Postgres(args.database)
        await database.setup()
        await database.seed(args.runtimes, hashlib.sha256(args.key.encode()).hexdigest())
    client = redis.asyncio.Redis.from_url(args.redis, decode_responses=True)
    app = build_app(database, client)
    settings = Settings(host="127.0.0.1", port=args.port)
    await uvicorn.Server(uvicorn_config(app, settings)).serve()


if __name__ == "__main__":
    asyncio.run(main())
