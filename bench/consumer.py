"""Consumer runtime: runplane's GroupConsumer against raw redis-py and FastStream.

    .venv/bin/python bench/consumer.py [--entries 200000] [--repeat 3] [--json] [--baseline-rev REV]

It starts its own Debian redis-server. Each variant runs in a child process
of its own, after FLUSHALL, on a stream of `--entries` pre-filled job entries
(bench/consumer_raw.job_fields: six fields, about 230 bytes, 1,000 runtime
ids), with a no-op handler, and prints entries/s and the child's CPU (user +
system, every thread) per entry:

- **runplane**: streams.group.GroupConsumer as the serve builds it for a job
  stream (bootstrap.streams.consumer_settings(Settings()): batches of 64, 64
  chains at once, retention and gauges on), its Prometheus metrics, and
  logging configured as the serve does (text, INFO);
- **raw**: bench/consumer_raw.py, XREADGROUP COUNT `--batch` (100) + XACK per
  batch, an awaited no-op call per entry, nothing decoded;
- **faststream**: bench/consumer_faststream.py, FastStream's Redis stream
  subscriber with batches of `--batch`, run with the interpreter of
  bench/.venv-faststream, made on the first run (pinned below).

With `--baseline-rev REV`, a fourth child runs the runplane child on `src/` of
that commit (`git archive`), in the same rounds: before and after a change,
under the same load.

Rounds run the variants in turn, `--repeat` times, so the ratios are taken
under the same load; the figures printed are the medians and the range. After
each child the group must show nothing pending and nothing undelivered. Every
child and the redis-server are stopped on the way out, also on failure. Not
part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # tests.support: the throwaway redis-server
sys.path.insert(0, str(BENCH))  # consumer_raw: the entries

STREAM = "bench:jobs"
GROUP = "bench"
CHILD_TIMEOUT_S = 600.0
FASTSTREAM_VENV = BENCH / ".venv-faststream"
FASTSTREAM_PINS = ("faststream[redis]==0.7.8", "redis==8.1.0", "hiredis==3.5.0")
"""redis-py and hiredis as runplane's constraints.txt pins them: the same client."""
VARIANTS = ("runplane", "raw", "faststream")


# -- the runplane child ----------------------------------------------------------


async def run_runplane(url: str, entries: int, profile: str | None = None) -> dict[str, Any]:
    from consumer_raw import job_fields, prefill

    from runplane.adapters.redis.client import connect_bytes
    from runplane.bootstrap.streams import consumer_settings
    from runplane.config import Settings
    from runplane.logs import configure_logging
    from runplane.streams import GroupConsumer, StreamEntry

    configure_logging("text", "INFO")
    client = connect_bytes(url)
    await prefill(client, STREAM, [job_fields(i) for i in range(entries)])
    handled = 0
    finished = asyncio.Event()

    async def handler(entry: StreamEntry) -> None:
        nonlocal handled
        handled += 1
        if handled >= entries:
            finished.set()

    consumer = GroupConsumer(
        client,
        stream=STREAM,
        group=GROUP,
        consumer="bench",
        handler=handler,
        settings=consumer_settings(Settings()),
    )
    # CPU time, not wall time: on a busy machine waits would swamp the profile.
    profiler = cProfile.Profile(time.process_time) if profile else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    task = asyncio.create_task(consumer.run())
    await finished.wait()
    await consumer.stop()  # the last batch is acknowledged before it returns
    wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    await task
    await client.aclose()
    return {"entries": handled, "wall_s": wall_s, "cpu_s": cpu_s}


# -- the parent ------------------------------------------------------------------


def export_source(rev: str, into: Path) -> Path:
    """`src/` of `rev`, unpacked from git, for the baseline child to import."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def faststream_python() -> Path:
    """bench/.venv-faststream's interpreter, the venv made or updated first."""
    python = FASTSTREAM_VENV / "bin" / "python"
    stamp = FASTSTREAM_VENV / "pins.txt"
    wanted = "\n".join(FASTSTREAM_PINS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"making {FASTSTREAM_VENV} ({', '.join(FASTSTREAM_PINS)})", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(FASTSTREAM_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *FASTSTREAM_PINS], check=True)
    stamp.write_text(wanted)
    return python


def child_command(
    variant: str, url: str, args: argparse.Namespace, profile: str | None
) -> list[str]:
    common = ["--url", url, "--entries", str(args.entries)]
    if variant == "baseline":  # this file's runplane child, on the older tree's src/
        return [sys.executable, __file__, "--child", *common]
    if variant == "runplane":
        profiling = ["--profile", profile] if profile else []
        return [sys.executable, __file__, "--child", *common, *profiling]
    batch = ["--stream", STREAM, "--group", GROUP, "--batch", str(args.batch)]
    if variant == "raw":
        return [sys.executable, str(BENCH / "consumer_raw.py"), *common, *batch]
    return [str(faststream_python()), str(BENCH / "consumer_faststream.py"), *common, *batch]


def run_child(
    variant: str, url: str, args: argparse.Namespace, profile: str | None = None
) -> dict[str, Any]:
    env = None
    if variant == "runplane":
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    elif variant == "baseline":
        env = {**os.environ, "PYTHONPATH": str(args.baseline_src)}
    # subprocess.run kills the child when it overruns its time.
    done = subprocess.run(
        child_command(variant, url, args, profile),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["entries"] != args.entries:
        raise RuntimeError(f"{variant} handled {result['entries']} of {args.entries} entries")
    return result


async def check_drained(url: str) -> None:
    """Every entry delivered to the group and acknowledged."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    try:
        groups = {g["name"]: g for g in await client.xinfo_groups(STREAM)}
        group = groups[GROUP]
        if group["pending"] or group.get("lag"):
            raise RuntimeError(f"group not drained: {group}")
    finally:
        await client.aclose()


async def flush(url: str, *, aof: bool = True) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        if not aof:
            await client.config_set("appendonly", "no")
        await client.flushall()
    finally:
        await client.aclose()


def server_cpu_s(server: Any) -> float:
    import psutil

    times = psutil.Process(server.pid).cpu_times()
    return float(times.user + times.system)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.redis import RedisServer

    variants = [*VARIANTS, "baseline"] if args.baseline_rev else list(VARIANTS)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="runplane-bench-consumer-") as tmp:
        if args.baseline_rev:
            args.baseline_src = export_source(args.baseline_rev, Path(tmp))
        server = RedisServer.start(Path(tmp) / "redis")
        try:
            # Without the AOF: every XREADGROUP would append an XCLAIM per entry
            # to it, and the figures would be about Redis's disk more than the
            # consumers (--aof keeps it).
            asyncio.run(flush(server.url, aof=args.aof))
            for round_index in range(args.repeat):
                for variant in variants:
                    asyncio.run(flush(server.url))
                    redis_cpu0 = server_cpu_s(server)
                    profile = args.profile if round_index == 0 else None
                    result = run_child(variant, server.url, args, profile)
                    # Redis's CPU over the whole child, its XADDs included.
                    result["redis_cpu_s"] = server_cpu_s(server) - redis_cpu0
                    asyncio.run(check_drained(server.url))
                    result["entries_per_s"] = result["entries"] / result["wall_s"]
                    result["cpu_us_per_entry"] = result["cpu_s"] / result["entries"] * 1e6
                    runs[variant].append(result)
                    print(f"{variant}: {result['entries_per_s']:,.0f} entries/s", file=sys.stderr)
        finally:
            server.stop()
    rounds = range(args.repeat)
    ratio_raw = [
        runs["runplane"][i]["entries_per_s"] / runs["raw"][i]["entries_per_s"] for i in rounds
    ]
    ratio_fs = [
        runs["runplane"][i]["entries_per_s"] / runs["faststream"][i]["entries_per_s"]
        for i in rounds
    ]
    # On a busy machine entries/s follows how often each child gets a core back
    # after a round trip; CPU per entry does not: its ratio is the throughput
    # ratio on otherwise idle cores, where each consumer is CPU-bound.
    cpu_raw = [runs["raw"][i]["cpu_s"] / runs["runplane"][i]["cpu_s"] for i in rounds]
    cpu_fs = [runs["faststream"][i]["cpu_s"] / runs["runplane"][i]["cpu_s"] for i in rounds]
    before: dict[str, Any] = {}
    if args.baseline_rev:  # this tree against the older one, in the same rounds
        before = {
            "baseline_rev": args.baseline_rev,
            "ratio_vs_baseline": summary(
                [
                    runs["runplane"][i]["entries_per_s"] / runs["baseline"][i]["entries_per_s"]
                    for i in rounds
                ]
            ),
            "cpu_ratio_vs_baseline": summary(
                [runs["baseline"][i]["cpu_s"] / runs["runplane"][i]["cpu_s"] for i in rounds]
            ),
        }
    return {
        "entries": args.entries,
        "repeat": args.repeat,
        "baseline_batch": args.batch,
        "variants": {
            v: {
                "entries_per_s": summary([r["entries_per_s"] for r in runs[v]]),
                "cpu_us_per_entry": summary([r["cpu_us_per_entry"] for r in runs[v]]),
            }
            for v in variants
        },
        **before,
        "ratio_vs_raw": summary(ratio_raw),
        "ratio_vs_faststream": summary(ratio_fs),
        "cpu_ratio_vs_raw": summary(cpu_raw),
        "cpu_ratio_vs_faststream": summary(cpu_fs),
        "runs": runs,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['entries']:,} entries, {report['repeat']} round(s); median [min-max]",
        f"{'variant':<11} {'entries/s':>28} {'CPU us/entry':>24}",
    ]
    for variant, figures in report["variants"].items():
        rate, cpu = figures["entries_per_s"], figures["cpu_us_per_entry"]
        lines.append(
            f"{variant:<11} {rate['median']:>10,.0f} [{rate['min']:,.0f}-{rate['max']:,.0f}]"
            f" {cpu['median']:>8.1f} [{cpu['min']:.1f}-{cpu['max']:.1f}]"
        )
    for name, key, goal in (
        ("runplane / raw, entries/s", "ratio_vs_raw", 0.6),
        ("runplane / faststream, entries/s", "ratio_vs_faststream", 1.2),
        ("runplane / raw, by CPU per entry", "cpu_ratio_vs_raw", 0.6),
        ("runplane / faststream, by CPU per entry", "cpu_ratio_vs_faststream", 1.2),
    ):
        r = report[key]
        lines.append(f"{name}: {r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}] (goal >= {goal})")
    if "baseline_rev" in report:
        rev = report["baseline_rev"]
        for name, key in (
            (f"runplane / baseline ({rev}), entries/s", "ratio_vs_baseline"),
            (f"runplane / baseline ({rev}), by CPU per entry", "cpu_ratio_vs_baseline"),
        ):
            r = report[key]
            lines.append(f"{name}: {r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}]")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="the baselines' batch size")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--profile", metavar="FILE", help="cProfile of runplane's first run")
    parser.add_argument("--aof", action="store_true", help="keep redis-server's AOF on")
    parser.add_argument(
        "--baseline-rev", help="also run the runplane child on this commit's src/, same rounds"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(run_runplane(args.url, args.entries, args.profile))))
        return
    report = measure(args)
    print(json.dumps(report, indent=2) if args.json else render(report))


if __name__ == "__main__":
    main()
