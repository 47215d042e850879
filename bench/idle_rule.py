"""The timers worker's round cost at scale (issue 16), runplane next to a
naive baseline, in one run:

    python bench/idle_rule.py [--watched 1000] [--others 10000] [--repeat 5]

1. Reading what to look at: `due_timeouts` + `idle_watched` (indexed queries
   on SQLite) for `--watched` runtimes with an idle rule and a deadline among
   `--others` without, against the baseline that lists every record and
   filters in Python (a scan of all records).
2. Counting connections for `--watched` process runtimes (all in the host's
   network namespace, as process runtimes are): LocalConnections' one read per
   namespace, against reading /proc/<pid>/net/tcp{,6} once per runtime.

Prints the median of `--repeat` timings of each and the ratio baseline/runplane.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from runplane.adapters.drivers.connections import count_by_pid, local_ports  # noqa: E402
from runplane.adapters.sql.engine import SqlDatabase  # noqa: E402
from runplane.adapters.sql.migrate import upgrade_database  # noqa: E402
from runplane.adapters.sql.runtime_settings import SqlRuntimeSettings  # noqa: E402
from runplane.adapters.sql.runtime_store import SqlRuntimeStore  # noqa: E402
from runplane.domain.records import RuntimeRecord  # noqa: E402
from runplane.domain.statuses import Status  # noqa: E402

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def record(i: int, watched: bool) -> RuntimeRecord:
    extra = {}
    if watched:
        extra = {
            "idle_after_s": 60,
            "idle_action": "stop",
            "timeout_at": T0 + timedelta(hours=1),
            "on_timeout": "stop",
        }
    return RuntimeRecord(
        runtime_id=f"rt-{i:06d}",
        team_id="t",
        status=Status.RUNNING,
        version=1,
        driver="process",
        spec={"command": ["sleep", "1"], "port": 8000 + i % 1000},
        created_at=T0,
        updated_at=T0,
        started_at=T0,
        **extra,  # type: ignore[arg-type]
    )


async def timed(work, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def queries(watched: int, others: int, repeat: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        database = SqlDatabase.from_url(f"sqlite+aiosqlite:///{folder}/bench.db")
        await upgrade_database(database)
        store, settings = SqlRuntimeStore(database), SqlRuntimeSettings(database)
        for i in range(watched + others):
            await store.create(record(i, i % ((watched + others) // watched) == 0))
        now = T0 + timedelta(minutes=1)

        async def runplane() -> None:
            await settings.due_timeouts(now)
            found = await settings.idle_watched()
            assert len(found) == watched, len(found)

        async def baseline() -> None:
            found, cursor = [], None
            while True:
                page = await store.list(after=cursor, limit=1000)
                found += [r for r in page.records if r.idle_after_s is not None]
                _ = [r for r in page.records if r.timeout_at and r.timeout_at <= now]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert len(found) == watched

        try:
            return await timed(runplane, repeat), await timed(baseline, repeat)
        finally:
            await database.dispose()


def per_runtime_reads(pids: list[int], ports: list[tuple[int, ...]]) -> list[int]:
    counts = []
    for pid, wanted in zip(pids, ports, strict=True):
        open_ports: list[int] = []
        for name in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{name}", encoding="ascii") as table:
                open_ports += local_ports(table.read())
        counts.append(sum(1 for p in open_ports if p in wanted))
    return counts


async def counting(watched: int, repeat: int) -> tuple[float, float]:
    pids = [os.getpid()] * watched
    ports = [(8000 + i % 1000,) for i in range(watched)]

    async def runplane() -> None:
        count_by_pid(pids, ports)  # type: ignore[arg-type]

    async def baseline() -> None:
        per_runtime_reads(pids, ports)

    return await timed(runplane, repeat), await timed(baseline, repeat)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watched", type=int, default=1000)
    parser.add_argument("--others", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rp, base = await queries(args.watched, args.others, args.repeat)
    print(
        f"what to look at ({args.watched} watched of {args.watched + args.others}): "
        f"runplane {rp * 1000:.1f} ms, scan-all baseline {base * 1000:.1f} ms, "
        f"ratio {base / rp:.1f}x"
    )
    rp, base = await counting(args.watched, args.repeat)
    print(
        f"connection count ({args.watched} process runtimes): runplane {rp * 1000:.1f} ms, "
        f"read-per-runtime baseline {base * 1000:.1f} ms, ratio {base / rp:.1f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
