"""Prober contract: a probe of each type against a real target on loopback (an
HTTP server, a TCP listener, a process) answers ok for a healthy target and a
result with ok=False and a detail, never an exception, for a failing, closed
or hung one, within the check's timeout.

The only real Prober is NetworkProber. The unit tests' ScriptedProber
(tests/support/health.py) answers from a script and models no backend, so
there is nothing of it to hold to this suite; a fake Prober would subclass
ProberContract."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runplane.adapters.probes import NetworkProber
from runplane.domain.health.probes import ProbeTarget
from runplane.domain.health.spec import HealthCheck, ProbeType
from runplane.ports.health import Prober
from tests.support.redis import free_port

TIMEOUT_S = 0.3
"""The timeout of the checks whose target never answers."""
PATIENT_S = 30.0
"""The timeout of the checks expected to get an answer: on a loaded machine a
`sh` may take longer than TIMEOUT_S to start, and the test is not about that."""


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP on loopback: GET /<code> answers that status, GET /hang never answers,
    GET /moved redirects (302) to /200."""
    request = await reader.readuntil(b"\r\n\r\n")
    path = request.split(b" ")[1].decode().lstrip("/")
    if path == "hang":
        await reader.read()  # until the prober gives up and hangs up
        writer.close()
        return
    status, extra = (302, "Location: /200\r\n") if path == "moved" else (int(path), "")
    writer.write(f"HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\n\r\n".encode())
    await writer.drain()
    writer.close()


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        port: int = server.sockets[0].getsockname()[1]
        yield port


def http(path: str, timeout_s: float = PATIENT_S, **fields: object) -> HealthCheck:
    return HealthCheck(ProbeType.HTTP, path=path, timeout_s=timeout_s, **fields)  # type: ignore[arg-type]


def tcp() -> HealthCheck:
    return HealthCheck(ProbeType.TCP, timeout_s=PATIENT_S)


def exec_(*command: str, timeout_s: float = PATIENT_S) -> HealthCheck:
    return HealthCheck(ProbeType.EXEC, command=command, timeout_s=timeout_s)


class ProberContract:
    """Every Prober passes these; a subclass provides `prober`."""

    @pytest.fixture
    def prober(self) -> Prober:
        raise NotImplementedError

    async def test_http_is_healthy_on_any_2xx_or_the_expected_status(
        self, prober: Prober, http_port: int
    ) -> None:
        target = ProbeTarget(port=http_port)

        results = [
            await prober.probe(http("/200"), target),
            await prober.probe(http("/204"), target),
            await prober.probe(http("/503"), target),
            await prober.probe(http("/503", expect_status=503), target),
            await prober.probe(http("/200", expect_status=204), target),
        ]

        assert [r.ok for r in results] == [True, True, False, True, False]
        assert results[2].detail == "HTTP 503"

    async def test_an_http_redirect_is_an_answer_not_followed(
        self, prober: Prober, http_port: int
    ) -> None:
        result = await prober.probe(http("/moved"), ProbeTarget(port=http_port))

        assert (result.ok, result.detail) == (False, "HTTP 302")

    async def test_tcp_is_healthy_when_a_connection_opens(
        self, prober: Prober, http_port: int
    ) -> None:
        assert (await prober.probe(tcp(), ProbeTarget(port=http_port))).ok

    async def test_exec_is_healthy_on_exit_zero_with_the_runtimes_env_and_cwd(
        self, prober: Prober, tmp_path: Path
    ) -> None:
        (tmp_path / "ready").write_text("")
        target = ProbeTarget(env={"WANTED": "ready"}, cwd=str(tmp_path))
        check = exec_("sh", "-c", 'test -e "$WANTED"')

        healthy = await prober.probe(check, target)
        (tmp_path / "ready").unlink()
        failing = await prober.probe(check, target)

        assert healthy.ok
        assert (failing.ok, failing.detail) == (False, "exit code 1")

    @pytest.mark.parametrize("kind", ["http", "tcp"])
    async def test_a_closed_port_or_no_port_is_a_failed_result(
        self, prober: Prober, kind: str
    ) -> None:
        check = http("/200") if kind == "http" else tcp()

        closed = await prober.probe(check, ProbeTarget(port=free_port()))
        no_port = await prober.probe(check, ProbeTarget())

        assert (closed.ok, no_port.ok) == (False, False)
        assert closed.detail
        assert "no port" in no_port.detail

    async def test_a_missing_program_is_a_failed_result(self, prober: Prober) -> None:
        result = await prober.probe(exec_("/nonexistent/probe"), ProbeTarget())

        assert not result.ok
        assert result.detail

    @pytest.mark.parametrize("kind", ["http", "exec"])
    async def test_a_hung_target_fails_within_the_timeout(
        self, prober: Prober, http_port: int, kind: str
    ) -> None:
        check = (
            http("/hang", timeout_s=TIMEOUT_S)
            if kind == "http"
            else exec_("sleep", "30", timeout_s=TIMEOUT_S)
        )
        started = time.monotonic()

        result = await prober.probe(check, ProbeTarget(port=http_port))

        assert (
            time.monotonic() - started < TIMEOUT_S + 10
        )  # bounded, not hung: the target never answers
        assert (result.ok, result.detail) == (False, f"timed out after {TIMEOUT_S:g} s")
        assert TIMEOUT_S * 0.9 <= result.latency_s < TIMEOUT_S + 10


class TestNetworkProber(ProberContract):
    @pytest.fixture
    async def prober(self) -> AsyncIterator[Prober]:
        prober = NetworkProber()
        yield prober
        await prober.aclose()
