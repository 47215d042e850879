"""Which runtime each of the process driver's containers was started for.

A container's runtime never changes and is read from its state file once.
A remove asks whether the runtime has another container left (its work dir
goes with its last one): once every container on disk has been seen (the
first such question lists the containers folder), that is a count kept up
to date by starts and removes, not a listing of every container per remove.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator


class Owners:
    def __init__(self, read: Callable[[str], str | None], listing: Callable[[], list[str]]) -> None:
        self._read = read
        """container id -> its runtime, from its files (None: unreadable)."""
        self._listing = listing
        """Every container id on disk."""
        self._owner: dict[str, str] = {}
        self._count: Counter[str] = Counter()
        self._noted_at: dict[str, int] = {}
        self._notes = 0
        """Notes so far: a listing forgets only what was noted before it began."""
        self._launches: Counter[str] = Counter()
        self._complete = False
        """Every container on disk has been seen: `_count` is whole."""

    def note(self, container_id: str, runtime_id: str) -> None:
        """A container this driver started."""
        if container_id not in self._owner:
            self._notes += 1
            self._owner[container_id] = runtime_id
            self._noted_at[container_id] = self._notes
            self._count[runtime_id] += 1

    def known(self, container_id: str) -> str | None:
        """Its runtime if already known (no file read)."""
        return self._owner.get(container_id)

    def of(self, container_id: str) -> str | None:
        """Its runtime, read from its files the first time."""
        runtime_id = self._owner.get(container_id)
        if runtime_id is None:
            runtime_id = self._read(container_id)
            if runtime_id is not None:
                self.note(container_id, runtime_id)
        return runtime_id

    def forget(self, container_id: str) -> None:
        """A container removed."""
        runtime_id = self._owner.pop(container_id, None)
        self._noted_at.pop(container_id, None)
        if runtime_id is not None:
            self._count[runtime_id] -= 1
            if self._count[runtime_id] <= 0:
                del self._count[runtime_id]

    def listing_begins(self) -> int:
        """Call before listing the folder; pass the value to `keep_only`."""
        return self._notes

    def keep_only(self, listed: Iterable[str], began: int) -> None:
        """What a listing begun at `began` found: containers gone are
        forgotten, but not those started since it began (it could not see them)."""
        present = set(listed)
        gone = [c for c, at in self._noted_at.items() if at <= began and c not in present]
        for container_id in gone:
            self.forget(container_id)

    @contextlib.contextmanager
    def launching(self, runtime_id: str) -> Iterator[None]:
        """A start of `runtime_id` under way (`claimed` counts it)."""
        self._launches[runtime_id] += 1
        try:
            yield
        finally:
            self._launches[runtime_id] -= 1
            if self._launches[runtime_id] <= 0:
                del self._launches[runtime_id]

    def claimed(self, runtime_id: str) -> bool:
        """Whether `runtime_id` has a container, or one starting."""
        return self._launches[runtime_id] > 0 or self.has_any(runtime_id)

    def has_any(self, runtime_id: str) -> bool:
        """Whether a container on disk was started for `runtime_id`."""
        if not self._complete:
            began = self.listing_begins()
            listed = self._listing()
            self.keep_only(listed, began)
            for container_id in listed:
                self.of(container_id)
            self._complete = True
        return self._count[runtime_id] > 0
