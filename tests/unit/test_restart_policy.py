"""The restart policy: its decisions, and restarts through the ordinary restart
operation (op_source=health) on the fakes world."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from runplane.domain.health.events import HealthEvent, HealthEventType
from runplane.domain.health.spec import RestartMode, RestartPolicy
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import OperationEntry
from runplane.domain.statuses import Status
from runplane.ports.lifecycle import OperationLog
from runplane.services.health.restart_policy import RestartPolicyService, plan_restart
from runplane.workers.restarts import RestartScheduler
from tests.support.health import HealthWorld

E = HealthEventType


def policy(mode: str, **more: Any) -> dict[str, Any]:
    return {"command": ["serve"], "restart_policy": {"mode": mode, **more}}


@pytest.mark.parametrize(
    ("mode", "failed", "attempts", "restart"),
    [
        (RestartMode.NO, True, 0, False),
        (RestartMode.ON_FAILURE, True, 0, True),
        (RestartMode.ON_FAILURE, False, 0, False),
        (RestartMode.ALWAYS, False, 0, True),
        (RestartMode.ALWAYS, True, 4, True),
        (RestartMode.ALWAYS, True, 5, False),
    ],
)
def test_decisions(mode: RestartMode, failed: bool, attempts: int, restart: bool) -> None:
    plan = plan_restart(
        RestartPolicy(mode, max_retries=5),
        failed=failed,
        attempts=attempts,
        base_s=1,
        cap_s=30,
        jitter=0.5,
    )
    assert plan.restart is restart


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    on = RestartPolicy(RestartMode.ALWAYS, max_retries=10)

    def delay(attempts: int, jitter: float) -> float:
        kw = {"failed": True, "base_s": 1.0, "cap_s": 8.0}
        return plan_restart(on, attempts=attempts, jitter=jitter, **kw).delay_s  # type: ignore[arg-type]

    assert [delay(n, 0.0) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [delay(n, 0.999999) for n in range(5)] == pytest.approx([1, 2, 4, 8, 8], abs=1e-4)


async def crash(hw: HealthWorld, exit_code: int = 1) -> HealthEvent:
    record = await hw.world.record()
    hw.driver.exit(record.container_id or "", exit_code)
    await hw.monitor().tick()
    return hw.events.events[-1]


async def test_on_failure_restarts_a_crashed_runtime(hw: HealthWorld) -> None:
    first = await hw.world.create(spec=policy("on-failure"))
    scheduler = hw.scheduler()
    handler = hw.applier(on_unreachable=scheduler.on_unreachable)
    await crash(hw, exit_code=3)
    await hw.deliver(handler)
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE
    await scheduler.wait_idle()
    after = await hw.world.record()
    assert after.status is Status.RUNNING
    assert after.container_id != first.container_id
    assert hw.world.is_running(after.container_id)
    restart = (await hw.world.entries())[-1]
    assert (restart.op, restart.op_source, restart.outcome) == (
        OpKind.RESTART,
        OpSource.HEALTH,
        "success",
    )
    assert restart.status_from is Status.ENGINE_UNREACHABLE
    assert restart.reason == "restart_policy on-failure: container_exited"
    assert restart.actor == "system:health"


async def test_on_failure_leaves_a_clean_exit_alone(hw: HealthWorld) -> None:
    await hw.world.create(spec=policy("on-failure"))
    scheduler = hw.scheduler()
    await crash(hw, exit_code=0)
    await hw.deliver(hw.applier(on_unreachable=scheduler.on_unreachable))
    await scheduler.wait_idle()
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE


async def test_always_restarts_a_clean_exit(hw: HealthWorld) -> None:
    await hw.world.create(spec=policy("always"))
    scheduler = hw.scheduler()
    await crash(hw, exit_code=0)
    await hw.deliver(hw.applier(on_unreachable=scheduler.on_unreachable))
    await scheduler.wait_idle()
    assert (await hw.world.record()).status is Status.RUNNING


async def test_no_policy_means_no_restart(hw: HealthWorld) -> None:
    await hw.world.create()
    scheduler = hw.scheduler()
    await crash(hw)
    await hw.deliver(hw.applier(on_unreachable=scheduler.on_unreachable))
    assert scheduler.pending == frozenset()
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE


async def test_it_gives_up_after_max_retries_within_the_window(hw: HealthWorld) -> None:
    await hw.world.create(spec=policy("on-failure", max_retries=2, window_s=60))
    scheduler = hw.scheduler()
    handler = hw.applier(on_unreachable=scheduler.on_unreachable)
    for _ in range(3):
        await crash(hw)
        await hw.deliver(handler)
        await scheduler.wait_idle()
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE
    restarts = [e for e in await hw.world.entries() if e.op is OpKind.RESTART]
    assert len(restarts) == 2
    hw.world.clock.advance(61)  # the window has moved on
    assert await scheduler.on_unreachable(await hw.world.record(), None)
    await scheduler.wait_idle()
    assert (await hw.world.record()).status is Status.RUNNING


async def test_a_runtime_back_before_its_restart_is_not_restarted(hw: HealthWorld) -> None:
    await hw.world.create(spec=policy("always"))
    scheduler = hw.scheduler(backoff_base_s=0.2, backoff_cap_s=0.2)
    await crash(hw)
    await hw.deliver(hw.applier(on_unreachable=scheduler.on_unreachable))
    assert (await hw.world.do(OpKind.RESTART)).ok  # an operator was quicker
    await scheduler.wait_idle()
    restarts = [e for e in await hw.world.entries() if e.op is OpKind.RESTART]
    assert [e.op_source for e in restarts] == [OpSource.REST]


async def test_a_stopped_scheduler_drops_what_still_waits(hw: HealthWorld) -> None:
    await hw.world.create(spec=policy("always"))
    scheduler = hw.scheduler(backoff_base_s=30, backoff_cap_s=30)
    await crash(hw)
    await hw.deliver(hw.applier(on_unreachable=scheduler.on_unreachable))
    assert scheduler.pending == {"rt-1"}
    scheduler.request_stop()
    await scheduler.run()
    assert scheduler.pending == frozenset()
    assert (await hw.world.record()).status is Status.ENGINE_UNREACHABLE


class YieldingOperationLog:
    """The world's operation log, whose reads take a turn of the event loop as
    a database read would."""

    def __init__(self, log: OperationLog) -> None:
        self.log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def list_for_runtime(
        self, runtime_id: str, *, team_id: str | None = None, limit: int = 100
    ) -> list[OperationEntry]:
        await asyncio.sleep(0)
        return await self.log.list_for_runtime(runtime_id, team_id=team_id, limit=limit)


async def test_two_asks_at_once_schedule_one_restart(hw: HealthWorld) -> None:
    """The consumer and the reconciler ask together: the second ask, made while
    the first still reads the restarts in its window, is declined."""
    await hw.world.create(spec=policy("always"))
    await crash(hw)
    await hw.deliver(hw.applier())
    down = await hw.world.record()
    assert down.status is Status.ENGINE_UNREACHABLE
    deps = dataclasses.replace(hw.world.deps, operations=YieldingOperationLog(hw.world.log))
    scheduler = RestartScheduler(
        RestartPolicyService(hw.world.lifecycle, deps, backoff_base_s=0.001, backoff_cap_s=0.01)
    )
    asked = await asyncio.gather(
        scheduler.on_unreachable(down, None), scheduler.on_unreachable(down, None)
    )
    await scheduler.wait_idle()
    assert sorted(asked) == [False, True]
    restarts = [e for e in await hw.world.entries() if e.op is OpKind.RESTART]
    assert len(restarts) == 1
    assert (await hw.world.record()).status is Status.RUNNING


@pytest.fixture
def hw() -> HealthWorld:
    return HealthWorld.build()
