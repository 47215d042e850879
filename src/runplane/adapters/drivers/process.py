"""The `process` driver: a runtime is an OS process under a supervisor of its own.

Nothing lives in memory: every call reads the container's files (see
`process_files`) and /proc, so a fresh driver on the same state dir, after a
runplane restart, inspects and stops what an earlier one started. Signals
(stop, pause, resume) go to the runtime's whole process group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from runplane.adapters.drivers.output_settings import OutputSettings
from runplane.adapters.drivers.process_exits import ExitNoticeSocket
from runplane.adapters.drivers.process_files import (
    ContainerFiles,
    containers_dir,
    parse_container_id,
    runtime_of,
)
from runplane.adapters.drivers.process_launch import (
    SupervisorLauncher,
    await_answer,
    discard_launch,
    prepare_launch,
)
from runplane.adapters.drivers.process_looks import ProcessLooks
from runplane.adapters.drivers.process_observe import Glances
from runplane.adapters.drivers.process_output import ProcessOutput
from runplane.adapters.drivers.process_owners import Owners
from runplane.adapters.drivers.process_spec import DEFAULT_STOP_SIGNAL, validate_process_spec
from runplane.adapters.drivers.process_trash import Trash
from runplane.adapters.drivers.process_user import RuntimeSandbox
from runplane.adapters.drivers.process_wait import signal_group
from runplane.adapters.drivers.process_workdirs import EmptyWorkDirs
from runplane.domain.driver_specs import DEFAULT_STOP_TIMEOUT_S
from runplane.domain.drivers import ContainerInfo, ContainerState, StartedContainer
from runplane.domain.errors import DriverError
from runplane.domain.health.spec import check_health_parts

logger = logging.getLogger(__name__)


class ProcessDriver(ProcessLooks, ProcessOutput):
    """Container id: `p-<pid>-<start ticks>`. Files, logs included, live under
    `<state_dir>/containers/<container_id>/` (logs and metrics: `process_output`).

    `sandbox`: the user, working directory and environment runtimes get (see
    `process_user`); by default runplane's own user, with work dirs under
    `<state_dir>/work`. The composition root passes the settings' one."""

    name = "process"

    def __init__(
        self,
        state_dir: Path,
        *,
        start_timeout_s: float = 10.0,
        kill_grace_s: float = 5.0,
        settle_timeout_s: float = 1.0,
        poll_interval_s: float = 0.005,
        sandbox: RuntimeSandbox | None = None,
        output: OutputSettings | None = None,
    ) -> None:
        # Absolute: the supervisor runs in another working directory.
        self._containers = containers_dir(Path(state_dir).resolve())
        self._glances = Glances(self._containers)
        self.exit_notices = ExitNoticeSocket(self._containers)
        """Ends told by the supervisors (ports.exits.ExitNotices)."""
        self._owners = Owners(self._read_owner, self._container_ids)
        self._sandbox = sandbox or RuntimeSandbox.of("", Path(state_dir) / "work")
        self._start_timeout_s = start_timeout_s
        self._kill_grace_s = kill_grace_s
        self._settle_timeout_s = settle_timeout_s
        self._poll_interval_s = poll_interval_s
        self._launcher = SupervisorLauncher(self._containers)
        self._trash = Trash()
        self._empty_work_dirs = EmptyWorkDirs(self._owners.claimed, self._trash.discard)
        self._output = output or OutputSettings()

    @property
    def sandbox(self) -> RuntimeSandbox:
        return self._sandbox

    def close(self) -> None:
        """End the launcher process; runtimes and their supervisors run on."""
        self._launcher.close()
        self.exit_notices.close()
        self._empty_work_dirs.close()

    def validate_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        normalised = validate_process_spec(spec)
        check_health_parts(normalised)
        return normalised

    async def start(self, runtime_id: str, spec: dict[str, Any]) -> StartedContainer:
        normalised = self.validate_spec(spec)
        # On the loop: a few folders, a small file and a message, a fraction of
        # a millisecond; through a thread, fifty starts at once spent more CPU
        # on the hand-offs and the GIL than on the work.
        with self._owners.launching(runtime_id):  # its work dir is claimed meanwhile
            launch_dir, notify_fd = self._launch(runtime_id, normalised)
            try:
                started = await await_answer(launch_dir, notify_fd, self._start_timeout_s)
            except DriverError:
                await asyncio.to_thread(discard_launch, launch_dir)
                raise
            container_id = started.container_id
            # Its runtime and first look are known already: no file read for either.
            self._owners.note(container_id, runtime_id)
        self._glances.seed(container_id, normalised, started.supervisor)
        port = normalised.get("port")
        endpoint = f"127.0.0.1:{port}" if port is not None else None
        logger.info(
            "process runtime started",
            extra={"runtime_id": runtime_id, "container_id": container_id},
        )
        return StartedContainer(container_id, endpoint)

    def _launch(self, runtime_id: str, spec: dict[str, Any]) -> tuple[Path, int]:
        """Write the launch dir and have the launcher start its supervisor; the
        launch dir and the pipe to wait on. Blocking, briefly (see `start`)."""
        try:
            launch = prepare_launch(
                self._containers, runtime_id, spec, self._sandbox, self.log_settings()
            )
        except OSError as exc:
            raise DriverError(f"cannot prepare the runtime's state dir: {exc}") from exc
        try:
            return launch.dir, self._launcher.launch(launch)
        except BaseException:
            discard_launch(launch.dir)
            raise

    async def stop(self, container_id: str, *, timeout_s: float | None = None) -> ContainerInfo:
        pgid, live = await self._live(container_id)
        self.exit_notices.expect(container_id)
        spec = live.spec
        grace = spec.get("stop_timeout_s", DEFAULT_STOP_TIMEOUT_S)
        if timeout_s is not None:
            grace = timeout_s
        stop_signal = signal.Signals[spec.get("stop_signal", DEFAULT_STOP_SIGNAL)]
        logger.info(
            "stopping process runtime",
            extra={
                "runtime_id": self._owners.known(container_id),
                "container_id": container_id,
                "signal": stop_signal.name,
                "timeout_s": grace,
            },
        )
        signal_group(pgid, stop_signal)
        # A paused runtime has to run again to act on its stop signal.
        signal_group(pgid, signal.SIGCONT)
        final = await self._await_end(container_id, grace, live)
        if final is None:
            logger.warning(
                "process runtime outlived its stop timeout; killing it",
                extra={"container_id": container_id, "timeout_s": grace},
            )
            signal_group(pgid, signal.SIGKILL)
            final = await self._await_end(container_id, self._kill_grace_s)
        if final is None:
            raise DriverError(f"container {container_id!r} survived SIGKILL")
        if final.state is ContainerState.MISSING:
            detail = "stopped; exit status unknown (its supervisor is gone)"
            return ContainerInfo(container_id, ContainerState.EXITED, detail=detail)
        return final

    async def pause(self, container_id: str) -> None:
        pgid, _ = await self._live(container_id)
        signal_group(pgid, signal.SIGSTOP)
        await self._await_state(container_id, ContainerState.PAUSED)

    async def resume(self, container_id: str) -> None:
        pgid, _ = await self._live(container_id)
        signal_group(pgid, signal.SIGCONT)
        await self._await_state(container_id, ContainerState.RUNNING)

    async def remove(self, container_id: str) -> None:
        if parse_container_id(container_id) is None:
            return
        # An end recorded (a stopped runtime's, the usual remove) leaves
        # nothing to kill: its supervisor killed the group before recording
        # it. No look then: a start after a stop removes the last container.
        if not self._end_recorded(container_id):
            observed = await self._settled(container_id)
            self.exit_notices.expect(container_id)
            if observed.pgid is not None:
                signal_group(observed.pgid, signal.SIGKILL)
                # Let the supervisor record the end before its folder goes away.
                await self._await_end(container_id, self._kill_grace_s)
        try:
            self._remove_files(container_id)  # renames only: on the loop (process_trash)
        except OSError as exc:
            folder = self._containers / container_id
            raise DriverError(f"cannot remove {folder}: {exc}") from exc
        self._glances.forget(container_id)
        logger.info("process runtime removed", extra={"container_id": container_id})

    async def inspect(self, container_id: str) -> ContainerInfo:
        return (await self._settled(container_id)).info

    async def list_containers(self) -> list[ContainerInfo]:
        """Every container, with the runtime it was started for (from its state file)."""
        began = self._owners.listing_begins()
        container_ids = await asyncio.to_thread(self._container_ids)
        self._owners.keep_only(container_ids, began)
        containers = []
        looks = await self._looks(container_ids)
        for container_id, observed in zip(container_ids, looks, strict=True):
            info = observed.info
            runtime_id = self._owners.known(container_id)
            if runtime_id is None:
                runtime_id = await asyncio.to_thread(self._owners.of, container_id)
            containers.append(replace(info, runtime_id=runtime_id))
        return containers

    def _end_recorded(self, container_id: str) -> bool:
        """Whether its exit file is there: one stat, on the loop."""
        return os.path.lexists(ContainerFiles(self._containers / container_id).exit)

    def _read_owner(self, container_id: str) -> str | None:
        return runtime_of(ContainerFiles(self._containers / container_id))

    def _remove_files(self, container_id: str) -> None:
        """The container's folder, and its runtime's work dir with its last
        container: a runtime id used again later (by anyone) starts in an
        empty one. Both are moved to a trash and deleted later (process_trash)."""
        runtime_id = self._owners.of(container_id)
        self._trash.discard(self._containers / container_id)
        self._owners.forget(container_id)
        if runtime_id is None:
            return
        if self._owners.has_any(runtime_id):
            return
        work_dir = self._sandbox.work_dir(runtime_id)
        if self._empty_work_dirs.leave(runtime_id, work_dir):
            return  # for a start that follows; removed in a second if none does
        try:
            self._trash.discard(work_dir)
        except OSError:  # the container is gone all the same
            logger.warning("cannot remove a work dir", exc_info=True)

    # -- observing ----------------------------------------------------------

    def _container_ids(self) -> list[str]:
        try:
            names = sorted(os.listdir(self._containers))
        except FileNotFoundError:
            return []
        return [name for name in names if parse_container_id(name) is not None]


__all__ = ["ProcessDriver"]
