"""Label syntax, selectors, deadlines and the connections call's wire form
(issue 16): the domain rules, each with its stable code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runplane.adapters.drivers.connections import local_ports
from runplane.domain.connection_calls import declared_ports, items_from_spec, items_to_spec
from runplane.domain.errors import ErrorCode
from runplane.domain.runtime_settings import (
    MAX_LABELS,
    IdleRule,
    LabelTerm,
    Match,
    RuntimeSettings,
    SettingsRefused,
    checked_labels,
    new_deadline,
    parse_selector,
    record_fields,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "labels",
    [
        {"app": "web"},
        {"example.com/app": "web-1"},
        {"a": ""},
        {"A_b.c-D": "x.y_z"},
        {"k" * 63: "v" * 63},
    ],
)
def test_labels_kubernetes_accepts(labels: dict[str, str]) -> None:
    assert checked_labels(labels) == labels


@pytest.mark.parametrize(
    "labels",
    [
        {"-app": "web"},
        {"app-": "web"},
        {"": "web"},
        {"k" * 64: "v"},
        {"app": "v" * 64},
        {"app": "has space"},
        {"Example.com/app": "web"},
        {"/app": "web"},
        {"app": 1},
        {f"k{i}": "v" for i in range(MAX_LABELS + 1)},
        ["app=web"],
    ],
)
def test_labels_kubernetes_refuses_are_invalid_labels(labels: object) -> None:
    with pytest.raises(SettingsRefused) as refused:
        checked_labels(labels)
    assert refused.value.code is ErrorCode.INVALID_LABELS


def test_selector_terms_and_their_meaning() -> None:
    terms = parse_selector(["app=web", "tier!=db,owner", "!legacy", "env==prod"])
    assert terms == (
        LabelTerm("app", Match.EQUALS, "web"),
        LabelTerm("tier", Match.NOT_EQUALS, "db"),
        LabelTerm("owner", Match.EXISTS),
        LabelTerm("legacy", Match.ABSENT),
        LabelTerm("env", Match.EQUALS, "prod"),
    )
    labels = {"app": "web", "owner": "", "env": "prod"}
    assert all(term.holds(labels) for term in terms)
    assert not LabelTerm("tier", Match.NOT_EQUALS, "db").holds({"tier": "db"})


@pytest.mark.parametrize("bad", ["", "=web", "a b", "app=we b", "!", "app=" + "v" * 64])
def test_a_bad_selector_is_invalid_selector(bad: str) -> None:
    with pytest.raises(SettingsRefused) as refused:
        parse_selector([bad])
    assert refused.value.code is ErrorCode.INVALID_SELECTOR


def test_too_many_selector_terms_are_refused() -> None:
    with pytest.raises(SettingsRefused):
        parse_selector([",".join(f"k{i}" for i in range(17))])


def test_a_deadline_never_shortens_unless_asked() -> None:
    later = T0 + timedelta(minutes=5)
    assert new_deadline(None, T0, allow_shorten=False) == T0
    assert new_deadline(T0, later, allow_shorten=False) == later
    assert new_deadline(T0, None, allow_shorten=False) is None  # no deadline: longer
    assert new_deadline(later, T0, allow_shorten=True) == T0
    with pytest.raises(SettingsRefused) as refused:
        new_deadline(later, T0, allow_shorten=False)
    assert refused.value.code is ErrorCode.TIMEOUT_WOULD_SHORTEN


def test_a_new_records_fields_count_the_timeout_from_create() -> None:
    fields = record_fields(RuntimeSettings({"a": "b"}, timeout_s=60, idle=IdleRule(30)), T0)
    assert fields["timeout_at"] == T0 + timedelta(seconds=60)
    assert (fields["on_timeout"], fields["idle_after_s"], fields["idle_action"]) == (
        "stop",
        30,
        "stop",
    )
    with pytest.raises(SettingsRefused):
        record_fields(RuntimeSettings(timeout_s=0), T0)
    with pytest.raises(SettingsRefused):
        record_fields(RuntimeSettings(idle=IdleRule(0)), T0)


def test_an_idle_rule_is_looked_at_every_quarter_within_bounds() -> None:
    assert IdleRule(40).check_period_s(1, 60) == 10
    assert IdleRule(2).check_period_s(1, 60) == 1
    assert IdleRule(3600).check_period_s(1, 60) == 60


def test_the_connections_call_round_trips_and_refuses_hostile_items() -> None:
    items = [("p-1-2", (8080,)), ("c", ())]
    assert items_from_spec(items_to_spec(items)) == items
    for bad in (
        {"items": "x"},
        {"items": [["c"]]},
        {"items": [["c", [0]]]},
        {"items": [["c", [True]]]},
        {"items": [["c", list(range(1, 70))]]},
        {"items": [[1, [80]]]},
    ):
        with pytest.raises(ValueError, match=r"items|port|container"):
            items_from_spec(bad)


def test_declared_ports_of_process_and_container_specs() -> None:
    assert declared_ports({"port": 8080}) == (8080,)
    assert declared_ports({"ports": [{"container_port": 80, "host_port": 8080}, {"x": 1}]}) == (80,)
    assert declared_ports({"command": ["sleep"]}) == ()


def test_only_established_rows_are_read_from_proc_net_tcp() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000\n"  # LISTEN on 8080
        "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000\n"  # ESTABLISHED to 8080
        "   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000\n"  # the client's end
        "   3: 0100007F:1F90 0100007F:D432 06 00000000:00000000\n"  # TIME_WAIT
    )
    assert local_ports(table) == [8080, 0xD431]
