"""`runplane serve` applies its limit settings: an oversized body without a key,
a body that stops arriving, and a team key past its Redis-backed budget."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import RunplaneServer

PATIENCE_S = 30.0


@pytest.fixture
def limited(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        rate_limit_per_s="0.2",
        rate_limit_burst="5",
        request_body_timeout_s="1",
        max_request_bytes="65536",
    )
    try:
        yield server
    finally:
        server.stop()


def _exchange(server: RunplaneServer, raw: bytes) -> bytes:
    """Send `raw`, return everything until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE_S) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_limits_apply_to_a_real_serve(limited: RunplaneServer) -> None:
    too_large = _exchange(
        limited,
        b"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n",
    )
    assert too_large.startswith(b"HTTP/1.1 413 ")
    assert b'"payload_too_large"' in too_large
    stalled = _exchange(
        limited,
        b"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    )
    assert stalled.startswith(b"HTTP/1.1 408 ")
    assert b'"request_timeout"' in stalled

    with limited.client() as admin:
        created = admin.post("/v1/keys", json={"team_id": "alpha"})
        assert created.status_code == 201
        team_key = created.json()["key"]
        assert {admin.get("/v1/runtimes").status_code for _ in range(8)} == {200}
    with limited.client(team_key) as alpha:
        codes = [alpha.get("/v1/runtimes").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        refused = alpha.get("/v1/runtimes")
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
