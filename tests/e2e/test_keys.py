"""API keys and metrics on a real `runplane serve`: the CLI lists, creates with an
expiry and revokes; a revoked key answers 401 at once; `/metrics` takes the
metrics token or an admin key, and its own listener takes none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer, free_port

METRICS_TOKEN = "metrics-" + "t" * 24


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    metrics_port = free_port()
    launched = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        metrics_token=METRICS_TOKEN,
        metrics_port=str(metrics_port),
    )
    launched.env["TEST_METRICS_PORT"] = str(metrics_port)
    try:
        yield launched
    finally:
        remove_everything(launched)
        launched.stop()


def test_keys_are_listed_expire_and_are_revoked_from_the_cli(server: RunplaneServer) -> None:
    alpha = server.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    made = server.cli_json("keys", "create", "--team", "beta", "--expires-in", "30d")
    assert made["expires_at"] is not None
    listed = server.cli_json("keys", "ls", "--team", "alpha")
    assert [k["team_id"] for k in listed] == ["alpha"]
    assert all("key_hash" not in k for k in server.cli_json("keys", "ls"))
    table = server.cli("keys", "ls", check=True).stdout
    assert "bootstrap admin" in table
    assert made["key_id"] in table
    with server.client(alpha) as http:
        assert http.get("/v1/runtimes").status_code == 200
        server.cli("keys", "revoke", listed[0]["key_id"], check=True)
        refused = http.get("/v1/runtimes")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "API key revoked"
    assert server.cli_json("keys", "ls", "--team", "alpha")[0]["state"] == "revoked"


def test_the_bootstrap_admin_key_is_not_revoked_into_a_lock_out(server: RunplaneServer) -> None:
    admin_id = server.cli_json("keys", "ls")[0]["key_id"]
    refused = server.cli("keys", "revoke", admin_id)
    assert refused.returncode == 1
    assert "conflict" in refused.stderr
    assert "last active admin key" in refused.stderr
    with server.client() as http:
        assert http.get("/v1/keys").status_code == 200


def test_metrics_take_the_token_or_an_admin_key(server: RunplaneServer) -> None:
    alpha = server.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    with server.client("") as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/readyz").status_code == 200
    with server.client(alpha) as team:
        assert team.get("/metrics").status_code == 403
    with server.client(METRICS_TOKEN) as scraper:
        assert "runplane_stream_consumed_total" in scraper.get("/metrics").text
    with server.client() as admin:
        assert admin.get("/metrics").status_code == 200
    own = httpx.get(f"http://127.0.0.1:{server.env['TEST_METRICS_PORT']}/metrics", timeout=10)
    assert own.status_code == 200
    assert "runplane_stream_consumed_total" in own.text
