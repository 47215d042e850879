"""The hosts trial (issue 13; docs/hosts.md): three agents and two `serve`
instances on one Redis and one Postgres.

1. Runtimes (with `restart_policy: always`) are created and spread over the hosts.
2. Interleaved stop/start jobs run through the job streams; one `serve` is
   killed -9 and started again while they run. Then, read from the outside:
   jobs without a result, jobs with two effects, runtimes with two processes,
   stopped records with a live process, running records without one.
3. Every runtime is started, and one agent is killed -9: how long until each
   of its runtimes runs again on another host.
4. That agent is started again: how long until its host is `up`, and whether
   anything then runs twice.

`python -m tests.hosts.trial [--runtimes N] [--jobs N]` prints the table;
`make hosts-trial` runs the full size (2,000 jobs)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from tests.faults.measure import OPERATIONS_QUERY, count_doubled, count_no_result, fetch
from tests.faults.workload import PacedProducer, interleaved_jobs, job_results
from tests.hosts.fleet import DOWN_AFTER_S, Fleet

SPEC = {
    "command": ["sleep", "600"],
    "stop_timeout_s": 5,
    "restart_policy": {"mode": "always", "max_retries": 10, "window_s": 300},
}
RUNTIMES_QUERY = "SELECT runtime_id, status, container_id, host_id FROM runtimes"
TRANSIENT = {"starting", "stopping", "pausing", "resuming", "restarting", "patching", "removing"}
LIVE = {"running", "paused"}
WAIT_S = 180.0


@dataclass
class Report:
    runtimes: int
    jobs: int
    netns: bool = False
    """Whether each agent ran in a network namespace of its own."""
    runtime_networks: int = 0
    """Distinct network namespaces the runtimes' processes were seen in."""
    spread: dict[str, int] = field(default_factory=dict)
    no_result: int = 0
    doubled: int = 0
    twice: int = 0
    """Runtimes with more than one live process (over every host)."""
    down_with_process: int = 0
    """Records stopped/error/removed/pending while a process of theirs runs."""
    live_without_process: int = 0
    """Records running/paused whose process does not run (or runs elsewhere)."""
    transient: int = 0
    serve_killed_after: int = 0
    """Jobs answered when a serve was killed -9."""
    lost_host: str = ""
    moved: int = 0
    """Runtimes the lost host ran, each of which must run again elsewhere."""
    move_s: float | None = None
    """From the kill -9 of the agent until the last of them ran elsewhere."""
    return_s: float | None = None
    """From the agent's start until its host was `up` again."""
    twice_after_return: int = 0
    left_on_returned: int = 0
    """Live processes on the returned host of runtimes recorded elsewhere."""
    drained_host: str = ""
    drained: int = 0
    """Running runtimes on the host when it was drained; each must move off."""
    drain_s: float | None = None
    """From the drain until none of them ran there and each ran elsewhere."""
    exit_s: float | None = None
    """A runtime's process killed on its host: until it ran again (restart policy)."""
    seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return (
            self.no_result
            == self.doubled
            == self.twice
            == self.down_with_process
            == self.live_without_process
            == self.transient
            == self.twice_after_return
            == self.left_on_returned
            == 0
        ) and None not in (self.move_s, self.drain_s, self.exit_s)


def log(message: str) -> None:
    print(f"[hosts {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_trial(*, runtimes: int, jobs: int) -> Report:
    began = time.monotonic()
    fleet = Fleet.start()
    where = "a network namespace each" if fleet.networks else "one network (no netns here)"
    log(f"fleet up under {fleet.base_dir}; agents in {where}")
    client = redis.Redis.from_url(fleet.redis.url, decode_responses=True)
    report = Report(runtimes, jobs, netns=bool(fleet.networks))
    try:
        ids = create(fleet, runtimes)
        report.spread = dict(sorted(Counter(r["host_id"] for r in records(fleet)).items()))
        report.runtime_networks = len(fleet.runtime_networks())
        log(f"{runtimes} runtimes, by host: {report.spread}; {report.runtime_networks} networks")
        run_jobs(fleet, client, ids, jobs, report)
        check_processes(fleet, ids, report)
        lose_a_host(fleet, ids, report)
        drain_a_host(fleet, ids, report)
        end_a_process(fleet, ids, report)
    finally:
        client.close()
        fleet.close()
    report.seconds = round(time.monotonic() - began, 1)
    return report


def create(fleet: Fleet, count: int) -> list[str]:
    ids = [f"rt-{i:04d}" for i in range(count)]

    def one(runtime_id: str) -> None:
        with fleet.client(int(runtime_id[-1]) % 2) as http:  # both serves create
            made = http.post(
                "/v1/runtimes", json={"runtime_id": runtime_id, "spec": SPEC, "start": True}
            )
        if made.status_code != 201:
            raise RuntimeError(f"create {runtime_id}: {made.status_code} {made.text}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, ids))
    return ids


def records(fleet: Fleet) -> list[dict[str, Any]]:
    return fetch(dsn(fleet), RUNTIMES_QUERY)


def dsn(fleet: Fleet) -> str:
    return fleet.database_url.replace("postgresql+asyncpg://", "postgresql://")


def kill_serve_1(fleet: Fleet, answered: int) -> None:
    log(f"kill -9 serve 1 after {answered} answers")
    fleet.serves[1].stop(signal.SIGKILL)
    fleet.serves[1].start(timeout_s=60)


def run_jobs(
    fleet: Fleet,
    client: redis.Redis,
    ids: list[str],
    count: int,
    report: Report,
    fault: Callable[[Fleet, int], None] = kill_serve_1,
) -> None:
    """The jobs, paced; `fault` runs once a third of them are answered."""
    work = interleaved_jobs(ids, count)
    producer = PacedProducer(client, work)
    producer.start()
    while producer.is_alive() and int(client.xlen("runtime:job_results")) < count // 3:
        time.sleep(0.2)
    report.serve_killed_after = int(client.xlen("runtime:job_results"))
    fault(fleet, report.serve_killed_after)
    producer.join(WAIT_S * 3)
    if producer.error is not None:
        raise producer.error
    deadline = time.monotonic() + WAIT_S
    answers = job_results(client)
    while time.monotonic() < deadline:
        answers = job_results(client)
        settled = not any(r["status"] in TRANSIENT for r in records(fleet))
        if settled and not count_no_result(work, answers):
            break
        time.sleep(1)
    missing = count_no_result(work, answers)
    doubled = count_doubled(work, fetch(dsn(fleet), OPERATIONS_QUERY))
    report.no_result, report.doubled = len(missing), len(doubled)
    report.examples.update(no_result=missing[:5], doubled=doubled[:5])
    log(f"{count} jobs answered; {len(missing)} without a result, {len(doubled)} doubled")


def check_processes(fleet: Fleet, ids: list[str], report: Report) -> None:
    live = fleet.live_processes()
    ours = set(ids)
    twice = [rid for rid, procs in live.items() if rid in ours and len(procs) > 1]
    down_with, live_without, transient = [], [], []
    for record in records(fleet):
        rid, status = record["runtime_id"], record["status"]
        if rid not in ours:
            continue
        procs = live.get(rid, [])
        if status in TRANSIENT:
            transient.append(f"{rid}:{status}")
        elif status in LIVE:
            if (record["host_id"], record["container_id"]) not in procs:
                live_without.append(f"{rid}:{status}@{record['host_id']}:{procs}")
        elif procs:
            down_with.append(f"{rid}:{status}:{procs}")
    report.twice += len(twice)
    report.down_with_process += len(down_with)
    report.live_without_process += len(live_without)
    report.transient += len(transient)
    for name, found in (
        ("twice", twice),
        ("down_with_process", down_with),
        ("live_without_process", live_without),
        ("transient", transient),
    ):
        if found:
            report.examples.setdefault(name, []).extend(found[:5])
    log(
        f"processes: {len(twice)} twice, {len(down_with)} down records with one, "
        f"{len(live_without)} live records without, {len(transient)} transient"
    )


def lose_a_host(fleet: Fleet, ids: list[str], report: Report) -> None:
    start_every_runtime(fleet, ids)
    by_host = Counter(r["host_id"] for r in records(fleet) if r["status"] == "running")
    victim = by_host.most_common(1)[0][0]
    on_victim = {r["runtime_id"] for r in records(fleet) if r["host_id"] == victim}
    report.lost_host, report.moved = victim, len(on_victim)
    log(f"kill -9 the agent of {victim} ({len(on_victim)} runtimes)")
    killed = time.monotonic()
    fleet.kill_agent(victim)
    deadline = killed + WAIT_S
    while time.monotonic() < deadline:
        live = fleet.live_processes()
        moved = [
            r
            for r in records(fleet)
            if r["runtime_id"] in on_victim
            and r["status"] == "running"
            and r["host_id"] != victim
            and (r["host_id"], r["container_id"]) in live.get(r["runtime_id"], [])
        ]
        if len(moved) == len(on_victim):
            report.move_s = round(time.monotonic() - killed, 1)
            break
        time.sleep(0.5)
    log(f"moved in {report.move_s} s (host down after {DOWN_AFTER_S} s)")
    started = time.monotonic()
    fleet.agents[victim].start()
    fleet.wait_hosts_up([victim], timeout_s=WAIT_S)
    report.return_s = round(time.monotonic() - started, 1)
    live = fleet.live_processes()
    placed = {r["runtime_id"]: r["host_id"] for r in records(fleet)}
    report.twice_after_return = sum(1 for rid in ids if len(live.get(rid, [])) > 1)
    left = [
        f"{rid}:{procs}"
        for rid, procs in live.items()
        if any(host == victim for host, _ in procs) and placed.get(rid) != victim
    ]
    report.left_on_returned = len(left)
    if left:
        report.examples["left_on_returned"] = left[:5]
    log(f"{victim} up again after {report.return_s} s; {len(left)} left running there")
    check_processes(fleet, ids, report)


def drain_a_host(fleet: Fleet, ids: list[str], report: Report) -> None:
    by_host = Counter(r["host_id"] for r in records(fleet) if r["status"] == "running")
    host = by_host.most_common(1)[0][0]
    on_host = {r["runtime_id"] for r in records(fleet) if r["host_id"] == host}
    report.drained_host, report.drained = host, len(on_host)
    log(f"drain {host} ({len(on_host)} runtimes)")
    began = time.monotonic()
    with fleet.client() as http:
        http.post(f"/v1/hosts/{host}/drain").raise_for_status()
    while time.monotonic() < began + WAIT_S:
        live = fleet.live_processes()
        moved = [
            r
            for r in records(fleet)
            if r["runtime_id"] in on_host
            and r["status"] == "running"
            and r["host_id"] != host
            and live.get(r["runtime_id"]) == [(r["host_id"], r["container_id"])]
        ]
        if len(moved) == len(on_host):
            report.drain_s = round(time.monotonic() - began, 1)
            break
        time.sleep(0.5)
    log(f"drained in {report.drain_s} s")
    check_processes(fleet, ids, report)


def end_a_process(fleet: Fleet, ids: list[str], report: Report) -> None:
    """Kill one runtime's process behind runplane's back: its host's agent sees
    the end, and the restart policy runs it again."""
    record = next(r for r in records(fleet) if r["status"] == "running" and r["runtime_id"] in ids)
    _, pid, _ = record["container_id"].split("-")
    log(f"kill -9 the process of {record['runtime_id']} on {record['host_id']}")
    began = time.monotonic()
    os.killpg(int(pid), signal.SIGKILL)
    while time.monotonic() < began + WAIT_S:
        now = next(r for r in records(fleet) if r["runtime_id"] == record["runtime_id"])
        live = fleet.live_processes().get(record["runtime_id"], [])
        if (
            now["status"] == "running"
            and now["container_id"] != record["container_id"]
            and live == [(now["host_id"], now["container_id"])]
        ):
            report.exit_s = round(time.monotonic() - began, 1)
            break
        time.sleep(0.2)
    log(f"running again after {report.exit_s} s")


def start_every_runtime(fleet: Fleet, ids: list[str]) -> None:
    """Each runtime the jobs left stopped is started again, so the lost host
    has runtimes to lose."""
    stopped = [r["runtime_id"] for r in records(fleet) if r["status"] != "running"]
    lock = threading.Lock()
    failures: list[str] = []

    def one(runtime_id: str) -> None:
        with fleet.client() as http:
            reply = http.post(f"/v1/runtimes/{runtime_id}/start")
        if reply.status_code != 200:
            with lock:
                failures.append(f"{runtime_id}: {reply.status_code} {reply.text}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, [rid for rid in stopped if rid in set(ids)]))
    if failures:
        raise RuntimeError(f"runtimes not started: {failures[:3]}")


def table(report: Report) -> str:
    rows = [(name, value) for name, value in asdict(report).items() if name != "examples"]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append(f"{'clean':<{width}}  {report.clean}")
    lines += [f"  e.g. {name}: {found}" for name, found in report.examples.items() if found]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args(argv)
    report = run_trial(runtimes=args.runtimes, jobs=args.jobs)
    print(table(report))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
