"""The in-memory driver keeps the process driver's semantics without processes."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import ContainerGone, DriverError, InvalidSpec
from runplane.testing.driver import InMemoryDriver

SPEC: dict[str, Any] = {"command": ["sleep", "60"]}


async def test_start_runs_a_container_with_an_endpoint_when_a_port_is_given() -> None:
    driver = InMemoryDriver()

    plain = await driver.start("a", SPEC)
    served = await driver.start("b", {**SPEC, "port": 8081})

    assert plain == StartedContainer("m-1", None)
    assert served == StartedContainer("m-2", "127.0.0.1:8081")
    assert (await driver.inspect("m-1")).state is ContainerState.RUNNING
    container = driver.container("m-2")
    assert container is not None
    assert (container.runtime_id, container.spec["port"]) == ("b", 8081)
    assert driver.started == 2


async def test_pause_resume_and_stop_move_the_state() -> None:
    driver = InMemoryDriver()
    cid = (await driver.start("a", SPEC)).container_id

    await driver.pause(cid)
    assert (await driver.inspect(cid)).state is ContainerState.PAUSED
    await driver.resume(cid)
    assert (await driver.inspect(cid)).state is ContainerState.RUNNING
    info = await driver.stop(cid)

    assert info == ContainerInfo(
        cid, ContainerState.EXITED, 128 + signal.SIGTERM, signal.SIGTERM, "killed by SIGTERM"
    )
    assert await driver.inspect(cid) == info


async def test_stop_of_a_paused_container_ends_it_with_its_stop_signal() -> None:
    driver = InMemoryDriver()
    cid = (await driver.start("a", {**SPEC, "stop_signal": "SIGINT"})).container_id
    await driver.pause(cid)

    info = await driver.stop(cid, timeout_s=1)

    assert (info.state, info.signal) == (ContainerState.EXITED, signal.SIGINT)


@pytest.mark.parametrize("op", ["stop", "pause", "resume"])
async def test_operations_on_an_ended_or_vanished_container_are_container_gone(op: str) -> None:
    driver = InMemoryDriver()
    exited = (await driver.start("a", SPEC)).container_id
    vanished = (await driver.start("b", SPEC)).container_id
    driver.exit(exited, exit_code=3)
    driver.vanish(vanished)

    for cid in (exited, vanished, "m-404"):
        with pytest.raises(ContainerGone):
            await getattr(driver, op)(cid)


async def test_exit_and_vanish_show_in_inspect_and_list() -> None:
    driver = InMemoryDriver()
    exited = (await driver.start("a", SPEC)).container_id
    vanished = (await driver.start("b", SPEC)).container_id
    running = (await driver.start("c", SPEC)).container_id

    driver.exit(exited, exit_code=3)
    driver.vanish(vanished)

    assert await driver.inspect(exited) == ContainerInfo(
        exited, ContainerState.EXITED, 3, None, "exited with code 3"
    )
    assert (await driver.inspect(vanished)).state is ContainerState.MISSING
    listed = {info.container_id: info.state for info in await driver.list_containers()}
    assert listed == {exited: ContainerState.EXITED, running: ContainerState.RUNNING}


async def test_remove_forgets_the_container_and_tolerates_a_missing_one() -> None:
    driver = InMemoryDriver()
    cid = (await driver.start("a", SPEC)).container_id

    await driver.remove(cid)
    await driver.remove(cid)

    assert (await driver.inspect(cid)).state is ContainerState.MISSING
    assert driver.containers == {}


async def test_fail_next_injects_one_failure_per_call() -> None:
    driver = InMemoryDriver()
    cid = (await driver.start("a", SPEC)).container_id
    driver.fail_next("stop")
    driver.fail_next("stop", ContainerGone(cid))

    with pytest.raises(DriverError, match="injected stop failure"):
        await driver.stop(cid)
    with pytest.raises(ContainerGone):
        await driver.stop(cid)
    assert (await driver.inspect(cid)).state is ContainerState.RUNNING
    assert (await driver.stop(cid)).state is ContainerState.EXITED


async def test_a_failed_start_leaves_nothing_behind() -> None:
    driver = InMemoryDriver()
    driver.fail_next("start", DriverError("engine down"))

    with pytest.raises(DriverError, match="engine down"):
        await driver.start("a", SPEC)

    assert await driver.list_containers() == []
    assert driver.started == 0


def test_fail_next_refuses_an_unknown_operation() -> None:
    with pytest.raises(ValueError, match="unknown driver operation"):
        InMemoryDriver().fail_next("explode")


@pytest.mark.parametrize(
    "spec",
    [
        {"command": []},
        {"command": "sleep 1"},
        {"port": True},
        {"port": 0},
        {"stop_timeout_s": -1},
        {"health": "http"},
        {"restart_policy": ["always"]},
    ],
)
async def test_specs_with_malformed_known_fields_are_invalid(spec: dict[str, Any]) -> None:
    driver = InMemoryDriver()

    with pytest.raises(InvalidSpec):
        driver.validate_spec(spec)
    with pytest.raises(InvalidSpec):
        await driver.start("a", spec)
    assert driver.containers == {}


def test_validation_accepts_any_other_object_and_copies_it() -> None:
    spec: dict[str, Any] = {"image": "x", "health": {"type": "tcp", "port": 1}}

    normalised = InMemoryDriver().validate_spec(spec)
    normalised["health"]["port"] = 2

    assert spec["health"]["port"] == 1


async def test_a_custom_validator_replaces_the_default() -> None:
    def refuse(spec: dict[str, Any]) -> dict[str, Any]:
        raise InvalidSpec("nothing runs here")

    driver = InMemoryDriver(name="strict", validator=refuse)

    assert driver.name == "strict"
    with pytest.raises(InvalidSpec, match="nothing runs here"):
        await driver.start("a", SPEC)


async def test_calls_count_what_reached_the_driver_failures_included() -> None:
    driver = InMemoryDriver()
    cid = (await driver.start("a", SPEC)).container_id
    driver.fail_next("pause")

    with pytest.raises(DriverError):
        await driver.pause(cid)
    await driver.pause(cid)

    assert (driver.calls["start"], driver.calls["pause"], driver.calls["stop"]) == (1, 2, 0)


async def test_a_restarted_driver_shares_the_containers_and_their_numbering() -> None:
    driver = InMemoryDriver()
    first = (await driver.start("a", SPEC)).container_id

    fresh = driver.restarted()
    second = (await fresh.start("b", SPEC)).container_id
    await fresh.pause(first)

    assert (first, second) == ("m-1", "m-2")
    assert (await driver.inspect(first)).state is ContainerState.PAUSED
    assert [(i.container_id, i.runtime_id) for i in await driver.list_containers()] == [
        ("m-1", "a"),
        ("m-2", "b"),
    ]
    assert (driver.started, fresh.calls["start"], driver.calls["start"]) == (2, 1, 1)


async def test_a_runtime_ignoring_its_stop_signal_is_killed_past_the_timeout() -> None:
    driver = InMemoryDriver()
    cid = (await driver.start("a", {**SPEC, "stop_timeout_s": 30})).container_id
    driver.ignore_stop_signal(cid)

    info = await driver.stop(cid, timeout_s=0.01)

    assert (info.state, info.exit_code, info.signal) == (
        ContainerState.EXITED,
        128 + signal.SIGKILL,
        signal.SIGKILL,
    )


def test_a_spec_must_name_what_runs() -> None:
    driver = InMemoryDriver()

    with pytest.raises(InvalidSpec, match="command or an image"):
        driver.validate_spec({"port": 8080})
    assert driver.validate_spec({"image": "x"}) == {"image": "x"}
