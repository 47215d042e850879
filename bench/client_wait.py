"""How soon the client's wait_for returns after a status change: driven by the
event stream (runplane.client's default) against the server's long poll
(`wait_for(..., poll=True)`, the fallback and the baseline), in the same run.

    python bench/client_wait.py                 # 30 trials of each, interleaved
    python bench/client_wait.py --trials 100

It starts its own Debian redis-server and a `runplane serve` on it, creates one
runtime, and for each trial: starts an AsyncClient.wait_for(rt, "paused") in
one task, lets it settle 0.5 s, then pauses the runtime from another client and
notes the time from the pause call's start to the wait's return; then resumes
it. Both modes measure the same thing on the same server, in alternating
order. It prints the median and p90 of each and the ratio long poll / events.
Every runtime and server it started is removed and stopped, also on failure.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway redis-server and serve

from tests.e2e.conftest import remove_everything  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402

from runplane.client import AsyncClient  # noqa: E402

RUNTIME = "bench-wait"
SETTLE_S = 0.5


async def trial(waiter: AsyncClient, actor: AsyncClient, poll: bool) -> float:
    returned: list[float] = []

    async def wait() -> None:
        await waiter.wait_for(RUNTIME, "paused", timeout=60, poll=poll)
        returned.append(time.monotonic())

    task = asyncio.create_task(wait())
    await asyncio.sleep(SETTLE_S)
    began = time.monotonic()
    await actor.pause(RUNTIME)
    await task
    await actor.resume(RUNTIME)
    return returned[0] - began


async def run(url: str, key: str, trials: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"events": [], "long poll": []}
    async with AsyncClient(url, key) as waiter, AsyncClient(url, key) as actor:
        await actor.create_runtime({"command": ["sleep", "600"]}, runtime_id=RUNTIME)
        for n in range(trials):
            order = [False, True] if n % 2 == 0 else [True, False]
            for poll in order:
                found["long poll" if poll else "events"].append(await trial(waiter, actor, poll))
    return found


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        serve: RunplaneServer | None = None
        try:
            serve = RunplaneServer.launch(Path(tmp) / "serve", redis_url=redis_server.url)
            found = asyncio.run(run(serve.url, serve.admin_key, args.trials))
        finally:
            if serve is not None:
                remove_everything(serve)
                serve.stop()
            redis_server.stop()
    for label, samples in found.items():
        print(f"{label:10s} {summary(samples)}   ({len(samples)} trials)")
    ratio = statistics.median(found["long poll"]) / statistics.median(found["events"])
    print(f"ratio long poll / events (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
