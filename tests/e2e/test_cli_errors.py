"""Every CLI failure is one line on stderr, `error: ...`, with no traceback and
a non-zero exit code (cli/failures.py), against a real `runplane serve`; the
traceback comes back with RUNPLANE_DEBUG=1 or --debug."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from tests.support.serve import RunplaneServer, free_port

REFUSED, NOT_SENT, INTERRUPTED = 1, 2, 130

# (args, exit code, what the one line starts with or holds)
BAD_INVOCATIONS = [
    (
        ["runtime", "create", "bad", "--spec", "{bad"],
        NOT_SENT,
        "error: invalid_request: --spec is not JSON: ",
    ),
    (
        ["runtime", "create", "bad", "--spec", "@/nonexistent/spec.json"],
        NOT_SENT,
        "error: invalid_request: --spec: cannot read /nonexistent/spec.json: ",
    ),
    (
        ["jobs", "submit", "start", "bad", "--spec", "[1, 2]"],
        NOT_SENT,
        "error: invalid_request: --spec must be a JSON object, not list",
    ),
    (["jobs", "submit", "stop", "demo"], NOT_SENT, "error: invalid_request: stop needs a reason"),
    (["jobs", "submit", "frob", "demo"], NOT_SENT, "error: invalid_request: op must be one of "),
    (["jobs", "submit", "patch", "demo"], NOT_SENT, "error: invalid_request: patch needs a spec"),
    (["runtime", "stop", "missing"], REFUSED, "error: not_found: "),
    (["runtime", "ls", "--api-key", "rp_nope"], REFUSED, "error: unauthorized: "),
    (
        ["jobs", "submit"],
        NOT_SENT,
        "error: Missing argument 'op'. (see 'runplane jobs submit --help')",
    ),
    (["runtime", "ls", "--bogus"], NOT_SENT, "error: No such option: --bogus"),
    (["transitions", "--format", "x"], NOT_SENT, "error: --format is mermaid or json"),
    (["jobs", "result", "never-submitted"], REFUSED, "error: not_found: no result for this job"),
    (
        ["runtime", "create", "bad", "--command", "sleep 1", "--env", "A"],
        NOT_SENT,
        "error: --env 'A'",
    ),
    (["runtime", "create", "bad", "--command", "sh -c 'x"], NOT_SENT, "error: --command "),
    (["runtime", "stop"], NOT_SENT, "error: name one runtime, or select some with -l/--label"),
    (["keys", "create"], NOT_SENT, "error: give --team T or --admin"),
    (["runtime", "logs", "missing"], REFUSED, "error: not_found: "),
]


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_a_bad_invocation_is_one_line_and_an_exit_code(serve: RunplaneServer) -> None:
    serve.cli("runtime", "create", "demo", "--command", "sleep 300", check=True)
    for args, code, line in BAD_INVOCATIONS:
        done = serve.cli(*args)
        assert done.returncode == code, (args, done.stdout + done.stderr)
        assert one_line_error(done).startswith(line), (args, done.stderr)


def test_unreachable_missing_and_unreadable_keys(serve: RunplaneServer, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = serve.cli("runtime", "ls", "--url", closed)
    assert done.returncode == NOT_SENT
    line = one_line_error(done)
    assert line.startswith(f"error: cannot reach runplane at {closed}: ")
    assert line.endswith("(is serve running?)")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    no_key = run_cli(serve, ["runtime", "ls"], RUNPLANE_DATA_DIR=str(elsewhere))
    assert no_key.returncode == NOT_SENT
    assert one_line_error(no_key).startswith(
        f"error: no API key: {elsewhere / 'admin.key'} does not exist (pass --api-key"
    )

    (elsewhere / "admin.key").mkdir()  # unreadable as a file, even by root
    unreadable = run_cli(serve, ["runtime", "ls"], RUNPLANE_DATA_DIR=str(elsewhere))
    assert unreadable.returncode == NOT_SENT
    assert one_line_error(unreadable).startswith(
        f"error: cannot read the admin key {elsewhere / 'admin.key'}: Is a directory"
    )

    bad_setting = run_cli(serve, ["runtime", "ls"], RUNPLANE_LOG_LEVEL="loud")
    assert bad_setting.returncode == NOT_SENT
    assert one_line_error(bad_setting).startswith("error: bad setting: RUNPLANE_LOG_LEVEL: ")


def test_debug_shows_the_traceback(serve: RunplaneServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    for how in (["--debug"], []):
        env = {} if how else {"RUNPLANE_DEBUG": "1"}
        done = run_cli(serve, [*how, "runtime", "ls", "--url", closed], **env)
        assert done.returncode != 0
        assert "Traceback" in done.stderr
        assert "cannot reach runplane" in done.stderr


def test_version() -> None:
    for flag in ("--version", "-V"):
        done = subprocess.run(
            [sys.executable, "-m", "runplane", flag], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            0,
            f"runplane {version('runplane')}\n",
            "",
        )


WAIT_FOR_PAUSED = ("runtime", "wait", "waiter", "--status", "paused", "--timeout", "120")


def test_ctrl_c_is_one_line_and_130(serve: RunplaneServer) -> None:
    serve.cli("runtime", "create", "waiter", "--command", "sleep 300", check=True)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "runplane", *WAIT_FOR_PAUSED],
        env=serve.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A runner started in the background hands its children SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for_a_socket(waiting.pid)  # inside the command, its call made
        waiting.send_signal(signal.SIGINT)
        _, stderr = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == INTERRUPTED
    assert stderr.splitlines() == ["error: interrupted"]


def run_cli(serve: RunplaneServer, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runplane", *args],
        env=serve.env | {"COLUMNS": "200"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_a_socket(pid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    fds = Path(f"/proc/{pid}/fd")
    while time.monotonic() < deadline:
        try:
            if any(os.readlink(fd).startswith("socket:") for fd in fds.iterdir()):
                return
        except OSError:  # an fd closed while listed
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} opened no socket")
