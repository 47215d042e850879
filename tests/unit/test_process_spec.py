"""The process driver's spec: what it accepts, how it normalises, what it refuses."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from runplane.adapters.drivers.process_spec import validate_process_spec
from runplane.domain.errors import InvalidSpec


def test_a_bare_command_gets_the_defaults() -> None:
    assert validate_process_spec({"command": ["sleep", "1"]}) == {
        "command": ["sleep", "1"],
        "env": {},
        "stop_signal": "SIGTERM",
        "stop_timeout_s": 10.0,
    }


def test_every_field_is_kept_and_normalised() -> None:
    spec: dict[str, Any] = {
        "command": ["srv", ""],
        "env": {"A": "1"},
        "cwd": "/tmp",
        "stop_signal": "int",
        "stop_timeout_s": 3,
        "port": 8080,
        "health": {"type": "http", "path": "/"},
        "restart_policy": {"mode": "always"},
    }

    normalised = validate_process_spec(spec)

    assert normalised == spec | {"stop_signal": "SIGINT", "stop_timeout_s": 3.0}
    assert validate_process_spec(normalised) == normalised
    normalised["health"]["path"] = "/changed"
    assert spec["health"]["path"] == "/"


@pytest.mark.parametrize(
    ("given", "name"),
    [("SIGTERM", "SIGTERM"), ("term", "SIGTERM"), (signal.SIGUSR1.value, "SIGUSR1")],
)
def test_stop_signal_takes_a_name_or_a_number(given: object, name: str) -> None:
    spec = validate_process_spec({"command": ["x"], "stop_signal": given})
    assert spec["stop_signal"] == name


def test_null_counts_as_absent() -> None:
    spec = {"command": ["x"], "env": None, "cwd": None, "port": None, "health": None}
    assert validate_process_spec(spec) == validate_process_spec({"command": ["x"]})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "spec must be an object"),
        ({}, "command is required"),
        ({"command": []}, "command must not be empty"),
        ({"command": "sleep 1"}, "command must be a non-empty list"),
        ({"command": ["sleep", 1]}, r"command\[1\] must be a string"),
        ({"command": [""]}, r"command\[0\] \(the program\) must not be empty"),
        ({"command": ["x"], "image": "y"}, "unknown spec field"),
        ({"command": ["x"], "env": ["A=1"]}, "env must be an object"),
        ({"command": ["x"], "env": {"A": 1}}, r"env\['A'\] must be a string"),
        ({"command": ["x"], "env": {"A=B": "1"}}, "env name"),
        ({"command": ["x"], "cwd": 3}, "cwd must be"),
        ({"command": ["x"], "stop_signal": "SIGNOPE"}, "stop_signal must be"),
        ({"command": ["x"], "stop_signal": True}, "stop_signal must be"),
        ({"command": ["x"], "stop_signal": "SIGSTOP"}, "cannot stop it"),
        ({"command": ["x"], "stop_timeout_s": "10"}, "stop_timeout_s must be a number"),
        ({"command": ["x"], "stop_timeout_s": -1}, "stop_timeout_s must be between"),
        ({"command": ["x"], "stop_timeout_s": float("nan")}, "stop_timeout_s must be between"),
        ({"command": ["x"], "port": "80"}, "port must be an integer"),
        ({"command": ["x"], "port": 0}, "port must be an integer"),
        ({"command": ["x"], "port": True}, "port must be an integer"),
        ({"command": ["x"], "health": "http"}, "health must be an object"),
        ({"command": ["x"], "restart_policy": []}, "restart_policy must be an object"),
    ],
)
def test_invalid_specs_say_what_is_wrong(spec: Any, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        validate_process_spec(spec)
