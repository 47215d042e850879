"""Health events: how fast the health events consumer gets through a burst.

    .venv/bin/python bench/health_events.py [--runtimes 100] [--events 10000]
        [--postgres] [--baseline-rev 0235fdd] [--rounds 1] [--profile FILE]

It starts its own redis-server (and a throwaway Postgres with --postgres,
else a SQLite file), creates `--runtimes` running records on the in-memory
driver, XADDs `--events` health events spread over them in one pipeline, then
runs the health events consumer and its HealthEventApplier as
bootstrap/health.py builds them (SqlEngineHealthStore, RedisSnapshotPublisher,
the serve's consumer settings), in-process, and times it from its start until
its saved position is the last entry. Two bursts:

- repeats: each runtime gets one event type over and over (`probe_failed` for
  even ones, `probe_recovered` for odd ones): the first changes at most the
  summary, the rest change nothing;
- changes: each runtime cycles `container_exited` (running -> engine_unreachable),
  `probe_recovered` (back to running), `probe_failed`, `probe_recovered`:
  every event changes the record, half of them its status.

Each burst runs in a child process per tree: this tree's `src/`, and the
`src/` of `--baseline-rev` (git archive into a temporary folder, PYTHONPATH),
side by side in the same run; it prints events/s of both and the ratio, and
what each wrote (SQL statements by first word, snapshot entries, versions).
`--profile FILE` writes a cProfile of this tree's run of `--profile-burst`. Not part of
`make test`.
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

STREAM = "bench:health_events"
SNAPSHOTS = "bench:snapshots"
TIMEOUT_S = 900.0
BURSTS = ("repeats", "changes")


def burst_types(burst: str, index: int, runtime: int) -> str:
    """The event type of a runtime's `index`-th event in `burst`."""
    if burst == "repeats":
        return "probe_failed" if runtime % 2 == 0 else "probe_recovered"
    cycle = ("container_exited", "probe_recovered", "probe_failed", "probe_recovered")
    return cycle[index % len(cycle)]


async def one_run(redis_url: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    # Imported here: the child's PYTHONPATH chooses which tree's runplane this is.
    import redis.asyncio
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from runplane.adapters.redis.client import connect, connect_bytes
    from runplane.adapters.redis.health import RedisSnapshotPublisher
    from runplane.adapters.redis.leases import RedisLeaseStore
    from runplane.adapters.redis.offsets import RedisOffsetStore
    from runplane.adapters.sql.engine import SqlDatabase
    from runplane.adapters.sql.engine_health import SqlEngineHealthStore
    from runplane.adapters.sql.migrate import upgrade_database
    from runplane.adapters.sql.operation_log import SqlOperationLog
    from runplane.adapters.sql.runtime_store import SqlRuntimeStore
    from runplane.adapters.system import SecretTokenGenerator, SystemClock
    from runplane.bootstrap import health as boot
    from runplane.bootstrap.streams import consumer_settings
    from runplane.config import Settings
    from runplane.domain.health.events import HealthEvent, HealthEventType
    from runplane.domain.operations import OpSource
    from runplane.services.health.applier import HealthEventApplier
    from runplane.services.lifecycle.create import CreateRequest
    from runplane.services.lifecycle.dependencies import Dependencies
    from runplane.services.lifecycle.service import Lifecycle
    from runplane.testing.driver import InMemoryDriver
    from runplane.workers.health_consumer import health_events_consumer

    class WatchedOffsets(RedisOffsetStore):
        def __init__(self, client: redis.asyncio.Redis, last_id: str) -> None:
            super().__init__(client)
            self.last_id = last_id
            self.reached = asyncio.Event()

        async def save(self, consumer: str, stream: str, entry_id: str) -> None:
            await super().save(consumer, stream, entry_id)
            if entry_id == self.last_id:
                self.reached.set()

    counts: collections.Counter[str] = collections.Counter()
    counting = [False]

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if counting[0]:
            counts[statement.lstrip().split(None, 1)[0].upper()] += 1

    event.listen(Engine, "before_cursor_execute", count)
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
        containers = []
        for n in range(args.runtimes):
            made = await life.create.handle(
                CreateRequest(spec={"command": ["x"]}, op_source=OpSource.CLI, runtime_id=f"b{n}")
            )
            assert made.record is not None, made
            containers.append(made.record.container_id or "")
        now = deps.clock.now()
        async with client.pipeline(transaction=False) as pipe:
            for i in range(args.events):
                n = i % args.runtimes
                kind = HealthEventType(burst_types(args.burst, i // args.runtimes, n))
                fields = HealthEvent(f"b{n}", containers[n], kind, now).as_fields()
                pipe.xadd(STREAM, fields)  # type: ignore[arg-type]
            ids = await pipe.execute()
        offsets = WatchedOffsets(client, ids[-1])
        hooks = [0]

        async def on_unreachable(_record: Any, _event: Any) -> None:
            hooks[0] += 1  # the restart scheduler's place: the call is what is counted

        applier = HealthEventApplier(
            deps,
            SqlEngineHealthStore(database),
            RedisSnapshotPublisher(client, stream=SNAPSHOTS),
            on_unreachable=on_unreachable,
        )
        settings = consumer_settings(Settings())
        shape = getattr(boot, "health_events_settings", None)  # absent from the baseline
        import dataclasses

        reading = shape(settings) if shape else dataclasses.replace(settings, retention=None)
        consumer = health_events_consumer(
            raw, offsets, applier, settings=reading, stream=STREAM, consumer="bench"
        )
        profile = None
        if args.profile:
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        counting[0] = True
        started = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        await asyncio.wait_for(offsets.reached.wait(), TIMEOUT_S)
        seconds = time.perf_counter() - started
        counting[0] = False
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        await consumer.stop()
        await task
        versions = collections.Counter()
        summaries = collections.Counter()
        for n in range(args.runtimes):
            after = await deps.runtimes.get(f"b{n}")
            assert after is not None
            versions[after.version] += 1
            summaries[f"{after.status}/{after.engine_health}"] += 1
        figures = {
            "seconds": round(seconds, 3),
            "events_per_s": round(args.events / seconds, 1),
            "sql": dict(sorted(counts.items())),
            "snapshots": await client.xlen(SNAPSHOTS),
            "hooks": hooks[0],
            "versions": dict(versions),
            "final": dict(summaries),
        }
        await raw.aclose()
        await client.aclose()
        await database.dispose()
    return figures


def child(src: Path, redis_url: str, database_url: str, burst: str, args: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", "--burst", burst]
    command += ["--runtimes", str(args.runtimes), "--events", str(args.events)]
    command += ["--redis-url", redis_url, "--database-url", database_url]
    if args.profile and src == ROOT / "src" and burst == args.profile_burst:
        command += ["--profile", args.profile]
    env = {**os.environ, "PYTHONPATH": str(src), "RUNPLANE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"run on {src} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        servers.callback(redis_server.stop)
        postgres = None
        if args.postgres:
            postgres = PostgresServer.start(Path(tmp) / "postgres")
            servers.callback(postgres.stop)
        trees = {"this tree": ROOT / "src"}
        if args.baseline_rev:
            baseline = Path(tmp) / "baseline"
            baseline.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline_rev, "src"],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
            trees[f"baseline {args.baseline_rev}"] = baseline / "src"
        made = 0
        for round_no in range(args.rounds):
            for burst in BURSTS:
                row: dict[str, Any] = {"round": round_no + 1, "burst": burst}
                for name, src in trees.items():
                    database_url = "sqlite"
                    if postgres is not None:
                        made += 1
                        database_url = postgres.create_database(f"bench_health_{made}")
                    row[name] = child(src, redis_server.url, database_url, burst, args)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", type=int, default=100)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true", help="Postgres instead of SQLite")
    parser.add_argument("--baseline-rev", default="0235fdd", help="'' measures this tree only")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", metavar="FILE", help="cProfile this tree's run")
    parser.add_argument("--profile-burst", choices=BURSTS, default="repeats")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--burst", choices=BURSTS, default="repeats", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        figures = asyncio.run(one_run(args.redis_url, args.database_url, args))
        print(json.dumps(figures))
        return
    rows = compare(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    database = "postgres" if args.postgres else "sqlite"
    print(f"{args.events} events over {args.runtimes} runtimes, {database}")
    for row in rows:
        mine = row["this tree"]
        line = f"round {row['round']} {row['burst']:8} this tree {mine['events_per_s']:>9.1f}/s"
        base = next((v for k, v in row.items() if k.startswith("baseline")), None)
        if base is not None:
            ratio = mine["events_per_s"] / base["events_per_s"]
            line += f"  baseline {base['events_per_s']:>8.1f}/s  ratio {ratio:6.1f}x"
        print(line)
        for name, figures in row.items():
            if isinstance(figures, dict):
                rest = {k: v for k, v in figures.items() if k != "events_per_s"}
                print(f"    {name}: {json.dumps(rest)}")


from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402

if __name__ == "__main__":
    main()
