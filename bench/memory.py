"""serve's resident memory, idle and holding many records.

    python bench/memory.py [--records 100000] [--settle 10]

It starts its own redis-server and a serve on embedded defaults (SQLite in
its data dir), and prints serve's RSS at three moments: idle with no
records; after a restart with `--records` stopped runtimes written into its
database (straight into the table, as many rows as a long-lived deployment
keeps); and after every record was read through `GET /v1/runtimes` page by
page, the way a dashboard or a reconciling client walks them. The figure to
keep is the last one against the first: what holding and serving that many
records costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway servers

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import create_engine, insert  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402

from runplane.adapters.sql.tables import as_row, runtimes  # noqa: E402
from runplane.domain.records import RuntimeRecord  # noqa: E402
from runplane.domain.statuses import Status  # noqa: E402

PAGE = 1000
"""The largest page `GET /v1/runtimes` answers."""


def rss_mb(serve: RunplaneServer) -> float:
    assert serve.process is not None
    return psutil.Process(serve.process.pid).memory_info().rss / 2**20


def write_records(database: Path, count: int) -> None:
    """`count` stopped process runtimes, in batches of 5,000 rows."""
    engine = create_engine(f"sqlite:///{database}")
    now = datetime.now(UTC)
    spec = {"command": ["sleep", "3600"], "stop_timeout_s": 10}
    with engine.begin() as connection:
        for start in range(0, count, 5000):
            rows = [
                as_row(
                    RuntimeRecord(
                        runtime_id=f"mem-{n:07d}",
                        team_id="memory-bench",
                        status=Status.STOPPED,
                        version=3,
                        driver="process",
                        spec=spec,
                        created_at=now,
                        updated_at=now,
                        stopped_at=now,
                        last_op_at=now,
                    )
                )
                for n in range(start, min(start + 5000, count))
            ]
            connection.execute(insert(runtimes), rows)
    engine.dispose()


def read_all(serve: RunplaneServer) -> int:
    """Every record through the API, page by page; how many were read."""
    seen, cursor = 0, None
    headers = {"Authorization": f"Bearer {serve.admin_key}"}
    with httpx.Client(base_url=serve.url, headers=headers, timeout=60) as http:
        while True:
            params: dict[str, str | int] = {"limit": PAGE}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/runtimes", params=params)
            page.raise_for_status()
            body = page.json()
            seen += len(body["runtimes"])
            cursor = body.get("next_cursor")
            if not cursor:
                return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before each reading")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer.start(Path(tmp) / "redis")
        serve = RunplaneServer.launch(Path(tmp) / "serve", redis_url=redis.url)
        try:
            time.sleep(args.settle)
            idle = rss_mb(serve)
            serve.stop()
            began = time.monotonic()
            write_records(Path(tmp) / "serve" / "runplane.db", args.records)
            written_s = time.monotonic() - began
            serve.start()
            time.sleep(args.settle)
            holding = rss_mb(serve)
            began = time.monotonic()
            read = read_all(serve)
            read_s = time.monotonic() - began
            time.sleep(args.settle)
            served = rss_mb(serve)
        finally:
            serve.stop()
            redis.stop()
    print(f"idle, no records           {idle:7.1f} MB")
    print(f"{args.records:,} records written   {holding:7.1f} MB  (written in {written_s:.1f} s)")
    print(f"all {read:,} read over REST {served:7.1f} MB  (in {read_s:.1f} s, pages of {PAGE})")


if __name__ == "__main__":
    main()
