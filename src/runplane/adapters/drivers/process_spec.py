"""The `process` driver's spec: a runtime's command line, environment and stop
behaviour, checked once and normalised so what is stored is what runs.

Normalised form: `command`, `env`, `stop_signal` (a name such as "SIGTERM") and
`stop_timeout_s` (a float) are always present; `cwd`, `port`, `health`,
`restart_policy` and `placement` only when given. A relative `cwd` is inside
the runtime's working directory (see `process_user`). Null counts as absent.
Validating a normalised spec returns it unchanged.
"""

from __future__ import annotations

import posixpath
import signal
from typing import Any

from runplane.domain.driver_specs import (
    PLACEMENT,
    checked_object,
    copy_passed_through,
    kind,
    stop_timeout,
)
from runplane.domain.errors import InvalidSpec
from runplane.domain.snapshots import SNAPSHOT_SPEC_KEY

DEFAULT_STOP_SIGNAL = "SIGTERM"

_FIELDS = (
    "command",
    "env",
    "cwd",
    "stop_signal",
    "stop_timeout_s",
    "port",
    "health",
    "restart_policy",
    PLACEMENT,
    SNAPSHOT_SPEC_KEY,
)
# Signals that pause or resume a process rather than ask it to end.
_NOT_STOP_SIGNALS = frozenset(
    {signal.SIGSTOP, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
)


def validate_process_spec(spec: object) -> dict[str, Any]:
    """The normalised spec; raises InvalidSpec naming the first field at fault."""
    spec = checked_object(spec, _FIELDS)
    normalised: dict[str, Any] = {
        "command": _command(spec.get("command")),
        "env": _env(spec.get("env")),
        "stop_signal": _stop_signal(spec.get("stop_signal")),
        "stop_timeout_s": stop_timeout(spec.get("stop_timeout_s")),
    }
    if spec.get("cwd") is not None:
        normalised["cwd"] = _cwd(spec["cwd"])
    if spec.get("port") is not None:
        normalised["port"] = _port(spec["port"])
    copy_passed_through(spec, normalised)
    return normalised


def _command(value: object) -> list[str]:
    if value is None:
        raise InvalidSpec("command is required: a non-empty list of strings")
    if not isinstance(value, list):
        raise InvalidSpec(f"command must be a non-empty list of strings, not {kind(value)}")
    if not value:
        raise InvalidSpec("command must not be empty")
    for index, part in enumerate(value):
        if not isinstance(part, str):
            raise InvalidSpec(f"command[{index}] must be a string, not {kind(part)}")
        if "\0" in part:
            raise InvalidSpec(f"command[{index}] must not contain a NUL character")
    if not value[0]:
        raise InvalidSpec("command[0] (the program) must not be empty")
    return list(value)


def _env(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSpec(f"env must be an object of strings, not {kind(value)}")
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise InvalidSpec(f"env name {key!r} must be a non-empty string without '=' or NUL")
        if not isinstance(item, str):
            raise InvalidSpec(f"env[{key!r}] must be a string, not {kind(item)}")
        if "\0" in item:
            raise InvalidSpec(f"env[{key!r}] must not contain a NUL character")
        env[key] = item
    return env


def _cwd(value: object) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        raise InvalidSpec(f"cwd must be a non-empty path string, not {kind(value)}")
    # A relative cwd lies inside the runtime's own working directory; `..`
    # may not lead out of it (symlinks are checked when it starts).
    if not posixpath.isabs(value) and posixpath.normpath(value).split("/")[0] == "..":
        raise InvalidSpec(f"cwd {value!r} leads out of the runtime's working directory")
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


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSpec(f"port must be an integer from 1 to 65535, not {value!r}")
    return value
