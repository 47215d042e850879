"""Settling after a crash: seconds from a kill -9 of `runplane serve`, with
stops in flight, until every runtime is settled again.

Each runtime takes 3 s to exit after SIGTERM, so its stop is still under way
when serve is killed; serve is started again at once (default settings, an
external redis-server so the dead instance's leases outlive it, SQLite).

    .venv/bin/python bench/settle_after_kill.py [--runtimes 5]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway servers

import httpx  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import RunplaneServer  # noqa: E402

SPEC = {
    "command": ["sh", "-c", "trap 'sleep 3; exit 0' TERM; while :; do sleep 0.2; done"],
    "stop_timeout_s": 30,
}


def wait(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.1)


def measure(runtimes: int) -> dict[str, float]:
    """The figures of one kill."""
    base = Path(tempfile.mkdtemp(prefix="runplane-settle-"))
    redis_server = RedisServer.start(base / "redis")
    serve = RunplaneServer.launch(base / "data", redis_url=redis_server.url)
    ids = [f"rt-{n}" for n in range(runtimes)]
    try:
        with serve.client() as http:
            for runtime_id in ids:
                created = http.post("/v1/runtimes", json={"runtime_id": runtime_id, "spec": SPEC})
                created.raise_for_status()

            def stop(runtime_id: str) -> None:
                with contextlib.suppress(httpx.HTTPError):  # serve dies under it
                    http.post(f"/v1/runtimes/{runtime_id}/stop", timeout=60)

            for runtime_id in ids:
                threading.Thread(target=stop, args=(runtime_id,), daemon=True).start()

            wait(lambda: set(statuses_of(http, ids)) == {"stopping"}, 30)
        serve.stop(signal.SIGKILL)
        killed = time.monotonic()
        serve.start()
        restarted_s = time.monotonic() - killed
        with serve.client() as http:
            wait(lambda: set(statuses_of(http, ids)) == {"stopped"}, 120)
            settled_s = time.monotonic() - killed
            for runtime_id in ids:
                http.delete(f"/v1/runtimes/{runtime_id}")
        return {"runtimes": runtimes, "restart_s": restarted_s, "settled_after_kill_s": settled_s}
    finally:
        serve.stop(signal.SIGTERM)
        redis_server.stop()


def statuses_of(http: httpx.Client, ids: list[str]) -> list[str]:
    return [http.get(f"/v1/runtimes/{r}").json()["status"] for r in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", type=int, default=5)
    figures = measure(parser.parse_args().runtimes)
    print(
        "  ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
        )
    )


if __name__ == "__main__":
    main()
