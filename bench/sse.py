"""SSE under load: many followers of `GET /v1/events/stream` while events arrive
at a steady rate, against runplane and a one-reader broadcast baseline.

    python bench/sse.py                       # 1,000 followers, 200 events/s, 20 s
    python bench/sse.py --repeat 3 --json
    python bench/sse.py --setting sse_coalesce_ms=0     # wake once per read, as before
    python bench/sse.py --together            # both servers at once, each its own followers
    python bench/sse.py --setting sse_flush_ms=20 --baseline-flush-ms 20
    python bench/sse.py --reader-procs 1      # all followers in one reader process

Each round starts a Debian redis-server and a server on it (a child process):
`runplane serve`, then the baseline
(bench/sse_baseline.py: one XREAD loop, each entry formatted once and queued to
every follower, on the same uvicorn settings and SSE response), or the other
way round in the next round. It connects every follower (no Last-Event-ID:
from now), samples the server's idle CPU for IDLE_S, then XADDs lifecycle
events to `runplane:events` at `--rate` for `--seconds` from another process,
and waits for every follower to have the last one. The followers run in
`--reader-procs` processes of their own (bench/sse_followers.py; by default one
per 125 followers, the same for both servers), so that they keep up and the
server, not one overloaded reader, decides how many frames a write carries;
each reader counts every event each of its followers receives and the parent
requires all of them. A follower is a raw
HTTP/1.1 client that counts the `id:` lines it receives, checks they come in
stream order with no duplicate, and, when the server ends its stream (a
`runplane.lagging` frame, or any close), reconnects with Last-Event-ID as an
EventSource would. Every follower must have received every entry of the
stream from before the first event published to the last (events runplane
publishes itself meanwhile count too).

Before the load it publishes LONE_EVENTS events one at a time, LONE_GAP_S
apart, and times each from its XADD to its arrival at the first, the median
and the last follower: the latency of an event on a quiet stream.

With `--together` both servers run at once, each with its followers in reader
processes of its own, in step (connected, lone events timed, then both loads):
what else the machine runs weighs on both alike, at the price of the two
competing for the cores with each other.

It prints, for both: how many followers received every event on their first
connection, after reconnecting, or not; the frames delivered; the server's
CPU (user + system) from the first event published to the last delivered, per
delivered frame (the server's process only; the readers' CPU and the load
average are printed beside it); the lone events' latency; and the ratio
runplane / baseline. The followers and the
publisher share the machine with the server, so run it on a quiet one and
compare ratios, not absolute times. `--py-spy DIR` records each server with
py-spy (if on PATH). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway redis-server and serve

import psutil  # noqa: E402
import redis as sync_redis  # noqa: E402
from sse_baseline import RESPONSES, BaselineServer  # noqa: E402  (bench/, beside this)
from sse_followers import CONNECT_S, Counts, reader_main  # noqa: E402
from tests.support.events import lifecycle_event  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer, free_port  # noqa: E402

from runplane.domain.lifecycle_events import EVENT_FIELD  # noqa: E402

EVENTS_STREAM = "runplane:events"
DRAIN_S = 120.0
"""How long followers may take, after the last event, to receive everything."""
IDLE_S = 3.0
"""How long the server's idle CPU is sampled, followers connected, before the load."""
LONE_EVENTS = 20
"""Events published one at a time before the load, each delivery timed."""
LONE_GAP_S = 0.2
"""The quiet between two lone events: longer than any coalescing window."""
FOLLOWERS_PER_READER = 125
"""The default split: a reader process per this many followers. Measured on the
loaded 2-core machine: 4 readers for 1,000 followers finished 1-30 s after the
last event (the readers set the batch sizes), 8 within 0.5-3.6 s."""


class Readers:
    """The reader processes of one load (bench/sse_followers.py), the
    followers split evenly between them."""

    def __init__(self, target: Target, followers: int, procs: int) -> None:
        host, port = target.url.removeprefix("http://").split(":")
        procs = max(1, min(procs, followers))
        sizes = [followers // procs + (n < followers % procs) for n in range(procs)]
        self.conns: list[Connection] = []
        self.procs: list[multiprocessing.Process] = []
        for size in sizes:
            mine, theirs = multiprocessing.Pipe()
            proc = multiprocessing.Process(
                target=reader_main, args=(theirs, host, int(port), target.key, size)
            )
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)
        self.ps = [psutil.Process(proc.pid) for proc in self.procs]

    def receive(self, timeout: float) -> list[Any]:
        """One answer from every reader, in order."""
        answers = []
        deadline = time.monotonic() + timeout
        for conn in self.conns:
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("a reader process did not answer in time")
            answers.append(conn.recv())
        return answers

    def ask(self, command: tuple[Any, ...], timeout: float = 60.0) -> list[Any]:
        for conn in self.conns:
            conn.send(command)
        return self.receive(timeout)

    def cpu(self) -> float:
        """The readers' CPU time (user + system) so far."""
        return sum(t.user + t.system for t in (p.cpu_times() for p in self.ps))

    def close(self) -> None:
        """Every reader ends, also on failure (its followers' sockets with it)."""
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()


def in_step(together: Barrier | None) -> None:
    """Side by side: wait for the other server's followers to get here too."""
    if together is not None:
        together.wait(300)


def publish(redis_url: str, total: int, rate: float, ids: Connection) -> None:
    """XADD `total` events at `rate` per second (a process of its own, so the
    followers' work cannot slow it down); sends the first and last entry ids."""
    client = sync_redis.Redis.from_url(redis_url)
    payloads = [lifecycle_event(n).to_json() for n in range(1, total + 1)]
    started = time.monotonic()
    first = added = None
    for n, payload in enumerate(payloads):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        added = client.xadd(EVENTS_STREAM, {EVENT_FIELD: payload})
        first = first or added
    ids.send((first, added))
    client.close()


def time_lone_events(redis_url: str, readers: Readers) -> dict[str, float | None]:
    """Publish LONE_EVENTS one at a time, LONE_GAP_S apart, and time each from
    just before its XADD to its arrival at the first, the median and the last
    follower (milliseconds; the median of each over the events). What a quiet
    stream's event waits: the server's read, wake and write, plus the bench's
    own reading of a thousand sockets (the same for both servers)."""
    readers.ask(("lone-start",))
    client = sync_redis.Redis.from_url(redis_url)
    sent: list[tuple[float, tuple[int, int]]] = []
    try:
        for n in range(LONE_EVENTS):
            time.sleep(LONE_GAP_S)
            started = time.monotonic()
            entry_id = client.xadd(EVENTS_STREAM, {EVENT_FIELD: lone_event(n)})
            sent.append((started, stream_id(entry_id)))
        time.sleep(LONE_GAP_S)
    finally:
        client.close()
    per_reader = readers.ask(("lone-end", sent))
    firsts, medians, lasts = [], [], []
    for n in range(len(sent)):
        took = sorted(delay for delays in per_reader for delay in delays[n])
        if took[-1] == float("inf"):
            continue  # a follower missed it (counted as missing at the end)
        firsts.append(took[0])
        medians.append(took[len(took) // 2])
        lasts.append(took[-1])

    def ms(values: list[float]) -> float | None:
        return round(1000 * statistics.median(values), 2) if values else None

    return {
        "lone_event_ms_first": ms(firsts),
        "lone_event_ms_median": ms(medians),
        "lone_event_ms_last": ms(lasts),
    }


def lone_event(n: int) -> str:
    return lifecycle_event(1_000_000 + n).to_json()


def stream_id(raw: bytes | str) -> tuple[int, int]:
    ms, _, seq = (raw.decode() if isinstance(raw, bytes) else raw).partition("-")
    return int(ms), int(seq or 0)


def entries_between(
    redis_url: str, ranges: set[tuple[tuple[int, int], tuple[int, int]]]
) -> dict[tuple[tuple[int, int], tuple[int, int]], int]:
    """How many entries the events stream holds from each first to last id."""
    client = sync_redis.Redis.from_url(redis_url)
    try:
        ids = [stream_id(entry_id) for entry_id, _ in client.xrange(EVENTS_STREAM)]
    finally:
        client.close()
    return {(lo, hi): sum(lo <= at <= hi for at in ids) for lo, hi in ranges}


def profile(pid: int, out_dir: Path | None, label: str) -> subprocess.Popen[bytes] | None:
    """py-spy (if asked for) on the server during the load: collapsed stacks,
    for a flame graph or `sort | uniq`; py-spy is not one of runplane's packages."""
    if out_dir is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    at = out_dir / f"{label}-{time.strftime('%H%M%S')}.txt"
    command = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--output", str(at)]
    return subprocess.Popen([*command, "--nonblocking", "--rate", "200"])


@dataclass
class Cpu:
    """The CPU time (user + system) a server process used between two marks."""

    process: psutil.Process
    label: str
    marks: list[float] = field(default_factory=list)

    def mark(self) -> None:
        times = self.process.cpu_times()
        self.marks.append(times.user + times.system)

    def since(self, mark: int) -> float:
        return self.marks[-1] - self.marks[mark]


def run_load(
    target: Target, cpu: Cpu, args: argparse.Namespace, together: Barrier | None = None
) -> dict[str, Any]:
    """Connect every follower, time lone events, publish, wait for every
    follower to have every event. The server's CPU is counted from the first
    event published to the last delivered (connecting and the lone events are
    left out), and for IDLE_S before the lone events."""
    readers = Readers(target, args.followers, args.reader_procs)
    try:
        readers.receive(CONNECT_S + 30)
        return measure(target, cpu, readers, args, together)
    finally:
        readers.close()


def measure(
    target: Target, cpu: Cpu, readers: Readers, args: argparse.Namespace, together: Barrier | None
) -> dict[str, Any]:
    total = int(args.rate * args.seconds)
    in_step(together)
    cpu.mark()
    time.sleep(IDLE_S)
    cpu.mark()
    lone = time_lone_events(target.redis_url, readers)
    in_step(together)
    cpu.mark()
    readers_cpu = readers.cpu()
    profiler = profile(cpu.process.pid, args.py_spy, cpu.label)
    started = time.monotonic()
    ids, sent_ids = multiprocessing.Pipe(duplex=False)
    publisher = multiprocessing.Process(
        target=publish, args=(target.redis_url, total, args.rate, sent_ids)
    )
    publisher.start()
    publisher.join()
    published_s = time.monotonic() - started
    first, final = (stream_id(i) for i in ids.recv())
    readers.ask(("final", final, DRAIN_S), DRAIN_S + 60)
    cpu.mark()
    finished_s = time.monotonic() - started
    readers_cpu = readers.cpu() - readers_cpu
    load_average = os.getloadavg()[0]
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)
    followers: list[Counts] = [c for counts in readers.ask(("stop",)) for c in counts]
    # Every event from before the first published one to the last: what the
    # server published itself meanwhile (host events) counts too.
    in_range = entries_between(target.redis_url, {(f.first, f.last) for f in followers if f.first})
    complete = [
        f.first is not None
        and f.first <= first
        and f.last >= final
        and f.disorder == 0
        and f.received == in_range[(f.first, f.last)]
        for f in followers
    ]
    frames = sum(f.received for f in followers)
    load_cpu = cpu.since(2)
    return {
        "followers": len(followers),
        "reader_procs": len(readers.procs),
        "events": total,
        "rate_per_s": args.rate,
        "published_s": round(published_s, 1),
        "finished_s": round(finished_s, 1),
        "every_event_on_first_stream": sum(
            c and f.reconnects == 0 for c, f in zip(complete, followers, strict=True)
        ),
        "every_event_after_reconnecting": sum(
            c and f.reconnects > 0 for c, f in zip(complete, followers, strict=True)
        ),
        "missing_events": sum(not c for c in complete),
        "streams_ended_by_server": sum(f.reconnects for f in followers),
        "lagging_frames": sum(f.lagging for f in followers),
        "out_of_order_or_duplicate": sum(f.disorder for f in followers),
        "frames_delivered": frames,
        "frames_per_read": round(frames / max(1, sum(f.reads for f in followers)), 2),
        "idle_cpu_percent": round(100 * (cpu.marks[1] - cpu.marks[0]) / IDLE_S, 1),
        "load_cpu_s": round(load_cpu, 2),
        "server_cpu_percent": round(100 * load_cpu / finished_s, 1),
        "readers_cpu_percent": round(100 * readers_cpu / finished_s, 1),
        "load_average_1m": round(load_average, 2),
        "cpu_us_per_frame": round(1e6 * load_cpu / frames, 3) if frames else None,
        **lone,
    }


@dataclass
class Target:
    """A started server the followers connect to."""

    label: str
    url: str
    redis_url: str
    key: str
    pid: int


@contextlib.contextmanager
def runplane_server(src: Path | None, args: argparse.Namespace) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="runplane-bench-sse-") as tmp:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        try:
            if src is not None:
                os.environ["PYTHONPATH"] = str(src)
            try:
                serve = RunplaneServer.launch(
                    Path(tmp) / "serve", redis_url=redis_server.url, **dict(args.setting)
                )
            finally:
                os.environ.pop("PYTHONPATH", None)
            try:
                assert serve.process is not None
                pid = serve.process.pid
                yield Target("runplane", serve.url, redis_server.url, serve.admin_key, pid)
            finally:
                serve.stop()
        finally:
            redis_server.stop()


@contextlib.contextmanager
def baseline_server(args: argparse.Namespace) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="runplane-bench-sse-base-") as tmp:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        try:
            server = BaselineServer.launch(
                Path(tmp) / "baseline.log",
                redis_server.url,
                free_port(),
                args.baseline_response,
                args.baseline_flush_ms,
            )
            try:
                yield Target("baseline", server.url, redis_server.url, "", server.process.pid)
            finally:
                server.stop()
        finally:
            redis_server.stop()


def load(
    target: Target, args: argparse.Namespace, together: Barrier | None = None
) -> dict[str, Any]:
    cpu = Cpu(psutil.Process(target.pid), target.label)
    return run_load(target, cpu, args, together)


def load_in_child(
    target: Target, args: argparse.Namespace, together: Barrier, out: Connection
) -> None:
    out.send(load(target, args, together))


def side_by_side(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Both servers at once, each with its followers in a process of its own,
    in step (connected, lone events timed, then both loads together): whatever
    else the machine runs meanwhile weighs on both alike."""
    together = multiprocessing.Barrier(2)
    with runplane_server(args.src, args) as mine, baseline_server(args) as base:
        children = []
        for target in (mine, base):
            results, out = multiprocessing.Pipe(duplex=False)
            child = multiprocessing.Process(
                target=load_in_child, args=(target, args, together, out)
            )
            child.start()
            children.append((target.label, child, results))
        runs: dict[str, dict[str, Any]] = {}
        try:
            for label, _child, results in children:
                if not results.poll(DRAIN_S + 600):
                    raise RuntimeError(f"the {label} followers did not finish")
                runs[label] = results.recv()
        finally:
            for _, child, _ in children:
                child.join(30)
                if child.is_alive():
                    child.kill()
                    child.join()
    return runs


def one_round(args: argparse.Namespace, n: int) -> dict[str, Any]:
    """runplane and the baseline under the same load, at once (--together) or
    in turn (the order alternates between rounds, so neither always runs on a
    warmer machine)."""
    runs: dict[str, dict[str, Any]] = {}
    if args.together and args.only is None:
        runs = side_by_side(args)
    else:
        order = ["runplane", "baseline"] if n % 2 == 0 else ["baseline", "runplane"]
        for name in order:
            if args.only in (None, name):
                server = runplane_server(args.src, args) if name == "runplane" else None
                with server or baseline_server(args) as target:
                    runs[name] = load(target, args)
    if len(runs) < 2:
        return {"round": n + 1, **runs, "ratio": None}
    mine, base = runs["runplane"]["cpu_us_per_frame"], runs["baseline"]["cpu_us_per_frame"]
    ratio = round(mine / base, 2) if mine and base else None
    return {
        "round": n + 1,
        "runplane": runs["runplane"],
        "baseline": runs["baseline"],
        "ratio": ratio,
    }


def setting(value: str) -> tuple[str, str]:
    name, sep, setting_value = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, setting_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--reader-procs",
        type=int,
        help="processes the followers are split over, the same for both servers "
        f"(default: one per {FOLLOWERS_PER_READER} followers)",
    )
    parser.add_argument(
        "--baseline-response",
        choices=RESPONSES,
        default=RESPONSES[0],
        help="the baseline's SSE response class",
    )
    parser.add_argument(
        "--setting",
        type=setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a runplane setting for serve, e.g. sse_flush_ms=20 (repeatable)",
    )
    parser.add_argument(
        "--baseline-flush-ms", type=int, default=0, help="the baseline waits this long after a read"
    )
    parser.add_argument("--src", type=Path, help="run another tree's src/ as runplane")
    parser.add_argument(
        "--together",
        action="store_true",
        help="run both servers at once, each with its followers in a process of its own",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only", choices=("runplane", "baseline"), help="run one side (with --py-spy: a profile)"
    )
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="record each server with py-spy into DIR"
    )
    args = parser.parse_args()
    if args.reader_procs is None:
        args.reader_procs = -(-args.followers // FOLLOWERS_PER_READER)
    rounds = []
    for n in range(args.repeat):
        result = one_round(args, n)
        rounds.append(result)
        if args.json:  # progress, the JSON comes at the end
            print(f"round {n + 1}: ratio {result['ratio']}", file=sys.stderr, flush=True)
        else:
            print_round(result)
    ratios = [r["ratio"] for r in rounds if r["ratio"] is not None]
    summary = {
        "ratio_min": min(ratios, default=None),
        "ratio_median": statistics.median(ratios) if ratios else None,
        "ratio_max": max(ratios, default=None),
        "lone_event_ms_median": {
            name: statistics.median(
                r[name]["lone_event_ms_median"]
                for r in rounds
                if name in r and r[name]["lone_event_ms_median"] is not None
            )
            for name in ("runplane", "baseline")
            if any(name in r and r[name]["lone_event_ms_median"] is not None for r in rounds)
        },
        "every_event_delivered": all(
            r[name]["missing_events"] == 0
            for r in rounds
            for name in ("runplane", "baseline")
            if name in r
        ),
    }
    if args.json:
        print(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
        return
    print(
        f"== ratio (CPU per frame, runplane / baseline) over {len(ratios)} round(s): "
        f"min {summary['ratio_min']}  median {summary['ratio_median']}  "
        f"max {summary['ratio_max']}; every event delivered: {summary['every_event_delivered']}; "
        f"lone event, median follower, ms: {summary['lone_event_ms_median']}"
    )


def print_round(result: dict[str, Any]) -> None:
    print(f"== round {result['round']}")
    names = [name for name in ("runplane", "baseline") if name in result]
    for field_name in result[names[0]]:
        values = "".join(f"{result[name][field_name]!s:>16}" for name in names)
        print(f"  {field_name:32}{values}")
    print(f"  {'ratio':32}{result['ratio']!s:>16}", flush=True)


if __name__ == "__main__":
    main()
