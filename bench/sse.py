"""SSE under load: many followers of `GET /v1/events/stream` while events arrive
at a steady rate, against runplane and a one-reader broadcast baseline.

    python bench/sse.py                       # 1,000 followers, 200 events/s, 20 s
    python bench/sse.py --repeat 3 --json
    python bench/sse.py --setting sse_coalesce_ms=0     # wake once per read, as before
    python bench/sse.py --together            # both servers at once, each its own followers
    python bench/sse.py --setting sse_flush_ms=20 --baseline-flush-ms 20

Each round starts a Debian redis-server and a server on it (a child process;
the followers run in this one): `runplane serve`, then the baseline
(bench/sse_baseline.py: one XREAD loop, each entry formatted once and queued to
every follower, on the same uvicorn settings and SSE response), or the other
way round in the next round. It connects every follower (no Last-Event-ID:
from now), samples the server's idle CPU for IDLE_S, then XADDs lifecycle
events to `runplane:events` at `--rate` for `--seconds` from another process,
and waits for every follower to have the last one. A follower is a raw
HTTP/1.1 client that counts the `id:` lines it receives, checks they come in
stream order with no duplicate, and, when the server ends its stream (a
`runplane.lagging` frame, or any close), reconnects with Last-Event-ID as an
EventSource would. Every follower must have received every entry of the
stream from before the first event published to the last (events runplane
publishes itself meanwhile count too).

Before the load it publishes LONE_EVENTS events one at a time, LONE_GAP_S
apart, and times each from its XADD to its arrival at the first, the median
and the last follower: the latency of an event on a quiet stream.

With `--together` both servers run at once, each with its followers in a
process of its own, in step (connected, lone events timed, then both loads):
what else the machine runs weighs on both alike, at the price of the two
competing for the cores with each other.

It prints, for both: how many followers received every event on their first
connection, after reconnecting, or not; the frames delivered; the server's
CPU (user + system) from the first event published to the last delivered, per
delivered frame; the lone events' latency; and the ratio runplane / baseline. The followers and the
publisher share the machine with the server, so run it on a quiet one and
compare ratios, not absolute times. `--py-spy DIR` records each server with
py-spy (if on PATH). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
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
import redis.asyncio as async_redis  # noqa: E402
from sse_baseline import RESPONSES, BaselineServer  # noqa: E402  (bench/, beside this)
from tests.support.events import lifecycle_event  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer, free_port  # noqa: E402

from runplane.domain.lifecycle_events import EVENT_FIELD  # noqa: E402

EVENTS_STREAM = "runplane:events"
ID_LINE = re.compile(rb"^id: (\d+)-(\d+)\r?$", re.MULTILINE)
DRAIN_S = 120.0
"""How long followers may take, after the last event, to receive everything."""
IDLE_S = 3.0
"""How long the server's idle CPU is sampled, followers connected, before the load."""
LONE_EVENTS = 20
"""Events published one at a time before the load, each delivery timed."""
LONE_GAP_S = 0.2
"""The quiet between two lone events: longer than any coalescing window."""


class Follower(asyncio.Protocol):
    """One SSE client: counts the ids it receives, reconnects when cut. A
    Protocol, not streams: the bench's own cost per frame must stay small."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port, self.key = host, port, key
        self.final: tuple[int, int] | None = None
        """The last id published: done once it is in."""
        self.received = 0
        self.reads = 0
        """Reads of the socket that brought data: with a follower that keeps up,
        about one per write of the server."""
        self.first: tuple[int, int] | None = None
        self.last = (0, 0)
        self.reconnects = 0
        self.lagging = 0
        self.disorder = 0
        self.arrivals: list[tuple[float, tuple[int, int]]] | None = None
        """While lone events are timed: when each `_take` ended, and the last id then."""
        self.connected = asyncio.Event()
        self.done = asyncio.Event()
        self._closed = asyncio.Event()
        self._transport: asyncio.Transport | None = None
        self._pending = b""
        self._head = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.done.is_set():
                self._closed.clear()
                self._head, self._pending = True, b""
                try:
                    await loop.create_connection(lambda: self, self.host, self.port)
                    await self._closed.wait()
                except OSError:
                    pass
                if not self.done.is_set():
                    self.reconnects += 1
                    await asyncio.sleep(0.1)
        finally:  # also when cancelled: the server sees the stream end
            self._end()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        head = [
            "GET /v1/events/stream HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Authorization: Bearer {self.key}",
            "Accept: text/event-stream",
        ]
        if self.last != (0, 0):
            head.append(f"Last-Event-ID: {self.last[0]}-{self.last[1]}")
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed.set()

    def data_received(self, data: bytes) -> None:
        """Chunked SSE frames. Each chunk the server writes holds whole frames,
        so chunk-size lines fall between frames and every `id:` line is whole
        once the bytes up to the last blank line are in."""
        self.reads += 1
        data = self._pending + data
        if self._head:
            head, sep, data = data.partition(b"\r\n\r\n")
            if not sep:
                self._pending = head
                return
            if not head.startswith(b"HTTP/1.1 200"):
                self._end()
                return
            self._head = False
            self.connected.set()
        cut = data.rfind(b"\r\n\r\n")
        if cut < 0:
            self._pending = data
            return
        complete, self._pending = data[: cut + 4], data[cut + 4 :]
        self._take(complete)
        if self.done.is_set() or b"event: runplane.lagging" in complete:
            self._end()
        elif self._pending.endswith(b"0\r\n\r\n") or complete.endswith(b"\r\n0\r\n\r\n"):
            self._end()  # the server ended the stream

    def _end(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _take(self, frames: bytes) -> None:
        lagging = frames.find(b"event: runplane.lagging")
        if lagging >= 0:  # the last frame: its id is where to resume, not an event
            start = frames.rfind(b"\r\n\r\n", 0, lagging)
            frames, cut = (b"", frames) if start < 0 else (frames[: start + 4], frames[start + 4 :])
            self.lagging += 1
            for ms, seq in ID_LINE.findall(cut):
                self.last = max(self.last, (int(ms), int(seq)))
        for ms, seq in ID_LINE.findall(frames):
            at = (int(ms), int(seq))
            if at <= self.last:
                self.disorder += 1
                continue
            self.last, self.received = at, self.received + 1
            if self.first is None:
                self.first = at
        if self.arrivals is not None:
            self.arrivals.append((time.monotonic(), self.last))
        self.check_done()

    def check_done(self) -> None:
        if self.final is not None and self.last >= self.final:
            self.done.set()
            self._end()


async def in_step(together: Barrier | None) -> None:
    """Side by side: wait for the other server's followers to get here too."""
    if together is not None:
        await asyncio.to_thread(together.wait, 300)


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


async def time_lone_events(redis_url: str, followers: list[Follower]) -> dict[str, float | None]:
    """Publish LONE_EVENTS one at a time, LONE_GAP_S apart, and time each from
    just before its XADD to its arrival at the first, the median and the last
    follower (milliseconds; the median of each over the events). What a quiet
    stream's event waits: the server's read, wake and write, plus the bench's
    own reading of a thousand sockets (the same for both servers)."""
    client = async_redis.Redis.from_url(redis_url)
    for follower in followers:
        follower.arrivals = []
    sent: list[tuple[float, tuple[int, int]]] = []
    try:
        for n in range(LONE_EVENTS):
            await asyncio.sleep(LONE_GAP_S)
            started = time.monotonic()
            entry_id = await client.xadd(EVENTS_STREAM, {EVENT_FIELD: lone_event(n)})
            sent.append((started, stream_id(entry_id)))
        await asyncio.sleep(LONE_GAP_S)
    finally:
        await client.aclose()
    firsts, medians, lasts = [], [], []
    for started, at in sent:
        took = sorted(
            next((t for t, last in f.arrivals or () if last >= at), float("inf")) - started
            for f in followers
        )
        if took[-1] == float("inf"):
            continue  # a follower missed it (counted as missing at the end)
        firsts.append(took[0])
        medians.append(took[len(took) // 2])
        lasts.append(took[-1])
    for follower in followers:
        follower.arrivals = None

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


async def run_load(
    url: str,
    redis_url: str,
    key: str,
    cpu: Cpu,
    args: argparse.Namespace,
    together: Barrier | None = None,
) -> dict[str, Any]:
    """Connect every follower, time lone events, publish, wait for every
    follower to have every event. The server's CPU is counted from the first
    event published to the last delivered (connecting and the lone events are
    left out), and for IDLE_S before the lone events."""
    host, port = url.removeprefix("http://").split(":")
    followers = [Follower(host, int(port), key) for _ in range(args.followers)]
    tasks = [asyncio.create_task(f.run()) for f in followers]
    async with asyncio.timeout(60):
        for follower in followers:
            await follower.connected.wait()
    total = int(args.rate * args.seconds)
    await in_step(together)
    cpu.mark()
    await asyncio.sleep(IDLE_S)
    cpu.mark()
    lone = await time_lone_events(redis_url, followers)
    await in_step(together)
    cpu.mark()
    profiler = profile(cpu.process.pid, args.py_spy, cpu.label)
    started = time.monotonic()
    ids, sent_ids = multiprocessing.Pipe(duplex=False)
    publisher = multiprocessing.Process(
        target=publish, args=(redis_url, total, args.rate, sent_ids)
    )
    publisher.start()
    await asyncio.to_thread(publisher.join)
    published_s = time.monotonic() - started
    first, final = (stream_id(i) for i in ids.recv())
    for follower in followers:
        follower.final = final
        follower.check_done()
    await asyncio.wait([asyncio.ensure_future(f.done.wait()) for f in followers], timeout=DRAIN_S)
    cpu.mark()
    finished_s = time.monotonic() - started
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        await asyncio.to_thread(profiler.wait, 30)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Every event from before the first published one to the last: what the
    # server published itself meanwhile (host events) counts too.
    in_range = entries_between(redis_url, {(f.first, f.last) for f in followers if f.first})
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
        "followers": args.followers,
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
    return asyncio.run(run_load(target.url, target.redis_url, target.key, cpu, args, together))


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
