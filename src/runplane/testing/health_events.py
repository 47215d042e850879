"""In-memory health events, for tests."""

from __future__ import annotations

from runplane.domain.health.events import HealthEvent


class InMemoryHealthEvents:
    def __init__(self) -> None:
        self.events: list[HealthEvent] = []

    async def publish(self, event: HealthEvent) -> None:
        event.as_fields()  # what the stream could not carry (details not JSON) is refused
        self.events.append(event)
