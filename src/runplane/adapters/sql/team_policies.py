"""SqlTeamPolicyStore: one row per team an admin gave a policy."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import team_policies
from runplane.domain.policy import TeamPolicy


class SqlTeamPolicyStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    async def get(self, team_id: str) -> TeamPolicy | None:
        query = select(team_policies).where(team_policies.c.team_id == team_id)
        row = await self._database.read(
            lambda connection: connection.execute(query).mappings().first()
        )
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
