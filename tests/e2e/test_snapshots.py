"""Snapshots end to end (docs/seeds.md#snapshots): a process runtime's working
directory and a Podman container's filesystem, taken as snapshots, start new
runtimes that have the original's files; the team boundary holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import remove_everything
from tests.e2e.test_health import wait_for
from tests.e2e.test_jobs import redis_of
from tests.support.isolation import work_root
from tests.support.podman import PodmanService
from tests.support.serve import RunplaneServer


def events_of(redis_url: str, kind: str) -> list[dict[str, Any]]:
    events = (json.loads(f["event"]) for _, f in redis_of(redis_url).xrange("runplane:events"))
    return [e for e in events if e["type"] == kind]


def test_a_process_snapshot_starts_a_runtime_with_the_originals_files(
    serve: RunplaneServer, redis_url: str, tmp_path: Path
) -> None:
    writer = ["sh", "-c", "echo kept > data.txt && mkdir -p sub && echo deep > sub/f && sleep 600"]
    work_root = serve.data_dir.with_name(serve.data_dir.name + "-work")
    with serve.client() as http:
        made = http.post("/v1/runtimes", json={"runtime_id": "orig", "spec": {"command": writer}})
        assert made.status_code == 201, made.text
        wait_for(lambda: (work_root / "orig" / "sub" / "f").exists(), 30)

        taken = http.post("/v1/runtimes/orig/snapshot")
        assert taken.status_code == 201, taken.text
        snapshot = taken.json()
        assert snapshot["snapshot_id"].startswith("snap-")
        assert (snapshot["driver"], snapshot["runtime_id"]) == ("process", "orig")
        assert snapshot["size_bytes"] >= len("kept\ndeep\n")
        assert snapshot["spec"]["command"] == writer

        # The original changes afterwards: the snapshot keeps what it had.
        (work_root / "orig" / "data.txt").write_text("changed\n")
        reader = ["sh", "-c", "cat data.txt sub/f > seen.txt && sleep 600"]
        copy = http.post(
            f"/v1/snapshots/{snapshot['snapshot_id']}/runtimes",
            json={"runtime_id": "copy", "spec": {"command": reader}},
        )
        assert copy.status_code == 201, copy.text
        assert copy.json()["status"] == "running"
        assert copy.json()["spec"]["snapshot"] == snapshot["snapshot_id"]
        seen = work_root / "copy" / "seen.txt"
        wait_for(lambda: seen.exists() and seen.read_text(), 30)
        assert seen.read_text() == "kept\ndeep\n"

        listed = http.get("/v1/snapshots").json()["snapshots"]
        assert [s["snapshot_id"] for s in listed] == [snapshot["snapshot_id"]]
        # A caller's own spec may not name an image it has no right to: an
        # unknown (or another team's) snapshot is refused at create.
        stranger = http.post(
            "/v1/runtimes",
            json={"runtime_id": "x", "spec": {"command": ["sleep", "1"], "snapshot": "snap-nope"}},
        )
        assert stranger.status_code == 400
        assert "no snapshot 'snap-nope'" in stranger.json()["error"]["message"]

        # Every start of "copy" fills its work dir from the snapshot again.
        held = http.delete(f"/v1/snapshots/{snapshot['snapshot_id']}")
        assert held.status_code == 409
        assert "runtime 'copy' was made from" in held.json()["error"]["message"]
        assert http.post("/v1/runtimes/copy/restart").is_success
        wait_for(lambda: seen.exists() and seen.read_text() == "kept\ndeep\n", 30)
        assert http.delete("/v1/runtimes/copy").is_success
        gone = http.delete(f"/v1/snapshots/{snapshot['snapshot_id']}")
        assert gone.status_code == 200, gone.text
        assert http.get(f"/v1/snapshots/{snapshot['snapshot_id']}").status_code == 404
    assert not list(serve.data_dir.rglob(snapshot["snapshot_id"]))  # the copy is gone too
    created = wait_for(lambda: events_of(redis_url, "runtime.snapshot.create"), 30)
    deleted = wait_for(lambda: events_of(redis_url, "runtime.snapshot.delete"), 30)
    for event in (created[0], deleted[0]):
        assert event["subject"] == "orig"
        assert event["data"]["metadata"]["snapshot_id"] == snapshot["snapshot_id"]


@pytest.fixture
def team_serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    """serve as deployed for teams: their runtimes run as `nobody`."""
    with work_root() as work:
        server = RunplaneServer.launch(
            tmp_path / "data", redis_url=redis_url, runtime_user="nobody", work_dir=str(work)
        )
        try:
            for team in ("alpha", "beta"):
                server.cli("teams", "policy", "set", team, "--command", "/bin/sleep *", check=True)
            yield server
        finally:
            remove_everything(server)
            server.stop()


def test_another_team_cannot_see_or_use_a_snapshot(team_serve: RunplaneServer) -> None:
    serve = team_serve
    alpha = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    beta = serve.cli("keys", "create", "--team", "beta", check=True).stdout.strip()
    spec = {"command": ["/bin/sleep", "600"]}
    with serve.client(alpha) as http:
        made = http.post("/v1/runtimes", json={"runtime_id": "alpha:a", "spec": spec})
        assert made.status_code == 201, made.text
        snapshot_id = http.post("/v1/runtimes/alpha:a/snapshot").json()["snapshot_id"]
        mine = http.post(f"/v1/snapshots/{snapshot_id}/runtimes", json={"runtime_id": "alpha:b"})
        assert mine.status_code == 201, mine.text
    with serve.client(beta) as http:
        assert http.get(f"/v1/snapshots/{snapshot_id}").status_code == 404
        assert http.get("/v1/snapshots").json()["snapshots"] == []
        assert http.delete(f"/v1/snapshots/{snapshot_id}").status_code == 404
        assert http.post("/v1/runtimes/alpha:a/snapshot").status_code == 404
        used = http.post(f"/v1/snapshots/{snapshot_id}/runtimes", json={"runtime_id": "beta:c"})
        assert used.status_code == 404
        smuggled = http.post(
            "/v1/runtimes",
            json={"runtime_id": "beta:d", "spec": {**spec, "snapshot": snapshot_id}},
        )
        assert smuggled.status_code == 400
        assert smuggled.json()["error"]["code"] == "invalid_request"
    with serve.client(alpha) as http:
        assert http.get(f"/v1/snapshots/{snapshot_id}").status_code == 200


def test_a_podman_snapshot_starts_a_container_with_the_originals_files(
    tmp_path: Path, redis_url: str, podman: PodmanService
) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, driver="docker", docker_host=podman.url
    )
    spec = {"image": "local/tiny", "command": ["sh", "-c", "echo kept > /marker && sleep 600"]}
    snapshot_id = ""
    try:
        with server.client() as http:
            made = http.post("/v1/runtimes", json={"runtime_id": "orig", "spec": spec})
            assert made.status_code == 201, made.text
            container = made.json()["container_id"]
            wait_for(
                lambda: "kept" in podman.cli("exec", container, "cat", "/marker", check=False), 30
            )

            taken = http.post("/v1/runtimes/orig/snapshot")
            assert taken.status_code == 201, taken.text
            snapshot = taken.json()
            snapshot_id = snapshot["snapshot_id"]
            assert snapshot["ref"] == f"runplane-snapshots/{snapshot_id}:latest"
            assert snapshot["size_bytes"] > 0
            assert "image" not in snapshot["spec"]

            # The original's marker is in the new container, which runs the image.
            copy = http.post(
                f"/v1/snapshots/{snapshot_id}/runtimes",
                json={"runtime_id": "copy", "spec": {"command": ["sleep", "600"]}},
            )
            assert copy.status_code == 201, copy.text
            new_container = copy.json()["container_id"]
            assert podman.cli("exec", new_container, "cat", "/marker").strip() == "kept"
            inspected = json.loads(
                podman.cli("inspect", "--format", "{{json .Config.Image}}", new_container)
            )
            assert "runplane-snapshots/" + snapshot_id in inspected

            # An image of runplane's snapshots is not reachable by naming it.
            direct = http.post(
                "/v1/runtimes",
                json={"runtime_id": "direct", "spec": {**spec, "image": snapshot["ref"]}},
            )
            assert direct.status_code == 400

            # While a runtime made from it exists, the snapshot stays: 409.
            assert http.delete(f"/v1/snapshots/{snapshot_id}").status_code == 409
            assert http.delete("/v1/runtimes/copy").is_success
            assert http.delete(f"/v1/snapshots/{snapshot_id}").status_code == 200
        images = podman.cli("images", "--format", "{{.Repository}}", check=False)
        assert snapshot_id not in images
    finally:
        remove_everything(server)
        server.stop()
        if snapshot_id:
            podman.cli("rmi", "-f", f"runplane-snapshots/{snapshot_id}:latest", check=False)
