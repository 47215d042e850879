"""Placement's rules (domain/placement.py): which hosts fit, which of them wins,
why none does, and the spec's `placement` key through every driver's check."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from runplane.adapters.drivers.docker_spec import validate_docker_spec
from runplane.adapters.drivers.process_spec import validate_process_spec
from runplane.domain.errors import InvalidSpec
from runplane.domain.hosts import Capacity, Host, HostStatus
from runplane.domain.placement import (
    HOLDS_HOST,
    PlacementSpec,
    choose_host,
    load_of,
    placement_of,
    why_none,
)
from runplane.domain.policy_rules import RUNNING_STATUSES
from runplane.domain.statuses import Status
from runplane.testing.driver import InMemoryDriver

T0 = datetime(2030, 1, 2, tzinfo=UTC)


def host(
    host_id: str,
    *,
    status: HostStatus = HostStatus.UP,
    drivers: tuple[str, ...] = ("process",),
    labels: dict[str, str] | None = None,
    max_runtimes: int | None = None,
    cpus: float | None = None,
) -> Host:
    admin = HostStatus.UP if status is HostStatus.DOWN else status
    return Host(
        host_id=host_id,
        address="",
        status=status,
        admin_status=admin,
        version=1,
        registered_at=T0,
        last_heartbeat_at=T0,
        labels=labels or {},
        capacity=Capacity(cpus=cpus, max_runtimes=max_runtimes),
        drivers=drivers,
    )


def first() -> float:
    return 0.0


def choose(
    hosts: list[Host],
    live: dict[str, int] | None = None,
    *,
    driver: str = "process",
    selector: dict[str, str] | None = None,
    exclude: tuple[str, ...] = (),
    rand: Callable[[], float] = first,
) -> str | None:
    chosen = choose_host(
        hosts, live or {}, driver=driver, selector=selector or {}, exclude=exclude, rand=rand
    )
    return None if chosen is None else chosen.host_id


def reason(hosts: list[Host], live: dict[str, int] | None = None, **kwargs: Any) -> str:
    kwargs.setdefault("driver", "process")
    kwargs.setdefault("selector", {})
    return why_none(hosts, live or {}, **kwargs)


# -- which hosts fit -------------------------------------------------------------------


@pytest.mark.parametrize("status", [HostStatus.DOWN, HostStatus.DRAINING, HostStatus.CORDONED])
def test_only_an_up_host_takes_work(status: HostStatus) -> None:
    assert choose([host("a", status=status)]) is None
    assert choose([host("a", status=status), host("b")]) == "b"


def test_a_host_must_offer_the_driver() -> None:
    hosts = [host("a"), host("b", drivers=("docker", "process"))]
    assert choose(hosts, driver="docker") == "b"
    assert choose(hosts, driver="kvm") is None


def test_a_host_must_carry_every_selector_label() -> None:
    hosts = [
        host("a", labels={"zone": "a"}),
        host("b", labels={"zone": "b", "gpu": "true"}),
        host("c", labels={"zone": "b"}),
    ]
    assert choose(hosts, selector={"zone": "b", "gpu": "true"}) == "b"
    assert choose(hosts, selector={"zone": "a"}) == "a"
    assert choose(hosts, selector={"zone": "c"}) is None
    assert choose(hosts, selector={"gpu": "false"}) is None


def test_an_excluded_host_is_never_chosen() -> None:
    hosts = [host("a"), host("b")]
    assert choose(hosts, {"b": 5}, exclude=("a",)) == "b"
    assert choose(hosts, exclude=("a", "b")) is None


def test_a_pinned_runtime_goes_to_its_host_or_nowhere() -> None:
    hosts = [host("a"), host("b"), host("c", status=HostStatus.DOWN)]
    pinned = choose_host(hosts, {"b": 9}, driver="process", selector={}, rand=first, host_id="b")
    assert pinned is not None
    assert pinned.host_id == "b"  # even when another is less loaded
    assert choose_host(hosts, {}, driver="process", selector={}, rand=first, host_id="c") is None
    why = why_none(hosts, {}, driver="process", selector={}, host_id="c")
    assert why == "host 'c', the only one allowed, is not up or does not fit"
    assert placement_of({"placement": {"host_id": "b"}}).host_id == "b"
    with pytest.raises(InvalidSpec, match="host_id"):
        placement_of({"placement": {"host_id": 5}})


def test_a_full_host_is_skipped_and_no_limit_is_unlimited() -> None:
    hosts = [host("a", max_runtimes=2), host("b")]
    assert choose(hosts, {"a": 2, "b": 1000}) == "b"
    assert choose(hosts[:1], {"a": 1}) == "a"
    assert choose(hosts[:1], {"a": 2}) is None
    assert choose(hosts[:1], {"a": 3}) is None  # over its limit (it was lowered)


# -- which one wins --------------------------------------------------------------------


def test_the_least_loaded_host_wins() -> None:
    hosts = [host("a"), host("b"), host("c")]
    assert choose(hosts, {"a": 3, "b": 1, "c": 2}) == "b"
    assert choose(hosts, {"a": 3, "b": 1}) == "c"  # no live runtime: load 0


def test_load_is_live_over_max_runtimes_else_cpus_else_the_count() -> None:
    assert load_of(host("a", max_runtimes=10, cpus=2), 5) == 0.5
    assert load_of(host("a", cpus=4), 2) == 0.5
    assert load_of(host("a"), 3) == 3.0
    # 6 of 20 slots (0.3) is less loaded than 1 runtime per 2 cpus (0.5).
    hosts = [host("big", max_runtimes=20), host("small", cpus=2)]
    assert choose(hosts, {"big": 6, "small": 1}) == "big"
    assert choose(hosts, {"big": 12, "small": 1}) == "small"


def test_ties_go_by_the_random_draw_over_the_hosts_in_id_order() -> None:
    hosts = [host("c"), host("a"), host("b"), host("busy")]
    live = {"busy": 1}
    assert choose(hosts, live, rand=lambda: 0.0) == "a"
    assert choose(hosts, live, rand=lambda: 0.4) == "b"
    assert choose(hosts, live, rand=lambda: 0.99) == "c"
    assert choose(hosts, live, rand=lambda: 1.0) == "c"  # clamped, never out of range


def test_a_burst_reading_the_same_counts_spreads_over_equal_hosts() -> None:
    """Creates that all read the same (stale) counts do not all pick one host."""
    hosts = [host(name, max_runtimes=1000) for name in ("a", "b", "c", "d")]
    draws = random.Random(13)
    chosen = Counter(choose(hosts, {"busy": 0}, rand=draws.random) for _ in range(400))
    assert set(chosen) == {"a", "b", "c", "d"}
    assert min(chosen.values()) > 60  # about 100 each


def test_nothing_is_chosen_from_no_hosts() -> None:
    assert choose([]) is None


# -- why none --------------------------------------------------------------------------


def test_why_none_names_the_first_filter_that_leaves_nothing() -> None:
    assert reason([]) == "no host is registered"
    lost = [host("a", status=HostStatus.DOWN), host("b", status=HostStatus.CORDONED)]
    assert reason(lost) == "no host is up (1 cordoned, 1 down)"
    hosts = [host("a", labels={"zone": "a"}, max_runtimes=1), host("b", drivers=("docker",))]
    assert reason(hosts, driver="kvm") == (
        "no host that is up offers driver 'kvm' (they offer: docker, process)"
    )
    assert reason(hosts, selector={"zone": "b", "gpu": "true"}) == (
        "no host that is up with driver 'process' has the labels gpu=true,zone=b"
    )
    assert reason(hosts, exclude=("a",)) == "every host that fits is excluded (a)"
    assert reason(hosts, {"a": 1}) == "every host that fits is full (a 1/1 runtimes)"


def test_why_none_is_empty_when_a_host_fits() -> None:
    assert reason([host("a")]) == ""


# -- the spec's `placement` ------------------------------------------------------------


def test_placement_of_reads_the_host_labels() -> None:
    assert placement_of({}) == PlacementSpec()
    assert placement_of({"placement": None}) == PlacementSpec()
    assert placement_of({"placement": {}}) == PlacementSpec()
    labels = {"zone": "a", "example.com/gpu": "true"}
    assert placement_of({"placement": {"host_labels": labels}}).host_labels == labels
    assert placement_of({"placement": {"host_labels": labels}}).to_document() == {
        "host_labels": labels
    }


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        ("zone=a", "placement must be an object, not a string"),
        ({"host": "a"}, "unknown placement field(s) host; allowed: host_labels"),
        ({"host_labels": ["zone=a"]}, "placement.host_labels must be an object, not a list"),
        (
            {"host_labels": {"zone": 1}},
            "placement.host_labels['zone'] must be a string, not a number",
        ),
        ({"host_labels": {"zone": "x" * 257}}, "placement.host_labels: label 'zone': up to 256"),
        ({"host_labels": {"-zone": "a"}}, "placement.host_labels: label key '-zone' must"),
        ({"host_labels": {"zone": "a\n"}}, "printable"),
        ({"host_labels": {f"k{i}": "v" for i in range(33)}}, "at most 32 labels"),
    ],
)
def test_a_malformed_placement_is_refused_readably(placement: object, message: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        placement_of({"placement": placement})
    assert message in refused.value.message


def test_32_labels_are_allowed() -> None:
    labels = {f"k{i}": "v" for i in range(32)}
    assert placement_of({"placement": {"host_labels": labels}}).host_labels == labels


REAL_DRIVERS = [
    pytest.param(validate_process_spec, {"command": ["/bin/true"]}, id="process"),
    pytest.param(validate_docker_spec, {"image": "nginx"}, id="docker"),
]


@pytest.mark.parametrize(
    ("validate", "base"),
    [
        *REAL_DRIVERS,
        pytest.param(InMemoryDriver().validate_spec, {"command": ["/bin/true"]}, id="memory"),
    ],
)
def test_every_driver_keeps_a_placement_and_refuses_a_bad_one(
    validate: Callable[[dict[str, Any]], dict[str, Any]], base: dict[str, Any]
) -> None:
    spec = {**base, "placement": {"host_labels": {"zone": "a"}}}
    normalised = validate(spec)
    assert normalised["placement"] == {"host_labels": {"zone": "a"}}
    assert validate(normalised) == normalised  # normalising again changes nothing
    with pytest.raises(InvalidSpec, match="unknown placement field"):
        validate({**base, "placement": {"labels": {"zone": "a"}}})


@pytest.mark.parametrize(("validate", "base"), REAL_DRIVERS)
def test_a_null_placement_is_absent(
    validate: Callable[[dict[str, Any]], dict[str, Any]], base: dict[str, Any]
) -> None:
    assert "placement" not in validate({**base, "placement": None})


def test_an_empty_placement_normalises_to_no_labels() -> None:
    spec = validate_process_spec({"command": ["/bin/true"], "placement": {}})
    assert spec["placement"] == {"host_labels": {}}


def test_live_on_a_host_is_what_counts_against_max_running() -> None:
    assert HOLDS_HOST == RUNNING_STATUSES
    assert Status.PAUSED in HOLDS_HOST
    assert Status.ENGINE_UNREACHABLE in HOLDS_HOST
    assert not {Status.PENDING, Status.STOPPED, Status.ERROR, Status.REMOVED} & HOLDS_HOST
