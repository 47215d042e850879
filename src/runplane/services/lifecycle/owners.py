"""Which team owns each runtime, as this process has read it.

A runtime's team never changes: it is set when the record is created, no
write changes it, and records are never deleted (a removed runtime keeps its
record, and a create of a taken id is refused). So once read, a runtime's team
lets the screen (screen.py) send its own team's later calls on to the lease
without a read. Another team's calls are still read every time: refused
from memory, they would be answered sooner than a call on a missing id,
telling by the time taken what the answer hides; so only a runtime found to
be its caller's is kept (another team's probes fill no room). A runtime not
found is not kept (it may be created later). Bounded: past `max_kept` the
longest known is forgotten, and read again when next asked."""

from __future__ import annotations

MAX_KEPT = 10_000
"""About a megabyte: the runtimes being operated on, not every record."""


class RuntimeOwners:
    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        if max_kept < 1:
            raise ValueError(f"max_kept must be at least 1, not {max_kept}")
        self.max_kept = max_kept
        self._teams: dict[str, str] = {}

    def team_of(self, runtime_id: str) -> str | None:
        """The runtime's team, if this process has read it."""
        return self._teams.get(runtime_id)

    def learn(self, runtime_id: str, team_id: str) -> None:
        teams = self._teams
        if runtime_id in teams:
            return
        if len(teams) >= self.max_kept:
            del teams[next(iter(teams))]  # the first learned (dicts keep that order)
        teams[runtime_id] = team_id
