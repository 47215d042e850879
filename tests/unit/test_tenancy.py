"""Teams in the lifecycle services: every call is made for a team, which scopes
its job_id and owns its log entry; a caller learns nothing of a runtime it
cannot see. On the in-memory world (the stores' contract tests hold the SQL
stores to the same job_id semantics)."""

from __future__ import annotations

from runplane.domain.errors import ErrorCode, StoreUnavailable
from runplane.domain.operations import OpKind, OpSource
from runplane.domain.records import RuntimeRecord
from runplane.domain.statuses import Status
from runplane.services.lifecycle.create import CreateRequest
from runplane.streams.entries import StreamEntry
from runplane.testing.jobs import InMemoryJobResults
from runplane.testing.stores import InMemoryRuntimeStore
from runplane.workers.jobs.handler import JobHandler
from tests.support.world import SPEC, World


async def two_teams(world: World) -> None:
    await world.create("alpha:web", team_id="alpha")
    await world.create("beta:web", team_id="beta")


async def test_the_same_job_id_in_two_teams_is_two_operations(world: World) -> None:
    await two_teams(world)
    alpha = await world.do(OpKind.STOP, "alpha:web", job_id="k", team_scope="alpha")
    beta = await world.do(OpKind.STOP, "beta:web", job_id="k", team_scope="beta")
    assert (alpha.error_code, beta.error_code) == (None, None)
    assert alpha.operation_id != beta.operation_id
    assert beta.record is not None
    assert (beta.record.runtime_id, beta.record.status) == ("beta:web", Status.STOPPED)
    alpha_again = await world.do(OpKind.STOP, "alpha:web", job_id="k", team_scope="alpha")
    beta_again = await world.do(OpKind.STOP, "beta:web", job_id="k", team_scope="beta")
    assert (alpha_again.error_code, alpha_again.operation_id) == (
        ErrorCode.REPLAY_NO_OP,
        alpha.operation_id,
    )
    assert (beta_again.error_code, beta_again.operation_id) == (
        ErrorCode.REPLAY_NO_OP,
        beta.operation_id,
    )


async def test_another_teams_job_id_neither_replays_nor_blocks(world: World) -> None:
    """Alpha uses beta's job_id first (on its own runtime): beta's call with it
    still applies, and alpha's repeat answers alpha's own result."""
    await two_teams(world)
    alpha = await world.do(OpKind.STOP, "alpha:web", job_id="beta-k", team_scope="alpha")
    beta = await world.do(OpKind.STOP, "beta:web", job_id="beta-k", team_scope="beta")
    assert beta.error_code is None
    assert beta.record is not None
    assert beta.record.status is Status.STOPPED
    again = await world.do(OpKind.START, "alpha:web", job_id="beta-k", team_scope="alpha")
    assert again.operation_id == alpha.operation_id
    assert again.record is not None
    assert again.record.runtime_id == "alpha:web"  # never beta's record


async def test_a_refused_call_is_logged_for_its_caller(world: World) -> None:
    await two_teams(world)
    refused = await world.do(OpKind.STOP, "beta:web", job_id="k", team_scope="alpha")
    assert (refused.error_code, refused.error_message) == (ErrorCode.NOT_FOUND, "no such runtime")
    assert refused.record is None
    assert refused.operation_id is not None
    entry = await world.log.get(refused.operation_id)
    assert entry is not None
    assert (entry.team_id, entry.status_from, entry.container_id) == ("alpha", None, None)
    betas = await world.log.list_for_runtime("beta:web", team_id="beta")
    every = await world.log.list_for_runtime("beta:web")
    assert refused.operation_id not in {e.operation_id for e in betas}
    assert refused.operation_id in {e.operation_id for e in every}  # an admin sees it
    # Beta's own call with the same job_id is not answered with alpha's refusal.
    beta = await world.do(OpKind.STOP, "beta:web", job_id="k", team_scope="beta")
    assert beta.error_code is None
    assert (await world.record("beta:web")).status is Status.STOPPED


async def test_a_busy_invisible_runtime_answers_like_a_missing_one(world: World) -> None:
    """Beta's runtime has an operation in flight (its lease is held): alpha is
    answered not_found, not conflict, and alpha's call leaves the lease alone."""
    await two_teams(world)
    assert await world.leases.try_acquire("beta:web", "beta-token", 5_000)
    busy = await world.do(OpKind.STOP, "beta:web", team_scope="alpha")
    missing = await world.do(OpKind.STOP, "alpha:nothing", team_scope="alpha")
    assert (busy.error_code, busy.error_message) == (missing.error_code, missing.error_message)
    assert busy.error_code is ErrorCode.NOT_FOUND
    assert await world.leases.release("beta:web", "beta-token")


async def test_an_admin_call_is_made_for_the_runtimes_team(world: World) -> None:
    """An admin's (team_scope None) call with a job_id claims it in the runtime's
    team: beta's own repeat replays it, alpha's same job_id is alpha's own."""
    await two_teams(world)
    admin = await world.do(OpKind.STOP, "beta:web", job_id="k", actor="admin-key")
    assert admin.operation_id is not None
    entry = await world.log.get(admin.operation_id)
    assert entry is not None
    assert entry.team_id == "beta"
    beta = await world.do(OpKind.STOP, "beta:web", job_id="k", team_scope="beta")
    assert (beta.error_code, beta.operation_id) == (ErrorCode.REPLAY_NO_OP, admin.operation_id)
    alpha = await world.do(OpKind.STOP, "alpha:web", job_id="k", team_scope="alpha")
    assert alpha.error_code is None
    assert alpha.operation_id != admin.operation_id


async def test_an_admin_call_on_a_missing_runtime_is_of_no_team(world: World) -> None:
    missing = await world.do(OpKind.STOP, "ghost", job_id="k")
    assert missing.error_code is ErrorCode.NOT_FOUND
    assert missing.operation_id is not None
    entry = await world.log.get(missing.operation_id)
    assert entry is not None
    assert entry.team_id is None
    again = await world.do(OpKind.STOP, "ghost", job_id="k")
    assert (again.error_code, again.operation_id) == (ErrorCode.NOT_FOUND, missing.operation_id)


async def test_system_calls_are_logged_in_the_runtimes_team(world: World) -> None:
    await two_teams(world)
    result = await world.do(OpKind.STOP, "beta:web", op_source=OpSource.RECONCILER)
    assert result.operation_id is not None
    entry = await world.log.get(result.operation_id)
    assert entry is not None
    assert entry.team_id == "beta"


async def test_a_stream_job_of_another_team_is_not_found_and_logged_for_it(
    world: World,
) -> None:
    await two_teams(world)
    result = await world.do(
        OpKind.STOP,
        "beta:web",
        op_source=OpSource.STREAM,
        job_id="runtime:stop_jobs/1-0",
        team_scope="alpha",
        lease_wait_ms=100,
    )
    assert result.error_code is ErrorCode.NOT_FOUND
    assert result.operation_id is not None
    entry = await world.log.get(result.operation_id)
    assert entry is not None
    assert entry.team_id == "alpha"
    assert (await world.record("beta:web")).status is Status.RUNNING


async def test_a_create_in_a_bad_team_is_refused(world: World) -> None:
    for team in ("", "a:b", "a b", "x" * 65):
        result = await world.lifecycle.create.handle(
            CreateRequest(spec=SPEC, op_source=OpSource.REST, team_id=team)
        )
        assert result.error_code is ErrorCode.INVALID_REQUEST, team
    assert (await world.runtimes.list()).records == []


async def test_a_replay_never_hands_over_a_runtime_the_caller_cannot_see(world: World) -> None:
    """Alpha's job_id first named beta's runtime (refused); its repeat naming
    alpha's own runtime replays that refusal, without beta's record."""
    await two_teams(world)
    await world.do(OpKind.STOP, "beta:web", job_id="k", team_scope="alpha")
    again = await world.do(OpKind.STOP, "alpha:web", job_id="k", team_scope="alpha")
    assert again.error_code is ErrorCode.NOT_FOUND
    assert again.record is None
    assert (await world.record("alpha:web")).status is Status.RUNNING


def stop_jobs(world: World, results: InMemoryJobResults) -> JobHandler:
    return JobHandler(
        OpKind.STOP, world.lifecycle, world.runtimes, results, world.clock, 0, max_deliveries=3
    )


async def test_stream_jobs_of_two_teams_may_share_a_job_id(world: World) -> None:
    await two_teams(world)
    results = InMemoryJobResults()
    handle = stop_jobs(world, results)
    for entry_id, team in (("1-0", "alpha"), ("2-0", "beta")):
        fields = {"runtime_id": f"{team}:web", "reason": "idle", "job_id": "k", "team_id": team}
        await handle(StreamEntry("runtime:stop_jobs", entry_id, fields, 1, False))
    assert [(r.error_code, r.status) for r in results.results] == [(None, "stopped")] * 2
    assert (await world.record("beta:web")).status is Status.STOPPED


async def test_a_stream_job_id_that_breaks_the_rule_gets_invalid_request(world: World) -> None:
    await two_teams(world)
    results = InMemoryJobResults()
    fields = {"runtime_id": "beta:web", "reason": "idle", "job_id": "a b"}
    await stop_jobs(world, results)(StreamEntry("runtime:stop_jobs", "1-0", fields, 1, False))
    [result] = results.results
    assert (result.job_id, result.error_code) == ("a b", ErrorCode.INVALID_REQUEST)
    assert "job_id" in result.error_message
    assert (await world.record("beta:web")).status is Status.RUNNING


class DownRuntimes(InMemoryRuntimeStore):
    """A runtime store whose reads fail: the database went away."""

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        raise StoreUnavailable("database unavailable")


async def test_a_team_call_with_the_store_down_is_retryable_and_logged() -> None:
    world = World.build(store=DownRuntimes)
    result = await world.do(OpKind.STOP, "alpha:web", job_id="k", team_scope="alpha")
    assert result.error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert result.operation_id is not None
    entry = await world.log.get(result.operation_id)
    assert entry is not None
    assert (entry.team_id, entry.job_id, entry.details["job_id"]) == ("alpha", None, "k")


class CountedReads(InMemoryRuntimeStore):
    """A runtime store that counts its reads."""

    reads = 0

    async def get(self, runtime_id: str) -> RuntimeRecord | None:
        self.reads += 1
        return await super().get(runtime_id)


async def test_a_teams_own_runtime_is_screened_from_memory_and_no_other() -> None:
    # A team never changes: once read, a team's own call goes to its lease with
    # one read (the load under it). Another team's is read each time, as a
    # missing runtime is: refused from memory it would be answered sooner.
    world = World.build(store=CountedReads)
    store = world.runtimes
    assert isinstance(store, CountedReads)
    await two_teams(world)  # each create's start screened its runtime: read there
    store.reads = 0
    assert (await world.do(OpKind.STOP, "beta:web", team_scope="beta")).ok
    assert store.reads == 1  # the load under the lease only
    assert (await world.do(OpKind.START, "beta:web", team_scope="beta")).ok
    assert store.reads == 2
    for _ in range(2):
        refused = await world.do(OpKind.STOP, "beta:web", team_scope="alpha")
        assert refused.error_code is ErrorCode.NOT_FOUND
    assert store.reads == 4
    # A runtime not found is read again each time: it may be created meanwhile.
    assert (await world.do(OpKind.STOP, "alpha:new", team_scope="alpha")).error_code is (
        ErrorCode.NOT_FOUND
    )
    await world.create("alpha:new", team_id="alpha")
    assert (await world.do(OpKind.STOP, "alpha:new", team_scope="alpha")).ok
    assert (await world.record("beta:web")).status is Status.RUNNING
