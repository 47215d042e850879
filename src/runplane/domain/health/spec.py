"""The `health` and `restart_policy` parts of a runtime's spec (DESIGN §7), as
values: what to probe and how often, and whether a runtime that went down is
restarted. Parsing refuses a malformed part with InvalidSpec, naming the field.

    "health": {"type": "http"|"tcp"|"exec", "port", "path", "expect_status",
               "command", "initial_delay_s": 5, "period_s": 5, "timeout_s": 1,
               "failure_threshold": 3}
    "restart_policy": {"mode": "no"|"on-failure"|"always", "max_retries": 5,
                       "window_s": 300}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from runplane.domain.errors import InvalidSpec

DEFAULT_INITIAL_DELAY_S = 5.0
DEFAULT_PERIOD_S = 5.0
DEFAULT_TIMEOUT_S = 1.0
DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_MAX_RETRIES = 5
DEFAULT_WINDOW_S = 300.0

_HEALTH_FIELDS = frozenset(
    {
        "type",
        "port",
        "path",
        "expect_status",
        "command",
        "initial_delay_s",
        "period_s",
        "timeout_s",
        "failure_threshold",
    }
)
_POLICY_FIELDS = frozenset({"mode", "max_retries", "window_s"})
_E = TypeVar("_E", bound=StrEnum)


class ProbeType(StrEnum):
    HTTP = "http"
    TCP = "tcp"
    EXEC = "exec"


class RestartMode(StrEnum):
    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A probe. `port` None: the runtime's own port (spec `port` / its endpoint).
    `expect_status` None: any 2xx answer counts as healthy."""

    type: ProbeType
    port: int | None = None
    path: str = "/"
    expect_status: int | None = None
    command: tuple[str, ...] = ()
    initial_delay_s: float = DEFAULT_INITIAL_DELAY_S
    period_s: float = DEFAULT_PERIOD_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    mode: RestartMode = RestartMode.NO
    max_retries: int = DEFAULT_MAX_RETRIES
    window_s: float = DEFAULT_WINDOW_S


def health_check_of(spec: dict[str, Any]) -> HealthCheck | None:
    """The spec's probe, or None when it has no `health` part."""
    raw = spec.get("health")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidSpec("health must be an object")
    _refuse_unknown("health", raw, _HEALTH_FIELDS)
    probe_type = _choice("health.type", raw.get("type"), ProbeType, None)
    check = HealthCheck(
        type=probe_type,
        port=_optional_port(raw.get("port")),
        path=_path(raw.get("path")),
        expect_status=_optional_status(raw.get("expect_status")),
        command=_command(raw.get("command")),
        initial_delay_s=_seconds("health.initial_delay_s", raw, DEFAULT_INITIAL_DELAY_S, 0.0),
        period_s=_seconds("health.period_s", raw, DEFAULT_PERIOD_S, 0.01),
        timeout_s=_seconds("health.timeout_s", raw, DEFAULT_TIMEOUT_S, 0.01),
        failure_threshold=_count("health.failure_threshold", raw, DEFAULT_FAILURE_THRESHOLD, 1),
    )
    if check.type is ProbeType.EXEC and not check.command:
        raise InvalidSpec("health.command is required for an exec probe")
    return check


def restart_policy_of(spec: dict[str, Any]) -> RestartPolicy:
    """The spec's restart policy; `no` when it has none."""
    raw = spec.get("restart_policy")
    if raw is None:
        return RestartPolicy()
    if not isinstance(raw, dict):
        raise InvalidSpec("restart_policy must be an object")
    _refuse_unknown("restart_policy", raw, _POLICY_FIELDS)
    return RestartPolicy(
        mode=_choice("restart_policy.mode", raw.get("mode"), RestartMode, RestartMode.NO),
        max_retries=_count("restart_policy.max_retries", raw, DEFAULT_MAX_RETRIES, 0),
        window_s=_seconds("restart_policy.window_s", raw, DEFAULT_WINDOW_S, 1.0),
    )


def check_health_parts(spec: dict[str, Any]) -> None:
    """Raise InvalidSpec if the spec's `health` or `restart_policy` is malformed."""
    health_check_of(spec)
    restart_policy_of(spec)


# -- field parsers ------------------------------------------------------------------


def _refuse_unknown(part: str, raw: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(str(key) for key in raw if key not in known)
    if unknown:
        raise InvalidSpec(
            f"unknown {part} field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )


def _choice(name: str, value: object, kind: type[_E], default: _E | None) -> _E:
    if value is None and default is not None:
        return default
    allowed = {member.value: member for member in kind}
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    raise InvalidSpec(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _optional_port(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(f"health.port must be an integer from 1 to 65535, not {value!r}")
    return value


def _optional_status(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise InvalidSpec(f"health.expect_status must be an HTTP status code, not {value!r}")
    return value


def _path(value: object) -> str:
    if value is None:
        return "/"
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidSpec(f"health.path must be a string starting with '/', not {value!r}")
    return value


def _command(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(part, str) and part for part in value)
    ):
        raise InvalidSpec("health.command must be a non-empty list of non-empty strings")
    return tuple(value)


def _seconds(name: str, raw: dict[str, Any], default: float, minimum: float) -> float:
    value = raw.get(name.rpartition(".")[2])
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSpec(f"{name} must be a number of seconds, not {value!r}")
    if value < minimum:
        raise InvalidSpec(f"{name} must be at least {minimum:g}")
    return float(value)


def _count(name: str, raw: dict[str, Any], default: int, minimum: int) -> int:
    value = raw.get(name.rpartition(".")[2])
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSpec(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return value
