"""The delivery half of SqlWebhookStore: deliveries, claims and attempts."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, RowMapping, bindparam, delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from runplane.adapters.sql.direct import DirectStatement
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.tables import plain_values
from runplane.adapters.sql.webhook_tables import webhook_attempts, webhook_deliveries
from runplane.domain.webhooks.model import Attempt, Delivery, DeliveryStatus, Trigger

logger = logging.getLogger(__name__)

deliveries = webhook_deliveries
PENDING = DeliveryStatus.PENDING.value

_ANY_DUE = DirectStatement(
    select(deliveries.c.id)
    .where(deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= bindparam("now"))
    .limit(1),
    returns=(deliveries.c.id,),
)
"""Whether a claim would find anything: a point read (on SQLite on the event
loop), so an idle delivery loop's poll costs no write transaction."""


def row_to_delivery(row: RowMapping) -> Delivery:
    values: dict[str, Any] = dict(row)
    values["status"] = DeliveryStatus(values["status"])
    return Delivery(**values)


def row_to_attempt(row: RowMapping) -> Attempt:
    values: dict[str, Any] = dict(row)
    del values["seq"]
    values["trigger"] = Trigger(values["trigger"])
    values["succeeded"] = bool(values["succeeded"])
    return Attempt(**values)


def _state_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "updated_at": delivery.updated_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "last_latency_ms": delivery.last_latency_ms,
    }


class SqlDeliveryStore:
    def __init__(self, database: SqlDatabase) -> None:
        self._database = database

    def _insert_if_absent(self) -> Insert:
        """INSERT ... ON CONFLICT (webhook_id, event_id) DO NOTHING."""
        unique = ["webhook_id", "event_id"]
        if self._database.backend == "postgresql":
            return postgresql.insert(deliveries).on_conflict_do_nothing(index_elements=unique)
        return sqlite.insert(deliveries).on_conflict_do_nothing(index_elements=unique)

    async def add_deliveries(self, new: Sequence[Delivery]) -> int:
        """One transaction; should one insert fail (its webhook deleted meanwhile),
        each delivery is inserted on its own and the failing ones are dropped."""
        if not new:
            return 0
        try:
            async with self._database.writing() as connection:
                return sum([await self._insert(connection, d) for d in new])
        except sa_exc.IntegrityError:
            pass
        added = 0
        for delivery in new:
            try:
                async with self._database.writing() as connection:
                    added += await self._insert(connection, delivery)
            except sa_exc.IntegrityError:
                logger.info(
                    "webhook delivery dropped: its webhook is gone",
                    extra={"webhook_id": delivery.webhook_id, "event_id": delivery.event_id},
                )
        return added

    async def _insert(self, connection: AsyncConnection, delivery: Delivery) -> int:
        result = await connection.execute(
            self._insert_if_absent().values(**plain_values(asdict(delivery)))
        )
        return max(result.rowcount, 0)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        query = select(deliveries).where(deliveries.c.id == delivery_id)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else row_to_delivery(row)

    async def list_deliveries(self, webhook_id: str, *, limit: int = 50) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.webhook_id == webhook_id)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
            .limit(limit)
        )
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [row_to_delivery(row) for row in rows]

    async def attempts_of(self, delivery_ids: Sequence[str]) -> Mapping[str, list[Attempt]]:
        found: dict[str, list[Attempt]] = defaultdict(list)
        if not delivery_ids:
            return found
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_(list(delivery_ids)))
            .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.seq)
        )
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        for row in rows:
            found[row["delivery_id"]].append(row_to_attempt(row))
        return found

    async def claim_due(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Select the due ids, then move them past `lease_until` with an UPDATE
        that checks again that each is still due: on Postgres a concurrent claimer
        waits for the row lock and then finds the row no longer due. Nothing
        due (the idle poll): one read, no transaction."""
        parameters = {"now": now}
        if await self._database.read_point(lambda c: _ANY_DUE.first(c, parameters)) is None:
            return []
        due = (deliveries.c.status == PENDING, deliveries.c.next_attempt_at <= now)
        pick = (
            select(deliveries.c.id)
            .where(*due)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        async with self._database.writing() as connection:
            ids = list((await connection.execute(pick)).scalars())
            if not ids:
                return []
            claim = (
                update(deliveries)
                .where(deliveries.c.id.in_(ids), *due)
                .values(next_attempt_at=lease_until)
                .returning(*deliveries.c)
            )
            rows = (await connection.execute(claim)).mappings().all()
        claimed = {row["id"]: row_to_delivery(row) for row in rows}
        return [claimed[i] for i in ids if i in claimed]

    async def record_attempt(self, delivery: Delivery, attempt: Attempt) -> bool:
        statement = (
            update(deliveries)
            .where(deliveries.c.id == delivery.id, deliveries.c.attempts == attempt.number - 1)
            .values(**_state_values(delivery))
        )
        async with self._database.writing() as connection:
            result = await connection.execute(statement)
            if result.rowcount == 0:
                return False
            await connection.execute(
                insert(webhook_attempts).values(**plain_values(asdict(attempt)))
            )
        return True

    async def abandon(self, delivery_id: str, reason: str, at: datetime) -> None:
        statement = (
            update(deliveries)
            .where(deliveries.c.id == delivery_id, deliveries.c.status == PENDING)
            .values(
                status=DeliveryStatus.ABANDONED.value,
                next_attempt_at=None,
                last_error=reason,
                updated_at=at,
            )
        )
        async with self._database.writing() as connection:
            await connection.execute(statement)

    async def purge_deliveries(self, before: datetime, *, limit: int = 1000) -> int:
        """Attempts go with their deliveries (ON DELETE CASCADE)."""
        old = (
            select(deliveries.c.id)
            .where(deliveries.c.status != PENDING, deliveries.c.updated_at < before)
            .limit(limit)
        )
        statement = delete(deliveries).where(deliveries.c.id.in_(old))
        async with self._database.writing() as connection:
            result = await connection.execute(statement)
        return max(result.rowcount, 0)
