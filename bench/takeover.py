"""Leader takeover: seconds from a kill -9 of the instance that leads every
singleton worker until the other instance holds each lease, and duplicate
event ids on `runplane:events` after runs of creates with those kills.

One redis-server, one PostgreSQL and two `runplane serve` (default settings,
but the reconciler's round at 5 s + 1 s jitter so that the baseline's old
reconciler lease, twice a round, ends within the run). The first instance
starts alone and takes every lease; each round sends `--creates` runtime
creates (no start: one durable event each) to both instances, kills -9 the
leader halfway, polls the six lease keys every 50 ms until each holds another
token, and restarts the killed one (a follower now); the next round kills the
other. Side by side, with `--baseline-rev`, the same against an earlier
commit's source (the old leases: 10 s, followers looking at their worker's
own interval; no dedupe).

    .venv/bin/python bench/takeover.py [--rounds 5] [--creates 400] [--baseline-rev 3479aab]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway servers

import httpx  # noqa: E402
import redis  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402

from runplane.adapters.redis import names  # noqa: E402

SINGLETONS = {
    "outbox relay": names.RELAY_LEASE,
    "reconciler": names.RECONCILER_LEASE,
    "health monitor": names.MONITOR_LEASE,
    "health events": names.HEALTH_EVENTS_LEASE,
    "host monitor": names.HOST_MONITOR_LEASE,
    "host drain": names.HOST_DRAIN_LEASE,
}
KEYS = {label: names.lease_key(name) for label, name in SINGLETONS.items()}
POLL_S = 0.05
ROUND_LIMIT_S = 60.0


def holders(r: redis.Redis) -> dict[str, str | None]:
    values = r.mget(list(KEYS.values()))
    return dict(zip(KEYS, values, strict=True))


def wait_held(r: redis.Redis, timeout_s: float = 60.0) -> dict[str, str | None]:
    deadline = time.monotonic() + timeout_s
    while True:
        held = holders(r)
        if all(held.values()) or time.monotonic() > deadline:
            return held
        time.sleep(POLL_S)


class Load:
    """Creates runtimes on both instances from a pool of threads; a create on a
    dead instance is sent to the other (a 409 there: it was committed)."""

    def __init__(self, servers: list[RunplaneServer], key: str) -> None:
        self.servers = servers
        self.headers = {"Authorization": f"Bearer {key}"}
        self.done = 0
        self.lock = threading.Lock()

    def create(self, runtime_id: str, first: int) -> None:
        body = {"runtime_id": runtime_id, "spec": {"command": ["sleep", "1"]}, "start": False}
        for attempt in range(20):
            server = self.servers[(first + attempt) % 2]
            try:
                code = httpx.post(
                    f"{server.url}/v1/runtimes", json=body, headers=self.headers, timeout=10
                ).status_code
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if code in (200, 201, 202, 409):
                with self.lock:
                    self.done += 1
                return
            time.sleep(0.1)
        raise SystemExit(f"create {runtime_id} kept failing")

    def run(self, ids: list[str]) -> threading.Thread:
        def go() -> None:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(self.create, ids, range(len(ids))))

        thread = threading.Thread(target=go)
        thread.start()
        return thread


def event_ids(r: redis.Redis) -> list[str]:
    return [json.loads(f["event"])["id"] for _, f in r.xrange(names.EVENTS_STREAM)]


def measure(label: str, src: Path | None, args: argparse.Namespace, pg: PostgresServer, tmp: Path):
    redis_server = RedisServer.start(tmp / f"{label}-redis")
    settings = {
        "redis_url": redis_server.url,
        "database_url": pg.create_database(f"takeover_{label.replace('-', '_')}"),
        "reconcile_interval_s": "5",
        "reconcile_jitter_s": "1",
    }
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)  # the serve children import that tree's runplane
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    servers: list[RunplaneServer] = []
    times: dict[str, list[float]] = {name: [] for name in KEYS}
    try:
        servers.append(RunplaneServer.launch(tmp / f"{label}-a", instance_name="a", **settings))
        wait_held(r)
        servers.append(RunplaneServer.launch(tmp / f"{label}-b", instance_name="b", **settings))
        load = Load(servers, servers[0].admin_key)
        for n in range(args.rounds):
            leader = servers[n % 2]
            before = wait_held(r)
            ids = [f"{label}-{n}-{i}" for i in range(args.creates)]
            loading = load.run(ids)
            while load.done < n * args.creates + args.creates // 2:
                time.sleep(0.01)
            assert leader.process is not None
            os.kill(leader.process.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            waiting = {k for k, v in before.items() if v}
            while waiting and time.monotonic() - killed_at < ROUND_LIMIT_S:
                now = holders(r)
                for name in list(waiting):
                    if now[name] and now[name] != before[name]:
                        times[name].append(time.monotonic() - killed_at)
                        waiting.discard(name)
                time.sleep(POLL_S)
            leader.process.wait()
            loading.join()
            leader.start()  # back, as a follower
            print(
                f"  {label} round {n + 1}: "
                + " ".join(f"{t[-1]:.2f}" for t in times.values() if t),
                flush=True,
            )
        duplicates, total = drained_duplicates(r, load.done)
    finally:
        for server in servers:
            server.stop()
        r.close()
        redis_server.stop()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return times, duplicates, total


def drained_duplicates(r: redis.Redis, creates: int) -> tuple[int, int]:
    """Once every create's event is on the stream (and nothing new for 3 s):
    entries whose id an earlier entry already had, and the entries."""
    last, still_since = -1, time.monotonic()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ids = event_ids(r)
        if len(ids) != last:
            last, still_since = len(ids), time.monotonic()
        elif len(set(ids)) >= creates and time.monotonic() - still_since > 3:
            break
        time.sleep(0.5)
    ids = event_ids(r)
    return len(ids) - len(set(ids)), len(ids)


def export_source(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def summary(times: list[float]) -> str:
    if not times:
        return f"{'-':>7} {'-':>7}"
    return f"{statistics.median(times):>7.2f} {max(times):>7.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--creates", type=int, default=400, help="creates per round")
    parser.add_argument("--baseline-rev", help="also measure this commit's source, side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runplane-bench-takeover-") as name:
        tmp = Path(name)
        pg = PostgresServer.start(tmp / "pg")
        try:
            results = {"this": measure("this", None, args, pg, tmp)}
            if args.baseline_rev:
                src = export_source(args.baseline_rev, tmp)
                results[args.baseline_rev[:10]] = measure("base", src, args, pg, tmp)
        finally:
            pg.stop()
    labels = list(results)
    print(f"\ntakeover after kill -9, seconds ({args.rounds} rounds, 50 ms polling)")
    print(
        f"{'singleton':<16}" + "".join(f" {label + ' median':>15} {'max':>7}" for label in labels)
    )
    for key in KEYS:
        print(f"{key:<16}" + "".join(f" {summary(results[label][0][key]):>23}" for label in labels))
    for label, (_, duplicates, total) in results.items():
        creates = args.rounds * args.creates
        kills = args.rounds
        print(f"{label}: {duplicates} duplicate event ids in {total} entries", end="")
        print(f" ({creates} creates, {kills} kills)")


if __name__ == "__main__":
    main()
