"""The fault trials: jobs in flight, a fault injected, the damage counted.

    python -m tests.faults.trials [--trials kill,redis,postgres,rest]
        [--runtimes 100] [--jobs 2000] [--rest-ops 2000] [--settle-timeout-s 120] [--json]

Each trial runs on servers of its own (tests/faults/cluster.py): it creates
the runtimes over REST, puts its jobs in flight (stream jobs, or REST clients
retrying with the same Idempotency-Key), injects its faults once enough
results came back, waits (bounded) for things to settle, and counts from the
outside (tests/faults/measure.py). docs/reliability.md explains each count.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.faults.cluster import Cluster
from tests.faults.measure import (
    Counts,
    measure,
    pending_entries,
    transient_runtimes,
    unsent_events,
)
from tests.faults.workload import (
    RESULTS_STREAM,
    Answer,
    JobSpec,
    PacedProducer,
    RestClients,
    create_runtimes,
    interleaved_jobs,
    job_results,
)

FAULTS: dict[str, Callable[[Cluster], None]] = {
    "kill": Cluster.kill_serve,
    "redis": Cluster.restart_redis,
    "postgres": Cluster.restart_postgres,
}
PROGRESS_TIMEOUT_S = 300.0
"""How long to wait for the results a fault waits for before injecting it anyway."""


@dataclass(frozen=True, slots=True)
class Trial:
    name: str
    title: str
    faults: tuple[tuple[float, str], ...]
    """(share of the jobs answered, fault) pairs, in order."""
    rest: bool = False


TRIALS: dict[str, Trial] = {
    "kill": Trial("kill", "SIGKILL serve x3", ((0.2, "kill"), (0.45, "kill"), (0.7, "kill"))),
    "redis": Trial("redis", "Redis restart", ((0.4, "redis"),)),
    "postgres": Trial("postgres", "Postgres restart", ((0.4, "postgres"),)),
    "rest": Trial("rest", "REST retries across a kill", ((0.35, "kill"),), rest=True),
}
SHORT = Trial("short", "SIGKILL serve + Postgres restart", ((0.3, "kill"), (0.6, "postgres")))
"""The short form `make test` runs (tests/faults/test_faults.py)."""


@dataclass
class Report:
    trial: str
    title: str
    runtimes: int
    counts: Counts
    in_flight_at_faults: list[int]
    """Jobs still unanswered at each fault (0: the fault hit after the burst)."""
    rest_retries: int
    seconds: float


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_trial(
    trial: Trial,
    *,
    runtimes: int,
    jobs: int,
    settle_timeout_s: float = 120.0,
    base_dir: Path | None = None,
) -> Report:
    began = time.monotonic()
    log(f"{trial.name}: starting Redis, Postgres and serve")
    cluster = Cluster.start(base_dir)
    log(f"{trial.name}: files under {cluster.base_dir}")
    client = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    try:
        runtime_ids = create_runtimes(cluster, runtimes)
        log(f"{trial.name}: {runtimes} runtimes running; {jobs} jobs in flight")
        if trial.rest:
            work, answers, in_flight, retries = _rest(cluster, trial, runtime_ids, jobs)
        else:
            work = interleaved_jobs(runtime_ids, jobs)
            producer = PacedProducer(client, work)
            producer.start()
            in_flight = _inject(cluster, trial, len(work), lambda: _answered(client))
            producer.join(PROGRESS_TIMEOUT_S)
            if producer.error is not None:
                raise producer.error
            answers, retries = {}, 0
        settle_s = _settle(cluster, client, work, answers, trial, settle_timeout_s)
        if not trial.rest:
            answers = job_results(client)
        counts = measure(
            dsn=cluster.dsn,
            client=client,
            containers_dir=cluster.containers_dir,
            runtime_ids=runtime_ids,
            jobs=work,
            answers=answers,
            settle_s=settle_s,
        )
    finally:
        client.close()
        cluster.close()
    seconds = time.monotonic() - began
    log(f"{trial.name}: done in {seconds:.0f} s: {counts}")
    return Report(trial.name, trial.title, runtimes, counts, in_flight, retries, seconds)


def _answered(client: redis.Redis) -> int:
    return int(client.xlen(RESULTS_STREAM))


def _inject(cluster: Cluster, trial: Trial, total: int, answered: Callable[[], int]) -> list[int]:
    """Inject each fault once its share of `total` was answered; returns how many
    were still unanswered at each."""
    in_flight = []
    for share, fault in trial.faults:
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        done = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, OSError):
                done = answered()
            if done >= share * total:
                break
            time.sleep(0.05)
        in_flight.append(max(0, total - done))
        log(f"{trial.name}: {fault} with {done}/{total} answered")
        FAULTS[fault](cluster)
    return in_flight


def _rest(
    cluster: Cluster, trial: Trial, runtime_ids: list[str], operations: int
) -> tuple[list[JobSpec], dict[str, list[Answer]], list[int], int]:
    clients = RestClients(cluster, runtime_ids, operations)
    in_flight: list[int] = []

    def faults() -> None:
        in_flight.extend(_inject(cluster, trial, len(clients.calls), lambda: clients.done))

    clients.run(faults)
    return clients.calls, clients.answers, in_flight, clients.retries


def _settle(
    cluster: Cluster,
    client: redis.Redis,
    work: list[JobSpec],
    answers: dict[str, list[Answer]],
    trial: Trial,
    timeout_s: float,
) -> float | None:
    """Seconds from the last fault until every job has a result, no runtime is
    transient, no job entry is pending and the outbox is drained; None if that
    did not happen within `timeout_s` of the last fault."""
    last_fault = cluster.faults[-1] if cluster.faults else time.monotonic()
    deadline = last_fault + timeout_s
    wanted = {job.job_id for job in work}
    while True:
        try:
            got = answers if trial.rest else job_results(client)
            settled = (
                wanted <= set(got)
                and not transient_runtimes(cluster.dsn)
                and pending_entries(client) == 0
                and unsent_events(cluster.dsn) == 0
            )
        except (redis.RedisError, OSError) as exc:
            log(f"{trial.name}: while settling: {exc!r}")
            settled = False
        now = time.monotonic()
        if settled:
            return round(max(0.0, now - last_fault), 1)
        if now > deadline:
            log(f"{trial.name}: not settled {timeout_s:.0f} s after the last fault")
            return None
        time.sleep(0.5)


# -- output -----------------------------------------------------------------------

COLUMNS = (
    ("jobs", "jobs"),
    ("no_result", "no result"),
    ("doubled", "doubled"),
    ("wrong", "wrong answer"),
    ("transient", "left transient"),
    ("disagree", "record != process"),
    ("missing_events", "missing events"),
    ("settle_s", "settle s"),
)


def table(reports: list[Report]) -> str:
    head = ["trial", *(title for _, title in COLUMNS)]
    rows = [head]
    for report in reports:
        values = dataclasses.asdict(report.counts)
        cells = [report.title]
        for name, _ in COLUMNS:
            value = values[name]
            cells.append("> timeout" if value is None else str(value))
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for report in reports:
        if report.counts.failures:
            lines.append(f"{report.title}: failure answers by code {report.counts.failures}")
    return "\n".join(lines)


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.trials", description=__doc__)
    parser.add_argument("--trials", default=",".join(TRIALS), help="comma-separated: %(default)s")
    parser.add_argument("--runtimes", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2000, help="stream jobs per trial")
    parser.add_argument("--rest-ops", type=int, default=2000, help="REST operations (rest trial)")
    parser.add_argument("--settle-timeout-s", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.trials.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRIALS]
    if unknown:
        parser.error(f"unknown trials {unknown}; known: {', '.join(TRIALS)}")
    reports = []
    for name in names:
        trial = TRIALS[name]
        reports.append(
            run_trial(
                trial,
                runtimes=args.runtimes,
                jobs=args.rest_ops if trial.rest else args.jobs,
                settle_timeout_s=args.settle_timeout_s,
            )
        )
    header = (
        f"runplane fault trials on {commit()}: {args.runtimes} process runtimes, "
        f"{args.jobs} stream jobs per trial, {args.rest_ops} REST operations"
    )
    if args.json:
        out = {
            "commit": commit(),
            "sizes": vars(args),
            "trials": [dataclasses.asdict(r) for r in reports],
        }
        print(json.dumps(out, indent=2))
    else:
        print(header)
        print(table(reports))
    return 0


if __name__ == "__main__":
    threading.excepthook = lambda hook: log(f"thread failed: {hook.exc_value!r}")
    sys.exit(main())
