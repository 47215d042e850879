"""Team policies (domain/policy.py) and the rules a team's spec must pass
(domain/policy_rules.py), on normalised specs."""

from __future__ import annotations

from typing import Any

import pytest

from runplane.adapters.drivers.docker_spec import validate_docker_spec
from runplane.adapters.drivers.process_spec import validate_process_spec
from runplane.domain.errors import InvalidSpec
from runplane.domain.policy import InvalidPolicy, TeamPolicy, policy_from_document
from runplane.domain.policy_rules import ROOT_REFUSAL, spec_refusal, template_matches

POLICY = TeamPolicy(
    commands=(
        ("/bin/sleep", "[0-9]*"),
        ("/usr/bin/python3", "/srv/app/*.py", "..."),
    ),
    images=("docker.io/library/nginx:*",),
    networks=("team-net",),
)


def process(spec: dict[str, Any], policy: TeamPolicy | None = POLICY) -> str | None:
    return spec_refusal(policy, "process", validate_process_spec(spec), runs_as_root=False)


def docker(spec: dict[str, Any], policy: TeamPolicy | None = POLICY) -> str | None:
    full = {"image": "docker.io/library/nginx:1.27"} | spec
    return spec_refusal(policy, "docker", validate_docker_spec(full), runs_as_root=False)


@pytest.mark.parametrize(
    ("template", "argv", "matches"),
    [
        (["/bin/sleep", "5"], ["/bin/sleep", "5"], True),
        (["/bin/sleep", "5"], ["/bin/sleep", "5", "6"], False),
        (["/bin/sleep", "5"], ["/bin/sleep"], False),
        (["/bin/sleep", "*"], ["/bin/sleep", "300"], True),
        (["/bin/echo", "..."], ["/bin/echo"], True),
        (["/bin/echo", "..."], ["/bin/echo", "a", "b", "c"], True),
        (["/bin/echo", "x", "..."], ["/bin/echo", "y", "b"], False),
        (["/bin/cat", "/data/*"], ["/bin/cat", "/data/a/b.txt"], True),
        (["/bin/cat", "/data/*"], ["/bin/cat", "/data/../root/admin.key"], False),
        (["/bin/cat", "/data/*"], ["/bin/cat", "/DATA/x"], False),
        (["/usr/bin/python3*", "..."], ["/usr/bin/python3.12", "-c", "1"], True),
    ],
)
def test_a_template_matches_one_pattern_per_argument(
    template: list[str], argv: list[str], matches: bool
) -> None:
    assert template_matches(template, argv) is matches


def test_no_policy_allows_nothing() -> None:
    refusal = process({"command": ["/bin/sleep", "5"]}, policy=None)
    assert refusal is not None
    assert "no policy" in refusal
    assert docker({}, policy=None) is not None


def test_a_command_must_match_a_template() -> None:
    assert process({"command": ["/bin/sleep", "300"]}) is None
    assert process({"command": ["/usr/bin/python3", "/srv/app/main.py", "--port", "8"]}) is None
    refusal = process({"command": ["/bin/cat", "/data/admin.key"]})
    assert refusal is not None
    assert "matches none" in refusal
    assert process({"command": ["/bin/sleep", "forever"]}) is not None


def test_a_relative_executable_is_refused_even_if_a_pattern_would_match() -> None:
    policy = TeamPolicy(commands=(("/bin/sleep", "..."),))
    refusal = process({"command": ["sleep", "5"]}, policy)
    assert refusal == "command[0] must be an absolute path for a team key, not 'sleep'"


def test_cwd_must_be_relative_and_stay_inside() -> None:
    base = {"command": ["/bin/sleep", "5"]}
    assert process(base | {"cwd": "work/sub"}) is None
    refusal = process(base | {"cwd": "/etc"})
    assert refusal is not None
    assert "cwd must be a relative path" in refusal
    # The policy's own `..` rule, on a spec the driver has not seen; the process
    # driver already refuses a cwd that climbs out, for every caller.
    for cwd in ("../elsewhere", "a/../../b"):
        with pytest.raises(InvalidSpec, match="leads out"):
            validate_process_spec(base | {"cwd": cwd})
        refusal = spec_refusal(POLICY, "process", base | {"cwd": cwd}, runs_as_root=False)
        assert refusal is not None
        assert "cwd must be a relative path" in refusal


def test_loader_variables_are_refused() -> None:
    base = {"command": ["/bin/sleep", "5"]}
    assert process(base | {"env": {"GREETING": "hi"}}) is None
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES"):
        refusal = process(base | {"env": {name: "/tmp/evil.so"}})
        assert refusal is not None
        assert name in refusal


def test_a_root_instance_refuses_team_process_runtimes() -> None:
    spec = validate_process_spec({"command": ["/bin/sleep", "5"]})
    assert spec_refusal(POLICY, "process", spec, runs_as_root=True) == ROOT_REFUSAL


def test_exec_probes_pass_the_command_templates() -> None:
    ok = {"type": "exec", "command": ["/bin/sleep", "0"]}
    bad = {"type": "exec", "command": ["/bin/cat", "/etc/shadow"]}
    assert process({"command": ["/bin/sleep", "5"], "health": ok}) is None
    refusal = process({"command": ["/bin/sleep", "5"], "health": bad})
    assert refusal is not None
    assert refusal.startswith("health.command")
    assert docker({"health": ok}) is None
    assert docker({"health": bad}) is not None
    spec = validate_docker_spec({"image": "docker.io/library/nginx:1", "health": ok})
    assert spec_refusal(POLICY, "docker", spec, runs_as_root=True) is not None


def test_docker_images_must_match_a_pattern() -> None:
    assert docker({}) is None
    for image in ("nginx:1.27", "docker.io/library/redis:7", "docker.io/library/nginx"):
        refusal = docker({"image": image})
        assert refusal is not None
        assert "allowed images" in refusal


@pytest.mark.parametrize(
    ("network", "allowed"),
    [
        ("none", True),
        ("bridge", True),
        ("team-net", True),
        ("host", False),
        ("container:other", False),
        ("other-net", False),
    ],
)
def test_docker_network_modes(network: str, allowed: bool) -> None:
    refusal = docker({"network_mode": network})
    assert (refusal is None) is allowed, refusal


def test_a_policy_document_round_trips() -> None:
    document = POLICY.to_document() | {"max_runtimes": 3, "max_running": 0}
    policy = policy_from_document(document)
    assert policy.commands == POLICY.commands
    assert policy.to_document() == document
    assert policy_from_document({}) == TeamPolicy()


@pytest.mark.parametrize(
    ("document", "fault"),
    [
        ([], "must be an object"),
        ({"command": []}, "unknown policy field"),
        ({"commands": [["sleep", "1"]]}, "absolute path"),
        ({"commands": [["/bin/echo", "...", "x"]]}, "may only end"),
        ({"commands": [[]]}, "non-empty list"),
        ({"commands": [["/bin/echo", ""]]}, "non-empty printable"),
        ({"images": ["nginx latest"]}, "spaces"),
        ({"networks": ["host"]}, "networks[0]"),
        ({"networks": ["container:x"]}, "networks[0]"),
        ({"max_runtimes": -1}, "max_runtimes"),
        ({"max_running": True}, "max_running"),
    ],
)
def test_a_malformed_policy_is_refused(document: object, fault: str) -> None:
    with pytest.raises(InvalidPolicy, match=fault.replace("[", r"\[").replace("]", r"\]")):
        policy_from_document(document)
