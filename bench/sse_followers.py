"""The followers of bench/sse.py, in reader processes of their own.

One reading process cannot keep up with 1,000 followers on a loaded machine:
it then sets how many frames each write of the server carries, and the bench
measures the reader, not the server. So the followers are split over
`--reader-procs` processes (the same for runplane and the baseline), each an
asyncio loop of raw HTTP/1.1 clients (`Follower`), driven by the parent over a
pipe, step by step:

    parent                      reader
    (start)                 ->  connect every follower; "connected"
    ("lone-start",)         ->  record arrivals; "ok"
    ("lone-end", sent)      ->  per sent event, when each follower had it
    ("final", last_id)      ->  wait until every follower has it; "drained"
    ("stop",)               ->  close every stream; each follower's counts

The server's CPU is measured by the parent on the server's process only; the
readers' own CPU is reported beside it, to show whether they kept up.
"""

from __future__ import annotations

import asyncio
import operator
import re
import time
from dataclasses import dataclass
from itertools import islice, repeat
from multiprocessing.connection import Connection

ID_LINE = re.compile(rb"\nid: (\d+)-(\d+)\r?\n")
"""An `id:` line. Searched in b"\\n" + the frames: a pattern that starts with a
literal is found by a fast scan, where `^` in MULTILINE mode is tried at every
byte (4x the reader's CPU per frame)."""
SEQ_BITS = 32
"""An id as one int, ms << SEQ_BITS | seq, to check a batch's order in C."""
CONNECT_S = 120.0
"""How long a reader may take to connect all its followers."""


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
            for ms, seq in ID_LINE.findall(b"\n" + cut):
                self.last = max(self.last, (int(ms), int(seq)))
        ids = ID_LINE.findall(b"\n" + frames)
        if ids and not self._count_in_order(ids):
            self._count_one_by_one(ids)
        if self.arrivals is not None:
            self.arrivals.append((time.monotonic(), self.last))
        self.check_done()

    def _count_in_order(self, ids: list[tuple[bytes, bytes]]) -> bool:
        """Counts a batch that comes after the last id, in strictly increasing
        order (what a correct server sends), with no Python code run per id:
        the reader's CPU per frame decides whether 1,000 followers keep up. False
        (nothing counted) for any other batch."""
        mss, seqs = zip(*ids, strict=True)
        keys = list(
            map(
                operator.or_,
                map(operator.lshift, map(int, mss), repeat(SEQ_BITS)),
                map(int, seqs),
            )
        )
        if keys[0] <= self.last[0] << SEQ_BITS | self.last[1]:
            return False
        if not all(map(operator.lt, keys, islice(keys, 1, None))):
            return False
        self.received += len(keys)
        self.last = (int(mss[-1]), int(seqs[-1]))
        if self.first is None:
            self.first = (int(mss[0]), int(seqs[0]))
        return True

    def _count_one_by_one(self, ids: list[tuple[bytes, bytes]]) -> None:
        """A batch out of order or repeating ids: each duplicate or late id is
        counted as disorder, the rest as received."""
        for ms, seq in ids:
            at = (int(ms), int(seq))
            if at <= self.last:
                self.disorder += 1
                continue
            self.last, self.received = at, self.received + 1
            if self.first is None:
                self.first = at

    def check_done(self) -> None:
        if self.final is not None and self.last >= self.final:
            self.done.set()
            self._end()


@dataclass(frozen=True)
class Counts:
    """What one follower saw, sent back to the parent at the end."""

    first: tuple[int, int] | None
    last: tuple[int, int]
    received: int
    reads: int
    reconnects: int
    lagging: int
    disorder: int


def reader_main(conn: Connection, host: str, port: int, key: str, followers: int) -> None:
    """A reader process: `followers` SSE clients, driven by `conn`."""
    asyncio.run(_serve_parent(conn, [Follower(host, port, key) for _ in range(followers)]))


async def _serve_parent(conn: Connection, followers: list[Follower]) -> None:
    tasks = [asyncio.create_task(f.run()) for f in followers]
    try:
        async with asyncio.timeout(CONNECT_S):
            for follower in followers:
                await follower.connected.wait()
        conn.send("connected")
        while True:
            command = await asyncio.to_thread(conn.recv)
            if command[0] == "lone-start":
                for follower in followers:
                    follower.arrivals = []
                conn.send("ok")
            elif command[0] == "lone-end":
                conn.send(_arrival_delays(followers, command[1]))
            elif command[0] == "final":
                _, final, drain_s = command
                for follower in followers:
                    follower.final = final
                    follower.check_done()
                pending = [asyncio.ensure_future(f.done.wait()) for f in followers]
                await asyncio.wait(pending, timeout=drain_s)
                for waiter in pending:
                    waiter.cancel()
                conn.send("drained")
            elif command[0] == "stop":
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(
        [
            Counts(f.first, f.last, f.received, f.reads, f.reconnects, f.lagging, f.disorder)
            for f in followers
        ]
    )


def _arrival_delays(
    followers: list[Follower], sent: list[tuple[float, tuple[int, int]]]
) -> list[list[float]]:
    """For each lone event (when its XADD began, its id): how long each of these
    followers took to have it (inf: never). time.monotonic is the system's
    CLOCK_MONOTONIC, the same in every process, so the parent's start times
    compare with these arrivals."""
    delays = [
        [
            next((t for t, last in f.arrivals or () if last >= at), float("inf")) - started
            for f in followers
        ]
        for started, at in sent
    ]
    for follower in followers:
        follower.arrivals = None
    return delays
