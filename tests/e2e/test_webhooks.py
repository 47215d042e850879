"""Webhooks end to end: a receiver down for a minute, across a runplane restart,
gets every event once it is back, each one signed."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer, free_port

OUTAGE_S = 60.0


class Receiver:
    """A webhook receiver on loopback that can be down (not listening)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def test_a_receiver_down_for_a_minute_gets_every_event(tmp_path: Path, redis_url: str) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data",
        redis_url=redis_url,
        webhook_allow_private="true",
        webhook_retry_schedule_s="1,2,4,8,8,8,8,8,8,8,8,8,8",
    )
    receiver = Receiver(free_port())
    try:
        with server.client() as http:
            made = http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}/hook"})
            assert made.status_code == 201, made.text
            secret = made.json()["secret"]
            assert secret.startswith("whsec_")
            http.post(
                "/v1/runtimes", json={"runtime_id": "wh-1", "spec": {"command": ["sleep", "600"]}}
            )
            for op in ("pause", "resume"):
                assert http.post(f"/v1/runtimes/wh-1/{op}").is_success
        outage_started = time.monotonic()
        time.sleep(OUTAGE_S / 2)
        server.stop()  # runplane restarts while the receiver is still down
        server.start()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
        receiver.up()

        wanted = {"runtime.create", "runtime.start", "runtime.pause", "runtime.resume"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            types = {json.loads(body)["type"] for _, body in receiver.requests}
            if wanted <= types:
                break
            time.sleep(0.5)
        verifier = Webhook(secret)
        delivered = {}
        for headers, body in receiver.requests:
            verifier.verify(body, headers)  # raises if the signature does not match
            event = json.loads(body)
            assert headers["webhook-id"] == event["id"]
            delivered.setdefault(event["type"], set()).add(event["id"])
        assert wanted <= set(delivered), sorted(delivered)
        assert all(len(ids) == 1 for ids in delivered.values())
    finally:
        receiver.down()
        remove_everything(server)
        server.stop()
