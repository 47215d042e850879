"""RuntimeStore.get_for_job: the record and whether a job_id is claimed in the
record's team, read together; every backend answers alike."""

from __future__ import annotations

from tests.support.store_backends import (
    InMemoryBackend,
    PostgresBackend,
    SqliteBackend,
    Stores,
    make_entry,
    make_record,
)


class GetForJobContract:
    async def test_the_record_and_an_unclaimed_job_id(self, stores: Stores) -> None:
        record = make_record(spec={"command": ["a"], "n": 1})
        await stores.runtimes.create(record)
        assert await stores.runtimes.get_for_job("rt-1", "job-1") == (record, False)

    async def test_a_job_id_claimed_in_the_records_team(self, stores: Stores) -> None:
        record = make_record(team_id="team-a")
        await stores.runtimes.create(record)
        await stores.operations.append(make_entry("op-1", team_id="team-a", job_id="job-1"))
        assert await stores.runtimes.get_for_job("rt-1", "job-1") == (record, True)
        assert await stores.runtimes.get_for_job("rt-1", "job-2") == (record, False)

    async def test_another_teams_claim_is_not_this_records(self, stores: Stores) -> None:
        record = make_record(team_id="team-a")
        await stores.runtimes.create(record)
        await stores.operations.append(make_entry("op-1", team_id="team-b", job_id="job-1"))
        await stores.operations.append(make_entry("op-2", team_id=None, job_id="job-1"))
        assert await stores.runtimes.get_for_job("rt-1", "job-1") == (record, False)

    async def test_no_record_looks_among_the_calls_of_no_team(self, stores: Stores) -> None:
        await stores.operations.append(make_entry("op-1", team_id="team-a", job_id="job-1"))
        assert await stores.runtimes.get_for_job("gone", "job-1") == (None, False)
        await stores.operations.append(make_entry("op-2", team_id=None, job_id="job-1"))
        assert await stores.runtimes.get_for_job("gone", "job-1") == (None, True)


class TestInMemoryGetForJob(InMemoryBackend, GetForJobContract):
    pass


class TestSqliteGetForJob(SqliteBackend, GetForJobContract):
    pass


class TestPostgresGetForJob(PostgresBackend, GetForJobContract):
    pass
