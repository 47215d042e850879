"""Health-event burst: how fast the health events consumer gets through repeats.

    python bench/health_burst.py [--events 10000] [--database sqlite|postgres]
                                 [--baseline REF] [--json]

It starts its own Debian redis-server (and, with `--database postgres`, a
throwaway PostgreSQL), creates one runtime on the in-memory driver, XADDs
`--events` repeated `inspect_unhealthy` events for it to a health stream in one
pipeline, then runs the real consumer (`health_events_consumer`, the
HealthEventApplier with SqlEngineHealthStore and RedisSnapshotPublisher, as
bootstrap wires them, with the default consumer settings) and times it from its
start until its saved position is the last entry. It prints events/s and what
the burst wrote: statements sent to the database (SELECT / UPDATE / INSERT),
`runtime:snapshots` entries, and the record's version.

`--baseline REF` runs the same measurement a second time against the `src/` of
git revision REF (extracted with `git archive` to a temporary folder), so the
code before a change can be compared with the working tree, side by side.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway servers

import redis.asyncio  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402

from runplane.adapters.redis.client import connect, connect_bytes  # noqa: E402
from runplane.adapters.redis.health import RedisSnapshotPublisher  # noqa: E402
from runplane.adapters.redis.leases import RedisLeaseStore  # noqa: E402
from runplane.adapters.redis.names import DEAD_LETTER_STREAM  # noqa: E402
from runplane.adapters.redis.offsets import RedisOffsetStore  # noqa: E402
from runplane.adapters.sql.engine import SqlDatabase  # noqa: E402
from runplane.adapters.sql.engine_health import SqlEngineHealthStore  # noqa: E402
from runplane.adapters.sql.migrate import upgrade_database  # noqa: E402
from runplane.adapters.sql.operation_log import SqlOperationLog  # noqa: E402
from runplane.adapters.sql.runtime_store import SqlRuntimeStore  # noqa: E402
from runplane.adapters.system import SecretTokenGenerator, SystemClock  # noqa: E402
from runplane.domain.health.events import HealthEvent, HealthEventType  # noqa: E402
from runplane.domain.operations import OpSource  # noqa: E402
from runplane.services.health.applier import HealthEventApplier  # noqa: E402
from runplane.services.lifecycle.create import CreateRequest  # noqa: E402
from runplane.services.lifecycle.dependencies import Dependencies  # noqa: E402
from runplane.services.lifecycle.service import Lifecycle  # noqa: E402
from runplane.streams.settings import ConsumerSettings  # noqa: E402
from runplane.testing.driver import InMemoryDriver  # noqa: E402
from runplane.workers.health_consumer import health_events_consumer  # noqa: E402

RUNTIME_ID = "burst"
STREAM = "bench:health_events"
SNAPSHOTS = "bench:snapshots"
TIMEOUT_S = 600.0


class WatchedOffsets(RedisOffsetStore):
    """The Redis offset store, telling when the consumer saved `last_id`."""

    def __init__(self, client: redis.asyncio.Redis, last_id: str) -> None:
        super().__init__(client)
        self.last_id = last_id
        self.reached = asyncio.Event()

    async def save(self, consumer: str, stream: str, entry_id: str) -> None:
        await super().save(consumer, stream, entry_id)
        if entry_id == self.last_id:
            self.reached.set()


class StatementCounter:
    """Counts the SQL statements sent through every engine, by first word."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.on = False

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.on:
            self.counts[statement.lstrip().split(None, 1)[0].upper()] += 1


async def one_run(redis_url: str, database_url: str, events: int) -> dict[str, Any]:
    counter = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counter)
    with tempfile.TemporaryDirectory() as tmp:
        if database_url == "sqlite":
            database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'runplane.db'}"
        database = SqlDatabase.from_url(database_url)
        await upgrade_database(database)
        client = connect(redis_url)
        raw = connect_bytes(redis_url)
        await client.flushdb()
        driver = InMemoryDriver()
        deps = Dependencies(
            runtimes=SqlRuntimeStore(database),
            operations=SqlOperationLog(database),
            leases=RedisLeaseStore(client),
            drivers={driver.name: driver},
            clock=SystemClock(),
            tokens=SecretTokenGenerator(),
        )
        life = Lifecycle.build(deps, driver.name)
        made = await life.create.handle(
            CreateRequest(spec={"command": ["x"]}, op_source=OpSource.CLI, runtime_id=RUNTIME_ID)
        )
        assert made.record is not None, made
        before = made.record
        now = deps.clock.now()
        fields = HealthEvent(
            RUNTIME_ID, before.container_id or "", HealthEventType.INSPECT_UNHEALTHY, now
        ).as_fields()
        async with client.pipeline(transaction=False) as pipe:
            for _ in range(events):
                pipe.xadd(STREAM, fields)  # type: ignore[arg-type]
            ids = await pipe.execute()
        offsets = WatchedOffsets(client, ids[-1])
        applier = HealthEventApplier(
            deps, SqlEngineHealthStore(database), RedisSnapshotPublisher(client, stream=SNAPSHOTS)
        )
        consumer = health_events_consumer(
            raw,
            offsets,
            applier,
            settings=ConsumerSettings(dead_letter_stream=DEAD_LETTER_STREAM),
            stream=STREAM,
            consumer="bench",
        )
        counter.on = True
        started = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        await asyncio.wait_for(offsets.reached.wait(), TIMEOUT_S)
        seconds = time.perf_counter() - started
        counter.on = False
        await consumer.stop()
        await task
        after = await deps.runtimes.get(RUNTIME_ID)
        assert after is not None
        figures = {
            "events": events,
            "seconds": round(seconds, 3),
            "events_per_s": round(events / seconds, 1),
            "sql_statements": dict(sorted(counter.counts.items())),
            "snapshot_entries": await client.xlen(SNAPSHOTS),
            "version_before": before.version,
            "version_after": after.version,
            "engine_health": after.engine_health,
        }
        await raw.aclose()
        await client.aclose()
        await database.dispose()
    return figures


def run_in_subprocess(src: Path, redis_url: str, database_url: str, events: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", "--events", str(events)]
    command += ["--redis-url", redis_url, "--database-url", database_url]
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"run on {src} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"database": args.database, "events": args.events}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        servers.callback(redis_server.stop)
        postgres = None
        if args.database == "postgres":
            postgres = PostgresServer.start(Path(tmp) / "postgres")
            servers.callback(postgres.stop)
        trees = {"current": ROOT / "src"}
        if args.baseline:
            baseline = Path(tmp) / "baseline"
            baseline.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline, "src"],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
            trees[f"baseline {args.baseline}"] = baseline / "src"
        for name, src in trees.items():
            database_url = "sqlite"
            if postgres is not None:
                database_url = postgres.create_database(f"bench_burst_{len(report)}")
            report[name] = run_in_subprocess(src, redis_server.url, database_url, args.events)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--baseline", metavar="REF", help="also measure git revision REF")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one_run(args.redis_url, args.database_url, args.events))))
        return
    report = compare(args)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
