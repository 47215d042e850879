"""SqlWebhookStore: webhooks (secrets encrypted by a SecretBox), deliveries and
their attempts, on SQLite or Postgres."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, delete, func, insert, literal, or_, select, update
from sqlalchemy import exc as sa_exc

from runplane.adapters.secrets import SecretBox
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import UtcDateTime
from runplane.adapters.sql.webhook_deliveries import SqlDeliveryStore
from runplane.adapters.sql.webhook_tables import webhooks
from runplane.domain.webhooks.model import Webhook


def row_to_webhook(row: RowMapping) -> Webhook:
    return Webhook(
        id=row["id"],
        team_id=row["team_id"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
    )


def _mutable_values(webhook: Webhook) -> dict[str, Any]:
    return {
        "url": webhook.url,
        "event_types": list(webhook.event_types),
        "enabled": webhook.enabled,
        "updated_at": webhook.updated_at,
        "disabled_reason": webhook.disabled_reason,
        "failing_since": webhook.failing_since,
    }


_COLUMNS = [c for c in webhooks.c if c.name != "secret_encrypted"]
_ORDER = (webhooks.c.created_at, webhooks.c.id)


class SqlWebhookStore(SqlDeliveryStore):
    """Implements services.webhook_model.WebhookStore."""

    def __init__(self, database: SqlDatabase, secrets: SecretBox) -> None:
        super().__init__(database)
        self._secrets = secrets

    async def add(self, webhook: Webhook, secret: str) -> None:
        """Raises ValueError when the id is taken."""
        values = {
            "id": webhook.id,
            "team_id": webhook.team_id,
            "created_at": webhook.created_at,
            "secret_encrypted": self._secrets.encrypt(secret),
            **_mutable_values(webhook),
        }
        try:
            async with self._database.writing() as connection:
                await connection.execute(insert(webhooks).values(**values))
        except sa_exc.IntegrityError as exc:
            raise ValueError(f"webhook {webhook.id!r} already exists") from exc

    async def get(self, webhook_id: str) -> Webhook | None:
        query = select(*_COLUMNS).where(webhooks.c.id == webhook_id)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else row_to_webhook(row)

    async def list_webhooks(self, *, team_id: str | None = None) -> list[Webhook]:
        query = select(*_COLUMNS).order_by(*_ORDER)
        if team_id is not None:
            query = query.where(webhooks.c.team_id == team_id)
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [row_to_webhook(row) for row in rows]

    async def update(self, webhook: Webhook) -> Webhook | None:
        statement = (
            update(webhooks)
            .where(webhooks.c.id == webhook.id)
            .values(**_mutable_values(webhook))
            .returning(*_COLUMNS)
        )
        async with self._database.writing() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else row_to_webhook(row)

    async def delete(self, webhook_id: str) -> bool:
        """Deliveries and attempts go with it (ON DELETE CASCADE)."""
        async with self._database.writing() as connection:
            result = await connection.execute(delete(webhooks).where(webhooks.c.id == webhook_id))
        return result.rowcount > 0

    async def secret(self, webhook_id: str) -> str | None:
        query = select(webhooks.c.secret_encrypted).where(webhooks.c.id == webhook_id)
        async with self._database.reading() as connection:
            token = await connection.scalar(query)
        return None if token is None else self._secrets.decrypt(token)

    async def matching(self, team_id: str | None) -> list[Webhook]:
        teams: ColumnElement[bool] = webhooks.c.team_id.is_(None)
        if team_id is not None:
            teams = or_(teams, webhooks.c.team_id == team_id)
        query = select(*_COLUMNS).where(webhooks.c.enabled.is_(True), teams).order_by(*_ORDER)
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [row_to_webhook(row) for row in rows]

    async def note_success(self, webhook_id: str) -> None:
        statement = (
            update(webhooks)
            .where(webhooks.c.id == webhook_id, webhooks.c.failing_since.is_not(None))
            .values(failing_since=None)
        )
        async with self._database.writing() as connection:
            await connection.execute(statement)

    async def note_failure(self, webhook_id: str, at: datetime) -> datetime | None:
        statement = (
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .values(failing_since=func.coalesce(webhooks.c.failing_since, literal(at, UtcDateTime)))
            .returning(webhooks.c.failing_since)
        )
        async with self._database.writing() as connection:
            since: datetime | None = (await connection.execute(statement)).scalar()
        return since

    async def disable(self, webhook_id: str, reason: str, at: datetime) -> bool:
        statement = (
            update(webhooks)
            .where(webhooks.c.id == webhook_id, webhooks.c.enabled.is_(True))
            .values(enabled=False, disabled_reason=reason, updated_at=at)
        )
        async with self._database.writing() as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0
