"""The process driver's logs and metrics against real processes: stdout and
stderr kept apart, tail, since and cursors, a partial line, rotation within
its cap, a follow that ends when the runtime stops, and a busy process's CPU
and memory."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runplane.adapters.drivers.output_settings import OutputSettings
from runplane.adapters.drivers.process import ProcessDriver
from runplane.adapters.drivers.supervisor_output import segment_name, segments
from runplane.domain.errors import ContainerGone
from runplane.domain.runtime_output import BadOutputQuery, LogChunk, LogQuery

COUNTER = (
    "import sys, time\n"
    "for i in range(6):\n"
    "    print('out', i, flush=True)\n"
    "    print('err', i, file=sys.stderr, flush=True)\n"
    "time.sleep(60)\n"
)


def python(code: str) -> dict[str, Any]:
    return {"command": [sys.executable, "-c", code]}


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[ProcessDriver]:
    settings = OutputSettings(log_max_bytes=40_000, log_files=2, metrics_interval_s=0.5)
    driver = ProcessDriver(tmp_path / "state", output=settings)
    try:
        yield driver
    finally:
        for info in await ProcessDriver(tmp_path / "state").list_containers():
            await driver.remove(info.container_id)
        await driver.resource_history().aclose()
        driver.close()


async def lines_until(
    driver: ProcessDriver, container_id: str, count: int, query: LogQuery | None = None
) -> LogChunk:
    deadline = time.monotonic() + 10
    while True:
        chunk = await driver.logs(container_id, query or LogQuery())
        if len(chunk.lines) >= count or time.monotonic() > deadline:
            return chunk
        await asyncio.sleep(0.05)


async def test_stdout_and_stderr_are_kept_apart_with_their_times(driver: ProcessDriver) -> None:
    before = time.time()
    started = await driver.start("rt", python(COUNTER))
    chunk = await lines_until(driver, started.container_id, 12)
    # Each stream in its order; how the two interleave is how they reached the supervisor.
    stdout = [line.text for line in chunk.lines if line.stream == "stdout"]
    stderr = [line.text for line in chunk.lines if line.stream == "stderr"]
    assert stdout == [f"out {i}" for i in range(6)]
    assert stderr == [f"err {i}" for i in range(6)]
    assert all(before <= line.ts <= time.time() for line in chunk.lines)
    assert chunk.running


async def test_tail_since_and_cursor(driver: ProcessDriver) -> None:
    started = await driver.start("rt", python(COUNTER))
    everything = await lines_until(driver, started.container_id, 12)
    last_three = await driver.logs(started.container_id, LogQuery(tail=3))
    assert [line.text for line in last_three.lines] == [line.text for line in everything.lines[-3:]]
    assert (await driver.logs(started.container_id, LogQuery(tail=0))).lines == []
    middle = everything.lines[5].ts
    since = await driver.logs(started.container_id, LogQuery(since=middle))
    assert since.lines
    assert all(line.ts >= middle for line in since.lines)
    # A cursor goes on after what was read: nothing new yet, then nothing twice.
    after = await driver.logs(started.container_id, LogQuery(cursor=everything.cursor))
    assert after.lines == []
    assert after.cursor == everything.cursor
    first_half = await driver.logs(started.container_id, LogQuery(max_lines=5))
    second_half = await driver.logs(started.container_id, LogQuery(cursor=first_half.cursor))
    assert first_half.lines + second_half.lines == everything.lines
    with pytest.raises(BadOutputQuery):
        await driver.logs(started.container_id, LogQuery(cursor="12:abc"))


async def test_a_partial_line_is_written_once_the_runtime_pauses(driver: ProcessDriver) -> None:
    code = "import sys, time; sys.stdout.write('name? '); sys.stdout.flush(); time.sleep(60)"
    started = await driver.start("rt", python(code))
    chunk = await lines_until(driver, started.container_id, 1)
    assert [line.text for line in chunk.lines] == ["name? "]


async def test_rotation_keeps_the_output_within_its_cap(driver: ProcessDriver) -> None:
    code = (
        "import time\n"
        "for i in range(4000):\n"
        "    print('line %05d' % i + ' x' * 40)\n"
        "print('done', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = await driver.start("rt", python(code))
    folder = driver.log_path(started.container_id).parent
    deadline = time.monotonic() + 10
    while True:
        last = await driver.logs(started.container_id, LogQuery(tail=1))
        if [line.text for line in last.lines] == ["done"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert [line.text for line in last.lines] == ["done"]
    kept = segments(str(folder))
    sizes = [(folder / segment_name(offset)).stat().st_size for offset in kept]
    assert len(kept) == 2  # the cap: log_files
    assert all(size <= 40_000 for size in sizes)
    assert kept[0] > 0  # the oldest were deleted
    # A cursor into what was rotated away goes on from the oldest kept line, saying so.
    chunk = await driver.logs(started.container_id, LogQuery(cursor="0"))
    assert chunk.dropped
    assert chunk.lines[0].text.startswith("line ")
    # The whole kept output reads in bounded chunks, each line once, in order.
    numbers: list[int] = []
    cursor = None
    while True:
        chunk = await driver.logs(started.container_id, LogQuery(cursor=cursor, max_lines=300))
        numbers += [int(line.text.split()[1]) for line in chunk.lines if line.text != "done"]
        if not chunk.lines:
            break
        cursor = chunk.cursor
    assert numbers == list(range(numbers[0], 4000))


async def test_a_read_after_the_end_has_every_line_and_says_it_ended(
    driver: ProcessDriver,
) -> None:
    code = "import sys\nfor i in range(500): print('bye', i)\nsys.exit(3)\n"
    started = await driver.start("rt", python(code))
    deadline = time.monotonic() + 10
    chunk = await driver.logs(started.container_id, LogQuery(tail=None))
    while chunk.running and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        chunk = await driver.logs(started.container_id, LogQuery(tail=None))
    assert not chunk.running
    assert [line.text for line in chunk.lines] == [f"bye {i}" for i in range(500)]


async def test_a_removed_container_has_no_logs(driver: ProcessDriver) -> None:
    started = await driver.start("rt", python(COUNTER))
    await driver.remove(started.container_id)
    with pytest.raises(ContainerGone):
        await driver.logs(started.container_id, LogQuery())
    with pytest.raises(ContainerGone):
        await driver.logs("not-a-container", LogQuery())


async def test_metrics_of_a_busy_process_tree(driver: ProcessDriver) -> None:
    # A busy child and 20 MB held by the main process: the tree's, summed.
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
        "held = bytearray(20 * 1024 * 1024)\n"
        "time.sleep(60)\n"
    )
    started = await driver.start("rt", python(code))
    await asyncio.sleep(0.5)
    window = await driver.metrics(started.container_id, 60)
    assert window.running
    assert window.samples
    first = window.samples[-1]
    assert first.cpu_percent > 0
    assert first.memory_bytes > 20 * 1024 * 1024
    assert first.processes == 2
    assert first.disk_bytes is not None
    deadline = time.monotonic() + 10
    while len(window.samples) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        window = await driver.metrics(started.container_id, 60)
    assert len(window.samples) >= 3  # sampled on its own meanwhile
    assert all(sample.cpu_percent > 0 for sample in window.samples)
    await driver.stop(started.container_id, timeout_s=1)
    deadline = time.monotonic() + 10
    while window.running and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        window = await driver.metrics(started.container_id, 60)
    assert not window.running


async def test_a_runtime_that_says_nothing_has_no_segment_and_empty_logs(
    driver: ProcessDriver,
) -> None:
    started = await driver.start("rt", {"command": ["sleep", "60"]})
    folder = driver.log_path(started.container_id).parent

    chunk = await driver.logs(started.container_id, LogQuery())
    stopped = await driver.stop(started.container_id)

    # The supervisor made no file for output that never came (its first
    # record makes the first segment), and the logs read as empty.
    assert segments(str(folder)) == []
    assert (chunk.lines, chunk.running) == ([], True)
    assert stopped.signal is not None
