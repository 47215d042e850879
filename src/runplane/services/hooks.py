"""The hooks this instance runs, with their groups' state (`GET /v1/hooks`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runplane.domain.hooks import HookSpec
from runplane.ports.hooks import GroupState, GroupStates

HOOK_GROUP_PREFIX = "hook:"


def hook_group(name: str) -> str:
    """The consumer group of hook `name` on the events stream."""
    return HOOK_GROUP_PREFIX + name


@dataclass(frozen=True, slots=True)
class HookView:
    spec: HookSpec | None
    """None: a group left on the stream by a hook this instance does not run."""
    group: str
    state: GroupState | None
    """None: the group does not exist yet (created by the hook's first read)."""


@dataclass(frozen=True, slots=True)
class HookDirectory:
    specs: Sequence[HookSpec]
    groups: GroupStates
    stream: str

    async def list(self) -> list[HookView]:
        """This instance's hooks, then other hook groups found on the stream
        (run by other instances, or left behind: they hold back trimming)."""
        states = {
            s.name: s
            for s in await self.groups.groups(self.stream)
            if s.name.startswith(HOOK_GROUP_PREFIX)
        }
        views = [
            HookView(spec, hook_group(spec.name), states.pop(hook_group(spec.name), None))
            for spec in self.specs
        ]
        views += [HookView(None, name, state) for name, state in sorted(states.items())]
        return views
