"""What a team key's spec must pass, checked on the driver's normalised spec
(what is stored is what runs), and which statuses count against the quotas.

Each check answers a refusal message a person can act on, or None. Admin keys
and stream jobs (an operator's door) are not held to these rules; quotas apply
to every door (services/admission.py)."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from runplane.domain.policy import ANY_FURTHER, TeamPolicy
from runplane.domain.statuses import Status

PRESENT_STATUSES: frozenset[Status] = frozenset(Status) - {Status.REMOVED}
"""What counts against `max_runtimes`: every record not removed."""
RUNNING_STATUSES: frozenset[Status] = frozenset(Status) - {
    Status.PENDING,
    Status.STOPPED,
    Status.ERROR,
    Status.REMOVED,
}
"""What counts against `max_running`: a runtime from the moment a start begins
until it is stopped, fails or is removed. Paused counts (it still holds its
memory and processes), so a team cannot park more runtimes than its quota."""
OPEN_NETWORKS = frozenset({"none", "bridge"})
"""Docker network modes every team may use."""
_LOADER_ENV_PREFIXES = ("LD_", "DYLD_")
ROOT_REFUSAL = (
    "this instance runs runtimes as root; a team key may not run process runtimes "
    "until runplane runs them as an unprivileged user"
)


def spec_refusal(
    policy: TeamPolicy | None, driver: str, spec: dict[str, Any], *, runs_as_root: bool
) -> str | None:
    """Why a team may not run `spec` (normalised by `driver`), or None."""
    if policy is None:
        return "the team has no policy: a team key may run nothing until an admin sets one"
    if driver == "docker":
        problem = _docker_refusal(policy, spec)
    else:
        # The process driver, and any other: its spec runs a command on this host.
        problem = _process_refusal(policy, spec, runs_as_root)
    return problem or _health_refusal(policy, spec, runs_as_root)


def command_refusal(policy: TeamPolicy, argv: Sequence[str], name: str = "command") -> str | None:
    """None when `argv` matches one of the policy's command templates."""
    if not argv or not argv[0].startswith("/"):
        program = argv[0] if argv else ""
        return f"{name}[0] must be an absolute path for a team key, not {program!r}"
    if any(template_matches(template, argv) for template in policy.commands):
        return None
    return f"{name} {list(argv)!r} matches none of the team's allowed command templates"


def template_matches(template: Sequence[str], argv: Sequence[str]) -> bool:
    """One fnmatch pattern per argument; a final "..." allows any further ones."""
    open_ended = template[-1] == ANY_FURTHER
    fixed = template[:-1] if open_ended else template
    if len(argv) < len(fixed) or (not open_ended and len(argv) != len(fixed)):
        return False
    return all(_argument_matches(pattern, arg) for pattern, arg in zip(fixed, argv, strict=False))


def image_allowed(policy: TeamPolicy, image: str) -> bool:
    return any(fnmatchcase(image, pattern) for pattern in policy.images)


def _argument_matches(pattern: str, arg: str) -> bool:
    if pattern == arg:
        return True
    # A wildcard matches '/' too: "/srv/app/*" must not reach "/srv/app/../../etc".
    return fnmatchcase(arg, pattern) and ".." not in arg.split("/")


def _process_refusal(policy: TeamPolicy, spec: dict[str, Any], runs_as_root: bool) -> str | None:
    if runs_as_root:
        return ROOT_REFUSAL
    command = spec.get("command")
    if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
        return "a team key's process spec needs a command"
    problem = command_refusal(policy, command)
    if problem:
        return problem
    cwd = spec.get("cwd")
    if isinstance(cwd, str) and (cwd.startswith("/") or ".." in cwd.split("/")):
        return f"cwd must be a relative path inside the runtime's own directory, not {cwd!r}"
    env = spec.get("env") or {}
    loader = sorted(name for name in env if str(name).startswith(_LOADER_ENV_PREFIXES))
    if loader:
        return f"env {', '.join(loader)}: LD_* and DYLD_* variables are refused for a team key"
    return None


def _docker_refusal(policy: TeamPolicy, spec: dict[str, Any]) -> str | None:
    image = str(spec.get("image", ""))
    if not image_allowed(policy, image):
        return f"image {image!r} is not among the team's allowed images"
    network = str(spec.get("network_mode", "none"))
    if network not in OPEN_NETWORKS and network not in policy.networks:
        return (
            f"network_mode {network!r} is not allowed for a team key: "
            "use none, bridge or one of the team's networks"
        )
    return None


def _health_refusal(policy: TeamPolicy, spec: dict[str, Any], runs_as_root: bool) -> str | None:
    """An exec probe runs its command on this host, whatever the driver."""
    health = spec.get("health")
    if not isinstance(health, dict) or health.get("type") != "exec":
        return None
    if runs_as_root:
        return "this instance runs probes as root; a team key may not use exec probes"
    command = health.get("command")
    if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
        return "health.command must be a list of strings"
    return command_refusal(policy, command, "health.command")
