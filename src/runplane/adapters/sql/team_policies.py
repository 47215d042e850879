"""SqlTeamPolicyStore: one row per team an admin gave a policy."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, insert, select

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import team_policies
from runplane.domain.policy import TeamPolicy

_GET = DirectStatement(
    select(team_policies).where(team_policies.c.team_id == bindparam("team_id")),
    returns=tuple(team_policies.c),
)
"""Compiled once: every start a team key asks for reads its team's policy."""


class SqlTeamPolicyStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def get(self, team_id: str) -> TeamPolicy | None:
        parameters = {"team_id": team_id}
        if (native := self._database.native) is not None:
            async with native.reading() as connection:
                row = await _GET.first_native(connection, parameters)
        else:
            row = await self._database.read_point(lambda c: _GET.first(c, parameters))
        if row is None:
            return None
        return TeamPolicy(
            commands=tuple(tuple(template) for template in row["commands"]),
            images=tuple(row["images"]),
            networks=tuple(row["networks"]),
            max_runtimes=row["max_runtimes"],
            max_running=row["max_running"],
        )

    async def put(self, team_id: str, policy: TeamPolicy) -> None:
        values = {"team_id": team_id, **policy.to_document()}

        def work(connection: Connection) -> None:
            # Delete then insert, in one transaction: one upsert on every backend.
            connection.execute(delete(team_policies).where(team_policies.c.team_id == team_id))
            connection.execute(insert(team_policies).values(**values))

        await self._database.write(work)

    async def delete(self, team_id: str) -> bool:
        statement = delete(team_policies).where(team_policies.c.team_id == team_id)
        removed = await self._database.write(
            lambda connection: connection.execute(statement).rowcount
        )
        return bool(removed)
