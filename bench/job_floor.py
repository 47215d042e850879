"""CPU per stream job: runplane against the raw floor of the same I/O.

    python bench/job_floor.py --json --repeat 3
    python bench/job_floor.py --database postgres

It starts its own Debian redis-server (and, with `--database postgres`, a
throwaway PostgreSQL cluster). Each run creates N runtimes with runplane's own
create (not measured), then drives rounds of jobs through the job streams as
bench/jobs.py does: a stop job for every runtime, then a start job for every
runtime, a whole round XADDed at once. Two consumers do the work, each in a
subprocess of its own, on a fresh database:

- runplane: the GroupConsumer + JobHandler + lifecycle services + SQL stores,
  with the in-memory driver (bench/jobs.py's wiring);
- floor: bench/job_floor_raw.py: the same Redis and SQL I/O per job in raw
  sqlite3 (or asyncpg) and redis.asyncio with hiredis, inline, no framework.

The figure is the process's CPU time (all threads) while the rounds run,
divided by the jobs: `ratio` is runplane's CPU per job over the floor's. Runs
alternate which side goes first; `--repeat` gives the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # bench/jobs.py's wiring and the raw floor

import jobs  # noqa: E402
from job_floor_raw import PostgresJobs, SqliteJobs, floor_consumer  # noqa: E402
from jobs import OPS, PostgresServer, RedisServer, TimedResults, drive  # noqa: E402

from runplane.adapters.redis.client import connect  # noqa: E402
from runplane.adapters.redis.names import job_stream  # noqa: E402
from runplane.adapters.sql.engine import SqlDatabase  # noqa: E402
from runplane.testing.driver import InMemoryDriver  # noqa: E402

DEFAULT_RUNTIMES = 400
DEFAULT_ROUNDS = 6


async def floor_run(
    redis_url: str, database_url: str, runtimes: int, rounds: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        if database_url == "sqlite":
            database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'runplane.db'}"
        client = connect(redis_url)
        database = SqlDatabase.from_url(database_url)
        try:
            # Set-up by runplane itself: the schema and the records are runplane's.
            life = await jobs.build_lifecycle(client, database, InMemoryDriver())
            await client.flushdb()
            ids = await jobs.create_runtimes(life, runtimes, 0.0)
        finally:
            await database.dispose()
        raw = connect(redis_url, decode_responses=False)
        store: SqliteJobs | PostgresJobs
        if database.backend == "sqlite":
            store = SqliteJobs(str(database.engine.url.database))
        else:
            store = await PostgresJobs.open(database_url)
        results = TimedResults(None)
        stopping = asyncio.Event()
        streams = {job_stream(op): str(op) for op in OPS}
        task = asyncio.create_task(
            floor_consumer(raw, store, streams, "bench", results.count, stopping)
        )
        try:
            cpu_before = time.process_time()
            seconds = (await drive(client, results, ids, rounds)).seconds
            cpu_s = time.process_time() - cpu_before
        finally:
            stopping.set()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
            await raw.aclose()
            await client.aclose()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise RuntimeError(f"floor consumer failed: {task.exception()!r}")
    total = runtimes * rounds
    return {
        "consumer": "floor",
        "jobs": total,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(total / seconds, 1),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_job": round(cpu_s * 1000 / total, 3),
    }


async def runplane_run(
    redis_url: str, database_url: str, runtimes: int, rounds: int
) -> dict[str, Any]:
    return await jobs.one_configuration(
        "memory", "runplane", redis_url, database_url, runtimes, rounds, 0.0
    )


def export_source(rev: str, into: Path) -> Path:
    """`src/` of `rev`, unpacked from git, for the baseline child to import."""
    archive = subprocess.run(
        ["git", "-C", str(BENCH.parent), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def run_in_subprocess(
    kind: str,
    redis_url: str,
    database_url: str,
    runtimes: int,
    rounds: int,
    profile: str | None,
    source: Path | None = None,
) -> Any:
    # "baseline" is runplane's side on an older tree's src/ (--baseline-rev).
    one = "runplane" if kind == "baseline" else kind
    command = [sys.executable, __file__, "--one", one, "--redis-url", redis_url]
    command += ["--database-url", database_url, "--runtimes", str(runtimes)]
    command += ["--rounds", str(rounds)]
    if profile:
        command += ["--profile", profile]
    env = {**os.environ, "PYTHONPATH": str(source or BENCH.parent / "src")}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        servers.callback(redis_server.stop)
        postgres = None
        if args.database == "postgres":
            postgres = PostgresServer.start(Path(tmp) / "postgres")
            servers.callback(postgres.stop)
        baseline_src = None
        if args.baseline_rev:
            baseline_src = export_source(args.baseline_rev, Path(tmp))
        for repeat in range(args.repeat):
            order: tuple[str, ...] = ("runplane", "floor")
            if baseline_src is not None:
                order = (*order, "baseline")
            if repeat % 2:
                order = order[::-1]
            pair: dict[str, Any] = {}
            for kind in order:
                database_url = "sqlite"
                if postgres is not None:
                    database_url = postgres.create_database(f"floor_{kind}_{repeat}")
                pair[kind] = run_in_subprocess(
                    kind,
                    redis_server.url,
                    database_url,
                    args.runtimes,
                    args.rounds,
                    None,
                    baseline_src if kind == "baseline" else None,
                )
            floor_ms = pair["floor"]["cpu_ms_per_job"]
            run = {**pair, "ratio": round(pair["runplane"]["cpu_ms_per_job"] / floor_ms, 2)}
            if "baseline" in pair:
                run["baseline_ratio"] = round(pair["baseline"]["cpu_ms_per_job"] / floor_ms, 2)
            runs.append(run)
    ratios = [run["ratio"] for run in runs]
    extra: dict[str, Any] = {}
    if args.baseline_rev:
        before = [run["baseline_ratio"] for run in runs]
        extra = {
            "baseline_rev": args.baseline_rev,
            "baseline_ratio": statistics.median(before),
            "baseline_ratio_min": min(before),
            "baseline_ratio_max": max(before),
        }
    return {
        **extra,
        "database": args.database,
        "runtimes": args.runtimes,
        "rounds": args.rounds,
        "runplane_cpu_ms_per_job": statistics.median(r["runplane"]["cpu_ms_per_job"] for r in runs),
        "floor_cpu_ms_per_job": statistics.median(r["floor"]["cpu_ms_per_job"] for r in runs),
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runtimes", type=int, default=DEFAULT_RUNTIMES)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument(
        "--baseline-rev",
        help="also run runplane's side on this commit's src/ (git archive), same rounds",
    )
    parser.add_argument("--one", choices=("runplane", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", metavar="FILE", help="with --one: write a cProfile of the run to FILE"
    )
    args = parser.parse_args()
    if args.one:
        run = runplane_run if args.one == "runplane" else floor_run
        work = run(args.redis_url, args.database_url, args.runtimes, args.rounds)
        if args.profile:
            import cProfile

            # CPU time, not wall: the figure the bench compares.
            with cProfile.Profile(time.process_time) as profiler:
                figures = asyncio.run(work)
            profiler.dump_stats(args.profile)
        else:
            figures = asyncio.run(work)
        print(json.dumps(figures))
        return
    report = compare(args)
    if args.json:
        print(json.dumps(report))
        return
    for i, run in enumerate(report["runs"]):
        print(
            f"run {i + 1}: runplane {run['runplane']['cpu_ms_per_job']:.3f} ms/job,"
            f" floor {run['floor']['cpu_ms_per_job']:.3f} ms/job, ratio {run['ratio']:.2f}"
            + (
                f"; baseline {run['baseline']['cpu_ms_per_job']:.3f} ms/job,"
                f" ratio {run['baseline_ratio']:.2f}"
                if "baseline" in run
                else ""
            )
        )
    print(
        f"{report['database']}: ratio {report['ratio']:.2f}"
        f" (min {report['ratio_min']:.2f}, max {report['ratio_max']:.2f}),"
        f" runplane {report['runplane_cpu_ms_per_job']:.3f} ms/job,"
        f" floor {report['floor_cpu_ms_per_job']:.3f} ms/job"
    )
    if "baseline_rev" in report:
        print(
            f"baseline {report['baseline_rev']}: ratio {report['baseline_ratio']:.2f}"
            f" (min {report['baseline_ratio_min']:.2f}, max {report['baseline_ratio_max']:.2f})"
        )


if __name__ == "__main__":
    main()
