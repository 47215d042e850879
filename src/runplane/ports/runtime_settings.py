"""Labels, timeouts and idle rules of runtime records (issue 16): the writes
that are not status changes, and the reads the timeout/idle worker and the
label selector need. Setting writes never bump `version` (an operation under
way would meet a CAS conflict for nothing); they set `updated_at`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from runplane.domain.records import Keep, RuntimeRecord
from runplane.domain.runtime_settings import IdleRule, LabelTerm
from runplane.domain.statuses import Status
from runplane.ports.lifecycle import RuntimePage


class RuntimeSettingsStore(Protocol):
    async def set_timeout(
        self,
        runtime_id: str,
        *,
        expected: datetime | None,
        timeout_at: datetime | None,
        on_timeout: str | Keep | None,
        at: datetime,
    ) -> RuntimeRecord | None:
        """Set the deadline if it is still `expected` (a compare-and-swap on the
        deadline alone); None when it moved meanwhile or the record is gone."""

    async def update(
        self,
        runtime_id: str,
        *,
        labels: dict[str, str] | Keep = Keep.KEEP,
        idle: IdleRule | Keep | None = Keep.KEEP,
        at: datetime,
    ) -> RuntimeRecord | None:
        """Replace the labels and/or the idle rule (a new rule also sets
        `active_at`: it counts from now); None: no such record."""

    async def mark_active(self, runtime_ids: Sequence[str], at: datetime) -> None:
        """They were busy at `at` (never moves `active_at` back)."""

    async def due_timeouts(self, now: datetime, *, limit: int = 100) -> list[RuntimeRecord]:
        """Records whose deadline is at or before `now`, earliest first."""

    async def idle_watched(self, *, limit: int = 10_000) -> list[RuntimeRecord]:
        """Running records with an idle rule."""

    async def list(
        self,
        selector: Sequence[LabelTerm],
        *,
        status: Status | None = None,
        team_id: str | None = None,
        host_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> RuntimePage:
        """As RuntimeStore.list, keeping the records every term holds for."""
