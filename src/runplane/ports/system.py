"""Time and tokens, injected so tests control them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""


class TokenGenerator(Protocol):
    def new_token(self) -> str:
        """A unique, unguessable token (leases, ids)."""
