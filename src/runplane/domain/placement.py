"""Placement: which host a runtime goes to (DESIGN §9), as pure functions.

A spec may carry

    "placement": {"host_labels": {"zone": "a", "example.com/gpu": "true"}}

and then goes only to a host whose labels include every one of these (equal
values; no expressions). Among the hosts that fit, the least loaded wins:

    load = live / max_runtimes   when the host declares max_runtimes,
           live / cpus           else when it reports its CPU count,
           live                  else.

`live` counts the host's runtimes in a status that holds (or is bringing up,
or may still hold) a process or container there (`HOLDS_HOST`). Equal loads
are broken at random, so a burst of creates that all read the same counts
spreads over the equally loaded hosts instead of piling on the first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runplane.domain.errors import InvalidSpec
from runplane.domain.hosts import Host, HostStatus, InvalidHost, check_labels, is_valid_host_id
from runplane.domain.statuses import Status

PLACEMENT_FIELDS = ("host_labels", "host_id")

HOLDS_HOST: frozenset[Status] = frozenset(Status) - {
    Status.PENDING,
    Status.STOPPED,
    Status.ERROR,
    Status.REMOVED,
}
"""Runtimes that count against their host's room: from the moment a start
begins until it is stopped, fails or is removed, paused and
engine_unreachable included (the container may still be there). The same set
as a team's `max_running` (policy_rules.RUNNING_STATUSES)."""

_TIE = 1e-9
"""Loads closer than this are equal (they are ratios of small integers)."""


@dataclass(frozen=True, slots=True)
class PlacementSpec:
    """A spec's `placement`: the labels a host must carry (none: any host)."""

    host_labels: dict[str, str] = field(default_factory=dict)
    host_id: str | None = None
    """Only this host: a runtime made from a snapshot stays where the snapshot is."""

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"host_labels": dict(self.host_labels)}
        if self.host_id is not None:
            document["host_id"] = self.host_id
        return document


def placement_of(spec: Mapping[str, Any]) -> PlacementSpec:
    """The spec's placement (an empty one when it has none); InvalidSpec naming
    the fault when `placement` is malformed. Null counts as absent."""
    raw = spec.get("placement")
    if raw is None:
        return PlacementSpec()
    if not isinstance(raw, dict):
        raise InvalidSpec(f"placement must be an object, not {_kind(raw)}")
    unknown = sorted(str(key) for key in raw if key not in PLACEMENT_FIELDS)
    if unknown:
        raise InvalidSpec(
            f"unknown placement field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(PLACEMENT_FIELDS)}"
        )
    host_id = raw.get("host_id")
    if host_id is not None and not (isinstance(host_id, str) and is_valid_host_id(host_id)):
        raise InvalidSpec("placement.host_id must be a host id")
    labels = raw.get("host_labels")
    if labels is None:
        return PlacementSpec(host_id=host_id)
    if not isinstance(labels, dict):
        raise InvalidSpec(f"placement.host_labels must be an object, not {_kind(labels)}")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise InvalidSpec(
                f"placement.host_labels[{key!r}] must be a string, not {_kind(value)}"
            )
    try:
        return PlacementSpec(check_labels(labels), host_id)
    except InvalidHost as exc:
        raise InvalidSpec(f"placement.host_labels: {exc}") from None


def load_of(host: Host, live: int) -> float:
    """How full a host is, comparable across hosts (see the module's docstring)."""
    capacity = host.capacity
    if capacity.max_runtimes is not None:
        return live / capacity.max_runtimes
    if capacity.cpus is not None:
        return live / capacity.cpus
    return float(live)


def has_room(host: Host, live: int) -> bool:
    limit = host.capacity.max_runtimes
    return limit is None or live < limit


def choose_host(
    hosts: Sequence[Host],
    live_counts: Mapping[str, int],
    *,
    driver: str,
    selector: Mapping[str, str],
    exclude: Collection[str] = (),
    rand: Callable[[], float],
    host_id: str | None = None,
) -> Host | None:
    """The least loaded host that fits (up, offering `driver`, carrying every
    `selector` label, not in `exclude`, with room); None when none does
    (`why_none` says why). `rand()` in [0, 1) breaks ties."""
    *_, (_, fitting) = _steps(hosts, live_counts, driver, selector, exclude, host_id)
    if not fitting:
        return None
    loads = {h.host_id: load_of(h, live_counts.get(h.host_id, 0)) for h in fitting}
    lowest = min(loads.values())
    ties = sorted((h for h in fitting if loads[h.host_id] - lowest < _TIE), key=_by_id)
    return ties[min(int(rand() * len(ties)), len(ties) - 1)]


def why_none(
    hosts: Sequence[Host],
    live_counts: Mapping[str, int],
    *,
    driver: str,
    selector: Mapping[str, str],
    exclude: Collection[str] = (),
    host_id: str | None = None,
) -> str:
    """Why `choose_host` finds nothing, for a person: the first filter that
    leaves no host. An empty string when some host fits."""
    if not hosts:
        return "no host is registered"
    for reason, left in _steps(hosts, live_counts, driver, selector, exclude, host_id):
        if not left:
            return reason
    return ""


def _steps(
    hosts: Sequence[Host],
    live_counts: Mapping[str, int],
    driver: str,
    selector: Mapping[str, str],
    exclude: Collection[str],
    host_id: str | None = None,
) -> Iterator[tuple[str, list[Host]]]:
    """Each filter in turn: (why nothing is left if nothing is, the hosts left)."""
    up = [h for h in hosts if h.status is HostStatus.UP]
    yield f"no host is up ({_by_status(hosts)})", up
    offering = [h for h in up if driver in h.drivers]
    offered = sorted({d for h in up for d in h.drivers})
    yield (
        (
            f"no host that is up offers driver {driver!r} "
            f"(they offer: {', '.join(offered) or 'nothing'})"
        ),
        offering,
    )
    matching = [h for h in offering if h.matches(selector)]
    yield (
        (f"no host that is up with driver {driver!r} has the labels {_labels(selector)}"),
        matching,
    )
    if host_id is not None:
        matching = [h for h in matching if h.host_id == host_id]
        yield f"host {host_id!r}, the only one allowed, is not up or does not fit", matching
    kept = [h for h in matching if h.host_id not in exclude]
    yield (
        (f"every host that fits is excluded ({', '.join(sorted(h.host_id for h in matching))})"),
        kept,
    )
    roomy = [h for h in kept if has_room(h, live_counts.get(h.host_id, 0))]
    full = ", ".join(
        f"{h.host_id} {live_counts.get(h.host_id, 0)}/{h.capacity.max_runtimes}"
        for h in sorted(kept, key=_by_id)
    )
    yield f"every host that fits is full ({full} runtimes)", roomy


def _by_status(hosts: Sequence[Host]) -> str:
    counts: dict[str, int] = {}
    for host in hosts:
        counts[host.status] = counts.get(host.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _labels(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(none)"


def _by_id(host: Host) -> str:
    return host.host_id


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list"})
    return "null" if value is None else names.get(type(value), type(value).__name__)
