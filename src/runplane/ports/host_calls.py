"""Driver calls to a host's agent: the caller's side and the agent's side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from runplane.domain.host_calls import HostCall


class HostCallSender(Protocol):
    """The caller's side: send a call to a host's agent, wait for its answer."""

    async def send(self, host_id: str, call: HostCall) -> None:
        """Queue the call for the host's agent. StoreUnavailable if Redis is down."""

    async def wait_answer(self, host_id: str, call_id: str, wait_s: float) -> str | None:
        """The raw answer, or None when none came within `wait_s`."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry of a host's call stream: its id and raw `call` field (None:
    the entry was deleted since it was delivered)."""

    entry_id: str
    raw: bytes | None


class Admission(StrEnum):
    GO = "go"
    """Fresh: act on it (the call is now recorded as claimed)."""
    REPLAY = "replay"
    """Answered before: send the stored answer again."""
    CLAIMED = "claimed"
    """Claimed before and never answered: its executor died mid-call."""
    FENCED = "fenced"
    """The lease token no longer holds, or a newer record version was applied."""


class HostCallInbox(Protocol):
    """The agent's side: its host's call stream, the fence, the answers."""

    async def ensure_group(self) -> None: ...

    async def read(self, count: int, block_ms: int, *, after: str | None) -> Sequence[Delivery]:
        """New entries (after=None), or those delivered before and never
        acknowledged whose id is past `after` (what a killed agent left; "0"
        for the first page)."""

    async def admit(self, call: HostCall) -> tuple[Admission, str]:
        """Atomically: replay a known call_id, refuse a fenced call, or claim
        it. The string is the stored answer (REPLAY) or why (FENCED)."""

    async def settle(self, call: HostCall, answer: str) -> None:
        """Remember the answer of a claimed call (for a repeated call_id)."""

    async def answer(self, call_id: str, answer: str) -> None:
        """Hand the answer to the waiting caller (its reply key, named after
        the host and call_id: never a key the entry names)."""

    async def ack(self, entry_id: str) -> None: ...
