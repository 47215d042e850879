"""The `health` and `restart_policy` parts of a spec: defaults, and refusals that
name the field at fault."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runplane.adapters.drivers.process import ProcessDriver
from runplane.domain.errors import InvalidSpec
from runplane.domain.health.spec import (
    HealthCheck,
    ProbeType,
    RestartMode,
    RestartPolicy,
    health_check_of,
    restart_policy_of,
)


def test_a_spec_without_health_has_no_probe_and_restart_policy_no() -> None:
    assert health_check_of({"command": ["x"]}) is None
    assert restart_policy_of({"command": ["x"]}) == RestartPolicy(RestartMode.NO, 5, 300.0)


def test_probe_defaults_are_5_5_1_3() -> None:
    check = health_check_of({"health": {"type": "tcp", "port": 8080}})
    assert check == HealthCheck(ProbeType.TCP, port=8080)
    assert (check.initial_delay_s, check.period_s, check.timeout_s) == (5.0, 5.0, 1.0)
    assert check.failure_threshold == 3


def test_a_full_http_probe_and_policy_are_read() -> None:
    spec = {
        "health": {
            "type": "http",
            "port": 9000,
            "path": "/healthz",
            "expect_status": 204,
            "initial_delay_s": 0,
            "period_s": 0.5,
            "timeout_s": 2,
            "failure_threshold": 1,
        },
        "restart_policy": {"mode": "on-failure", "max_retries": 2, "window_s": 60},
    }
    check = health_check_of(spec)
    assert check == HealthCheck(ProbeType.HTTP, 9000, "/healthz", 204, (), 0.0, 0.5, 2.0, 1)
    assert restart_policy_of(spec) == RestartPolicy(RestartMode.ON_FAILURE, 2, 60.0)


@pytest.mark.parametrize(
    ("health", "field"),
    [
        ({"type": "icmp"}, "health.type"),
        ({}, "health.type"),
        ({"type": "http", "port": 0}, "health.port"),
        ({"type": "http", "path": "healthz"}, "health.path"),
        ({"type": "http", "expect_status": 99}, "health.expect_status"),
        ({"type": "exec"}, "health.command"),
        ({"type": "exec", "command": "true"}, "health.command"),
        ({"type": "tcp", "period_s": 0}, "health.period_s"),
        ({"type": "tcp", "timeout_s": "1"}, "health.timeout_s"),
        ({"type": "tcp", "failure_threshold": 0}, "health.failure_threshold"),
        ({"type": "tcp", "retries": 3}, "retries"),
    ],
)
def test_a_malformed_probe_names_its_field(health: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec, match=re.escape(field)):
        health_check_of({"health": health})


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"mode": "sometimes"}, "restart_policy.mode"),
        ({"mode": "always", "max_retries": -1}, "restart_policy.max_retries"),
        ({"mode": "always", "window_s": 0}, "restart_policy.window_s"),
    ],
)
def test_a_malformed_restart_policy_names_its_field(policy: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec, match=re.escape(field)):
        restart_policy_of({"restart_policy": policy})


def test_the_process_driver_refuses_a_malformed_health_part(tmp_path: Any) -> None:
    driver = ProcessDriver(tmp_path)
    with pytest.raises(InvalidSpec, match=r"health\.type"):
        driver.validate_spec({"command": ["sleep", "1"], "health": {"type": "ping"}})
    ok = {"command": ["sleep", "1"], "health": {"type": "exec", "command": ["true"]}}
    assert driver.validate_spec(ok)["health"] == ok["health"]
