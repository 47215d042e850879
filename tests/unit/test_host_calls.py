"""Host calls on the wire: what parses, what is refused, what answers mean."""

from __future__ import annotations

import json

import pytest

from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import ContainerGone, DriverError, InvalidSpec, SpecRefused
from runplane.domain.host_calls import (
    AnswerError,
    CallFenced,
    CallInterrupted,
    CallOp,
    HostCall,
    MalformedCall,
    answer_value,
    error_answer,
    info_from_wire,
    info_to_wire,
    ok_answer,
    parse_call,
    salvage_call_id,
    started_from_wire,
    started_to_wire,
)
from runplane.services import driver_call

STOP = HostCall(
    call_id="c-1",
    op=CallOp.STOP,
    driver="process",
    deadline=100.0,
    runtime_id="rt",
    container_id="p-1",
    timeout_s=2.0,
    lease_token="tok",
    record_version=3,
)


def test_a_call_round_trips() -> None:
    assert parse_call(STOP.to_json()) == STOP
    assert parse_call(STOP.to_json().encode()) == STOP


def test_reads_are_not_fenced_and_need_no_lease() -> None:
    call = parse_call(json.dumps({"call_id": "r", "op": "list", "driver": "d", "deadline": 1}))
    assert call.fenced is False
    assert STOP.fenced is True


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "not an object"),
        (b"{}", "call_id"),
        (b"x" * 300_000, "too large"),
        (b'{"call_id": "a b", "op": "list"}', "call_id must be"),
        (b'{"call_id": "a", "op": "explode"}', "unknown op"),
        (b'{"call_id": "a", "op": "list", "driver": "d"}', "deadline"),
        (b'{"call_id": "a", "op": "list", "driver": "d", "deadline": true}', "deadline"),
        (b'{"call_id": "a", "op": "list", "driver": 7, "deadline": 1}', "driver"),
        (b'{"call_id": "a", "op": "list", "driver": "d", "deadline": 1, "spec": []}', "spec"),
        (
            b'{"call_id": "a", "op": "stop", "driver": "d", "deadline": 1, "timeout_s": -1}',
            "timeout_s",
        ),
        (
            b'{"call_id": "a", "op": "stop", "driver": "d", "deadline": 1, "record_version": "3"}',
            "record_version",
        ),
        (b'{"call_id": "a", "op": "stop", "driver": "d", "deadline": 1}', "needs runtime_id"),
    ],
)
def test_what_is_not_a_call_is_refused_with_a_reason(raw: bytes, why: str) -> None:
    with pytest.raises(MalformedCall, match=why):
        parse_call(raw)


def test_a_malformed_call_keeps_its_call_id_only_when_usable() -> None:
    assert salvage_call_id(b'{"call_id": "c-9", "op": "explode"}') == "c-9"
    assert salvage_call_id(b'{"call_id": "a b"}') is None
    assert salvage_call_id(b'{"call_id": 5}') is None
    assert salvage_call_id(b"\xff") is None
    assert salvage_call_id(b"[]") is None


def test_answers_carry_values_and_driver_errors() -> None:
    info = ContainerInfo("p-1", ContainerState.EXITED, exit_code=1, runtime_id="rt")
    assert info_from_wire(answer_value(ok_answer(info_to_wire(info)))) == info
    started = StartedContainer("p-1", "127.0.0.1:80")
    assert started_from_wire(answer_value(ok_answer(started_to_wire(started)))) == started
    assert answer_value(ok_answer(None)) is None
    with pytest.raises(ContainerGone) as gone:
        answer_value(error_answer(AnswerError.CONTAINER_GONE, "gone"), "p-1")
    assert gone.value.container_id == "p-1"
    with pytest.raises(InvalidSpec, match="bad"):
        answer_value(error_answer(AnswerError.INVALID_SPEC, "bad"))
    with pytest.raises(SpecRefused, match="no image"):
        answer_value(error_answer(AnswerError.SPEC_REFUSED, "no image"))
    with pytest.raises(CallFenced):
        answer_value(error_answer(AnswerError.FENCED, "lease"))
    for kind in (AnswerError.INTERRUPTED, AnswerError.EXPIRED):
        with pytest.raises(CallInterrupted):
            answer_value(error_answer(kind, "x"))
    with pytest.raises(DriverError, match="agent: boom"):
        answer_value(error_answer(AnswerError.DRIVER_ERROR, "boom"))


async def test_the_driver_call_context_follows_the_operation_and_its_versions() -> None:
    assert driver_call.current() is None
    driver_call.at_version(3)  # outside an operation: nothing to move
    with driver_call.holding("rt", "tok") as held:
        assert driver_call.current() is held
        assert held.record_version == -1
        driver_call.at_version(7)
        assert driver_call.current() == driver_call.DriverCall("rt", "tok", 7)
        with driver_call.driver_call("other", "tok-2", 1):
            assert driver_call.current() == driver_call.DriverCall("other", "tok-2", 1)
        assert driver_call.current() is held
    assert driver_call.current() is None
