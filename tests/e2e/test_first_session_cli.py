"""The README's first session, run as written: every `runplane` command of the
sh block under "## A first session", in order, against a real `serve`, each
exiting 0 and printing what its comment promises where that can be checked.
Edit the README and this test runs the edit: the two cannot drift.

A comment that starts with an outcome (`# success: demo is stopped`) is the
line the command prints. Commands that run until stopped (`logs -f`, `events
tail`) run in the background: `logs -f` must end by itself once demo stops,
`events tail` is read until it shows demo's events, then interrupted."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from runplane.bootstrap.banner import NEXT_COMMAND
from tests.support.serve import RunplaneServer, free_port

README = Path(__file__).parents[2] / "README.md"
DEMO_PORT = "9000"
"""Replaced by a free port: tests run side by side."""


@dataclass
class Step:
    line: str
    """The command as the README writes it, without its comment."""
    comment: str

    def args(self, port: int) -> list[str]:
        words = shlex.split(self.line.replace(DEMO_PORT, str(port)))
        assert words[0] == "runplane", self.line
        return words[1:]


def first_session() -> list[Step]:
    text = README.read_text()
    section = text[text.index("## A first session") :]
    block = section[section.index("```sh\n") + 6 :]
    block = block[: block.index("```")]
    steps: list[Step] = []
    for raw in block.splitlines():
        line = raw.strip()
        if not line:
            continue
        command, _, comment = line.partition(" #")
        if line.startswith("#"):  # a comment going on from the command above
            steps[-1].comment += " " + line.lstrip("# ")
            continue
        steps.append(Step(command.strip(), comment.strip()))
    return steps


Check = Callable[[subprocess.CompletedProcess[str]], None]


def prints(*texts: str) -> Check:
    def check(done: subprocess.CompletedProcess[str]) -> None:
        for text in texts:
            assert text in done.stdout + done.stderr, (text, done.stdout, done.stderr)

    return check


def prints_a_key(done: subprocess.CompletedProcess[str]) -> None:
    assert re.fullmatch(r"\S{20,}", done.stdout.strip()), done.stdout


CHECKS: dict[str, Check] = {
    "runplane --version": prints("runplane "),
    "runplane runtime create demo": prints("demo", "running"),
    "runplane runtime ops demo": prints("resume", "pause", "stop"),
    "runplane runtime describe demo": prints("demo", "Operations (newest", "Events (last"),
    "runplane runtime wait demo": prints("demo is running"),
    "runplane runtime logs demo --tail 20": prints('"GET /first-session HTTP/1.1"'),
    "runplane runtime metrics demo": prints("samples"),
    "runplane jobs submit stop demo": prints(": stop demo: success; demo is stopped"),
    "runplane keys create": prints_a_key,
    "runplane keys ls": prints("alpha", "ci"),
    "runplane runtime health demo": prints("demo"),
    "runplane transitions": prints("stateDiagram"),
}
"""What a comment promises that the outcome rule does not cover, by the start
of the command."""


def test_the_readme_first_session_runs_in_the_cli(serve: RunplaneServer) -> None:
    steps = first_session()
    assert NEXT_COMMAND in [step.line for step in steps]  # what serve's banner suggests
    port = free_port()
    follow: subprocess.Popen[str] | None = None
    checked = set()
    try:
        for step in steps:
            args = step.args(port)
            if args[:2] == ["runtime", "logs"] and "-f" in args:
                follow = background(serve, args)
                continue
            if args[:2] == ["events", "tail"]:
                check_events_tail(serve, args)
                continue
            if step.line.startswith("runplane runtime logs demo --tail"):
                request_demo(port)  # so its output has a line to show...
                wait_for_output(serve, args)  # ...once its host has read it
            done = serve.cli(*args)
            assert done.returncode == 0, (step.line, done.stdout, done.stderr)
            if re.match(r"success\b", step.comment):
                assert step.comment in done.stdout.splitlines(), (step.line, done.stdout)
            for start, check in CHECKS.items():
                if step.line.startswith(start):
                    check(done)
                    checked.add(start)
        assert follow is not None
        # demo was stopped by the stream job: the follow ends by itself.
        out, err = follow.communicate(timeout=60)
        assert follow.returncode == 0, (out, err)
        assert '"GET /first-session HTTP/1.1"' in err
    finally:
        if follow is not None and follow.poll() is None:
            follow.kill()
            follow.wait()
    assert checked == set(CHECKS), set(CHECKS) - checked  # every check found its command


def background(serve: RunplaneServer, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runplane", *args],
        env=serve.env | {"COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A runner started in the background hands its children SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def check_events_tail(serve: RunplaneServer, args: list[str]) -> None:
    """Read until demo's events have been shown, then Ctrl-C: exit 0."""
    tail = background(serve, args)
    try:
        assert tail.stdout is not None
        deadline = time.monotonic() + 60
        shown: list[str] = []
        while not any("demo" in line for line in shown):
            assert time.monotonic() < deadline, shown
            line = tail.stdout.readline()
            assert line, (shown, tail.stderr.read() if tail.stderr else "")
            shown.append(line)
        tail.send_signal(signal.SIGINT)
        _, err = tail.communicate(timeout=30)
        assert tail.returncode == 0, err
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()


def request_demo(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/first-session", timeout=5)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"demo does not answer on {port}"
            time.sleep(0.2)


def wait_for_output(serve: RunplaneServer, args: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "/first-session" not in serve.cli(*args).stderr:
        assert time.monotonic() < deadline, "demo's output never showed the request"
        time.sleep(0.2)
