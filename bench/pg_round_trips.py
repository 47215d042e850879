"""What a Postgres round trip costs: a compare-and-swap as a transaction of
separate statements against the same write as one statement.

    python bench/pg_round_trips.py [--writes 2000] [--repeat 2]

It starts a throwaway PostgreSQL cluster (Debian's binaries) and, on one
asyncpg connection, runs the same write both ways, alternating:

- five round trips: BEGIN; UPDATE ... WHERE version RETURNING; INSERT the
  operation-log row; INSERT the outbox row; COMMIT (runplane until session 17);
- one round trip: the UPDATE a data-modifying CTE, the two INSERTs selecting
  from the row it moved (runplane's `adapters/sql/cas.py` since then).

It prints, per write, the wall time, this process's CPU and the server
backend's CPU (psutil on the backend's pid), and the ratios."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.postgres, the throwaway cluster

import asyncpg  # noqa: E402
import psutil  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

SCHEMA = """
CREATE TABLE records (id text PRIMARY KEY, status text, version int, spec jsonb);
CREATE TABLE log (seq bigserial PRIMARY KEY, id text, op text, details jsonb, at timestamptz);
CREATE TABLE outbox (seq bigserial PRIMARY KEY, event_id text UNIQUE, id text,
  payload text, at timestamptz);
"""
RECORDS = 200
ONE_STATEMENT = """WITH moved AS (UPDATE records SET version = version + 1
    WHERE id = $1 AND version >= $2 RETURNING *),
  logged AS (INSERT INTO log (id, op, details, at)
    SELECT $1, $3::text, $4::jsonb, $5::timestamptz FROM moved),
  told AS (INSERT INTO outbox (event_id, id, payload, at)
    SELECT $6::text, $1, $7::text, $5::timestamptz FROM moved)
  SELECT * FROM moved"""


async def measure(url: str, writes: int, repeat: int) -> None:
    connection = await asyncpg.connect(url)
    await connection.execute(SCHEMA)
    await connection.executemany(
        "INSERT INTO records VALUES ($1, 'running', 0, '{}')", [(f"r{i}",) for i in range(RECORDS)]
    )
    backend = psutil.Process(await connection.fetchval("SELECT pg_backend_pid()"))
    at = datetime.now(UTC)
    counter = iter(range(10**9))

    async def five() -> None:
        n = next(counter)
        transaction = connection.transaction()
        await transaction.start()
        await connection.fetchrow(
            "UPDATE records SET version = version + 1 WHERE id = $1 AND version >= $2 RETURNING *",
            f"r{n % RECORDS}",
            0,
        )
        await connection.execute(
            "INSERT INTO log (id, op, details, at) VALUES ($1, $2, $3, $4)",
            f"r{n % RECORDS}",
            "stop",
            '{"a": 1}',
            at,
        )
        await connection.execute(
            "INSERT INTO outbox (event_id, id, payload, at) VALUES ($1, $2, $3, $4)",
            f"e{n}",
            f"r{n % RECORDS}",
            '{"b": 2}',
            at,
        )
        await transaction.commit()

    async def one() -> None:
        n = next(counter)
        await connection.fetchrow(
            ONE_STATEMENT, f"r{n % RECORDS}", 0, "stop", '{"a": 1}', at, f"e{n}", '{"b": 2}'
        )

    results: dict[str, list[tuple[float, float, float]]] = {"five": [], "one": []}
    forms: dict[str, Callable[[], Awaitable[None]]] = {"five": five, "one": one}
    for _ in range(repeat):
        for name, write in forms.items():
            for _ in range(200):  # prepared and warm before the clock starts
                await write()
            wall, cpu, served = time.perf_counter(), time.process_time(), backend.cpu_times()
            for _ in range(writes):
                await write()
            after = backend.cpu_times()
            served_s = after.user + after.system - served.user - served.system
            figures = (
                1e3 * (time.perf_counter() - wall) / writes,
                1e3 * (time.process_time() - cpu) / writes,
                1e3 * served_s / writes,
            )
            results[name].append(figures)
            print(
                f"{name:>4}: wall {figures[0]:.3f} ms, this process's CPU {figures[1]:.3f} ms,"
                f" the backend's CPU {figures[2]:.3f} ms per write",
                flush=True,
            )
    await connection.close()
    for index, label in enumerate(("wall", "this process's CPU", "the backend's CPU")):
        ratios = [f[index] / o[index] for f, o in zip(results["five"], results["one"], strict=True)]
        shown = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"five round trips / one, {label}: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = PostgresServer.start(Path(tmp) / "postgres")
        try:
            url = server.create_database("round_trips").replace("postgresql+asyncpg", "postgresql")
            asyncio.run(measure(url, args.writes, args.repeat))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
