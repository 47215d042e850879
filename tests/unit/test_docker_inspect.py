"""A container just started is inspected again when the engine fails to read
it (Podman's 500 for a process that ended while it looked), up to a bound;
a container gone is told at once."""

from __future__ import annotations

from typing import Any

import aiodocker
import pytest

from runplane.adapters.drivers.docker_engine import INSPECT_TRIES, inspect_started
from runplane.domain.errors import ContainerGone, DriverError

URL = "unix:///run/podman/podman.sock"
RACE = "read /proc/23054/cgroup: no such process"


class Flaky:
    """A container whose inspect fails with `failures`, in order, then answers."""

    id = "c1"

    def __init__(self, *failures: aiodocker.DockerError) -> None:
        self.failures = list(failures)
        self.asked = 0

    async def show(self) -> dict[str, Any]:
        self.asked += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"Id": self.id, "State": {"Status": "exited"}}


async def test_an_engine_failure_while_the_process_ends_is_asked_again() -> None:
    container = Flaky(aiodocker.DockerError(500, RACE))
    inspected = await inspect_started(container, URL)  # type: ignore[arg-type]
    assert (inspected["Id"], container.asked) == ("c1", 2)


async def test_an_engine_that_keeps_failing_is_a_driver_error_after_the_bound() -> None:
    container = Flaky(*[aiodocker.DockerError(500, RACE)] * INSPECT_TRIES)
    with pytest.raises(DriverError, match="docker inspect failed: read /proc"):
        await inspect_started(container, URL)  # type: ignore[arg-type]
    assert container.asked == INSPECT_TRIES


async def test_a_container_gone_is_told_at_once() -> None:
    container = Flaky(aiodocker.DockerError(404, "no such container"))
    with pytest.raises(ContainerGone):
        await inspect_started(container, URL)  # type: ignore[arg-type]
    assert container.asked == 1
