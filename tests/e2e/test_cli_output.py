"""The CLI's output against a real `runplane serve`: `-o yaml|wide|json`,
`runtime describe`, `events tail|ls` under a header, `runtime ls --watch`
redrawing as runtimes change, and the `webhooks` commands."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer
from tests.support.webhooks import Receiver

SLEEPER = {"command": [sys.executable, "-c", "import time; time.sleep(600)"]}
WAIT_S = 60.0


class Running:
    """A CLI command left running (tail, --watch): its output lines as they come."""

    def __init__(self, server: RunplaneServer, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runplane", *args],
            env=server.env | {"COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, found: Callable[[list[str]], bool], what: str) -> list[str]:
        """Waits (generously) until `found` holds for the lines so far."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            lines = list(self.lines)
            if found(lines):
                return lines
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {what} in:\n" + "\n".join(self.lines) + self._stderr())

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it: the exit code and what went to stderr."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=WAIT_S)
        self._reader.join(timeout=WAIT_S)
        return self.process.returncode, self._stderr()

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()

    def close(self) -> None:
        """Ends the command if it still runs, and closes its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=WAIT_S)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def running(server: RunplaneServer, *args: str) -> Iterator[Running]:
    command = Running(server, *args)
    try:
        yield command
    finally:
        command.close()  # a failed test leaves no CLI behind


def words(text: str, having: str) -> list[str]:
    """The cells of the first table line that contains `having`, box lines dropped."""
    line = next(line for line in text.splitlines() if having in line)
    return [w for w in re.split(r"[\s│┃]+", line) if w]


def make(serve: RunplaneServer, runtime_id: str, **body: Any) -> None:
    with serve.client() as http:
        made = http.post("/v1/runtimes", json={"runtime_id": runtime_id, "spec": SLEEPER, **body})
        assert made.status_code == 201, made.text


def test_get_ls_and_describe_in_every_format(serve: RunplaneServer) -> None:
    make(serve, "desc-1", labels={"app": "web"})
    serve.cli("runtime", "stop", "desc-1", check=True)
    refused = serve.cli("runtime", "pause", "desc-1")  # a stopped runtime cannot pause
    assert refused.returncode != 0

    as_yaml = yaml.safe_load(serve.cli("runtime", "get", "desc-1", "-o", "yaml", check=True).stdout)
    assert as_yaml == serve.cli_json("runtime", "get", "desc-1")
    listed = yaml.safe_load(serve.cli("runtime", "ls", "-o", "yaml", check=True).stdout)
    assert [r["runtime_id"] for r in listed] == ["desc-1"]

    table = serve.cli("runtime", "ls", check=True).stdout
    assert words(table, "RUNTIME") == ["RUNTIME", "STATUS", "DRIVER", "HOST", "ENDPOINT", "AGE"]
    row = next(line for line in table.splitlines() if "desc-1" in line)
    assert words(table, "desc-1")[:3] == ["desc-1", "stopped", "process"]
    assert as_yaml["created_at"][:10] not in row  # an age, not the ISO time
    assert "\x1b[" not in table  # not a terminal: no colour codes

    wide = serve.cli("runtime", "ls", "-o", "wide", check=True).stdout
    assert "LABELS" in wide
    assert "app=web" in wide
    assert as_yaml["created_at"] in wide.replace("\n", "")

    described = serve.cli("runtime", "describe", "desc-1", check=True).stdout
    for section in ("Last error:", "Health:", "Operations", "Events"):
        assert section in described
    assert "runtime.stop" in described
    assert "pause failure" in described

    document = yaml.safe_load(serve.cli("runtime", "describe", "desc-1", "-o", "yaml").stdout)
    assert set(document) == {"runtime", "last_error", "health", "operations", "events"}
    assert document["runtime"]["status"] == "stopped"
    assert document["last_error"]["operation"]["op"] == "pause"
    assert [e["type"] for e in document["events"]][-2:] == ["runtime.stop", "runtime.pause"]
    assert document["events"][-1]["data"]["outcome"] == "failure"  # the refused pause
    assert document == json.loads(serve.cli("runtime", "describe", "desc-1", "--json").stdout)


def test_describe_of_a_missing_runtime_is_one_error_line(serve: RunplaneServer) -> None:
    done = serve.cli("runtime", "describe", "nobody")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: not_found: no such runtime"]


def test_events_tail_and_ls_print_aligned_columns_under_a_header(serve: RunplaneServer) -> None:
    make(serve, "tailed")
    serve.cli("runtime", "stop", "tailed", check=True)
    with running(serve, "events", "tail", "--since", "0") as tail:
        lines = tail.wait_for(lambda ls: any("runtime.stop" in line for line in ls), "stop event")
        code, errors = tail.interrupt()
    assert code == 0, errors
    assert lines[0].split() == ["TIME", "TYPE", "SUBJECT", "CHANGE", "OUTCOME", "ACTOR"]
    stop = next(line for line in lines if "runtime.stop" in line)
    assert stop.index("runtime.stop") == lines[0].index("TYPE")
    assert stop.index("running -> stopped") == lines[0].index("CHANGE")

    with running(serve, "events", "tail", "--since", "0", "-o", "json") as tail:
        lines = tail.wait_for(lambda ls: any("runtime.stop" in line for line in ls), "stop event")
    assert [json.loads(line)["type"] for line in lines][-2:] == ["runtime.start", "runtime.stop"]

    listed = serve.cli("events", "ls", "--runtime", "tailed", check=True).stdout.splitlines()
    assert listed[0].split()[:3] == ["TIME", "TYPE", "SUBJECT"]
    assert [line.split()[1] for line in listed[1:]][-1] == "runtime.stop"


def test_ls_watch_redraws_as_runtimes_change_and_ctrl_c_exits_0(serve: RunplaneServer) -> None:
    with running(serve, "runtime", "ls", "--watch") as watch:
        watch.wait_for(lambda ls: any("RUNTIME" in line for line in ls), "first table")
        make(serve, "watched")

        def row_says(status: str) -> Callable[[list[str]], bool]:
            return lambda ls: any(
                words(line, "watched")[1:2] == [status] for line in ls if "watched" in line
            )

        watch.wait_for(row_says("running"), "the new runtime, running")
        serve.cli("runtime", "stop", "watched", check=True)
        lines = watch.wait_for(row_says("stopped"), "the runtime stopped")
        code, errors = watch.interrupt()
    assert code == 0
    assert errors == ""  # quiet: no traceback, no "Aborted!"
    assert sum(1 for line in lines if "RUNTIME" in line) >= 3  # a table per change


def test_webhooks_create_ls_test_deliveries_rm(tmp_path: Path, redis_url: str) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, webhook_allow_private="true"
    )
    try:
        with Receiver().running() as receiver:
            check_webhook_commands(server, f"{receiver.url}/hook")
    finally:
        remove_everything(server)
        server.stop()


def check_webhook_commands(server: RunplaneServer, target: str) -> None:
    made = server.cli_json("webhooks", "create", target, "--events", "runtime.create,runtime.stop")
    assert made["secret"].startswith("whsec_")
    assert made["event_types"] == ["runtime.create", "runtime.stop"]
    hook_id = made["id"]

    table = server.cli("webhooks", "ls", check=True).stdout
    short = words(table, target)[0]
    assert hook_id.startswith(short)
    assert short != hook_id
    assert yaml.safe_load(server.cli("webhooks", "ls", "-o", "yaml").stdout)[0]["id"] == hook_id
    assert hook_id in server.cli("webhooks", "ls", "-o", "wide", check=True).stdout
    assert server.cli_json("webhooks", "get", short)["url"] == target  # the short id works

    tested = server.cli("webhooks", "test", short, check=True).stdout
    assert "succeeded" in tested

    make(server, "hooked")
    delivered = wait_for_delivery(server, hook_id, "runtime.create")
    assert delivered["status"] == "succeeded"
    assert delivered["last_status_code"] == 200
    rows = server.cli("webhooks", "deliveries", short, check=True).stdout
    assert words(rows, "DELIVERY")[:4] == ["DELIVERY", "EVENT", "RUNTIME", "STATUS"]
    assert words(rows, "runtime.create")[1:4] == ["runtime.create", "hooked", "succeeded"]

    removed = server.cli("webhooks", "rm", short, check=True)
    assert removed.stdout.strip() == f"deleted {hook_id}"
    assert server.cli_json("webhooks", "ls") == []
    gone = server.cli("webhooks", "get", hook_id)
    assert (gone.returncode, gone.stderr.strip()) == (1, "error: not_found: no such webhook")


def wait_for_delivery(server: RunplaneServer, hook_id: str, event_type: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for delivery in server.cli_json("webhooks", "deliveries", hook_id):
            if delivery["event_type"] == event_type and delivery["status"] != "pending":
                return dict(delivery)
        time.sleep(0.2)
    raise AssertionError(f"no {event_type} delivery was made")


def default_sigint() -> None:
    """A runner started in the background hands its children SIGINT ignored, and
    Python then installs no Ctrl-C handler: Ctrl-C is what is tested here."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
