"""What a driver call to a remote host must carry, set where the runtime's lease
is held: the runtime, the lease token and the record version the call acts for.

The lifecycle does not pass these to `Driver` methods (the protocol stays as
it is); the operation sets them here instead, and a `RemoteDriver` reads them.
A ContextVar follows the task (and tasks it starts), so concurrent operations
on one instance never see each other's.

The wiring (docs/hosts.md): `LifecycleOperation.handle` runs the
operation inside `holding(runtime_id, token)` once the lease is acquired, and
`driver_for(record)` calls `at_version(record.version)` before every driver
call, since each compare-and-swap moves the version on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class DriverCall:
    runtime_id: str
    lease_token: str
    record_version: int
    """Moved on by `at_version`: one operation's calls follow its record."""


_current: ContextVar[DriverCall | None] = ContextVar("runplane_driver_call", default=None)


def current() -> DriverCall | None:
    """The lease and record version of the operation running, if any."""
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


def holding(runtime_id: str, lease_token: str) -> contextlib.AbstractContextManager[DriverCall]:
    """For an operation that has just taken the runtime's lease: its version is
    not known until the record is loaded (`at_version`)."""
    return driver_call(runtime_id, lease_token, -1)


def at_version(record_version: int) -> None:
    """The record version the next driver calls act for. A no-op outside an
    operation (reads: the health monitor, the reconciler's look)."""
    call = _current.get()
    if call is not None:
        call.record_version = record_version
