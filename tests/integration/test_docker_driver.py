"""The docker driver and its event watcher against a real engine (Podman's
Docker-compatible socket, started by the `podman` fixture): a served endpoint,
engine state behind each call, OOM kills, exits, containers removed behind
runplane's back, and an engine restart under a running watcher."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from runplane.adapters.drivers.docker import INSTANCE_LABEL, RUNTIME_ID_LABEL, DockerDriver
from runplane.adapters.drivers.docker_events import DockerEventWatcher
from runplane.adapters.system import SystemClock
from runplane.domain.drivers import ContainerState
from runplane.domain.errors import DriverError, InvalidSpec, SpecRefused, StoreUnavailable
from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.testing.health import InMemoryHealthEvents
from runplane.workers.engine_events import EngineEventsLoop
from tests.support.podman import IMAGE, PodmanService
from tests.support.ports import free_port

SLEEPER = ["sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait"]
EATS_MEMORY = ["sh", "-c", "x=a; while :; do x=$x$x; done"]


def spec(command: list[str], **fields: Any) -> dict[str, Any]:
    return {"image": IMAGE, "command": command, **fields}


def engine_status(podman: PodmanService, container_id: str) -> str:
    """What the engine itself says, asked through the podman CLI."""
    out = podman.cli(
        "container", "inspect", "--format", "{{.State.Status}}", container_id, check=False
    )
    return out.strip() or "missing"


@dataclass
class Watched:
    driver: DockerDriver
    events: InMemoryHealthEvents
    watcher: DockerEventWatcher

    def of(self, container_id: str) -> list[HealthEvent]:
        return [e for e in self.events.events if e.container_id == container_id]

    async def wait_for(
        self, what: Callable[[HealthEvent], bool], timeout_s: float = 15
    ) -> HealthEvent:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [event for event in self.events.events if what(event)]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no such event in {self.events.events}"
            await asyncio.sleep(0.05)


@pytest.fixture
async def driver(podman: PodmanService) -> AsyncIterator[DockerDriver]:
    driver = DockerDriver(podman.url, instance=f"it-{uuid.uuid4().hex[:8]}")
    try:
        yield driver
        for info in await driver.list_containers():
            await driver.remove(info.container_id)
    finally:
        await driver.aclose()


@pytest.fixture
async def watched(driver: DockerDriver) -> AsyncIterator[Watched]:
    events = InMemoryHealthEvents()
    watcher = DockerEventWatcher(driver, events, SystemClock())
    loop = EngineEventsLoop(watcher, reconnect_s=0.05, backoff_cap_s=0.5)
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(watcher.connected.wait(), 10)
    try:
        yield Watched(driver, events, watcher)
    finally:
        loop.request_stop()
        await asyncio.wait_for(task, 10)


async def test_httpd_answers_on_its_endpoint_and_each_call_shows_in_the_engine(
    driver: DockerDriver, podman: PodmanService
) -> None:
    port = free_port()
    httpd = ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"]
    # Port publishing needs a network; the host's avoids the bridge's iptables rules.
    started = await driver.start("web", spec(httpd, network_mode="host", ports=[port]))
    cid = started.container_id

    assert started.engine_endpoint == f"127.0.0.1:{port}"
    assert "hello from local/tiny" in await http_get(started.engine_endpoint, "/index.html")
    assert engine_status(podman, cid) == "running"
    labels = json.loads(
        podman.cli("container", "inspect", "--format", "{{json .Config.Labels}}", cid)
    )
    assert labels == {RUNTIME_ID_LABEL: "web", INSTANCE_LABEL: driver.instance}

    await driver.pause(cid)
    assert engine_status(podman, cid) == "paused"
    await driver.resume(cid)
    assert engine_status(podman, cid) == "running"
    info = await driver.stop(cid, timeout_s=1)
    assert info.state is ContainerState.EXITED
    assert engine_status(podman, cid) == "exited"
    await driver.remove(cid)
    assert engine_status(podman, cid) == "missing"


async def http_get(endpoint: str, path: str) -> str:
    host, port = endpoint.rsplit(":", 1)
    deadline = time.monotonic() + 5
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            break
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {endpoint}"
            await asyncio.sleep(0.05)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response.decode()


async def test_a_container_over_its_memory_limit_is_an_oom(watched: Watched) -> None:
    started = await watched.driver.start("hungry", spec(EATS_MEMORY, memory_mb=16))

    event = await watched.wait_for(lambda e: e.container_id == started.container_id)

    assert event.event_type is HealthEventType.CONTAINER_OOM
    assert (event.runtime_id, event.details["exit_code"]) == ("hungry", 137)
    info = await watched.driver.inspect(started.container_id)
    assert (info.state, info.oom_killed) == (ContainerState.EXITED, True)


async def test_an_exit_by_itself_is_container_exited_with_its_code(watched: Watched) -> None:
    started = await watched.driver.start("quits", spec(["sh", "-c", "exit 3"]))

    event = await watched.wait_for(lambda e: e.container_id == started.container_id)

    assert event.event_type is HealthEventType.CONTAINER_EXITED
    assert (event.runtime_id, event.details["exit_code"], event.details["signal"]) == (
        "quits",
        3,
        None,
    )


async def test_a_container_removed_behind_runplanes_back_disappears(
    watched: Watched, podman: PodmanService
) -> None:
    started = await watched.driver.start("doomed", spec(SLEEPER))

    podman.cli("rm", "--force", "--time", "0", started.container_id)

    event = await watched.wait_for(lambda e: e.event_type is HealthEventType.CONTAINER_DISAPPEARED)
    assert (event.runtime_id, event.container_id) == ("doomed", started.container_id)


async def test_what_runplane_stops_or_removes_itself_is_no_health_event(watched: Watched) -> None:
    ignores_term = ["sh", "-c", "trap '' TERM; sleep 60"]
    killed = await watched.driver.start("killed", spec(ignores_term, memory_mb=16))
    removed = await watched.driver.start("removed", spec(SLEEPER))
    await asyncio.sleep(0.2)
    await watched.driver.stop(killed.container_id, timeout_s=1)  # SIGKILL: no OOM
    await watched.driver.remove(killed.container_id)
    await watched.driver.remove(removed.container_id)
    # Events come in order: once this one is seen, the others were handled.
    marker = await watched.driver.start("marker", spec(["sh", "-c", "exit 0"]))

    await watched.wait_for(lambda e: e.container_id == marker.container_id)

    assert watched.of(killed.container_id) == []
    assert watched.of(removed.container_id) == []


async def test_engine_health_status_is_reported(watched: Watched, podman: PodmanService) -> None:
    # As from an image with a HEALTHCHECK (Podman runs it on demand here: no systemd).
    body = {
        "Image": IMAGE,
        "Cmd": ["sleep", "60"],
        "Labels": {**watched.driver.labels, RUNTIME_ID_LABEL: "checked"},
        "Healthcheck": {
            "Test": ["CMD-SHELL", "test -f /tmp/ok"],
            "Interval": 3600 * 10**9,
            "Retries": 1,
        },
        "HostConfig": {"NetworkMode": "none"},
    }
    container = await watched.driver.client.containers.create(body)
    await container.start()

    podman.cli("healthcheck", "run", container.id, check=False)
    sick = await watched.wait_for(lambda e: e.event_type is HealthEventType.INSPECT_UNHEALTHY)
    podman.cli("exec", container.id, "touch", "/tmp/ok")
    podman.cli("healthcheck", "run", container.id)
    well = await watched.wait_for(lambda e: e.event_type is HealthEventType.PROBE_RECOVERED)

    assert (sick.runtime_id, sick.container_id) == ("checked", container.id)
    assert (well.runtime_id, well.container_id) == ("checked", container.id)


@pytest.mark.parametrize("events_survive", [True, False], ids=["replayed", "relisted"])
async def test_an_engine_restart_loses_nothing(
    watched: Watched, podman: PodmanService, events_survive: bool
) -> None:
    """While the engine's API is down, one container exits by itself and another
    is removed by hand. After the restart both are reported, once each: from
    the replayed events, or, when the engine kept none (as Docker keeps none
    across a restart), from the re-list."""
    quits = await watched.driver.start("quits", spec(["sh", "-c", "sleep 1; exit 5"]))
    doomed = await watched.driver.start("doomed", spec(SLEEPER))
    stays = await watched.driver.start("stays", spec(SLEEPER))
    await asyncio.sleep(0.2)  # the watcher has seen them start

    podman.kill_service()
    try:
        deadline = time.monotonic() + 10
        while engine_status(podman, quits.container_id) != "exited":
            assert time.monotonic() < deadline, "the container never exited"
            await asyncio.sleep(0.1)
        podman.cli("rm", "--force", "--time", "0", doomed.container_id)
        if not events_survive:
            podman.events_log.unlink(missing_ok=True)
    finally:
        podman.start_service()

    exited = await watched.wait_for(lambda e: e.container_id == quits.container_id)
    await watched.wait_for(lambda e: e.event_type is HealthEventType.CONTAINER_DISAPPEARED)
    await asyncio.sleep(0.5)  # anything doubled would show by now

    assert watched.watcher.connections >= 2
    assert (exited.event_type, exited.details["exit_code"]) == (HealthEventType.CONTAINER_EXITED, 5)
    assert [e.event_type for e in watched.of(quits.container_id)] == [
        HealthEventType.CONTAINER_EXITED
    ]
    doomed_types = [e.event_type for e in watched.of(doomed.container_id)]
    # Replayed, its events say it was killed, then removed; the re-list sees it gone.
    assert doomed_types == (
        [HealthEventType.CONTAINER_EXITED, HealthEventType.CONTAINER_DISAPPEARED]
        if events_survive
        else [HealthEventType.CONTAINER_DISAPPEARED]
    )
    assert watched.of(stays.container_id) == []
    sources = {e.details["source"] for e in watched.events.events}
    assert sources == ({"replay"} if events_survive else {"relist"})
    assert (await watched.driver.inspect(stays.container_id)).state is ContainerState.RUNNING


class FailsFirst(InMemoryHealthEvents):
    """Redis down for the first publish."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0

    async def publish(self, event: HealthEvent) -> None:
        if not self.failed:
            self.failed += 1
            raise StoreUnavailable("redis is down")
        await super().publish(event)


async def test_an_event_whose_publish_failed_comes_again(driver: DockerDriver) -> None:
    events = FailsFirst()
    watcher = DockerEventWatcher(driver, events, SystemClock())
    loop = EngineEventsLoop(watcher, reconnect_s=0.05)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.wait_for(watcher.connected.wait(), 10)
        started = await driver.start("quits", spec(["sh", "-c", "exit 4"]))
        deadline = time.monotonic() + 15
        while not events.events:
            assert time.monotonic() < deadline, "the event never came again"
            await asyncio.sleep(0.05)
    finally:
        loop.request_stop()
        await asyncio.wait_for(task, 10)

    assert events.failed == 1
    assert watcher.connections == 2
    assert [(e.container_id, e.event_type, e.details["exit_code"]) for e in events.events] == [
        (started.container_id, HealthEventType.CONTAINER_EXITED, 4)
    ]


async def test_an_engine_that_cannot_be_reached_is_a_clear_error(tmp_path: Any) -> None:
    driver = DockerDriver(f"unix://{tmp_path}/absent.sock", instance="x")
    try:
        with pytest.raises(DriverError, match=r"cannot reach the container engine at unix://"):
            await driver.check()
    finally:
        await driver.aclose()
    with pytest.raises(ValueError, match="unix:///path/to/socket or tcp://host:port"):
        DockerDriver("ftp://engine", instance="x")


async def test_the_engine_is_checked_and_named(driver: DockerDriver) -> None:
    version = await driver.check()

    assert version["ApiVersion"]


async def test_an_image_not_on_the_engine_is_never_pulled(driver: DockerDriver) -> None:
    # SpecRefused: the caller's to fix (invalid_request), not a retryable 503.
    with pytest.raises(SpecRefused, match="pulls nothing"):
        await driver.start("r", {"image": "local/absent", "command": ["true"]})


async def test_a_network_the_engine_lacks_is_refused_as_the_specs_fault(
    driver: DockerDriver,
) -> None:
    with pytest.raises(SpecRefused, match="refused"):
        await driver.start(
            "r", {"image": IMAGE, "command": ["true"], "network_mode": "no-such-net"}
        )
    assert await driver.list_containers() == []


async def test_a_failed_start_leaves_no_container(driver: DockerDriver) -> None:
    with pytest.raises(DriverError, match="not found"):
        await driver.start("r", spec(["/no/such/program"]))

    assert await driver.list_containers() == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"command": ["true"]}, "image is required"),
        ({"image": "a b"}, "image must be"),
        ({"image": IMAGE, "command": "sleep 1"}, "command must be"),
        ({"image": IMAGE, "env": {"A": 1}}, r"env\['A'\]"),
        ({"image": IMAGE, "labels": {"runplane.runtime_id": "x"}}, "runplane's"),
        ({"image": IMAGE, "memory_mb": 2}, "memory_mb must be at least 6"),
        ({"image": IMAGE, "cpus": 0}, "cpus must be from"),
        ({"image": IMAGE, "ports": [8080]}, "ports need a network"),
        (
            {
                "image": IMAGE,
                "network_mode": "host",
                "ports": [{"container_port": 1, "host_port": 2}],
            },
            "no host_port",
        ),
        ({"image": IMAGE, "network_mode": "bridge", "ports": [70000]}, r"ports\[0\]"),
        ({"image": IMAGE, "stop_timeout_s": -1}, "stop_timeout_s"),
        ({"image": IMAGE, "volumes": []}, "unknown spec field"),
    ],
)
async def test_an_invalid_spec_says_what_is_wrong(
    driver: DockerDriver, bad: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSpec, match=message):
        driver.validate_spec(bad)


async def test_limits_and_environment_reach_the_container(
    driver: DockerDriver, podman: PodmanService
) -> None:
    fields = {"env": {"GREETING": "hi"}, "labels": {"team": "a"}, "memory_mb": 32, "cpus": 0.5}
    started = await driver.start("r", spec(SLEEPER, **fields))

    shown = json.loads(podman.cli("container", "inspect", started.container_id))[0]

    assert "GREETING=hi" in shown["Config"]["Env"]
    assert shown["Config"]["Labels"]["team"] == "a"
    assert shown["HostConfig"]["Memory"] == 32 * 1024 * 1024
    assert shown["HostConfig"]["NanoCpus"] == 500_000_000
    assert shown["HostConfig"]["NetworkMode"] == "none"


async def test_a_container_on_its_way_out_has_no_reading_and_spoils_no_round(
    driver: DockerDriver, podman: PodmanService
) -> None:
    # Podman answers a stopping container's stats with an empty body: that one
    # has no reading this round; its neighbours' readings still come.
    lingers = ["sh", "-c", "trap 'sleep 5; exit 0' TERM; sleep 60 & wait"]
    slow = await driver.start("slow", spec(lingers))
    steady = await driver.start("steady", spec(SLEEPER))
    stopping = asyncio.create_task(driver.stop(slow.container_id, timeout_s=20))
    for _ in range(100):  # until the engine shows it stopping (its trap holds it 5 s)
        if engine_status(podman, slow.container_id) == "stopping":
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the engine never showed the container stopping")
    readings = await driver.output._read_resources([slow.container_id, steady.container_id])
    await stopping
    assert readings[slow.container_id] is None
    assert readings[steady.container_id] is not None
