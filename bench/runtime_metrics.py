"""The cost of sampling runtimes' resources on their host (issue 16).

Starts N process runtimes (`sleep 3600`, through the process driver, as serve
would), then times sampling rounds over all of them, side by side in one run:

- runplane: `process_metrics.read_resources`: each runtime's tree from
  /proc/<pid>/task/<tid>/children, one /proc/<pid>/stat read per process;
- baseline (below): the direct way, `psutil.Process(pid).children(recursive=True)`
  per runtime, which scans the process table once per runtime.

It prints the CPU time of one round (this process's user+system time: psutil
reads /proc in-process; the baseline is timed over --baseline-sample runtimes and
scaled to N, as its cost per runtime does not depend on N: a whole scan of the
process table each), what that is as a share of one core at the default
5 s period (RUNPLANE_METRICS_SAMPLE_S), and the ratio. By default runplane
samples only runtimes someone asked about in the last 10 minutes, so with
nobody asking a round costs nothing; the figures are the worst case, every
runtime sampled (RUNPLANE_METRICS_PER_RUNTIME=true). Every runtime is removed
at the end, also on failure.

    .venv/bin/python bench/runtime_metrics.py [--runtimes 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from runplane.adapters.drivers.process import ProcessDriver  # noqa: E402
from runplane.adapters.drivers.process_files import parse_container_id  # noqa: E402
from runplane.adapters.drivers.process_metrics import read_resources  # noqa: E402


def baseline_round(container_ids: Sequence[str]) -> dict[str, tuple[float, int] | None]:
    """Per runtime: its main process's descendants, then their times and memory."""
    found: dict[str, tuple[float, int] | None] = {}
    for container_id in container_ids:
        parsed = parse_container_id(container_id)
        assert parsed is not None
        try:
            root = psutil.Process(parsed[0])
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            found[container_id] = None
            continue
        cpu, rss = 0.0, 0
        for proc in tree:
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system
                rss += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        found[container_id] = (cpu, rss)
    return found


def cpu_of(work: Callable[[], object], rounds: int) -> list[float]:
    me = psutil.Process()
    spent = []
    for _ in range(rounds):
        before = me.cpu_times()
        work()
        after = me.cpu_times()
        spent.append((after.user - before.user) + (after.system - before.system))
    return spent


async def start_runtimes(driver: ProcessDriver, count: int) -> list[str]:
    gate = asyncio.Semaphore(8)

    async def one(index: int) -> str:
        async with gate:
            spec = {"command": ["sleep", "3600"]}
            return (await driver.start(f"bench-{index}", spec)).container_id

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="rp-metrics-bench-") as tmp:
        driver = ProcessDriver(Path(tmp) / "state")
        ids: list[str] = []
        try:
            started = time.monotonic()
            ids = await start_runtimes(driver, args.runtimes)
            print(f"{len(ids)} runtimes started in {time.monotonic() - started:.1f}s")
            print(f"processes on this machine: {len(psutil.pids())}")
            sample = ids[: args.baseline_sample]
            scale = len(ids) / len(sample)
            ours_read = lambda: read_resources(ids, {})  # noqa: E731
            theirs_read = lambda: baseline_round(sample)  # noqa: E731
            found = ours_read()
            assert all(
                reading is not None and reading.memory_bytes > 0 for reading in found.values()
            )
            for repeat in range(args.repeat):
                ours = cpu_of(ours_read, args.rounds)
                theirs = [spent * scale for spent in cpu_of(theirs_read, args.rounds)]
                mine, base = statistics.median(ours), statistics.median(theirs)
                print(
                    f"[{repeat + 1}] one round over {len(ids)} runtimes, CPU s (median of "
                    f"{args.rounds}): runplane {mine:.3f} (min {min(ours):.3f}, max "
                    f"{max(ours):.3f}), baseline {base:.3f} (min {min(theirs):.3f}, max "
                    f"{max(theirs):.3f}); baseline/runplane = {base / mine:.1f}x; at a "
                    f"{args.period:g}s period runplane takes {mine / args.period * 100:.2f}% "
                    f"of a core, the baseline {base / args.period * 100:.2f}%"
                )
        finally:
            for container_id in ids:
                await driver.remove(container_id)
            driver.close()


def _exit_on(signum: int, _frame: object) -> None:
    # An exception in the running code, not a task cancellation: the cleanup
    # in main's `finally` still awaits every remove.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_on)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--period", type=float, default=5.0)
    parser.add_argument("--baseline-sample", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
