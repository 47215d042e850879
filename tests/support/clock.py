"""A clock tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    """Clock whose `now()` only changes when a test calls `advance()` or `set()`."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = self._check_aware(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time does not run backwards ({seconds} s)")
        self._now += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self._now = self._check_aware(at)

    @staticmethod
    def _check_aware(at: datetime) -> datetime:
        if at.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        return at.astimezone(UTC)

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"
