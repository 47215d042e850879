"""The seeds' stream layout end to end (DESIGN §4, docs/streams.md): entries
written with raw `redis-cli` exactly as the seeds' producers write them, answered
in the layout the seeds' consumers read.

Field lists, from the seeds' own consumers (`../shared/reference/`):
- stop job (`stop_jobs_consumer`): `game_id`, `reason`, `requested_at_ms`;
  its result: `game_id`, `outcome`, `error_code`, `error_message`,
  `container_id`, `engine_endpoint`;
- health event (`health_events_consumer`): `game_id`, `event_type`,
  `occurred_at_ms`; its snapshot (`runtime_snapshot_update`): `game_id`,
  `runtime_status`, `engine_health_summary`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import remove_everything
from tests.e2e.test_health import health_of, wait_for
from tests.e2e.test_jobs import redis_of, wait_results, xadd_with_redis_cli
from tests.support.serve import RunplaneServer

SEED_RESULT_FIELDS = {
    "game_id",
    "outcome",
    "error_code",
    "error_message",
    "container_id",
    "engine_endpoint",
}
LOBBY_STREAM = "gm:lobby_events"


@pytest.fixture
def seed_serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """serve with snapshots going where a seed's lobby reads them."""
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        snapshots_stream=LOBBY_STREAM,
        snapshot_entry_type="runtime_snapshot_update",
        snapshot_layout="seed",
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def create_running(server: RunplaneServer, runtime_id: str) -> dict[str, str]:
    with server.client() as http:
        made = http.post(
            "/v1/runtimes",
            json={"runtime_id": runtime_id, "spec": {"command": ["sleep", "600"]}},
        )
        assert made.status_code == 201, made.text
        record: dict[str, str] = made.json()
        return record


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_seed_stop_job_round_trips_in_the_seed_layout(
    seed_serve: RunplaneServer, redis_url: str
) -> None:
    record = create_running(seed_serve, "game-7")
    create_running(seed_serve, "plain-1")
    requested = str(now_ms())
    xadd_with_redis_cli(
        redis_url,
        [
            ["XADD", "runtime:stop_jobs", "*", "game_id", "game-7", "reason", "finished",
             "requested_at_ms", requested],
            # The same stop again: the seeds answer an already-stopped game with
            # success and replay_no_op.
            ["XADD", "runtime:stop_jobs", "*", "game_id", "game-7", "reason", "finished",
             "requested_at_ms", requested],
            ["XADD", "runtime:stop_jobs", "*", "game_id", "game-7", "requested_at_ms", requested],
            ["XADD", "runtime:stop_jobs", "*", "game_id", "game-7", "runtime_id", "game-8",
             "reason", "finished"],
            # runplane's own layout, on the same stream: answered with runtime_id.
            ["XADD", "runtime:stop_jobs", "*", "runtime_id", "plain-1", "reason", "requested"],
        ],
    )  # fmt: skip
    results = wait_results(redis_url, 5)
    assert len(results) == 5
    [plain] = [r for r in results if "game_id" not in r]
    assert (plain["runtime_id"], plain["outcome"]) == ("plain-1", "success")
    results.remove(plain)
    for result in results:
        assert result.keys() >= SEED_RESULT_FIELDS
        assert "runtime_id" not in result  # answered in the layout the job used
        assert result["game_id"] == "game-7"
    # Each result names its entry (`<stream>/<entry id>`): take them in entry order.
    by_job = {r["job_id"]: r for r in results}
    entries = redis_of(redis_url).xrange("runtime:stop_jobs")
    first, again, no_reason, two_ids = (by_job[f"runtime:stop_jobs/{i}"] for i, _ in entries[:4])
    assert (first["outcome"], first["error_code"]) == ("success", "")
    assert first["status"] == "stopped"
    assert first["container_id"] == record["container_id"]
    assert (again["outcome"], again["error_code"]) == ("success", "replay_no_op")
    assert (no_reason["outcome"], no_reason["error_code"]) == ("failure", "invalid_request")
    assert "reason" in no_reason["error_message"]
    assert (two_ids["outcome"], two_ids["error_code"]) == ("failure", "invalid_request")
    assert "different runtimes" in two_ids["error_message"]

    with seed_serve.client() as http:
        assert http.get("/v1/runtimes/game-7").json()["status"] == "stopped"
        ops = http.get("/v1/runtimes/game-7/operations").json()["operations"]
    stops = [o for o in ops if o["op"] == "stop"]
    assert [(o["outcome"], o["error_code"]) for o in stops][-2:] in (
        [("success", None), ("success", "replay_no_op")],
        [("success", "replay_no_op"), ("success", None)],  # newest first
    )
    assert {o["reason"] for o in stops} == {"finished"}


def test_seed_health_events_change_the_record_and_publish_seed_snapshots(
    seed_serve: RunplaneServer, redis_url: str
) -> None:
    create_running(seed_serve, "game-9")
    client = redis_of(redis_url)
    with seed_serve.client() as http:
        wait_for(lambda: health_of(http, "game-9")["engine_health"] == "healthy", 30)
        xadd_with_redis_cli(
            redis_url,
            [
                ["XADD", "runtime:health_events", "*", "game_id", "game-9",
                 "event_type", "probe_failed", "occurred_at_ms", str(now_ms())],
                # Malformed in the seeds' own terms: passed over, nothing else.
                ["XADD", "runtime:health_events", "*", "game_id", "game-9",
                 "event_type", "probe_failed"],
            ],
        )  # fmt: skip
        wait_for(lambda: health_of(http, "game-9")["engine_health"] == "probe_failed", 30)

        def seed_snapshots() -> list[dict[str, str]]:
            return [
                fields
                for _, fields in client.xrange(LOBBY_STREAM)
                if fields.get("game_id") == "game-9"
            ]

        snapshots = wait_for(
            lambda: [s for s in seed_snapshots() if s["engine_health_summary"] == "probe_failed"],
            30,
        )
        snapshot = snapshots[-1]
        assert snapshot["event_type"] == "runtime_snapshot_update"
        assert snapshot["runtime_status"] == "running"
        assert snapshot["occurred_at_ms"].isdigit()
        # runplane's own names stay beside the seeds', for runplane's readers.
        assert (snapshot["runtime_id"], snapshot["status"]) == ("game-9", "running")

        xadd_with_redis_cli(
            redis_url,
            [["XADD", "runtime:health_events", "*", "game_id", "game-9",
              "event_type", "probe_recovered", "occurred_at_ms", str(now_ms())]],
        )  # fmt: skip
        wait_for(lambda: health_of(http, "game-9")["engine_health"] == "healthy", 30)
        # The seed-layout events are read back by runplane's own health API.
        events = http.get("/v1/runtimes/game-9/health").json()
    assert client.xlen("runtime:snapshots") == 0  # they went to the lobby's stream
    assert "probe_recovered" in str(events)
