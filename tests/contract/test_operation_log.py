"""OperationLog contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from runplane.domain.errors import DuplicateJobId, ErrorCode
from runplane.domain.operations import OpKind, OpSource, Outcome
from tests.support.store_backends import (
    T0,
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
    make_entry,
)


class OperationLogContract:
    """Every OperationLog backend passes these. A subclass mixes in a backend from
    tests.support.store_backends, which provides the `stores` fixture."""

    async def test_append_then_get_returns_the_entry(self, stores: Stores) -> None:
        entry = make_entry(job_id="job-1", details={"exit_code": 0, "tags": ["a"], "x": None})
        await stores.operations.append(entry)
        assert await stores.operations.get("op-1") == entry

    async def test_a_failure_round_trips_its_code_and_empty_fields(self, stores: Stores) -> None:
        entry = make_entry(
            op=OpKind.START,
            op_source=OpSource.STREAM,
            outcome=Outcome.FAILURE,
            error_code=ErrorCode.INVALID_STATE,
            error_message="running may move to stopping, not to starting",
            status_from=None,
            status_to=None,
            container_id=None,
            team_id=None,
        )
        await stores.operations.append(entry)
        assert await stores.operations.get("op-1") == entry

    async def test_unknown_ids_are_none(self, stores: Stores) -> None:
        assert await stores.operations.get("nope") is None
        assert await stores.operations.find_by_job_id("team-a", "nope") is None
        assert await stores.operations.find_by_job_id(None, "nope") is None
        assert await stores.operations.list_for_runtime("nope") == []

    async def test_find_by_job_id(self, stores: Stores) -> None:
        await stores.operations.append(make_entry("op-1", job_id="job-1"))
        await stores.operations.append(make_entry("op-2", job_id="job-2"))
        found = await stores.operations.find_by_job_id("team-a", "job-2")
        assert found is not None
        assert found.operation_id == "op-2"
        assert await stores.operations.find_by_job_id("team-b", "job-2") is None
        assert await stores.operations.find_by_job_id(None, "job-2") is None

    async def test_a_taken_job_id_is_refused_and_the_first_kept(self, stores: Stores) -> None:
        first = make_entry("op-1", job_id="job-1")
        await stores.operations.append(first)
        with pytest.raises(DuplicateJobId) as raised:
            await stores.operations.append(make_entry("op-2", job_id="job-1"))
        assert raised.value.job_id == "job-1"
        assert await stores.operations.find_by_job_id("team-a", "job-1") == first
        assert await stores.operations.get("op-2") is None

    async def test_the_same_job_id_in_two_teams_is_two_operations(self, stores: Stores) -> None:
        alpha = make_entry("op-a", job_id="job-1", team_id="alpha", outcome=Outcome.SUCCESS)
        beta = make_entry(
            "op-b",
            job_id="job-1",
            team_id="beta",
            outcome=Outcome.FAILURE,
            error_code=ErrorCode.NOT_FOUND,
            error_message="no such runtime",
        )
        await stores.operations.append(alpha)
        await stores.operations.append(beta)
        assert await stores.operations.find_by_job_id("alpha", "job-1") == alpha
        assert await stores.operations.find_by_job_id("beta", "job-1") == beta
        with pytest.raises(DuplicateJobId):
            await stores.operations.append(make_entry("op-b2", job_id="job-1", team_id="beta"))
        assert await stores.operations.get("op-b2") is None

    async def test_calls_of_no_team_claim_job_ids_among_themselves(self, stores: Stores) -> None:
        """An entry without a team (an admin's call on a runtime that does not
        exist) claims its job_id too, in a namespace of its own."""
        first = make_entry("op-1", job_id="job-1", team_id=None)
        await stores.operations.append(first)
        with pytest.raises(DuplicateJobId):
            await stores.operations.append(make_entry("op-2", job_id="job-1", team_id=None))
        assert await stores.operations.find_by_job_id(None, "job-1") == first
        assert await stores.operations.find_by_job_id("team-a", "job-1") is None
        teamed = make_entry("op-3", job_id="job-1")
        await stores.operations.append(teamed)
        assert await stores.operations.find_by_job_id("team-a", "job-1") == teamed

    async def test_the_list_keeps_to_a_team_when_asked(self, stores: Stores) -> None:
        await stores.operations.append(make_entry("op-a1", team_id="alpha"))
        await stores.operations.append(make_entry("op-b", team_id="beta"))
        await stores.operations.append(make_entry("op-none", team_id=None))
        await stores.operations.append(make_entry("op-a2", team_id="alpha"))
        every = await stores.operations.list_for_runtime("rt-1")
        assert {e.operation_id for e in every} == {"op-a1", "op-b", "op-none", "op-a2"}
        alphas = await stores.operations.list_for_runtime("rt-1", team_id="alpha")
        assert [e.operation_id for e in alphas] == ["op-a2", "op-a1"]
        limited = await stores.operations.list_for_runtime("rt-1", team_id="alpha", limit=1)
        assert [e.operation_id for e in limited] == ["op-a2"]

    async def test_entries_without_job_id_do_not_collide(self, stores: Stores) -> None:
        await stores.operations.append(make_entry("op-1"))
        await stores.operations.append(make_entry("op-2"))
        assert len(await stores.operations.list_for_runtime("rt-1")) == 2

    async def test_list_is_newest_first_then_latest_appended(self, stores: Stores) -> None:
        at = [T0 + timedelta(seconds=n) for n in range(3)]
        appended = [("op-a", at[1]), ("op-b", at[0]), ("op-c", at[2]), ("op-d", at[1])]
        for operation_id, finished_at in appended:
            await stores.operations.append(make_entry(operation_id, finished_at=finished_at))
        await stores.operations.append(make_entry("op-other", runtime_id="rt-2"))
        entries = await stores.operations.list_for_runtime("rt-1")
        assert [e.operation_id for e in entries] == ["op-c", "op-d", "op-a", "op-b"]
        limited = await stores.operations.list_for_runtime("rt-1", limit=2)
        assert [e.operation_id for e in limited] == ["op-c", "op-d"]

    async def test_datetimes_come_back_aware_utc(self, stores: Stores) -> None:
        minus_five = timezone(timedelta(hours=-5))
        await stores.operations.append(make_entry(finished_at=T0.astimezone(minus_five)))
        entry = await stores.operations.get("op-1")
        assert entry is not None
        assert entry.finished_at == T0
        assert entry.finished_at.utcoffset() == timedelta(0)
        assert entry.started_at.tzinfo is not None


class TestInMemoryOperationLog(InMemoryBackend, OperationLogContract):
    pass


class TestSqliteOperationLog(SqliteBackend, OperationLogContract):
    pass


class TestPostgresOperationLog(PostgresBackend, OperationLogContract):
    pass
