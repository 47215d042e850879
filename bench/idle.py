"""Idle: serve's CPU with N running process runtimes and nothing happening.

Side by side in one run: this tree, and (with --baseline-rev) the same
measurement against the source of an earlier commit, so the figures share the
machine's load. Each serve gets its own redis-server and SQLite (or, with
--postgres, a database on one throwaway Postgres). The runtimes are process
runtimes running `sleep 3600`, created over REST; their supervisors are theirs,
not serve's: only the serve process's own CPU is counted (psutil cpu_times),
over --seconds after --settle seconds of quiet. Then --kills runtimes are
killed by hand (SIGKILL), one at a time, and the median time until the record
leaves `running` is printed (`exit s`): the exit noticed, reported and folded in.

    .venv/bin/python bench/idle.py [--runtimes 1000] [--seconds 60] [--postgres] \
        [--baseline-rev 0235fdd] [--rev HEAD] [--repeat 1] [--kills 5] [--patch FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
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


async def create_runtimes(url: str, key: str, count: int) -> int:
    """Creates `count` running runtimes; returns how many run (on a loaded
    machine a supervisor may not answer in time: that create fails, is left
    as it is, and another takes its place)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers) as http:
        gate = asyncio.Semaphore(4)
        names = iter(range(count * 2))
        running = 0

        async def one() -> None:
            nonlocal running
            while running < count:
                body = {
                    "runtime_id": f"idle-{next(names):05d}",
                    "spec": {"command": ["sleep", "3600"]},
                }
                async with gate:
                    try:
                        made = await http.post("/v1/runtimes", json=body)
                    except httpx.HTTPError as exc:
                        print(f"  create: {exc!r}", file=sys.stderr)
                        continue
                if made.status_code == 201 and made.json().get("status") == "running":
                    running += 1
                    return
                print(f"  create: {made.status_code} {made.text[:120]}", file=sys.stderr)

        await asyncio.gather(*(one() for _ in range(count)))
        return running


def exit_noticed_s(url: str, key: str, kills: int) -> float | None:
    """Kill `kills` of the runtimes by hand (SIGKILL), one after the other, and
    time how long until each record leaves `running` (the exit noticed and
    folded in); the median, or None with no runtime. Polled every 10 ms."""
    headers = {"Authorization": f"Bearer {key}"}
    taken: list[float] = []
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        page = http.get("/v1/runtimes", params={"status": "running", "limit": kills}).json()
        for runtime in page["runtimes"][:kills]:
            runtime_id, pid = runtime["runtime_id"], int(runtime["container_id"].split("-")[1])
            began = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            while time.monotonic() - began < 120:
                if http.get(f"/v1/runtimes/{runtime_id}").json()["status"] != "running":
                    taken.append(time.monotonic() - began)
                    break
                time.sleep(0.01)
    return statistics.median(taken) if taken else None


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure(label: str, src: Path | None, args: argparse.Namespace, tmp: Path) -> float:
    redis = RedisServer.start(tmp / f"{label}-redis")
    settings = {"redis_url": redis.url, "rate_limit_per_s": "0"}
    if args.database_url:
        settings["database_url"] = args.database_url(label)
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)  # the serve child imports that tree's runplane
    try:
        serve = RunplaneServer.launch(tmp / f"{label}-serve", **settings)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        assert serve.process is not None
        made = time.monotonic()
        running = asyncio.run(create_runtimes(serve.url, serve.admin_key, args.runtimes))
        made = time.monotonic() - made
        time.sleep(args.settle)
        process = psutil.Process(serve.process.pid)
        before, started = cpu_seconds(process), time.monotonic()
        time.sleep(args.seconds)
        used, wall = cpu_seconds(process) - before, time.monotonic() - started
        share = used / wall
        noticed = exit_noticed_s(serve.url, serve.admin_key, args.kills) if args.kills else None
        exit_s = f"{noticed:.3f}" if noticed is not None else "-"
        print(
            f"{label:<10} {running:>8} {made:>8.1f} {wall:>7.1f} {used:>8.2f} {share:>10.2%}"
            f" {exit_s:>7}",
            flush=True,
        )
        if args.py_spy and label == "this":  # where the idle CPU goes, after the figure
            subprocess.run(
                [
                    "py-spy",
                    "record",
                    "--nonblocking",
                    "--rate",
                    os.environ.get("PY_SPY_RATE", "100"),
                    "--format",
                    "raw",
                    "-o",
                    args.py_spy,
                    "-d",
                    str(int(args.seconds)),
                    "-p",
                    str(serve.process.pid),
                ],
                check=False,
                capture_output=True,
            )
        return share
    finally:
        serve.stop(timeout_s=120)
        redis.stop()
        end_runtimes(tmp / f"{label}-serve")


def end_runtimes(data_dir: Path) -> None:
    """Runtimes outlive serve by design: end the bench's own, from their state files."""
    for state in data_dir.rglob("containers/*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            os.killpg(json.loads(state.read_text())["pid"], signal.SIGKILL)


def export_source(rev: str, into: Path) -> Path:
    """`src/` of `rev`, unpacked from git, for a serve of its own to import."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def patched_source(patch: Path, into: Path) -> Path:
    """This tree's `src/` with `patch` applied (a change proposed for files
    outside this one), for a serve of its own to import."""
    shutil.copytree(ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "apply", "-p1", str(patch.resolve())], cwd=into, check=True)
    return into / "src"


def main() -> None:
    # A TERM (a timeout, a kill) unwinds like an interrupt: every serve,
    # redis-server and runtime this run started is ended on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtimes", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--kills", type=int, default=5, help="then kill this many runtimes, time each exit noticed"
    )
    parser.add_argument("--postgres", action="store_true", help="Postgres instead of SQLite")
    parser.add_argument("--py-spy", help="then record this tree's serve into this file")
    parser.add_argument("--baseline-rev", help="also measure this commit's source, side by side")
    parser.add_argument(
        "--rev", help="measure this commit's source as 'this' (default: the working tree)"
    )
    parser.add_argument("--patch", help="also measure this tree with this patch applied")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runplane-bench-idle-") as name:
        tmp = Path(name)
        postgres = None
        args.database_url = None
        if args.postgres:
            from tests.support.postgres import PostgresServer

            postgres = PostgresServer.start(tmp / "postgres")
            made: list[str] = []

            def database_url(label: str) -> str:
                made.append(label)
                return postgres.create_database(f"idle_{len(made)}")

            args.database_url = database_url
        src = export_source(args.baseline_rev, tmp) if args.baseline_rev else None
        own = export_source(args.rev, tmp / "rev") if args.rev else None
        patched = patched_source(Path(args.patch), tmp / "patched") if args.patch else None
        try:
            print(
                f"{'tree':<10} {'runtimes':>8} {'create s':>8} {'wall s':>7} "
                f"{'serve s':>8} {'core share':>10} {'exit s':>7}"
            )
            for _ in range(args.repeat):
                this = measure("this", own, args, tmp / f"r{_}")
                other = measure("patched", patched, args, tmp / f"r{_}") if patched else None
                if src is not None:
                    base = measure(args.baseline_rev[:10], src, args, tmp / f"r{_}")
                    print(f"{'ratio':<10} this / baseline = {this / base:.2f}", flush=True)
                    if other is not None:
                        print(f"{'ratio':<10} patched / baseline = {other / base:.2f}", flush=True)
        finally:
            if postgres is not None:
                postgres.stop()


if __name__ == "__main__":
    main()
