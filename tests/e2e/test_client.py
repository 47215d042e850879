"""runplane.client's Client against a real serve: every public method, errors
by code, idempotent replays, the event stream across a serve restart, and
wait_for over the stream and over its polling fallback."""

from __future__ import annotations

import queue
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runplane.client import (
    Client,
    Event,
    EventPage,
    InvalidRequest,
    InvalidState,
    NotFound,
    RunplaneError,
    Status,
    Unauthorized,
    WaitTimeout,
)
from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer

SLEEP = {"command": ["sleep", "600"]}


@pytest.fixture
def client(serve: RunplaneServer) -> Iterator[Client]:
    with Client(serve.url, serve.admin_key) as client:
        yield client


def test_a_runtime_through_its_whole_life(client: Client) -> None:
    runtime = client.create_runtime(SLEEP, runtime_id="sdk-1")
    assert (runtime.runtime_id, runtime.status, runtime.replayed) == ("sdk-1", "running", False)
    assert client.get_runtime("sdk-1").status == Status.RUNNING
    assert [r.runtime_id for r in client.list_runtimes(status="running").runtimes] == ["sdk-1"]
    assert client.list_runtimes(status="stopped").runtimes == []

    steps = [
        (client.pause, "paused"),
        (client.resume, "running"),
        (client.restart, "running"),
        (client.stop, "stopped"),
        (client.start, "running"),
    ]
    for operate, status in steps:
        result = operate("sdk-1")
        assert result.outcome == "success", result
        assert result.runtime is not None
        assert result.runtime.status == status
    patched = client.patch("sdk-1", {"command": ["sleep", "601"]})
    assert patched.runtime is not None
    assert patched.runtime.spec["command"] == ["sleep", "601"]

    log = client.list_operations("sdk-1")
    assert [e.op for e in log] == [
        "patch",
        "start",
        "stop",
        "restart",
        "resume",
        "pause",
        "start",
    ]  # fmt: skip (a create that starts logs its start)
    assert client.get_operation(log[0].operation_id).op == "patch"
    removed = client.remove("sdk-1")
    assert removed.runtime is not None
    assert removed.runtime.status == "removed"


def test_every_mutating_call_carries_an_idempotency_key(client: Client) -> None:
    client.create_runtime(SLEEP, runtime_id="sdk-keys")
    client.pause("sdk-keys")
    client.resume("sdk-keys")
    keys = {e.op: e.job_id for e in client.list_operations("sdk-keys")}
    assert set(keys) == {"start", "pause", "resume"}  # a create that starts logs its start
    assert all(key is not None and uuid.UUID(key).version == 4 for key in keys.values())
    assert len(set(keys.values())) == 3


def test_a_repeated_key_replays_the_first_result(client: Client) -> None:
    first = client.create_runtime(SLEEP, runtime_id="sdk-once", idempotency_key="create-once")
    again = client.create_runtime(SLEEP, runtime_id="sdk-once", idempotency_key="create-once")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.version == first.version

    stopped = client.stop("sdk-once", idempotency_key="stop-once")
    client.start("sdk-once")
    replay = client.stop("sdk-once", idempotency_key="stop-once")
    assert (stopped.replayed, replay.replayed) == (False, True)
    assert replay.operation_id == stopped.operation_id
    # The replay stopped nothing: the runtime is still running, one stop logged.
    assert client.get_runtime("sdk-once").status == "running"
    ops = [e.op for e in client.list_operations("sdk-once") if e.error_code is None]
    assert ops.count("stop") == 1
    assert ops.count("start") == 2  # the create's and the one start call


def test_errors_are_raised_by_their_code(serve: RunplaneServer, client: Client) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_runtime("no-such-runtime")
    assert (missing.value.code, missing.value.status) == ("not_found", 404)
    assert missing.value.request_id

    with pytest.raises(InvalidRequest) as invalid:
        client.create_runtime({"command": []}, runtime_id="sdk-bad")
    assert (invalid.value.code, invalid.value.status) == ("invalid_request", 400)

    client.create_runtime(SLEEP, runtime_id="sdk-state")
    client.stop("sdk-state")
    with pytest.raises(InvalidState) as state:
        client.pause("sdk-state")
    assert state.value.status == 409
    assert state.value.operation_id is not None

    with Client(serve.url, "rp_not_a_key") as stranger, pytest.raises(Unauthorized) as denied:
        stranger.list_runtimes()
    assert isinstance(denied.value, RunplaneError)
    assert denied.value.status == 401


def test_events_pages_and_a_stream_that_survives_a_serve_restart(
    serve: RunplaneServer, client: Client
) -> None:
    received: queue.Queue[Event] = queue.Queue()
    following = threading.Event()

    def follow(position: str | None) -> None:
        with Client(serve.url, serve.admin_key) as own:
            types = ["runtime.pause", "runtime.resume"]
            stream = own.events(runtime_id="sdk-ev", types=types, last_event_id=position)
            following.set()
            for event in stream:
                received.put(event)
                if event.type == "runtime.resume":
                    return

    client.create_runtime(SLEEP, runtime_id="sdk-ev")
    page = published(client, "sdk-ev", 2)
    assert [e.type for e in page.events] == ["runtime.create", "runtime.start"]
    assert page.events[1].stream_id is not None
    assert page.events[1].data.status_to == "running"
    rest = client.list_events(runtime_id="sdk-ev", after=page.events[0].stream_id)
    assert [e.id for e in rest.events] == [page.events[1].id]

    # From the last event in the stream: a pause made before the follower
    # connects is still delivered.
    follower = threading.Thread(target=follow, args=(page.events[-1].stream_id,), daemon=True)
    follower.start()
    assert following.wait(30)
    client.pause("sdk-ev")
    paused = received.get(timeout=30)
    assert (paused.type, paused.subject) == ("runtime.pause", "sdk-ev")

    serve.stop(signal.SIGKILL)  # the stream breaks; the follower reconnects
    serve.start()
    client.resume("sdk-ev")
    resumed = received.get(timeout=60)
    follower.join(30)
    assert resumed.type == "runtime.resume"
    assert received.empty()  # nothing twice, nothing else


def published(client: Client, runtime_id: str, count: int) -> EventPage:
    """The runtime's events once `count` are in the stream (the relay publishes
    them just after the operation commits)."""
    deadline = time.monotonic() + 30
    while len((page := client.list_events(runtime_id=runtime_id)).events) < count:
        assert time.monotonic() < deadline, page
        time.sleep(0.1)
    return page


def test_wait_for_a_status_driven_by_events(client: Client) -> None:
    client.create_runtime(SLEEP, runtime_id="sdk-wait")
    timer = threading.Timer(1.0, client.stop, args=("sdk-wait",))
    timer.start()
    try:
        stopped = client.wait_for("sdk-wait", "stopped", timeout=60)
    finally:
        timer.join()
    assert stopped.status == "stopped"
    assert client.wait_for("sdk-wait", ["paused", "stopped"], timeout=5).status == "stopped"
    with pytest.raises(WaitTimeout) as late:
        client.wait_for("sdk-wait", "running", timeout=1)
    assert isinstance(late.value, TimeoutError)
    assert "still stopped" in late.value.message


def test_wait_for_falls_back_to_polling_without_a_stream(tmp_path: Path, redis_url: str) -> None:
    server = RunplaneServer.launch(tmp_path / "data", redis_url=redis_url, max_streams_per_key="1")
    try:
        with Client(server.url, server.admin_key) as admin:
            team_key = admin_key_for_team(admin, "acme")
            admin.create_runtime(SLEEP, runtime_id="acme:slow", team_id="acme")
        with Client(server.url, team_key) as client:
            # This key's one stream is taken: wait_for's own is refused (429).
            with client._http.stream("GET", "/v1/events/stream") as held:
                assert held.status_code == 200
                assert refused(client)
                timer = threading.Timer(1.0, client.stop, args=("acme:slow",))
                timer.start()
                try:
                    assert client.wait_for("acme:slow", "stopped", timeout=60).status == "stopped"
                finally:
                    timer.join()
            # poll=True goes to the long poll without trying the stream.
            assert client.wait_for("acme:slow", "stopped", timeout=5, poll=True).status == "stopped"
    finally:
        remove_everything(server)
        server.stop()


def refused(client: Client) -> bool:
    """Whether this key's next stream is refused, as wait_for's will be."""
    with client._http.stream("GET", "/v1/events/stream") as response:
        return response.status_code == 429


def admin_key_for_team(admin: Client, team: str) -> str:
    """A team key, made with the admin's own connection (keys are not in the SDK)."""
    response = admin._http.post("/v1/keys", json={"team_id": team})
    response.raise_for_status()
    key: str = response.json()["key"]
    return key
