"""What a driver call to a remote host must carry, set where the runtime's lease
is held: the lease token and the record version the call acts for.

The lifecycle does not pass these to `Driver` methods (the protocol stays as
it is); the operation sets them here instead, and a `RemoteDriver` reads them.
A ContextVar follows the task (and tasks it starts), so concurrent operations
on one instance never see each other's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DriverCall:
    runtime_id: str
    lease_token: str
    record_version: int


_current: ContextVar[DriverCall | None] = ContextVar("runplane_driver_call", default=None)


def current() -> DriverCall | None:
    """The lease token and record version of the operation running, if any."""
    return _current.get()


@contextlib.contextmanager
def driver_call(runtime_id: str, lease_token: str, record_version: int) -> Iterator[DriverCall]:
    """Driver calls made inside the block act for this runtime, under this lease
    and at this record version."""
    call = DriverCall(runtime_id, lease_token, record_version)
    reset = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(reset)
