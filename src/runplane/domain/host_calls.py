"""Driver calls sent to a host's agent, and their answers: the values and their
wire form (flat JSON), not the I/O. See docs/hosts.md.

A call carries the lease token and record version of the operation that sends
it, so the agent can refuse a late, repeated or stale one (`fenced`). Reads
(`inspect`, `list`) change nothing and are not fenced."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import ContainerGone, DriverError, InvalidSpec, SpecRefused
from runplane.domain.runtime_output import BadOutputQuery


class CallOp(StrEnum):
    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    REMOVE = "remove"
    INSPECT = "inspect"
    LIST = "list"
    CONNECTIONS = "connections"
    """Count connections open to runtimes' ports (domain/connection_calls.py)."""
    LOGS = "logs"
    METRICS = "metrics"


READ_OPS = frozenset({CallOp.INSPECT, CallOp.LIST, CallOp.CONNECTIONS, CallOp.LOGS, CallOp.METRICS})
"""Calls that change nothing: run without a lease, never fenced nor remembered."""

CALL_ID_RULE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_CALL_BYTES = 256 * 1024
"""A larger call entry is refused unread (a spec is far smaller)."""


class CallFenced(DriverError):
    """The agent refused the call: its lease token no longer holds the runtime,
    or a newer record version was already applied. Nothing was done."""


class HostUnreachable(DriverError):
    """No answer from the host's agent within the call's bound: the call may
    still be applied later (the next operation inspects to find out)."""


class CallInterrupted(DriverError):
    """The agent died while executing the call; whether it took effect is
    unknown, and it is never run again (inspect to find out)."""


class MalformedCall(ValueError):
    """A call entry that is not a call (hostile or corrupt input)."""


@dataclass(frozen=True, slots=True)
class HostCall:
    call_id: str
    op: CallOp
    driver: str
    """Which of the host's drivers runs it (process, docker)."""
    deadline: float
    """Wall-clock epoch seconds past which the caller no longer waits: an agent
    that reads the call later does not act on it."""
    runtime_id: str = ""
    container_id: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    lease_token: str = ""
    record_version: int = -1

    @property
    def fenced(self) -> bool:
        return self.op not in READ_OPS

    def to_json(self) -> str:
        fields = asdict(self)
        fields["op"] = str(self.op)
        return json.dumps(fields, separators=(",", ":"))


def _text(fields: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = fields.get(name, "")
    if not isinstance(value, str) or (required and not value) or len(value) > 1024:
        raise MalformedCall(f"{name} must be a string of at most 1024 characters")
    return value


def parse_call(raw: bytes | str) -> HostCall:
    """The call in a stream entry's `call` field; MalformedCall otherwise."""
    if len(raw) > MAX_CALL_BYTES:
        raise MalformedCall("call too large")
    try:
        fields = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCall("call is not JSON") from exc
    if not isinstance(fields, dict):
        raise MalformedCall("call is not an object")
    call_id = _text(fields, "call_id", required=True)
    if not CALL_ID_RULE.match(call_id):
        raise MalformedCall("call_id must be 1-128 of A-Z a-z 0-9 _ . : -")
    try:
        op = CallOp(str(fields.get("op")))
    except ValueError as exc:
        raise MalformedCall(f"unknown op {fields.get('op')!r:.40}") from exc
    spec = fields.get("spec")
    spec = {} if spec is None else spec
    timeout_s = fields.get("timeout_s")
    version = fields.get("record_version", -1)
    deadline = fields.get("deadline")
    if not isinstance(spec, dict):
        raise MalformedCall("spec must be an object")
    if timeout_s is not None and (not isinstance(timeout_s, int | float) or timeout_s < 0):
        raise MalformedCall("timeout_s must be a non-negative number")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedCall("record_version must be an integer")
    if not isinstance(deadline, int | float) or isinstance(deadline, bool):
        raise MalformedCall("deadline must be a number")
    call = HostCall(
        call_id=call_id,
        op=op,
        driver=_text(fields, "driver", required=True),
        deadline=float(deadline),
        runtime_id=_text(fields, "runtime_id"),
        container_id=_text(fields, "container_id"),
        spec=spec,
        timeout_s=None if timeout_s is None else float(timeout_s),
        lease_token=_text(fields, "lease_token"),
        record_version=version,
    )
    if call.fenced and not (call.runtime_id and call.lease_token):
        raise MalformedCall(f"{op} needs runtime_id and lease_token")
    return call


def salvage_call_id(raw: bytes | str) -> str | None:
    """The call_id of a malformed call, when it has a usable one (so its caller
    gets an error answer instead of waiting out its bound)."""
    try:
        fields = json.loads(raw) if len(raw) <= MAX_CALL_BYTES else None
    except (ValueError, UnicodeDecodeError):
        return None
    call_id = fields.get("call_id") if isinstance(fields, dict) else None
    return call_id if isinstance(call_id, str) and CALL_ID_RULE.match(call_id) else None


# -- answers ------------------------------------------------------------------------


class AnswerError(StrEnum):
    CONTAINER_GONE = "container_gone"
    DRIVER_ERROR = "driver_error"
    INVALID_SPEC = "invalid_spec"
    FENCED = "fenced"
    EXPIRED = "expired"
    INTERRUPTED = "interrupted"
    MALFORMED = "malformed"
    BAD_QUERY = "bad_query"
    SPEC_REFUSED = "spec_refused"


def ok_answer(value: Any) -> str:
    return json.dumps({"ok": True, "value": value}, separators=(",", ":"))


def error_answer(kind: AnswerError, message: str) -> str:
    return json.dumps(
        {"ok": False, "error": {"code": str(kind), "message": message[:2000]}},
        separators=(",", ":"),
    )


def answer_value(raw: str, container_id: str = "") -> Any:
    """The value of an answer, or the driver exception it reports."""
    answer = json.loads(raw)
    if answer.get("ok"):
        return answer.get("value")
    code, message = answer["error"]["code"], answer["error"]["message"]
    if code == AnswerError.CONTAINER_GONE:
        raise ContainerGone(container_id)
    if code == AnswerError.INVALID_SPEC:
        raise InvalidSpec(message)
    if code == AnswerError.SPEC_REFUSED:
        raise SpecRefused(message)
    if code == AnswerError.BAD_QUERY:
        raise BadOutputQuery(message)
    if code == AnswerError.FENCED:
        raise CallFenced(message)
    if code in (AnswerError.INTERRUPTED, AnswerError.EXPIRED):
        raise CallInterrupted(message)
    raise DriverError(f"agent: {message}")


def info_to_wire(info: ContainerInfo) -> dict[str, Any]:
    wire = asdict(info)
    wire["state"] = str(info.state)
    return wire


def info_from_wire(wire: dict[str, Any]) -> ContainerInfo:
    return ContainerInfo(**{**wire, "state": ContainerState(wire["state"])})


def started_to_wire(started: StartedContainer) -> dict[str, Any]:
    return asdict(started)


def started_from_wire(wire: dict[str, Any]) -> StartedContainer:
    return StartedContainer(**wire)
