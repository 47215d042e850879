"""Setting a runtime's timeout, labels and idle rule, and hearing that it is
busy (issue 16). The caller has already found the record visible to it (team
scoping is the API's `visible_record`); these writes are not operations:
they take no lease and leave the status and `version` alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from runplane.domain.errors import ErrorCode
from runplane.domain.records import Keep, RuntimeRecord
from runplane.domain.runtime_settings import (
    IdleRule,
    OnTimeout,
    SettingsRefused,
    check_idle,
    check_timeout_s,
    checked_labels,
    new_deadline,
)
from runplane.domain.statuses import Status
from runplane.ports.lifecycle import RuntimeStore
from runplane.ports.runtime_settings import RuntimeSettingsStore
from runplane.ports.system import Clock

GONE = frozenset({Status.REMOVING, Status.REMOVED})
_ATTEMPTS = 5
"""A deadline moved by someone else between read and write: read again."""


class RuntimeSettingsService:
    def __init__(
        self,
        store: RuntimeSettingsStore,
        runtimes: RuntimeStore,
        clock: Clock,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.runtimes = runtimes
        self.clock = clock
        # The timers loop's wake: it sleeps until the earliest deadline it knows.
        self._on_change = on_change or (lambda: None)

    async def set_timeout(
        self,
        record: RuntimeRecord,
        *,
        timeout_s: int | None,
        allow_shorten: bool = False,
        on_timeout: OnTimeout | None = None,
    ) -> RuntimeRecord:
        """The deadline becomes now + `timeout_s` (None: no deadline). An
        earlier deadline than the current one is refused unless
        `allow_shorten` (domain `new_deadline`)."""
        if record.status in GONE:
            raise SettingsRefused(
                ErrorCode.INVALID_STATE,
                f"cannot set a timeout on a runtime that is {record.status}",
            )
        if timeout_s is not None:
            check_timeout_s(timeout_s)
        action: str | Keep | None = Keep.KEEP if on_timeout is None else str(on_timeout)
        if timeout_s is not None and on_timeout is None and record.on_timeout is None:
            action = str(OnTimeout.STOP)
        current: RuntimeRecord | None = record
        for _ in range(_ATTEMPTS):
            assert current is not None
            now = self.clock.now()
            wanted = None if timeout_s is None else now + timedelta(seconds=timeout_s)
            deadline = new_deadline(current.timeout_at, wanted, allow_shorten=allow_shorten)
            written = await self.store.set_timeout(
                record.runtime_id,
                expected=current.timeout_at,
                timeout_at=deadline,
                on_timeout=action,
                at=now,
            )
            if written is not None:
                self._on_change()
                return written
            current = await self._reread(record.runtime_id)
        raise SettingsRefused(ErrorCode.CONFLICT, "the deadline kept moving; try again")

    async def _reread(self, runtime_id: str) -> RuntimeRecord:
        record = await self.runtimes.get(runtime_id)
        if record is None:
            raise SettingsRefused(ErrorCode.NOT_FOUND, "no such runtime")
        return record

    async def update(
        self,
        record: RuntimeRecord,
        *,
        labels: object | Keep = Keep.KEEP,
        idle: IdleRule | Keep | None = Keep.KEEP,
    ) -> RuntimeRecord:
        """Replace the labels (a whole map) and/or the idle rule (None: none)."""
        checked: dict[str, str] | Keep = Keep.KEEP
        if labels is not Keep.KEEP:
            checked = checked_labels(labels)
        if isinstance(idle, IdleRule):
            check_idle(idle)
        written = await self.store.update(
            record.runtime_id, labels=checked, idle=idle, at=self.clock.now()
        )
        if written is None:
            raise SettingsRefused(ErrorCode.NOT_FOUND, "no such runtime")
        if idle is not Keep.KEEP:
            self._on_change()
        return written

    async def activity(self, record: RuntimeRecord) -> None:
        """A platform says the runtime is busy: its idle clock starts again."""
        await self.store.mark_active([record.runtime_id], self.clock.now())
