"""A team's policy: what a team key may run, and the team's quotas.

    {"commands": [["/usr/bin/python3", "/srv/app/*.py", "..."]],
     "images": ["docker.io/library/nginx:*"],
     "networks": ["team-alpha"],
     "max_runtimes": 20, "max_running": 5}

Every part is optional. `commands` are argv templates: one fnmatch pattern per
argument, the executable first (an absolute path); a final "..." allows any
further arguments. `images` are fnmatch patterns over the image name exactly as
the spec writes it. `networks` are docker networks a team may join besides
"none" and "bridge". A quota left out (None) is unlimited.

A team without a policy may run nothing (deny by default); the rules a spec
must pass are in `policy_rules.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ANY_FURTHER = "..."
"""As the last element of a command template: any further arguments."""
MAX_TEMPLATES = 256
MAX_TEMPLATE_ARGS = 128
MAX_PATTERN_CHARS = 1024
MAX_QUOTA = 1_000_000
_NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
_FIELDS = ("commands", "images", "networks", "max_runtimes", "max_running")


class InvalidPolicy(ValueError):
    """The policy document is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    commands: tuple[tuple[str, ...], ...] = ()
    images: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    max_runtimes: int | None = None
    """Records of the team that are not `removed`."""
    max_running: int | None = None
    """Runtimes of the team that hold (or are bringing up) a process or container:
    every status but pending, stopped, error and removed (RUNNING_STATUSES)."""

    def to_document(self) -> dict[str, Any]:
        return {
            "commands": [list(template) for template in self.commands],
            "images": list(self.images),
            "networks": list(self.networks),
            "max_runtimes": self.max_runtimes,
            "max_running": self.max_running,
        }


def policy_from_document(document: object) -> TeamPolicy:
    """The policy a JSON document describes; InvalidPolicy naming the first fault."""
    if not isinstance(document, dict):
        raise InvalidPolicy("a policy must be an object")
    unknown = sorted(str(key) for key in document if key not in _FIELDS)
    if unknown:
        raise InvalidPolicy(f"unknown policy field(s) {', '.join(unknown)}")
    return TeamPolicy(
        commands=_commands(document.get("commands")),
        images=_patterns("images", document.get("images")),
        networks=_networks(document.get("networks")),
        max_runtimes=_quota("max_runtimes", document.get("max_runtimes")),
        max_running=_quota("max_running", document.get("max_running")),
    )


def _list(name: str, value: object, limit: int) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPolicy(f"{name} must be a list")
    if len(value) > limit:
        raise InvalidPolicy(f"{name} has {len(value)} entries; the limit is {limit}")
    return value


def _pattern(name: str, value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or "\0" in value
        or len(value) > MAX_PATTERN_CHARS
        or not value.isprintable()
    ):
        raise InvalidPolicy(
            f"{name} must be a non-empty printable string of at most {MAX_PATTERN_CHARS} characters"
        )
    return value


def _commands(value: object) -> tuple[tuple[str, ...], ...]:
    templates = []
    for index, raw in enumerate(_list("commands", value, MAX_TEMPLATES)):
        name = f"commands[{index}]"
        if not isinstance(raw, list) or not raw:
            raise InvalidPolicy(f"{name} must be a non-empty list of patterns")
        if len(raw) > MAX_TEMPLATE_ARGS:
            raise InvalidPolicy(f"{name} has more than {MAX_TEMPLATE_ARGS} elements")
        template = tuple(_pattern(f"{name}[{i}]", part) for i, part in enumerate(raw))
        if not template[0].startswith("/"):
            raise InvalidPolicy(f"{name}[0] must be an absolute path (the executable)")
        if ANY_FURTHER in template[:-1] or template[0] == ANY_FURTHER:
            raise InvalidPolicy(f"{name}: {ANY_FURTHER!r} may only end a template")
        templates.append(template)
    return tuple(templates)


def _patterns(name: str, value: object) -> tuple[str, ...]:
    items = _list(name, value, MAX_TEMPLATES)
    patterns = tuple(_pattern(f"{name}[{i}]", item) for i, item in enumerate(items))
    for index, pattern in enumerate(patterns):
        if any(char.isspace() for char in pattern):
            raise InvalidPolicy(f"{name}[{index}] must not contain spaces")
    return patterns


def _networks(value: object) -> tuple[str, ...]:
    networks = _patterns("networks", value)
    for index, network in enumerate(networks):
        # "host" shares the host's network stack; "container:<id>" (refused by
        # the name rule) joins another runtime's.
        if network == "host" or not _NETWORK_NAME.match(network):
            raise InvalidPolicy(
                f"networks[{index}] must name a docker network (not host or container:...), "
                f"not {network!r}"
            )
    return networks


def _quota(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUOTA:
        raise InvalidPolicy(f"{name} must be an integer from 0 to {MAX_QUOTA}, or null")
    return value
