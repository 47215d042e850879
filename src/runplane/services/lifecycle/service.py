"""Every operation, built once from the same Dependencies: what the API, the CLI
and the workers are handed by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.domain.operations import OpKind
from runplane.services.lifecycle.create import CreateRuntime
from runplane.services.lifecycle.dependencies import Dependencies
from runplane.services.lifecycle.operation import LifecycleOperation
from runplane.services.lifecycle.patch import PatchRuntime
from runplane.services.lifecycle.pause import PauseRuntime
from runplane.services.lifecycle.remove import RemoveRuntime
from runplane.services.lifecycle.restart import RestartRuntime
from runplane.services.lifecycle.resume import ResumeRuntime
from runplane.services.lifecycle.start import StartRuntime
from runplane.services.lifecycle.stop import StopRuntime


@dataclass(frozen=True, slots=True)
class Lifecycle:
    create: CreateRuntime
    operations: dict[OpKind, LifecycleOperation]

    @classmethod
    def build(cls, deps: Dependencies, default_driver: str) -> Lifecycle:
        start = StartRuntime(deps)
        operations: dict[OpKind, LifecycleOperation] = {
            OpKind.START: start,
            OpKind.STOP: StopRuntime(deps),
            OpKind.RESTART: RestartRuntime(deps),
            OpKind.PATCH: PatchRuntime(deps),
            OpKind.PAUSE: PauseRuntime(deps),
            OpKind.RESUME: ResumeRuntime(deps),
            OpKind.REMOVE: RemoveRuntime(deps),
        }
        return cls(CreateRuntime(deps, start, default_driver), operations)

    def __getitem__(self, op: OpKind) -> LifecycleOperation:
        return self.operations[op]
