"""NetworkProber: the http, tcp and exec probes of a runtime's `health` spec.

- http: GET http://<host>:<port><path>; healthy on `expect_status` (any 2xx
  when unset). Redirects are not followed: a 3xx is an answer.
- tcp: a connection to <host>:<port> opens.
- exec: the command exits 0, run on this host with the runtime's env and cwd.

Every probe is bounded by the check's `timeout_s`; a failing target is a
result, never an exception."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import httpx

from runplane.domain.health.probes import ProbeResult, ProbeTarget
from runplane.domain.health.spec import HealthCheck, ProbeType


class NetworkProber:
    def __init__(self) -> None:
        self._http: httpx.AsyncClient | None = None

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
        except (OSError, httpx.HTTPError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        return ProbeResult(ok, time.monotonic() - started, detail)

    async def _run(self, check: HealthCheck, target: ProbeTarget) -> tuple[bool, str]:
        if check.type is ProbeType.EXEC:
            return await _exec(check.command, target)
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


async def _tcp(host: str, port: int) -> tuple[bool, str]:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, "connected"


async def _exec(command: tuple[str, ...], target: ProbeTarget) -> tuple[bool, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, **target.env},
        cwd=target.cwd,
        start_new_session=True,
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
