"""NetworkProber: the http, tcp and exec probes of a runtime's `health` spec.

- http: GET http://<host>:<port><path>; healthy on `expect_status` (any 2xx
  when unset). Redirects are not followed: a 3xx is an answer.
- tcp: a connection to <host>:<port> opens.
- exec: the command exits 0, run on this host as a process runtime runs: as
  the runtime user, in the runtime's working directory (or its spec's `cwd`),
  with a clean environment plus the spec's `env` (see `process_user`).

Every probe is bounded by the check's `timeout_s`; a failing target is a
result, never an exception."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx

from runplane.adapters.drivers.process_user import (
    RuntimeSandbox,
    clean_env,
    resolve_runtime_user,
)
from runplane.domain.errors import DriverError
from runplane.domain.health.probes import ProbeResult, ProbeTarget
from runplane.domain.health.spec import HealthCheck, ProbeType


class NetworkProber:
    """`sandbox`: the process driver's, so an exec probe runs as its runtime
    does; by default runplane's own user, with no work dirs (a target without
    a `cwd` runs in /)."""

    def __init__(self, sandbox: RuntimeSandbox | None = None) -> None:
        self._http: httpx.AsyncClient | None = None
        self._sandbox = sandbox

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def probe(self, check: HealthCheck, target: ProbeTarget) -> ProbeResult:
        started = time.monotonic()
        try:
            async with asyncio.timeout(check.timeout_s):
                ok, detail = await self._run(check, target)
        except TimeoutError:
            ok, detail = False, f"timed out after {check.timeout_s:g} s"
        except (OSError, httpx.HTTPError, DriverError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        return ProbeResult(ok, time.monotonic() - started, detail)

    async def _run(self, check: HealthCheck, target: ProbeTarget) -> tuple[bool, str]:
        if check.type is ProbeType.EXEC:
            return await self._exec(check.command, target)
        if target.port is None:
            return False, "no port to probe: set health.port or the spec's port"
        if check.type is ProbeType.TCP:
            return await _tcp(target.host, target.port)
        return await self._get(check, target.host, target.port)

    async def _get(self, check: HealthCheck, host: str, port: int) -> tuple[bool, str]:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        url = f"http://{_host_in_url(host)}:{port}{check.path}"
        response = await self._http.get(url, timeout=check.timeout_s)
        status = response.status_code
        ok = status == check.expect_status if check.expect_status else 200 <= status < 300
        return ok, f"HTTP {status}"

    async def _exec(self, command: tuple[str, ...], target: ProbeTarget) -> tuple[bool, str]:
        sandbox = self._sandbox
        if sandbox is None or target.runtime_id is None:
            cwd = target.cwd or "/"
            user = sandbox.user if sandbox else resolve_runtime_user("")
            env = clean_env(user.name, Path(cwd), target.env)
        else:
            # The process driver made it at start; a docker runtime's is made here.
            if not sandbox.work_dir(target.runtime_id).is_dir():
                await asyncio.to_thread(sandbox.prepare, target.runtime_id)
            cwd = sandbox.cwd(target.runtime_id, target.cwd)
            env = sandbox.env(target.runtime_id, target.env)
        credentials = sandbox.credentials() if sandbox else {}
        return await _run_exec(command, cwd, env, credentials)


async def _tcp(host: str, port: int) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, "connected"


async def _run_exec(
    command: tuple[str, ...], cwd: str, env: dict[str, str], credentials: dict[str, Any]
) -> tuple[bool, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        start_new_session=True,
        **credentials,
    )
    try:
        code = await process.wait()
    except BaseException:
        # Timed out or cancelled: the probe's process does not outlive it.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(process.wait())
        raise
    return code == 0, f"exit code {code}"


def _host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
