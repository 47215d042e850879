"""Throughput of one against several `runplane serve` instances (issue 14).

Each run starts a fresh deployment as docs/deploy.md lays it out: one Redis
(or, with --cluster, a 3-node Redis Cluster), one Postgres, two `runplane agent`
hosts running the runtimes (process driver, `sleep 600`), and N `serve`
instances without a host of their own (RUNPLANE_EMBEDDED_HOST=false). Then:

1. `--runtimes` running runtimes are created over REST;
2. `--jobs` interleaved stop/start jobs go in through the job streams, one in
   flight per runtime (the faults trials' PacedProducer), so every job has a
   process to stop or start;
3. the figure is jobs answered on `runtime:job_results` per second, from the
   first submit to the last result (the last entry's id is its Redis time);
4. the split: which instance ran each job, read from each serve's JSON log
   ("operation finished", op_source=stream); results with no job, and jobs with
   two effective operation-log entries, are counted as a check;
5. for sizing: the CPU of serves and agents during the jobs and, before them,
   for `--idle-s` with every runtime running and no job (the health monitor,
   beats, leases); Redis's memory and bytes per stream entry at the end.

    .venv/bin/python bench/instances.py [--instances 1,2] [--runtimes 40] [--jobs 1000]
        [--idle-s 10] [--cluster]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support and the trials' workload

import psutil  # noqa: E402
import redis  # noqa: E402
from tests.faults.measure import OPERATIONS_QUERY, count_doubled, count_no_result, fetch  # noqa: E402
from tests.faults.workload import (  # noqa: E402
    RESULTS_STREAM,
    PacedProducer,
    create_runtimes,
    interleaved_jobs,
    job_results,
)
from tests.hosts.fleet import Fleet  # noqa: E402
from tests.support.agent import RunplaneAgent  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.redis_cluster import RedisClusterServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402

HOSTS = 2
SERVE_SETTINGS = {
    "embedded_host": "false",
    "stream_claim_idle_ms": "30000",
    "log_format": "json",  # the per-instance split is read from these lines
}
WAIT_S = 600.0
SIZED_STREAMS = (
    RESULTS_STREAM, "runtime:stop_jobs", "runtime:start_jobs", "runplane:events",
    "runtime:health_events",
)  # fmt: skip


@dataclass
class Run:
    instances: int
    jobs: int
    seconds: float = 0.0
    split: dict[str, int] = field(default_factory=dict)
    no_result: int = 0
    doubled: int = 0
    serve_cpu_s: float = 0.0
    """CPU the serve instances used during the jobs, together."""
    agent_cpu_s: float = 0.0
    redis_mb: float = 0.0
    """Redis's used_memory after the run (every node's, with --cluster)."""
    idle_cpu: tuple[float, float] = (0.0, 0.0)
    """Share of a core the serves and the agents used while the runtimes ran
    and no job did (the health monitor, beats, leases): the cost of runtimes."""
    entry_bytes: dict[str, int] = field(default_factory=dict)
    """Bytes per entry of each stream the run wrote (MEMORY USAGE / XLEN), for sizing."""

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0


def start_fleet(base: Path, instances: int, cluster: bool) -> Fleet:
    """A Fleet (tests/hosts) assembled here: its Redis may be a cluster."""
    store: Any = (
        RedisClusterServer.start(base / "redis") if cluster else RedisServer.start(base / "redis")
    )
    extra = {"redis_cluster": "true"} if cluster else {}
    fleet = Fleet(base, store, None, "")  # type: ignore[arg-type]
    try:
        fleet.postgres = PostgresServer.start(base / "postgres")
        fleet.database_url = fleet.postgres.create_database("instances")
        for n in range(1, HOSTS + 1):
            host_id = f"host-{n}"
            fleet.agents[host_id] = RunplaneAgent.launch(
                base / host_id, store.url, host_id, log_format="text", **extra
            )
        for n in range(instances):
            fleet.serves.append(
                RunplaneServer.launch(
                    base / f"serve-{n}",
                    redis_url=store.url,
                    database_url=fleet.database_url,
                    **SERVE_SETTINGS,
                    **extra,
                )
            )
        fleet.wait_hosts_up(list(fleet.agents))
    except BaseException:
        fleet.close()
        raise
    return fleet


def cpu_s(processes: list[Any]) -> float:
    """User + system CPU seconds of these Popen children so far."""
    total = 0.0
    for process in processes:
        times = psutil.Process(process.pid).cpu_times()
        total += times.user + times.system
    return total


def used_memory_mb(client: Any) -> float:
    info = client.info("memory")
    nodes = info.values() if all(isinstance(v, dict) for v in info.values()) else [info]
    return sum(node["used_memory"] for node in nodes) / 1e6


def entry_bytes(client: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for stream in SIZED_STREAMS:
        length = client.xlen(stream)
        if length:
            found[stream] = client.memory_usage(stream, samples=0) // length
    return found


def handled_by(serve: RunplaneServer, job_ids: set[str]) -> set[str]:
    """The jobs of `job_ids` this instance ran (its "operation finished" lines)."""
    found: set[str] = set()
    for line in serve.log_path.read_text(errors="replace").splitlines():
        if '"operation finished"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("op_source") == "stream" and entry.get("job_id") in job_ids:
            found.add(entry["job_id"])
    return found


def measure(
    instances: int, runtimes: int, jobs: int, cluster: bool, tmp: Path, idle_s: float
) -> Run:
    base = tmp / f"serves-{instances}"
    fleet = start_fleet(base, instances, cluster)
    client = (
        redis.RedisCluster.from_url(fleet.redis.url, decode_responses=True)
        if cluster
        else redis.Redis.from_url(fleet.redis.url, decode_responses=True)
    )
    run = Run(instances, jobs)
    try:
        ids = create_runtimes(fleet, runtimes)  # type: ignore[arg-type]
        work = interleaved_jobs(ids, jobs)
        producer = PacedProducer(client, work)
        serves = [s.process for s in fleet.serves]
        agents = [a.process for a in fleet.agents.values()]
        cpu_before = cpu_s(serves), cpu_s(agents)
        if idle_s:
            time.sleep(idle_s)
            run.idle_cpu = (
                (cpu_s(serves) - cpu_before[0]) / idle_s,
                (cpu_s(agents) - cpu_before[1]) / idle_s,
            )
            cpu_before = cpu_s(serves), cpu_s(agents)
        began = time.time()
        producer.start()
        producer.join(WAIT_S)
        if producer.error is not None:
            raise producer.error
        answers = job_results(client)
        deadline = time.monotonic() + 60
        while count_no_result(work, answers) and time.monotonic() < deadline:
            time.sleep(0.5)
            answers = job_results(client)
        run.serve_cpu_s = cpu_s(serves) - cpu_before[0]
        run.agent_cpu_s = cpu_s(agents) - cpu_before[1]
        run.redis_mb = used_memory_mb(client)
        run.entry_bytes = entry_bytes(client)
        last_id = client.xrevrange(RESULTS_STREAM, count=1)[0][0]
        run.seconds = int(last_id.split("-")[0]) / 1000 - began
        run.no_result = len(count_no_result(work, answers))
        dsn = fleet.database_url.replace("postgresql+asyncpg://", "postgresql://")
        run.doubled = len(count_doubled(work, fetch(dsn, OPERATIONS_QUERY)))
        ours = {job.job_id for job in work}
        run.split = {f"serve-{n}": len(handled_by(s, ours)) for n, s in enumerate(fleet.serves)}
    finally:
        client.close()
        fleet.close()
        shutil.rmtree(base, ignore_errors=True)
    return run


def table(runs: list[Run]) -> str:
    head = ("instances", "jobs", "seconds", "jobs/s", "no result", "doubled", "serve CPU s",
            "agent CPU s", "redis MB")  # fmt: skip
    widths = (9, 6, 8, 7, 9, 7, 11, 11, 8)
    lines = [" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)) + "  per instance"]
    for run in runs:
        split = ", ".join(f"{name} {count}" for name, count in run.split.items())
        cells = (run.instances, run.jobs, f"{run.seconds:.1f}", f"{run.rate:.1f}", run.no_result,
                 run.doubled, f"{run.serve_cpu_s:.1f}", f"{run.agent_cpu_s:.1f}",
                 f"{run.redis_mb:.1f}")  # fmt: skip
        lines.append(
            " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)) + f"  {split}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", default="1,2", help="comma-separated serve counts")
    parser.add_argument("--runtimes", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU measured this long")
    parser.add_argument("--cluster", action="store_true", help="a 3-node Redis Cluster")
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="runplane-bench-instances-") as name:
        for count in (int(n) for n in args.instances.split(",")):
            print(f"[instances] {count} serve(s): starting", file=sys.stderr, flush=True)
            run = measure(count, args.runtimes, args.jobs, args.cluster, Path(name), args.idle_s)
            runs.append(run)
            print(table(runs[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(runs))
    for run in runs:
        serve_idle, agent_idle = run.idle_cpu
        print(
            f"idle with {run.instances} instance(s): serves {serve_idle:.0%} of a core, "
            f"agents {agent_idle:.0%}"
        )
        sizes = ", ".join(f"{stream} {size}" for stream, size in run.entry_bytes.items())
        print(f"bytes per stream entry ({run.instances} instance(s)): {sizes}")
    counts = Counter(run.no_result + run.doubled for run in runs)
    if set(counts) != {0}:
        sys.exit(1)  # a lost or doubled job: the figure is not worth printing alone


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on kill
    main()
