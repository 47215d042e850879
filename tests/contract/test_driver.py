"""Driver contract: the process driver, the docker driver (on Podman's
Docker-compatible socket) and the in-memory fake answer every lifecycle call
alike. Each backend brings its own commands: host programs for processes, the
busybox image `local/tiny` for containers, and for the fake, which runs
nothing, the same commands read as what its runtime does."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runplane.adapters.drivers.docker import DockerDriver
from runplane.adapters.drivers.process import ProcessDriver
from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import ContainerGone, InvalidSpec
from runplane.domain.runtime_output import LogQuery
from runplane.ports.drivers import Driver
from runplane.testing.driver import InMemoryDriver
from tests.support.podman import IMAGE, PodmanService

IGNORES_TERM = ["sh", "-c", "trap '' TERM; echo ready; sleep 60"]
"""Ignores SIGTERM (and so does its child, which inherits the ignored signal).
It says `ready` once its trap is set: a signal sent before would find none."""
EXITS = ["sh", "-c"]
"""`EXITS + ["exit N"]` ends by itself with code N."""


@dataclass(frozen=True, slots=True)
class Backend:
    driver: Driver
    spec: Callable[..., dict[str, Any]]
    """spec(command, **fields): a valid spec of this backend running `command`."""
    sleeper: list[str]
    """Runs until stopped, and ends by its stop signal: (143, SIGTERM). Says
    `ready` once it is set to."""
    fresh: Callable[[], Driver]
    """A new driver on the same state, as after a runplane restart."""
    runs_commands: bool = True
    """Its runtimes run their commands (and so print their `ready`)."""

    async def start_ready(self, runtime_id: str, command: list[str]) -> StartedContainer:
        """Starts `command`, and returns once it said `ready`: on a busy host a
        stop signal can otherwise come before the shell set its trap."""
        started = await self.driver.start(runtime_id, self.spec(command))
        if not self.runs_commands:
            return started
        deadline = time.monotonic() + 10
        while True:
            chunk = await self.driver.logs(started.container_id, LogQuery())
            if any(line.text == "ready" for line in chunk.lines):
                return started
            assert time.monotonic() < deadline, f"{command} never said ready"
            await asyncio.sleep(0.02)


async def wait_for_state(driver: Driver, container_id: str, state: ContainerState) -> ContainerInfo:
    deadline = time.monotonic() + 10
    while True:
        info = await driver.inspect(container_id)
        if info.state is state:
            return info
        assert time.monotonic() < deadline, f"{container_id} never reached {state}: {info}"
        await asyncio.sleep(0.05)


class DriverContract:
    """Every Driver passes these; a subclass provides `backend`."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError

    async def test_start_runs_the_runtime(self, backend: Backend) -> None:
        started = await backend.driver.start("r1", backend.spec(backend.sleeper))

        info = await backend.driver.inspect(started.container_id)

        assert info.state is ContainerState.RUNNING
        assert not info.oom_killed

    async def test_list_containers_names_each_runtime(self, backend: Backend) -> None:
        first = await backend.driver.start("rt-a", backend.spec(backend.sleeper))
        second = await backend.driver.start("rt-b", backend.spec([*EXITS, "exit 0"]))
        await wait_for_state(backend.driver, second.container_id, ContainerState.EXITED)

        listed = {info.container_id: info for info in await backend.driver.list_containers()}

        assert {cid: info.runtime_id for cid, info in listed.items()} == {
            first.container_id: "rt-a",
            second.container_id: "rt-b",
        }
        assert listed[first.container_id].state is ContainerState.RUNNING
        assert listed[second.container_id].state is ContainerState.EXITED

    async def test_pause_and_resume(self, backend: Backend) -> None:
        started = await backend.driver.start("r", backend.spec(backend.sleeper))
        cid = started.container_id

        await backend.driver.pause(cid)
        assert (await backend.driver.inspect(cid)).state is ContainerState.PAUSED
        await backend.driver.pause(cid)  # already paused: nothing to do
        assert (await backend.driver.inspect(cid)).state is ContainerState.PAUSED

        await backend.driver.resume(cid)
        assert (await backend.driver.inspect(cid)).state is ContainerState.RUNNING

    async def test_stop_ends_it_by_its_stop_signal(self, backend: Backend) -> None:
        started = await backend.start_ready("r", backend.sleeper)

        info = await backend.driver.stop(started.container_id, timeout_s=5)

        assert info.state is ContainerState.EXITED
        assert (info.exit_code, info.signal) == (128 + signal.SIGTERM, signal.SIGTERM)
        assert not info.oom_killed
        assert (await backend.driver.inspect(started.container_id)).state is ContainerState.EXITED
        with pytest.raises(ContainerGone):
            await backend.driver.stop(started.container_id)

    async def test_stop_kills_what_outlives_its_timeout(self, backend: Backend) -> None:
        started = await backend.start_ready("r", IGNORES_TERM)

        began = time.monotonic()
        info = await backend.driver.stop(started.container_id, timeout_s=1)

        assert 0.9 <= time.monotonic() - began < 8
        assert (info.exit_code, info.signal) == (128 + signal.SIGKILL, signal.SIGKILL)

    async def test_stop_of_a_paused_runtime_ends_it(self, backend: Backend) -> None:
        started = await backend.start_ready("r", backend.sleeper)
        await backend.driver.pause(started.container_id)

        info = await backend.driver.stop(started.container_id, timeout_s=5)

        assert (info.state, info.signal) == (ContainerState.EXITED, signal.SIGTERM)

    async def test_an_exit_by_itself_keeps_its_code(self, backend: Backend) -> None:
        started = await backend.driver.start("r", backend.spec([*EXITS, "exit 3"]))

        info = await wait_for_state(backend.driver, started.container_id, ContainerState.EXITED)

        assert (info.exit_code, info.signal, info.oom_killed) == (3, None, False)
        for call in (backend.driver.stop, backend.driver.pause, backend.driver.resume):
            with pytest.raises(ContainerGone):
                await call(started.container_id)

    async def test_remove_forgets_the_container(self, backend: Backend) -> None:
        started = await backend.driver.start("r", backend.spec(backend.sleeper))

        await backend.driver.remove(started.container_id)

        assert (await backend.driver.inspect(started.container_id)).state is ContainerState.MISSING
        assert await backend.driver.list_containers() == []
        await backend.driver.remove(started.container_id)  # a missing one is no error

    async def test_an_unknown_container_is_missing(self, backend: Backend) -> None:
        unknown = "0" * 64
        assert (await backend.driver.inspect(unknown)).state is ContainerState.MISSING
        for call in (backend.driver.stop, backend.driver.pause, backend.driver.resume):
            with pytest.raises(ContainerGone):
                await call(unknown)
        await backend.driver.remove(unknown)

    async def test_an_invalid_spec_is_refused_before_anything_runs(self, backend: Backend) -> None:
        for spec in ({}, {**backend.spec(backend.sleeper), "stop_timeout_s": -1}):
            with pytest.raises(InvalidSpec):
                backend.driver.validate_spec(spec)
            with pytest.raises(InvalidSpec):
                await backend.driver.start("r", spec)
        assert await backend.driver.list_containers() == []

    async def test_a_normalised_spec_validates_to_itself(self, backend: Backend) -> None:
        normalised = backend.driver.validate_spec(backend.spec(backend.sleeper))

        assert backend.driver.validate_spec(normalised) == normalised

    async def test_a_fresh_driver_adopts_what_an_earlier_one_started(
        self, backend: Backend
    ) -> None:
        started = await backend.start_ready("adopted", backend.sleeper)

        fresh = backend.fresh()

        listed = await fresh.list_containers()
        assert [(i.container_id, i.runtime_id) for i in listed] == [
            (started.container_id, "adopted")
        ]
        await fresh.pause(started.container_id)
        assert (await backend.driver.inspect(started.container_id)).state is ContainerState.PAUSED
        info = await fresh.stop(started.container_id, timeout_s=5)
        assert info.signal == signal.SIGTERM


class TestProcessDriver(DriverContract):
    @pytest.fixture
    async def backend(self, tmp_path: Path) -> AsyncIterator[Backend]:
        state = tmp_path / "state"
        driver = ProcessDriver(state)

        def spec(command: list[str], **fields: Any) -> dict[str, Any]:
            return {"command": command, **fields}

        sleeper = ["sh", "-c", "echo ready; exec sleep 60"]
        yield Backend(driver, spec, sleeper, lambda: ProcessDriver(state))
        for info in await ProcessDriver(state).list_containers():
            await driver.remove(info.container_id)
        driver.close()


class TestDockerDriver(DriverContract):
    @pytest.fixture
    async def backend(self, podman: PodmanService) -> AsyncIterator[Backend]:
        # An instance of its own: each test lists only the containers it started.
        instance = f"contract-{uuid.uuid4().hex[:8]}"
        drivers = [DockerDriver(podman.url, instance=instance)]

        def fresh() -> Driver:
            drivers.append(DockerDriver(podman.url, instance=instance))
            return drivers[-1]

        def spec(command: list[str], **fields: Any) -> dict[str, Any]:
            return {"image": IMAGE, "command": command, **fields}

        # busybox sh as PID 1 gets no default signal action: it ends on TERM by a trap.
        sleeper = ["sh", "-c", "trap 'exit 143' TERM; echo ready; sleep 60 & wait"]
        try:
            yield Backend(drivers[0], spec, sleeper, fresh)
            for info in await drivers[0].list_containers():
                await drivers[0].remove(info.container_id)
        finally:
            for driver in drivers:
                await driver.aclose()


class ScriptedMemoryDriver(InMemoryDriver):
    """The in-memory driver with the runtime behaviour the other backends get from
    this suite's commands: `sh -c 'exit N'` ends by itself with code N, and
    IGNORES_TERM ignores its stop signal. Steering only: what the driver then
    reports is the fake's own."""

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        started = await super().start(runtime_id, spec)
        command = spec["command"]
        if command == IGNORES_TERM:
            self.ignore_stop_signal(started.container_id)
        elif command[:2] == EXITS and command[2].startswith("exit "):
            self.exit(started.container_id, int(command[2].removeprefix("exit ")))
        return started


class TestInMemoryDriver(DriverContract):
    @pytest.fixture
    def backend(self) -> Backend:
        driver = ScriptedMemoryDriver()

        def spec(command: list[str], **fields: Any) -> dict[str, Any]:
            return {"command": command, **fields}

        return Backend(driver, spec, ["sleep", "60"], driver.restarted, runs_commands=False)
