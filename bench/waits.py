"""Concurrent `/wait` calls: serve's CPU while 1,000 clients wait on one runtime.

Side by side in one run: this tree, and (with --baseline-rev) the same
benchmark against the source of an earlier commit, so the two figures share
the machine's load. Each serve gets its own external redis-server and SQLite.
The key is the admin key, which no per-key bound applies to: the figure is the
cost of waiting itself (shared store reads, the poll schedule), not of refusing.

    .venv/bin/python bench/waits.py [--waits 1000] [--seconds 15] [--baseline-rev 90b8fbe]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway servers

import httpx  # noqa: E402
import psutil  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402


async def wait_load(url: str, key: str, waits: int, seconds: float) -> list[int]:
    limits = httpx.Limits(max_connections=waits + 10, max_keepalive_connections=waits + 10)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120, headers=headers) as http:
        body = {"runtime_id": "w", "spec": {"command": ["sleep", "1000"]}}
        made = await http.post("/v1/runtimes", json=body)
        made.raise_for_status()

        async def one() -> int:
            params = {"status": "stopped", "timeout": str(seconds)}
            return (await http.get("/v1/runtimes/w/wait", params=params)).status_code

        codes = await asyncio.gather(*(one() for _ in range(waits)))
        await http.delete("/v1/runtimes/w")
        return list(codes)


def measure(label: str, src: Path | None, waits: int, seconds: float, tmp: Path) -> str:
    redis = RedisServer.start(tmp / f"{label}-redis")
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)  # the serve child imports that tree's runplane
    try:
        serve = RunplaneServer.launch(tmp / f"{label}-serve", redis_url=redis.url)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        assert serve.process is not None
        process = psutil.Process(serve.process.pid)
        before, started = process.cpu_times(), time.monotonic()
        codes = asyncio.run(wait_load(serve.url, serve.admin_key, waits, seconds))
        after, wall = process.cpu_times(), time.monotonic() - started
        used = after.user + after.system - before.user - before.system
        answered = {code: codes.count(code) for code in sorted(set(codes))}
        return f"{label:<10} {waits:>6} {wall:>7.1f} {used:>8.1f} {used / wall:>10.0%}   {answered}"
    finally:
        serve.stop()
        redis.stop()


def export_source(rev: str, into: Path) -> Path:
    """`src/` of `rev`, unpacked from git, for the baseline serve to import."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--baseline-rev", help="also measure this commit's source, side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runplane-bench-waits-") as name:
        tmp = Path(name)
        print(f"{'tree':<10} {'waits':>6} {'wall s':>7} {'serve s':>8} {'CPU share':>10}   answers")
        print(measure("this", None, args.waits, args.seconds, tmp))
        if args.baseline_rev:
            src = export_source(args.baseline_rev, tmp)
            print(measure(args.baseline_rev[:10], src, args.waits, args.seconds, tmp))


if __name__ == "__main__":
    main()
