"""Predictable tokens for tests."""

from __future__ import annotations

import itertools


class SequentialTokens:
    def __init__(self, prefix: str = "tok") -> None:
        self._counter = itertools.count(1)
        self.prefix = prefix

    def new_token(self) -> str:
        return f"{self.prefix}-{next(self._counter):06d}"
