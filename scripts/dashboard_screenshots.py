"""Screenshots of the dashboard (docs/images/dashboard-*.png), taken in Debian's
headless Chromium against a real `runplane serve` with a few runtimes, a
webhook whose deliveries fail and two dead letters.

    .venv/bin/python scripts/dashboard_screenshots.py [--out docs/images]

It starts its own redis-server and serve in a temporary directory and ends
them, and every runtime it made, also on failure."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
SLEEP = ["/bin/sleep", "3600"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen in {timeout_s}s")


@contextlib.contextmanager
def started(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed(http: httpx.Client, r: redis.Redis, web_port: int) -> None:
    def create(
        runtime_id: str, command: list[str], labels: dict[str, str], **extra: object
    ) -> None:
        body = {"runtime_id": runtime_id, "spec": {"command": command}, "labels": labels, **extra}
        http.post("/v1/runtimes", json=body).raise_for_status()

    web = ["python3", "-m", "http.server", str(web_port)]
    create("web-frontend", web, {"app": "web", "env": "prod"})
    create("api-worker", SLEEP, {"app": "api", "env": "prod"})
    create("batch-2026-11-30", SLEEP, {"app": "batch", "env": "dev"})
    create("cache-warmer", SLEEP, {"app": "cache", "env": "dev"})
    create("alpha:notebook", SLEEP, {"owner": "alpha"}, team_id="alpha")
    create("beta:etl-nightly", SLEEP, {"env": "staging"}, team_id="beta")
    http.post("/v1/runtimes/batch-2026-11-30/stop").raise_for_status()
    http.post("/v1/runtimes/cache-warmer/pause").raise_for_status()
    hook = {"url": "http://127.0.0.1:9/hooks/runplane", "event_types": ["runtime.stop"]}
    http.post("/v1/webhooks", json=hook).raise_for_status()
    http.post("/v1/runtimes/api-worker/restart").raise_for_status()
    http.post("/v1/runtimes/api-worker/stop").raise_for_status()
    http.post("/v1/runtimes/api-worker/start").raise_for_status()
    for n in range(5):  # some output for its log panel
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{web_port}/?page={n}", timeout=5)
    letter = {
        "stream": "runtime:stop_jobs",
        "fields": json.dumps({"runtime_id": "gone-42", "reason": "idle", "job_id": "nightly-42"}),
        "error": "not_found: no such runtime",
        "deliveries": "5",
    }
    r.xadd("runtime:dead_letters", letter | {"entry_id": "1764480000000-0"})
    r.xadd("runtime:dead_letters", letter | {"entry_id": "1764480000001-0", "error": "timeout"})


def shoot(page: Page, base: str, key: str, out: Path, http: httpx.Client) -> None:
    page.goto(f"{base}/ui/")
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator('tr[data-runtime-id="web-frontend"]')).to_be_visible()
    # A few operations while the page is open, for its "Recent events".
    http.post("/v1/runtimes/api-worker/restart").raise_for_status()
    http.post("/v1/runtimes/beta:etl-nightly/stop").raise_for_status()
    expect(page.locator("#recent-events li[data-event-id]").nth(1)).to_be_visible()
    badge = page.locator('tr[data-runtime-id="beta:etl-nightly"] td.status .badge')
    expect(badge).to_have_attribute("data-status", "stopped")
    page.screenshot(path=out / "dashboard-list.png", full_page=True)

    page.goto(f"{base}/ui/#/runtimes/web-frontend")
    expect(page.locator("#logs")).to_contain_text("GET /")
    # A few metrics samples, so the charts have a line.
    wait_for(
        lambda: (
            int(page.locator("#metrics svg.chart").first.get_attribute("data-samples") or 0) >= 4
        ),
        "four metrics samples",
        timeout_s=90,
    )
    page.screenshot(path=out / "dashboard-runtime.png", full_page=True)

    for name in ("hosts", "webhooks", "dead-letters"):
        page.click(f'#nav a[data-page="{name}"]')
        expect(page.locator("main .card table, main .card .notice").first).to_be_visible()
        if name == "webhooks":
            page.locator("button[data-deliveries]").first.click()
            expect(page.locator("tr[data-delivery-id]").first).to_be_visible()
        page.screenshot(path=out / f"dashboard-{name}.png", full_page=True)


def end_runtimes(http: httpx.Client, data_dir: Path) -> None:
    """Remove every runtime; kill what a removal could not reach."""
    with contextlib.suppress(httpx.HTTPError):
        for runtime in http.get("/v1/runtimes", params={"limit": 1000}).json()["runtimes"]:
            http.delete(f"/v1/runtimes/{runtime['runtime_id']}")
    for state_file in (data_dir / "runtimes" / "containers").glob("*/state.json"):
        with contextlib.suppress(OSError, ValueError, ProcessLookupError, PermissionError):
            pid = json.loads(state_file.read_text()).get("pid")
            if isinstance(pid, int):
                os.killpg(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rp-shots-") as tmp:
        work = Path(tmp)
        redis_port, port = free_port(), free_port()
        redis_args = ["redis-server", "--port", str(redis_port), "--save", "", "--dir", tmp]
        env = dict(os.environ)
        env.pop("RUNPLANE_API_KEY", None)
        env.update(
            RUNPLANE_DATA_DIR=str(work / "data"),
            RUNPLANE_PORT=str(port),
            RUNPLANE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            RUNPLANE_RUNTIME_USER="",
            RUNPLANE_WEBHOOK_ALLOW_PRIVATE="true",
        )
        base = f"http://127.0.0.1:{port}"
        with started(redis_args, work / "redis.log"):
            r = redis.Redis(port=redis_port)
            wait_for(r.ping, "redis-server")
            serve = [sys.executable, "-m", "runplane", "serve"]
            with started(serve, work / "serve.log", env):
                wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, "serve")
                key = (work / "data" / "admin.key").read_text().strip()
                headers = {"Authorization": f"Bearer {key}"}
                with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
                    try:
                        seed(http, r, free_port())
                        with sync_playwright() as playwright:
                            browser = playwright.chromium.launch(
                                executable_path=CHROMIUM, args=["--no-sandbox"]
                            )
                            try:
                                page = browser.new_page(viewport={"width": 1400, "height": 860})
                                page.set_default_timeout(30_000)
                                shoot(page, base, key, args.out, http)
                            finally:
                                browser.close()
                    finally:
                        end_runtimes(http, work / "data")
    for png in sorted(args.out.glob("dashboard-*.png")):
        print(png)


if __name__ == "__main__":
    main()
