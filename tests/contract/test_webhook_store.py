"""WebhookStore contract: the in-memory fake, SQLite and Postgres answer alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import select

from runplane.adapters.secrets import SecretBox
from runplane.adapters.sql.engine import SqlDatabase
from runplane.adapters.sql.webhook_store import SqlWebhookStore
from runplane.adapters.sql.webhook_tables import webhooks as webhooks_table
from runplane.domain.webhooks.model import Attempt, DeliveryStatus, Trigger
from runplane.ports.webhooks import WebhookStore
from runplane.testing.webhooks import InMemoryWebhookStore
from tests.support.postgres import PostgresServer
from tests.support.store_backends import (
    T0,
    empty_tables,
    migrated_postgres_url,
    migrated_sqlite_url,
)
from tests.support.webhooks import make_delivery, make_webhook

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"


def attempt_of(delivery_id: str, number: int, **changes: object) -> Attempt:
    values: dict[str, object] = {
        "delivery_id": delivery_id,
        "webhook_id": "wh-1",
        "number": number,
        "trigger": Trigger.SCHEDULED,
        "attempted_at": T0 + timedelta(seconds=number),
        "succeeded": False,
        "latency_ms": 12,
        "status_code": 500,
        "error": "HTTP 500",
    }
    values.update(changes)
    return Attempt(**values)  # type: ignore[arg-type]


class WebhookStoreContract:
    """A subclass provides the `store` fixture (an empty store)."""

    async def test_webhooks_are_added_got_listed_and_updated(self, store: WebhookStore) -> None:
        first = make_webhook("wh-1", at=T0, event_types=("runtime.start", "runtime.stop"))
        second = make_webhook("wh-2", at=T0 + timedelta(seconds=1), team_id=None)
        third = make_webhook("wh-3", at=T0 + timedelta(seconds=2), team_id="team-b")
        for webhook in (third, first, second):
            await store.add(webhook, SECRET)
        assert await store.get("wh-1") == first
        assert await store.get("wh-nope") is None
        assert await store.list_webhooks() == [first, second, third]
        assert await store.list_webhooks(team_id="team-b") == [third]
        changed = replace(
            first,
            url="https://other.example.com/",
            event_types=(),
            enabled=False,
            disabled_reason="by request",
            failing_since=T0,
            updated_at=T0 + timedelta(minutes=1),
        )
        assert await store.update(changed) == changed
        assert await store.get("wh-1") == changed
        assert await store.update(make_webhook("wh-nope")) is None

    async def test_a_taken_id_is_refused(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        with pytest.raises(ValueError, match="already exists"):
            await store.add(make_webhook("wh-1", at=T0, team_id="team-b"), SECRET)

    async def test_secrets_come_back(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        assert await store.secret("wh-1") == SECRET
        assert await store.secret("wh-nope") is None

    async def test_matching_finds_enabled_webhooks_of_the_team_or_every_team(
        self, store: WebhookStore
    ) -> None:
        await store.add(make_webhook("wh-a", at=T0), SECRET)
        await store.add(make_webhook("wh-all", at=T0 + timedelta(seconds=1), team_id=None), SECRET)
        await store.add(make_webhook("wh-b", at=T0, team_id="team-b"), SECRET)
        await store.add(make_webhook("wh-off", at=T0, enabled=False), SECRET)
        assert [w.id for w in await store.matching("team-a")] == ["wh-a", "wh-all"]
        assert [w.id for w in await store.matching(None)] == ["wh-all"]

    async def test_failure_streaks_and_disabling(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        assert await store.note_failure("wh-1", T0) == T0
        assert await store.note_failure("wh-1", T0 + timedelta(hours=1)) == T0
        assert await store.note_failure("wh-nope", T0) is None
        await store.note_success("wh-1")
        assert (await store.get("wh-1")).failing_since is None  # type: ignore[union-attr]
        later = T0 + timedelta(hours=2)
        assert await store.disable("wh-1", "gone", later)
        assert not await store.disable("wh-1", "gone again", later)
        disabled = await store.get("wh-1")
        assert disabled is not None
        assert (disabled.enabled, disabled.disabled_reason, disabled.updated_at) == (
            False,
            "gone",
            later,
        )

    async def test_deliveries_are_added_once_per_webhook_and_event(
        self, store: WebhookStore
    ) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        first = make_delivery("dlv-1", at=T0, event_id="evt-1")
        again = make_delivery("dlv-2", at=T0, event_id="evt-1")
        other = make_delivery("dlv-3", at=T0 + timedelta(seconds=1), event_id="evt-2")
        orphan = make_delivery("dlv-4", webhook_id="wh-gone", at=T0, event_id="evt-1")
        assert await store.add_deliveries([first, again]) == 1
        assert await store.add_deliveries([other, first, orphan]) == 1
        assert await store.get_delivery("dlv-1") == first
        assert await store.get_delivery("dlv-2") is None
        assert await store.get_delivery("dlv-4") is None
        assert await store.list_deliveries("wh-1") == [other, first]
        assert await store.list_deliveries("wh-1", limit=1) == [other]

    async def test_claims_take_due_pending_deliveries_in_order(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        await store.add_deliveries(
            [
                make_delivery("dlv-late", at=T0, next_attempt_at=T0 + timedelta(seconds=2)),
                make_delivery("dlv-b", at=T0, next_attempt_at=T0),
                make_delivery("dlv-a", at=T0, next_attempt_at=T0 - timedelta(seconds=1)),
                make_delivery("dlv-c", at=T0, next_attempt_at=T0),
                make_delivery("dlv-done", at=T0, status=DeliveryStatus.SUCCEEDED),
                make_delivery("dlv-test", at=T0, next_attempt_at=None),
            ]
        )
        lease = T0 + timedelta(minutes=1)
        claimed = await store.claim_due(T0, lease_until=lease, limit=2)
        assert [d.id for d in claimed] == ["dlv-a", "dlv-b"]
        assert all(d.next_attempt_at == lease for d in claimed)
        assert [d.id for d in await store.claim_due(T0, lease_until=lease, limit=10)] == ["dlv-c"]
        assert await store.claim_due(T0, lease_until=lease, limit=10) == []
        later = await store.claim_due(T0 + timedelta(minutes=1), lease_until=lease, limit=10)
        assert [d.id for d in later] == ["dlv-late", "dlv-a", "dlv-b", "dlv-c"]  # by due time

    async def test_concurrent_claims_never_share_a_delivery(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        await store.add_deliveries(
            [make_delivery(f"dlv-{n:02d}", at=T0, event_id=f"evt-{n}") for n in range(40)]
        )
        lease = T0 + timedelta(minutes=1)
        rounds = await asyncio.gather(
            *(store.claim_due(T0, lease_until=lease, limit=15) for _ in range(4))
        )
        claimed = [d.id for batch in rounds for d in batch]
        assert len(set(claimed)) == len(claimed)
        # Claimers that lost a race come back empty-handed; the rest stays due.
        rest = await store.claim_due(T0, lease_until=lease, limit=40)
        assert sorted(claimed + [d.id for d in rest]) == [f"dlv-{n:02d}" for n in range(40)]

    async def test_attempts_are_recorded_over_the_expected_count(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        delivery = make_delivery("dlv-1", at=T0)
        await store.add_deliveries([delivery, make_delivery("dlv-2", at=T0, event_id="evt-2")])
        retry_at = T0 + timedelta(seconds=5)
        failed = replace(
            delivery,
            attempts=1,
            next_attempt_at=retry_at,
            updated_at=T0 + timedelta(seconds=1),
            last_status_code=500,
            last_error="HTTP 500",
            last_latency_ms=12,
        )
        assert await store.record_attempt(failed, attempt_of("dlv-1", 1))
        assert not await store.record_attempt(failed, attempt_of("dlv-1", 1))  # lost the race
        done = replace(failed, status=DeliveryStatus.SUCCEEDED, attempts=2, next_attempt_at=None)
        ok = attempt_of(
            "dlv-1", 2, succeeded=True, status_code=200, error=None, trigger=Trigger.MANUAL
        )
        assert await store.record_attempt(done, ok)
        assert await store.get_delivery("dlv-1") == done
        attempts = await store.attempts_of(["dlv-1", "dlv-2", "dlv-nope"])
        assert attempts["dlv-1"] == [attempt_of("dlv-1", 1), ok]
        assert attempts.get("dlv-2", []) == []
        assert await store.attempts_of([]) == {}

    async def test_abandon_only_touches_pending_deliveries(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        await store.add_deliveries(
            [
                make_delivery("dlv-1", at=T0),
                make_delivery("dlv-2", at=T0, event_id="e2", status=DeliveryStatus.SUCCEEDED),
            ]
        )
        later = T0 + timedelta(seconds=3)
        await store.abandon("dlv-1", "webhook disabled", later)
        await store.abandon("dlv-2", "webhook disabled", later)
        abandoned = await store.get_delivery("dlv-1")
        assert abandoned is not None
        assert (abandoned.status, abandoned.next_attempt_at, abandoned.last_error) == (
            DeliveryStatus.ABANDONED,
            None,
            "webhook disabled",
        )
        assert (await store.get_delivery("dlv-2")).status is DeliveryStatus.SUCCEEDED  # type: ignore[union-attr]

    async def test_delete_takes_deliveries_and_attempts_along(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        await store.add(make_webhook("wh-2", at=T0), SECRET)
        kept = make_delivery("dlv-2", webhook_id="wh-2", at=T0)
        await store.add_deliveries([make_delivery("dlv-1", at=T0), kept])
        await store.record_attempt(
            replace(make_delivery("dlv-1", at=T0), attempts=1), attempt_of("dlv-1", 1)
        )
        assert await store.delete("wh-1")
        assert not await store.delete("wh-1")
        assert await store.get("wh-1") is None
        assert await store.get_delivery("dlv-1") is None
        assert await store.attempts_of(["dlv-1"]) in ({}, {"dlv-1": []})
        assert await store.get_delivery("dlv-2") == kept

    async def test_purge_deletes_old_finished_deliveries_only(self, store: WebhookStore) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        old, new = T0, T0 + timedelta(days=2)
        await store.add_deliveries(
            [
                make_delivery("dlv-old", at=old, event_id="e1", status=DeliveryStatus.SUCCEEDED),
                make_delivery("dlv-old-2", at=old, event_id="e2", status=DeliveryStatus.ABANDONED),
                make_delivery("dlv-old-3", at=old, event_id="e3", status=DeliveryStatus.FAILED),
                make_delivery("dlv-pending", at=old, event_id="e4"),
                make_delivery("dlv-new", at=new, event_id="e5", status=DeliveryStatus.SUCCEEDED),
            ]
        )
        await store.record_attempt(
            replace(make_delivery("dlv-pending", at=old, event_id="e4"), attempts=1),
            attempt_of("dlv-pending", 1),
        )
        before = T0 + timedelta(days=1)
        assert await store.purge_deliveries(before, limit=2) == 2
        assert await store.purge_deliveries(before) == 1
        assert await store.purge_deliveries(before) == 0
        left = {d.id for d in await store.list_deliveries("wh-1")}
        assert left == {"dlv-pending", "dlv-new"}
        assert len((await store.attempts_of(["dlv-pending"]))["dlv-pending"]) == 1


class TestInMemoryWebhookStore(WebhookStoreContract):
    @pytest.fixture
    def store(self) -> WebhookStore:
        return InMemoryWebhookStore()


class _SqlWebhookBackend(WebhookStoreContract):
    @pytest_asyncio.fixture(loop_scope="session")
    async def store(
        self, database: SqlDatabase, tmp_path_factory: pytest.TempPathFactory
    ) -> SqlWebhookStore:
        await empty_tables(database)
        return SqlWebhookStore(database, SecretBox(tmp_path_factory.mktemp("key") / "webhook.key"))

    async def test_secrets_are_stored_encrypted(
        self, store: SqlWebhookStore, database: SqlDatabase
    ) -> None:
        await store.add(make_webhook("wh-1", at=T0), SECRET)
        async with database.reading() as connection:
            stored = await connection.scalar(select(webhooks_table.c.secret_encrypted))
        assert stored
        assert SECRET not in stored
        assert SECRET[6:] not in stored


class TestSqliteWebhookStore(_SqlWebhookBackend):
    @pytest_asyncio.fixture(scope="class", loop_scope="session")
    @classmethod
    async def database(cls, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SqlDatabase]:
        database = SqlDatabase.from_url(
            await migrated_sqlite_url(tmp_path_factory.mktemp("sqlite"))
        )
        yield database
        await database.dispose()


class TestPostgresWebhookStore(_SqlWebhookBackend):
    @pytest_asyncio.fixture(scope="class", loop_scope="session")
    @classmethod
    async def database(cls, postgres_server: PostgresServer) -> AsyncIterator[SqlDatabase]:
        database = SqlDatabase.from_url(await migrated_postgres_url(postgres_server))
        yield database
        await database.dispose()
