"""The contract between a consumer and the code that handles its entries.

A handler returning means the entry is done: the consumer acknowledges it
(group mode) or advances past it (offset mode). A handler raising `RetryLater`
says an infrastructure failure kept it from finishing: the entry is delivered
again until `max_deliveries`, then it goes to the dead letters. Any other
exception is a bug in the handler; it is logged with its traceback and treated
like `RetryLater`, so a poison entry ends in the dead letters instead of
looping forever. Business failures are not exceptions: a handler records them
(a job result, say) and returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from runplane.domain.errors import RunplaneError
from runplane.streams.entries import StreamEntry

Handler = Callable[[StreamEntry], Awaitable[None]]
KeyFunc = Callable[[StreamEntry], str]


class RetryLater(RunplaneError):
    """The handler could not finish for a reason outside the entry (Redis, the
    database or the driver unreachable); the entry should be delivered again."""


def by_runtime_id(entry: StreamEntry) -> str:
    """The default ordering key: entries of one runtime run in stream order,
    entries without a `runtime_id` (or the seeds' `game_id`) are independent."""
    fields = entry.fields
    return fields.get("runtime_id") or fields.get("game_id") or entry.entry_id
