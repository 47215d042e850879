"""Admission (services/admission.py) through the lifecycle, on fakes: a refusal
writes one operation-log entry and changes nothing else; quotas count."""

from __future__ import annotations

from typing import Any

import pytest

from runplane.domain.errors import ErrorCode
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.policy import TeamPolicy
from runplane.domain.results import OperationResult
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.testing.team_policies import InMemoryTeamPolicyStore
from tests.support.world import World

SLEEP = {"command": ["/bin/sleep", "300"]}
CAT_KEY = {"command": ["/bin/cat", "/var/lib/runplane/admin.key"]}
ALLOW_SLEEP = TeamPolicy(commands=(("/bin/sleep", "*"),))


@pytest.fixture
def policies() -> InMemoryTeamPolicyStore:
    return InMemoryTeamPolicyStore()


@pytest.fixture
def world(policies: InMemoryTeamPolicyStore) -> World:
    return World.build(policies=policies)


async def create(
    world: World,
    runtime_id: str,
    spec: dict[str, Any] = SLEEP,
    *,
    restricted: bool = True,
    start: bool = True,
    source: OpSource = OpSource.REST,
    job_id: str | None = None,
) -> OperationResult:
    return await world.lifecycle.create.handle(
        CreateRequest(
            spec=spec,
            op_source=source,
            runtime_id=runtime_id,
            team_id="alpha",
            start=start,
            actor="k-alpha",
            job_id=job_id,
            restricted=restricted,
        )
    )


async def test_a_team_without_a_policy_may_create_nothing(world: World) -> None:
    result = await create(world, "r1")
    assert result.error_code is ErrorCode.FORBIDDEN
    assert "no policy" in result.error_message
    assert await world.runtimes.get("r1") is None
    assert world.driver.calls["start"] == 0
    [entry] = await world.entries("r1")
    assert (entry.op, entry.outcome, entry.error_code) == (OpKind.START, "failure", "forbidden")
    assert (entry.team_id, entry.reason, entry.actor) == ("alpha", "create", "k-alpha")
    assert entry.operation_id == result.operation_id


async def test_a_spec_outside_the_policy_is_forbidden(
    world: World, policies: InMemoryTeamPolicyStore
) -> None:
    await policies.put("alpha", ALLOW_SLEEP)
    refused = await create(world, "r1", CAT_KEY)
    assert refused.error_code is ErrorCode.FORBIDDEN
    assert "matches none" in refused.error_message
    assert await world.runtimes.get("r1") is None
    allowed = await create(world, "r2")
    assert allowed.ok
    assert allowed.record is not None
    assert allowed.record.status is Status.RUNNING


async def test_admin_and_stream_callers_are_not_held_to_the_policy(world: World) -> None:
    assert (await create(world, "r1", CAT_KEY, restricted=False)).ok
    assert (await create(world, "r2", CAT_KEY, restricted=False, source=OpSource.STREAM)).ok


async def test_a_start_or_patch_with_a_forbidden_spec_changes_nothing(
    world: World, policies: InMemoryTeamPolicyStore
) -> None:
    await policies.put("alpha", ALLOW_SLEEP)
    assert (await create(world, "r1")).ok
    before = await world.record("r1")
    entries = len(await world.entries("r1"))
    patched = await world.do(OpKind.PATCH, "r1", spec=CAT_KEY, restricted=True)
    await world.do(OpKind.STOP, "r1")
    stopped = await world.record("r1")
    started = await world.do(OpKind.START, "r1", spec=CAT_KEY, restricted=True)
    assert patched.error_code is ErrorCode.FORBIDDEN
    assert started.error_code is ErrorCode.FORBIDDEN
    assert (await world.record("r1")) == stopped
    assert stopped.spec == before.spec
    after = await world.entries("r1")
    assert len(after) == entries + 3  # patch refused, stop, start refused
    assert [e.error_code for e in after[-3:]] == ["forbidden", None, "forbidden"]
    assert (after[-1].status_from, after[-1].status_to) == (Status.STOPPED, Status.STOPPED)


async def test_a_team_start_holds_the_stored_spec_to_todays_policy(
    world: World, policies: InMemoryTeamPolicyStore
) -> None:
    await policies.put("alpha", ALLOW_SLEEP)
    assert (await create(world, "r1")).ok
    await world.do(OpKind.STOP, "r1")
    await policies.put("alpha", TeamPolicy(commands=(("/bin/true",),)))
    refused = await world.do(OpKind.START, "r1", restricted=True)
    assert refused.error_code is ErrorCode.FORBIDDEN
    assert (await world.record("r1")).status is Status.STOPPED
    assert (await world.do(OpKind.START, "r1")).ok  # an admin (unrestricted) still may


async def test_spec_documents_are_limited_for_every_caller(world: World) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    result = await create(
        world, "r1", {"command": ["/bin/sleep", "1"], "health": deep}, restricted=False
    )
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "nested deeper" in result.error_message
    assert (await create(world, "r2", restricted=False)).ok
    patched = await world.do(OpKind.PATCH, "r2", spec={"command": ["\ud800"]})
    assert patched.error_code is ErrorCode.INVALID_REQUEST


async def test_max_runtimes_counts_records_not_removed(
    world: World, policies: InMemoryTeamPolicyStore
) -> None:
    await policies.put("alpha", TeamPolicy(max_runtimes=2))
    assert (await create(world, "r1", restricted=False)).ok
    assert (await create(world, "r2", restricted=False, start=False)).ok
    third = await create(world, "r3", restricted=False, job_id="job-3")
    assert third.error_code is ErrorCode.QUOTA_EXCEEDED
    assert third.error_message.startswith("quota max_runtimes")
    assert await world.runtimes.get("r3") is None
    assert (await world.do(OpKind.REMOVE, "r1")).ok
    again = await create(world, "r3", restricted=False, job_id="job-3")
    assert again.ok  # quota_exceeded did not claim the job id


async def test_max_running_counts_live_runtimes_and_paused_ones(
    world: World, policies: InMemoryTeamPolicyStore
) -> None:
    await policies.put("alpha", TeamPolicy(max_running=2))
    assert (await create(world, "r1", restricted=False)).ok
    assert (await create(world, "r2", restricted=False)).ok
    assert (await world.do(OpKind.PAUSE, "r2")).ok
    full = await create(world, "r3", restricted=False)
    assert full.error_code is ErrorCode.QUOTA_EXCEEDED
    assert full.error_message.startswith("quota max_running")
    assert await world.runtimes.get("r3") is None
    assert (await world.do(OpKind.RESTART, "r1")).ok  # already counted
    assert (await world.do(OpKind.RESUME, "r2")).ok
    assert (await create(world, "r3", restricted=False, start=False)).ok
    refused = await world.do(OpKind.START, "r3")
    assert refused.error_code is ErrorCode.QUOTA_EXCEEDED
    assert (await world.record("r3")).status is Status.PENDING
    assert (await world.do(OpKind.STOP, "r1")).ok
    assert (await world.do(OpKind.START, "r3")).ok


async def test_runplanes_own_restarts_do_not_count(
    world: World, policies: InMemoryTeamPolicyStore
) -> None:
    await policies.put("alpha", TeamPolicy(max_running=1))
    assert (await create(world, "r1", restricted=False)).ok
    assert (await create(world, "r2", restricted=False, start=False)).ok
    by_stream = await world.do(OpKind.START, "r2", op_source=OpSource.STREAM)
    by_health = await world.do(OpKind.START, "r2", op_source=OpSource.HEALTH)
    assert by_stream.error_code is ErrorCode.QUOTA_EXCEEDED
    assert by_health.ok


class CountingPolicies(InMemoryTeamPolicyStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, team_id: str) -> TeamPolicy | None:
        self.reads += 1
        return await super().get(team_id)


async def test_a_team_stop_reads_no_policy_and_its_start_reads_one() -> None:
    policies = CountingPolicies()
    world = World.build(policies=policies)
    await policies.put("alpha", ALLOW_SLEEP)
    assert (await create(world, "r1")).ok
    team_call = {"team_scope": "alpha", "restricted": True, "actor": "k-alpha"}

    before = policies.reads
    assert (await world.do(OpKind.STOP, "r1", **team_call)).ok
    assert policies.reads == before  # nothing a policy could refuse

    assert (await world.do(OpKind.START, "r1", **team_call)).ok
    assert policies.reads == before + 1  # the stored spec held to today's policy
