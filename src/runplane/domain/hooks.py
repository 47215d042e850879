"""Extension hooks (DESIGN §11): code of the operator's own, run on every durable
lifecycle event through a consumer group of its own, at least once."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

HOOK_NAME_RULE = "1-64 lowercase letters, digits, '_', '-' or '.', starting with a letter or digit"
_HOOK_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

Hook = Callable[[dict[str, Any]], Awaitable[None] | None]
"""Called with the event's CloudEvents envelope (a dict). Returning is success;
raising is failure, and the event comes again. May be a coroutine function.
A hook must be idempotent: the envelope's `id` is the same on every delivery."""


def is_valid_hook_name(name: str) -> bool:
    return bool(_HOOK_NAME.match(name))


@dataclass(frozen=True, slots=True)
class HookSpec:
    """A hook as configured: its name and where its code is (`module:attribute`)."""

    name: str
    target: str
    origin: str
    """`entry point` (group `runplane.hooks`) or `settings` (RUNPLANE_HOOKS)."""


class BadHookSpec(ValueError):
    """A hook setting that cannot be used; the message says why."""


def parse_hook_setting(raw: str) -> list[HookSpec]:
    """`RUNPLANE_HOOKS`: comma-separated `name=module:attribute` (or just
    `module:attribute`, named after its attribute)."""
    specs: list[HookSpec] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, _, target = part.rpartition("=")
        target = target.strip()
        module, sep, attribute = target.partition(":")
        if not (module and sep and attribute):
            raise BadHookSpec(f"hook {part!r}: expected name=module:attribute")
        name = name.strip() or attribute.rsplit(".", 1)[-1].lower()
        if not is_valid_hook_name(name):
            raise BadHookSpec(f"hook name {name!r}: {HOOK_NAME_RULE}")
        specs.append(HookSpec(name, target, "settings"))
    return specs
