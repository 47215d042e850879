"""`runtime ls --watch` without an event stream: it says so once, on stderr, and
polls the list instead, so a change still shows. The API here is a small HTTP
server whose stream always answers 503 (a proxy that buffers SSE, say)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

WAIT_S = 60.0


def runtime(status: str) -> dict[str, Any]:
    return {
        "runtime_id": "polled",
        "team_id": "default",
        "status": status,
        "driver": "process",
        "host_id": None,
        "engine_endpoint": None,
        "labels": {},
        "spec": {},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def test_watch_polls_when_the_event_stream_is_refused() -> None:
    state = {"status": "running", "stream_asks": 0}

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/v1/events/stream"):
                state["stream_asks"] = int(state["stream_asks"]) + 1
                self._answer(503, {"error": {"code": "unavailable", "message": "no stream"}})
            else:
                page = {"runtimes": [runtime(str(state["status"]))], "next_cursor": None}
                self._answer(200, page)

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    env = os.environ | {"COLUMNS": "60", "PYTHONUNBUFFERED": "1", "RUNPLANE_API_KEY": "k"}
    watch = subprocess.Popen(
        [sys.executable, "-m", "runplane", "runtime", "ls", "-w", "--url", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.rstrip() for line in watch.stdout or ()), daemon=True
    )
    reader.start()
    try:
        wait_until(lambda: any("running" in line for line in lines))
        state["status"] = "stopped"
        wait_until(lambda: any("stopped" in line for line in lines))
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=WAIT_S) == 0
        reader.join(timeout=WAIT_S)
        errors = (watch.stderr.read() if watch.stderr else "").splitlines()
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        for pipe in (watch.stdout, watch.stderr):
            if pipe is not None:
                pipe.close()
        server.shutdown()
        server.server_close()
    assert len(errors) == 1, errors  # once per outage, not once per retry
    assert errors[0].startswith("no event stream (")
    assert errors[0].endswith("polling every 2s")
    assert int(state["stream_asks"]) >= 1


def wait_until(found: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if found():
            return
        time.sleep(0.1)
    raise AssertionError("the watch did not show the change")


def default_sigint() -> None:
    """A runner started in the background hands its children SIGINT ignored, and
    Python then installs no Ctrl-C handler: Ctrl-C is what is tested here."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
