"""The `process` driver's spec: a runtime's command line, environment and stop
behaviour, checked once and normalised so what is stored is what runs.

Normalised form: `command`, `env`, `stop_signal` (a name such as "SIGTERM") and
`stop_timeout_s` (a float) are always present; `cwd`, `port`, `health` and
`restart_policy` only when given. Null counts as absent. Validating a
normalised spec returns it unchanged.
"""

from __future__ import annotations

import copy
import math
import signal
from typing import Any

from runplane.domain.errors import InvalidSpec

DEFAULT_STOP_SIGNAL = "SIGTERM"
DEFAULT_STOP_TIMEOUT_S = 10.0
MAX_STOP_TIMEOUT_S = 3600.0

_FIELDS = (
    "command",
    "env",
    "cwd",
    "stop_signal",
    "stop_timeout_s",
    "port",
    "health",
    "restart_policy",
)
# Signals that pause or resume a process rather than ask it to end.
_NOT_STOP_SIGNALS = frozenset(
    {signal.SIGSTOP, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
)


def validate_process_spec(spec: object) -> dict[str, Any]:
    """The normalised spec; raises InvalidSpec naming the first field at fault."""
    if not isinstance(spec, dict):
        raise InvalidSpec(f"spec must be an object, not {_kind(spec)}")
    unknown = sorted(str(key) for key in spec if key not in _FIELDS)
    if unknown:
        raise InvalidSpec(
            f"unknown spec field(s) {', '.join(unknown)}; allowed: {', '.join(_FIELDS)}"
        )
    normalised: dict[str, Any] = {
        "command": _command(spec.get("command")),
        "env": _env(spec.get("env")),
        "stop_signal": _stop_signal(spec.get("stop_signal")),
        "stop_timeout_s": _stop_timeout(spec.get("stop_timeout_s")),
    }
    if spec.get("cwd") is not None:
        normalised["cwd"] = _cwd(spec["cwd"])
    if spec.get("port") is not None:
        normalised["port"] = _port(spec["port"])
    for name in ("health", "restart_policy"):
        value = spec.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidSpec(f"{name} must be an object, not {_kind(value)}")
        # Their fields are checked where they are used; keep a private copy.
        normalised[name] = copy.deepcopy(value)
    return normalised


def _command(value: object) -> list[str]:
    if value is None:
        raise InvalidSpec("command is required: a non-empty list of strings")
    if not isinstance(value, list):
        raise InvalidSpec(f"command must be a non-empty list of strings, not {_kind(value)}")
    if not value:
        raise InvalidSpec("command must not be empty")
    for index, part in enumerate(value):
        if not isinstance(part, str):
            raise InvalidSpec(f"command[{index}] must be a string, not {_kind(part)}")
        if "\0" in part:
            raise InvalidSpec(f"command[{index}] must not contain a NUL character")
    if not value[0]:
        raise InvalidSpec("command[0] (the program) must not be empty")
    return list(value)


def _env(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSpec(f"env must be an object of strings, not {_kind(value)}")
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise InvalidSpec(f"env name {key!r} must be a non-empty string without '=' or NUL")
        if not isinstance(item, str):
            raise InvalidSpec(f"env[{key!r}] must be a string, not {_kind(item)}")
        if "\0" in item:
            raise InvalidSpec(f"env[{key!r}] must not contain a NUL character")
        env[key] = item
    return env


def _cwd(value: object) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        raise InvalidSpec(f"cwd must be a non-empty path string, not {_kind(value)}")
    return value


def _stop_signal(value: object) -> str:
    if value is None:
        return DEFAULT_STOP_SIGNAL
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            sig = signal.Signals(value)
        elif isinstance(value, str):
            name = value.strip().upper()
            sig = signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]
        else:
            raise ValueError(value)
    except (ValueError, KeyError):
        raise InvalidSpec(
            f"stop_signal must be a signal name such as 'SIGTERM' or its number, not {value!r}"
        ) from None
    if sig in _NOT_STOP_SIGNALS:
        raise InvalidSpec(f"stop_signal {sig.name} pauses or resumes a process; it cannot stop it")
    return sig.name


def _stop_timeout(value: object) -> float:
    if value is None:
        return DEFAULT_STOP_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpec(f"stop_timeout_s must be a number of seconds, not {_kind(value)}")
    if not math.isfinite(value) or not 0 <= value <= MAX_STOP_TIMEOUT_S:
        raise InvalidSpec(f"stop_timeout_s must be between 0 and {MAX_STOP_TIMEOUT_S:g}")
    return float(value)


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(f"port must be an integer from 1 to 65535, not {value!r}")
    return value


def _kind(value: object) -> str:
    """A JSON-ish name for what was given, for messages."""
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)
