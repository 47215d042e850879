"""The real clock and token generator."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SecretTokenGenerator:
    def new_token(self) -> str:
        return secrets.token_urlsafe(18)
