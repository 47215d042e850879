"""Extension hooks end to end (docs/hooks.md): a real serve loads two hooks by
RUNPLANE_HOOKS — a flaky one that fails three times per event, and the
documented billing example — and both see every lifecycle event, across a
kill -9 of serve in the middle of the failures."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import remove_everything
from tests.e2e.test_health import wait_for
from tests.e2e.test_jobs import redis_of
from tests.support.serve import RunplaneServer

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def event_ids(redis_url: str) -> dict[str, dict[str, object]]:
    """Every lifecycle event on the stream, by id."""
    events = (json.loads(f["event"]) for _, f in redis_of(redis_url).xrange("runplane:events"))
    return {e["id"]: e for e in events}


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_hooks_see_every_event_through_failures_and_a_kill_9(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky_dir = tmp_path / "flaky"
    flaky_dir.mkdir()
    billing = tmp_path / "billing.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))
    monkeypatch.setenv("FLAKY_DIR", str(flaky_dir))
    monkeypatch.setenv("FLAKY_FAILURES", "3")
    monkeypatch.setenv("BILLING_FILE", str(billing))
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        hooks="flaky=tests.support.flaky_hook:FlakyHook,billing=billing_hook:BillingHook",
        hooks_from="all",  # the events of serve's own start too, whenever the groups appear
        hook_attempts="2",
        hook_timeout_s="0.5",
        hook_backoff_base_s="0.1",
        hook_backoff_cap_s="0.2",
        stream_claim_idle_ms="1000",
    )
    try:
        with server.client() as http:
            for n in range(3):
                made = http.post(
                    "/v1/runtimes",
                    json={"runtime_id": f"billed-{n}", "spec": {"command": ["sleep", "600"]}},
                )
                assert made.status_code == 201, made.text
            assert http.post("/v1/runtimes/billed-0/stop", json={"reason": "finished"}).is_success

        # The flaky hook is failing on these events: kill serve in the middle.
        wait_for(lambda: list(flaky_dir.glob("calls-*")), 30)
        assert lines(flaky_dir / "seen") == []
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        server.start()

        with server.client() as http:
            assert http.delete("/v1/runtimes/billed-1").is_success
        # Published by the outbox relay, soon after the answer.
        wanted = wait_for(
            lambda: (
                (found := event_ids(redis_url))
                and any(e["type"] == "runtime.remove" for e in found.values())
                and found
            ),
            30,
        )

        # At least once: every event reaches the flaky hook after its three failures.
        wait_for(lambda: set(lines(flaky_dir / "seen")) >= wanted.keys(), 90)
        for event_id in wanted:
            assert len(lines(flaky_dir / f"calls-{event_id}")) >= 4

        # The billing example writes each billed event once, however often delivered.
        billed = {
            e
            for e, ev in wanted.items()
            if ev["type"] in {"runtime.start", "runtime.stop", "runtime.remove"}
        }
        wait_for(lambda: {json.loads(x)["event_id"] for x in lines(billing)} >= billed, 60)
        rows = [json.loads(x) for x in lines(billing)]
        assert len(rows) == len({r["event_id"] for r in rows}) == len(billed)

        listed = {h["name"]: h for h in server.cli_json("hooks", "ls")}
        assert listed["flaky"]["target"] == "tests.support.flaky_hook:FlakyHook"
        assert listed["billing"]["origin"] == "settings"
        wait_for(
            lambda: all(h["pending"] == 0 for h in server.cli_json("hooks", "ls")),
            30,
        )
    finally:
        remove_everything(server)
        server.stop()


def test_a_hook_that_cannot_load_stops_serve_with_a_clear_message(
    tmp_path: Path, redis_url: str
) -> None:
    with pytest.raises(RuntimeError, match="runplane serve exited") as failed:
        RunplaneServer.launch(
            tmp_path / "data", redis_url=redis_url, hooks="billing=no_such_module:hook"
        )
    assert "hook 'billing' (no_such_module:hook): No module named 'no_such_module'" in str(
        failed.value
    )
