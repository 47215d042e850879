"""Job-stream throughput: runplane's consumer against a reference consumer.

    python bench/jobs.py --json

It starts its own Debian redis-server and uses a fresh SQLite database per
run. Each run creates N runtimes, then drives rounds of jobs through the job
streams — a stop job for every runtime, then a start job for every runtime,
and so on — XADDing a whole round at once and starting the next when every
result of the round is in. The same work goes through two consumers that share
the services, stores and JobHandler:

- runplane: the GroupConsumer (XREADGROUP in batches, runtimes handled
  concurrently, XACK after handling);
- reference: shaped like the systems runplane descends from: XREAD COUNT 1,
  one entry at a time, the offset saved after each entry.

Both run with the in-memory driver (the control plane's own overhead) and with
the process driver (real processes). Each configuration runs in a subprocess
of its own, so its peak RSS is its own (the control plane's; process-driver
runtimes are separate processes). Latency runs from a job's XADD to its result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.redis, the throwaway redis-server

import psutil  # noqa: E402
import redis.asyncio  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402

from runplane.adapters.drivers.process import ProcessDriver  # noqa: E402
from runplane.adapters.redis.client import connect  # noqa: E402
from runplane.adapters.redis.jobs import RedisJobResultPublisher  # noqa: E402
from runplane.adapters.redis.leases import RedisLeaseStore  # noqa: E402
from runplane.adapters.redis.names import DEAD_LETTER_STREAM, job_stream  # noqa: E402
from runplane.adapters.redis.offsets import RedisOffsetStore  # noqa: E402
from runplane.adapters.sql.engine import SqlDatabase  # noqa: E402
from runplane.adapters.sql.migrate import upgrade_database  # noqa: E402
from runplane.adapters.sql.operation_log import SqlOperationLog  # noqa: E402
from runplane.adapters.sql.runtime_store import SqlRuntimeStore  # noqa: E402
from runplane.adapters.system import SecretTokenGenerator, SystemClock  # noqa: E402
from runplane.bootstrap.heap import freeze_startup_heap  # noqa: E402
from runplane.domain.jobs import JobResult  # noqa: E402
from runplane.domain.operations import OpKind, OpSource, Outcome  # noqa: E402
from runplane.ports.drivers import Driver  # noqa: E402
from runplane.services.lifecycle.create import CreateRequest  # noqa: E402
from runplane.services.lifecycle.dependencies import Dependencies  # noqa: E402
from runplane.services.lifecycle.service import Lifecycle  # noqa: E402
from runplane.streams.entries import decode_entry  # noqa: E402
from runplane.streams.group import GroupConsumer  # noqa: E402
from runplane.streams.settings import ConsumerSettings  # noqa: E402
from runplane.testing.driver import InMemoryDriver  # noqa: E402
from runplane.workers.jobs.handler import JobHandler  # noqa: E402

DEFAULT_SIZES = {"memory": (400, 6), "process": (50, 4)}
"""driver -> (runtimes, rounds); a round is one job for every runtime."""
WARM_ROUNDS = 2
"""The first stop round and the first start round of a run carry one-off work
(statements compiled, pooled connections opened, each statement prepared on
each connection): `steady_jobs_per_s` leaves them out, `jobs_per_s` does not."""
GRACEFUL_STOP_S = 0.2
"""How long a process runtime takes to shut down on SIGTERM, as a server
draining its connections does; `--graceful-stop-s` changes it."""


def runtime_command(graceful_stop_s: float) -> list[str]:
    """A shell that idles, and on SIGTERM takes `graceful_stop_s` to exit."""
    script = f'trap "sleep {graceful_stop_s}; exit 0" TERM; while :; do sleep 60 & wait $!; done'
    return ["sh", "-c", script]


ROUND_TIMEOUT_S = 600.0
OPS = (OpKind.STOP, OpKind.START)


class TimedResults:
    """Publishes results to Redis, as in production, and times each job from its
    submission; `round_done` fires when the round's last result is in."""

    def __init__(self, publisher: RedisJobResultPublisher | None) -> None:
        self.publisher = publisher
        self.submitted_at: dict[str, float] = {}
        self.latencies_ms: list[float] = []
        self.waiting_for = 0
        self.round_done = asyncio.Event()
        self.round_started = 0.0
        self.arrivals: list[float] = []
        """The current round's results, seconds after its XADD."""

    async def publish(self, result: JobResult) -> None:
        assert self.publisher is not None
        await self.publisher.publish(result)
        if result.outcome is not Outcome.SUCCESS:
            raise RuntimeError(f"job {result.job_id} failed: {result.error_message}")
        self.count(result.job_id)

    def count(self, job_id: str) -> None:
        """A job's result is in: time it, and end the round with its last one."""
        submitted = self.submitted_at.pop(job_id, None)
        if submitted is None:
            return  # a redelivered duplicate; timed already
        now = time.perf_counter()
        self.latencies_ms.append((now - submitted) * 1000)
        self.arrivals.append(now - self.round_started)
        self.waiting_for -= 1
        if self.waiting_for == 0:
            self.round_done.set()


async def build_lifecycle(
    client: redis.asyncio.Redis, database: SqlDatabase, driver: Driver
) -> Lifecycle:
    await upgrade_database(database)
    deps = Dependencies(
        runtimes=SqlRuntimeStore(database),
        operations=SqlOperationLog(database),
        leases=RedisLeaseStore(client),
        drivers={driver.name: driver},
        clock=SystemClock(),
        tokens=SecretTokenGenerator(),
    )
    life = Lifecycle.build(deps, driver.name)
    freeze_startup_heap()  # as serve and agent do once assembled
    return life


async def create_runtimes(life: Lifecycle, count: int, graceful_stop_s: float) -> list[str]:
    ids = [f"bench-{i:05d}" for i in range(count)]
    spec = {"command": runtime_command(graceful_stop_s), "stop_timeout_s": 10}
    for runtime_id in ids:
        made = await life.create.handle(
            CreateRequest(spec=spec, op_source=OpSource.CLI, runtime_id=runtime_id)
        )
        if not made.ok:
            raise RuntimeError(f"setup failed: {made.error_message}")
    return ids


async def remove_runtimes(life: Lifecycle, ids: list[str]) -> None:
    from runplane.services.lifecycle.requests import OperationRequest

    for runtime_id in ids:
        await life[OpKind.REMOVE].handle(OperationRequest(runtime_id, OpSource.CLI))


async def reference_loop(
    raw: redis.asyncio.Redis,
    offsets: RedisOffsetStore,
    handlers: dict[str, JobHandler],
    stopping: asyncio.Event,
) -> None:
    """XREAD COUNT 1, handle, save the offset, repeat: one entry per round trip."""
    positions = dict.fromkeys(handlers, "0")
    while not stopping.is_set():
        reply = await raw.xread(positions, count=1, block=50)
        for stream_raw, entries in reply:
            stream = stream_raw.decode()
            for entry_id, fields in entries:
                entry = decode_entry(stream, entry_id, fields)
                await handlers[stream](entry)
                positions[stream] = entry.entry_id
                await offsets.save("reference", stream, entry.entry_id)


def start_consumers(
    kind: str,
    raw: redis.asyncio.Redis,
    client: redis.asyncio.Redis,
    handlers: dict[str, JobHandler],
    stopping: asyncio.Event,
) -> tuple[list[asyncio.Task[None]], list[GroupConsumer]]:
    if kind == "reference":
        task = asyncio.create_task(
            reference_loop(raw, RedisOffsetStore(client), handlers, stopping)
        )
        return [task], []
    settings = ConsumerSettings(
        batch_size=64, max_concurrency=64, block_ms=50, dead_letter_stream=DEAD_LETTER_STREAM
    )
    consumers = [
        GroupConsumer(
            raw,
            stream=stream,
            group="bench",
            consumer="bench-1",
            handler=handler,
            settings=settings,
        )
        for stream, handler in handlers.items()
    ]
    return [asyncio.create_task(c.run()) for c in consumers], consumers


def loop_thread_times() -> tuple[float, float]:
    """The calling thread's seconds on a CPU and runnable on the run queue
    (Linux schedstat): a round whose loop waited for a core, not for Redis or
    the database, shows it in the second figure."""
    try:
        with open("/proc/thread-self/schedstat") as stats:
            on_cpu_ns, waiting_ns = stats.read().split()[:2]
    except OSError:
        return 0.0, 0.0
    return int(on_cpu_ns) / 1e9, int(waiting_ns) / 1e9


def machine_cpu_s() -> tuple[float, float]:
    """Seconds of CPU the whole machine has spent busy (every core, every
    process; idle and iowait left out), and seconds its virtual cores were
    stolen by the host (another guest running on them)."""
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system + times.irq + times.softirq
    return busy, times.steal


@dataclass
class Rounds:
    """What `drive` measured: the whole run's seconds, and per round its
    seconds, when its results came in (`arrival_points`), the loop thread's
    seconds on a CPU and waiting for one, and how many of the machine's cores
    were busy in it and stolen from it by the host."""

    seconds: float = 0.0
    round_s: list[float] = field(default_factory=list)
    arrivals: list[list[float]] = field(default_factory=list)
    loop_s: list[list[float]] = field(default_factory=list)
    cores_busy: list[float] = field(default_factory=list)
    cores_stolen: list[float] = field(default_factory=list)


async def drive(
    client: redis.asyncio.Redis, results: TimedResults, ids: list[str], rounds: int
) -> Rounds:
    """XADD `rounds` rounds of jobs, one for every runtime, each once the last
    round's results are in; what the run measured."""
    measured = Rounds()
    started = time.perf_counter()
    for round_no in range(rounds):
        cpu_before, waiting_before = loop_thread_times()
        busy_before, stolen_before = machine_cpu_s()
        round_started = time.perf_counter()
        op = OPS[round_no % 2]
        results.round_done.clear()
        results.waiting_for = len(ids)
        results.round_started = round_started
        results.arrivals = []
        async with client.pipeline(transaction=False) as pipe:
            for runtime_id in ids:
                job_id = f"{round_no}/{runtime_id}"
                fields = {"runtime_id": runtime_id, "job_id": job_id}
                if op is OpKind.STOP:
                    fields["reason"] = "requested"
                results.submitted_at[job_id] = time.perf_counter()
                pipe.xadd(job_stream(op), fields)  # type: ignore[arg-type]
            await pipe.execute()
        await asyncio.wait_for(results.round_done.wait(), ROUND_TIMEOUT_S)
        seconds = time.perf_counter() - round_started
        cpu_after, waiting_after = loop_thread_times()
        busy_after, stolen_after = machine_cpu_s()
        measured.round_s.append(round(seconds, 3))
        measured.arrivals.append(arrival_points(results.arrivals))
        measured.loop_s.append(
            [round(cpu_after - cpu_before, 3), round(waiting_after - waiting_before, 3)]
        )
        measured.cores_busy.append(round((busy_after - busy_before) / seconds, 2))
        measured.cores_stolen.append(round((stolen_after - stolen_before) / seconds, 2))
    measured.seconds = time.perf_counter() - started
    return measured


def arrival_points(arrivals: list[float]) -> list[float]:
    """Seconds from a round's XADD to its first, 10th-percentile, median,
    90th-percentile and last result: where a round's time goes (a stop round
    whose first result comes after one stop and the rest after another was
    run in two goes, say)."""
    ordered = sorted(arrivals)
    last = len(ordered) - 1
    return [round(ordered[round(q * last)], 3) for q in (0.0, 0.1, 0.5, 0.9, 1.0)]


async def one_configuration(
    driver_name: str,
    kind: str,
    redis_url: str,
    database_url: str,
    runtimes: int,
    rounds: int,
    graceful_stop_s: float,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(redis_url)
        raw = connect(redis_url, decode_responses=False)
        if database_url == "sqlite":
            database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'runplane.db'}"
        database = SqlDatabase.from_url(database_url)
        driver = InMemoryDriver() if driver_name == "memory" else ProcessDriver(Path(tmp))
        if isinstance(driver, ProcessDriver):
            # As serve's exit watcher does: the supervisors' exit notices are
            # heard (a stop's end being recorded is woken by its notice).
            driver.exit_notices.listen(lambda: None)
        life = await build_lifecycle(client, database, driver)
        await client.flushdb()
        ids = await create_runtimes(life, runtimes, graceful_stop_s)
        results = TimedResults(RedisJobResultPublisher(client))
        handlers = {
            job_stream(op): JobHandler(
                op, life, SqlRuntimeStore(database), results, SystemClock(), 15_000, 5
            )
            for op in OPS
        }
        stopping = asyncio.Event()
        tasks, consumers = start_consumers(kind, raw, client, handlers, stopping)
        try:
            cpu_before = time.process_time()
            measured = await drive(client, results, ids, rounds)
            cpu_s = time.process_time() - cpu_before
        finally:
            stopping.set()
            for consumer in consumers:
                consumer.request_stop()
            await asyncio.gather(*tasks)
            await remove_runtimes(life, ids)
            await raw.aclose()
            await client.aclose()
            await database.dispose()
            if isinstance(driver, ProcessDriver):
                driver.close()
    jobs = runtimes * rounds
    latencies = sorted(results.latencies_ms)
    return {
        "driver": driver_name,
        "consumer": kind,
        "runtimes": runtimes,
        "jobs": jobs,
        "graceful_stop_s": graceful_stop_s if driver_name == "process" else 0.0,
        "seconds": round(measured.seconds, 3),
        "round_s": measured.round_s,
        # Per round: its results' arrival, seconds after the XADD (first, p10,
        # median, p90, last).
        "round_results_s": measured.arrivals,
        # Per round: the event loop's thread on a CPU, and runnable but waiting
        # for one (the cores busy with the runtimes, say), in seconds.
        "round_loop_cpu_wait_s": measured.loop_s,
        # Per round: the machine's busy CPU seconds over the round's seconds,
        # every process counted (the runtimes, their supervisors, Redis): a
        # figure near the core count is a round bound by the machine.
        "round_cores_busy": measured.cores_busy,
        # Per round: CPU the host gave other guests while this machine's
        # virtual cores wanted it, in cores (0 on bare metal): a slow run with
        # steal is the host's, not runplane's.
        "round_cores_stolen": measured.cores_stolen,
        "jobs_per_s": round(jobs / measured.seconds, 1),
        "steady_jobs_per_s": steady_rate(runtimes, measured.round_s),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_job": round(cpu_s * 1000 / jobs, 3),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def steady_rate(runtimes: int, round_s: list[float]) -> float | None:
    """Jobs per second over the rounds after the first WARM_ROUNDS (None
    without any)."""
    later = round_s[WARM_ROUNDS:]
    return round(runtimes * len(later) / sum(later), 1) if later else None


def run_in_subprocess(
    driver: str,
    kind: str,
    redis_url: str,
    database_url: str,
    size: tuple[int, int],
    graceful_stop_s: float,
) -> Any:
    command = [sys.executable, __file__, "--one", driver, kind]
    command += ["--graceful-stop-s", str(graceful_stop_s)]
    command += ["--redis-url", redis_url, "--database-url", database_url]
    command += ["--runtimes", str(size[0]), "--rounds", str(size[1])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{driver}/{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--drivers", default="memory,process")
    parser.add_argument("--one", nargs=2, metavar=("DRIVER", "CONSUMER"), help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the store: SQLite (embedded default) or a throwaway Postgres",
    )
    parser.add_argument("--runtimes", type=int, help="runtimes per run (default per driver)")
    parser.add_argument("--rounds", type=int, help="rounds of jobs (default per driver)")
    parser.add_argument(
        "--graceful-stop-s",
        type=float,
        default=GRACEFUL_STOP_S,
        help="how long a process runtime takes to exit on SIGTERM",
    )
    args = parser.parse_args()
    if args.one:
        figures = asyncio.run(
            one_configuration(
                *args.one,
                args.redis_url,
                args.database_url,
                args.runtimes,
                args.rounds,
                args.graceful_stop_s,
            )
        )
        print(json.dumps(figures))
        return
    report = compare(args)
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))


def compare(args: argparse.Namespace) -> dict[str, Any]:
    by_driver: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        servers.callback(redis_server.stop)
        postgres = None
        if args.database == "postgres":
            postgres = PostgresServer.start(Path(tmp) / "postgres")
            servers.callback(postgres.stop)
        for driver in args.drivers.split(","):
            runtimes, rounds = DEFAULT_SIZES[driver]
            size = (args.runtimes or runtimes, args.rounds or rounds)
            runs = {}
            for kind in ("runplane", "reference"):
                database_url = "sqlite"
                if postgres is not None:
                    database_url = postgres.create_database(f"bench_{driver}_{kind}")
                runs[kind] = run_in_subprocess(
                    driver, kind, redis_server.url, database_url, size, args.graceful_stop_s
                )
            ratio = runs["runplane"]["jobs_per_s"] / runs["reference"]["jobs_per_s"]
            steady = [runs[kind]["steady_jobs_per_s"] for kind in ("runplane", "reference")]
            steady_ratio = round(steady[0] / steady[1], 2) if all(steady) else None
            by_driver[driver] = {**runs, "ratio": round(ratio, 2), "steady_ratio": steady_ratio}
    # The headline is the end-to-end run with real processes when there is one;
    # the in-memory run measures the control plane's own overhead (see docs).
    headline_driver = "process" if "process" in by_driver else next(iter(by_driver))
    headline = by_driver[headline_driver]
    return {
        "runplane_jobs_per_s": headline["runplane"]["jobs_per_s"],
        "reference_jobs_per_s": headline["reference"]["jobs_per_s"],
        "ratio": headline["ratio"],
        # The same without each side's first stop and start rounds (WARM_ROUNDS).
        "steady_ratio": headline["steady_ratio"],
        # The most the host stole in any round of either side, in cores: a
        # ratio from a run with steal is the host's as much as runplane's.
        "cores_stolen_max": {
            kind: max(headline[kind]["round_cores_stolen"], default=0.0)
            for kind in ("runplane", "reference")
        },
        "headline_driver": headline_driver,
        "database": args.database,
        "drivers": by_driver,
    }


if __name__ == "__main__":
    main()
