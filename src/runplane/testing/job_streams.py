"""The job streams and the dead letters in memory: a JobQueue and a
DeadLetterQueue over one set of streams, held to the Redis adapters by the
contract suites (tests/contract/test_job_queue.py, test_dead_letter_queue.py)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping

from runplane.adapters.redis.names import DEAD_LETTER_STREAM, JOB_RESULTS_STREAM, job_stream
from runplane.domain.dead_letters import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterUnreplayable,
    dead_letter_fields,
    parse_dead_letter,
    replay_refusal,
)
from runplane.domain.event_reading import parse_stream_id
from runplane.ports.streams import RESULT_MATCHES, RESULT_SCAN

Entry = tuple[str, dict[str, str]]


class InMemoryStreams:
    """Streams as lists of (entry id, fields). Ids are `<n>-0` from one counter,
    so they grow within each stream, as Redis ids do."""

    def __init__(self) -> None:
        self._streams: dict[str, list[Entry]] = {}
        self._next = 1

    def add(self, stream: str, fields: Mapping[str, str]) -> str:
        """XADD: append `fields` (copied); the new entry's id."""
        entry_id = f"{self._next}-0"
        self._next += 1
        self._streams.setdefault(stream, []).append((entry_id, dict(fields)))
        return entry_id

    def entries(self, stream: str) -> list[Entry]:
        """The stream's entries, oldest first (copies)."""
        return [(entry_id, dict(fields)) for entry_id, fields in self._streams.get(stream, [])]

    def delete(self, stream: str, entry_id: str) -> bool:
        """XDEL: whether there was such an entry."""
        entries = self._streams.get(stream, [])
        kept = [entry for entry in entries if entry[0] != entry_id]
        self._streams[stream] = kept
        return len(kept) < len(entries)


class InMemoryJobQueue:
    def __init__(self, streams: InMemoryStreams) -> None:
        self.streams = streams

    async def submit(self, op: str, fields: dict[str, str]) -> tuple[str, str]:
        stream = job_stream(op)
        return stream, self.streams.add(stream, fields)

    async def results(
        self, job_id: str, *, after: str | None = None
    ) -> builtins.list[tuple[str, dict[str, str]]]:
        newest = self.streams.entries(JOB_RESULTS_STREAM)[::-1][:RESULT_SCAN]
        floor = parse_stream_id(after) if after else (-1, -1)
        return [
            (entry_id, fields)
            for entry_id, fields in newest
            if fields.get("job_id") == job_id and parse_stream_id(entry_id) > floor
        ][:RESULT_MATCHES]


class InMemoryDeadLetterQueue:
    """Dead letters in `stream` of `streams`, written by `bury` with the fields a
    consumer gives the dead-letter stream, and read as the Redis queue reads them."""

    def __init__(self, streams: InMemoryStreams, stream: str = DEAD_LETTER_STREAM) -> None:
        self.streams = streams
        self.stream = stream

    def bury(
        self, stream: str, entry_id: str, fields: Mapping[str, str], error: str, deliveries: int
    ) -> str:
        """Dead-letter an entry, as a consumer does past its delivery cap; the id."""
        letter = dead_letter_fields(stream, entry_id, fields, error, deliveries)
        return self.streams.add(self.stream, letter)

    async def list(
        self, *, after: str | None = None, count: int = 100
    ) -> builtins.list[DeadLetter]:
        """Oldest first; `after` is the last id of the previous page."""
        start = (0, 0) if after is None else parse_stream_id(after)
        entries = [
            parse_dead_letter(entry_id, fields)
            for entry_id, fields in self.streams.entries(self.stream)
            if after is None or parse_stream_id(entry_id) > start
        ]
        return entries[:count]

    async def replay(self, dead_letter_id: str) -> str:
        letter = self._get(dead_letter_id)
        if letter is None:
            raise DeadLetterNotFound(dead_letter_id)
        if not letter.stream:
            raise DeadLetterUnreplayable(dead_letter_id, "no stream")
        if not letter.fields:
            raise DeadLetterUnreplayable(dead_letter_id, "no fields")
        refusal = replay_refusal(letter.stream)
        if refusal is not None:
            raise DeadLetterUnreplayable(dead_letter_id, refusal)
        new_id = self.streams.add(letter.stream, letter.fields)
        self.streams.delete(self.stream, dead_letter_id)
        return new_id

    async def drop(self, dead_letter_id: str) -> bool:
        return self.streams.delete(self.stream, dead_letter_id)

    def _get(self, dead_letter_id: str) -> DeadLetter | None:
        found = (
            parse_dead_letter(entry_id, fields)
            for entry_id, fields in self.streams.entries(self.stream)
            if entry_id == dead_letter_id
        )
        return next(found, None)
