"""Which host a start or restart runs the runtime on (docs/hosts.md).

A runtime stays on its host while that host is `up` or `cordoned` (a cordon
keeps new runtimes off, not the ones it has). On a host that is `draining`,
`down` or no longer registered it is placed again, elsewhere: the move is
written with the call's first compare-and-swap (so an interrupted call is
settled on the host the new container is on) and its log entry says
`rescheduled: {from, to}`. What ran on a `down` host cannot be stopped now: the
host stops it itself before it is `up` again (services/hosts/loss.py)."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.domain.errors import ErrorCode, InvalidSpec
from runplane.domain.hosts import HostStatus, NoHostAvailable
from runplane.services.lifecycle.attempt import Attempt, OperationFailed
from runplane.services.lifecycle.dependencies import Dependencies

STAYS_ON = frozenset({HostStatus.UP, HostStatus.CORDONED})


@dataclass(frozen=True, slots=True)
class HostChoice:
    host_id: str | None
    """Where the runtime runs after this call."""
    previous: str | None
    """Where its last container is (the record's host before the call)."""
    previous_reachable: bool
    """Whether the last container can be stopped and removed now."""

    @property
    def moves(self) -> bool:
        return self.host_id != self.previous


async def choose_host(deps: Dependencies, attempt: Attempt, spec: dict[str, object]) -> HostChoice:
    """The host for the attempt's runtime; service_unavailable when none fits.
    Records a move in the attempt's log entry details."""
    record = attempt.current
    current = record.host_id
    if deps.placement is None:
        return HostChoice(current or deps.local_host_id, current, True)
    status = await deps.placement.status_of(current) if current else None
    if current and status in STAYS_ON:
        return HostChoice(current, current, True)
    target = await _place(deps, record.driver, spec, exclude=[current] if current else [])
    if current:
        attempt.details["rescheduled"] = {"from": current, "to": target}
    # An unknown host (never registered here) is not reachable either.
    reachable = current is None or status not in (HostStatus.DOWN, None)
    return HostChoice(target, current, reachable)


async def place_new(deps: Dependencies, driver: str, spec: dict[str, object]) -> str | None:
    """The host a new record is created on (None without placement: the local one)."""
    if deps.placement is None:
        return deps.local_host_id
    return await _place(deps, driver, spec, exclude=[])


async def _place(
    deps: Dependencies, driver: str, spec: dict[str, object], *, exclude: list[str]
) -> str:
    assert deps.placement is not None
    try:
        return await deps.placement.choose(driver, spec, exclude=exclude)
    except NoHostAvailable as exc:
        raise OperationFailed(ErrorCode.SERVICE_UNAVAILABLE, str(exc)) from exc
    except InvalidSpec as exc:
        raise OperationFailed(ErrorCode.INVALID_REQUEST, exc.message) from exc
