"""Bodies of `GET /v1/runtimes/{id}/logs` and `/metrics`."""

from __future__ import annotations

from pydantic import BaseModel

from runplane.domain.runtime_output import LogLine, MetricsWindow


class LogLineOut(BaseModel):
    ts: float
    """Epoch seconds when the driver received the line."""
    stream: str
    """`stdout` or `stderr`."""
    text: str

    @classmethod
    def of(cls, line: LogLine) -> LogLineOut:
        return cls(ts=line.ts, stream=line.stream, text=line.text)


class LogsOut(BaseModel):
    runtime_id: str
    lines: list[LogLineOut]
    cursor: str
    """Pass it back as `cursor` to read what came after these lines."""
    running: bool
    """Whether the runtime was still producing output at the read."""
    more: bool
    """The read stopped at its bound: reading on from `cursor` gives more at once."""
    dropped: bool
    """Lines between the given cursor and these were rotated away."""


class SampleOut(BaseModel):
    ts: float
    cpu_percent: float
    """Of one core: 200.0 is two cores busy."""
    memory_bytes: int
    disk_bytes: int | None
    processes: int | None


class MetricsOut(BaseModel):
    runtime_id: str
    interval_s: float
    running: bool
    samples: list[SampleOut]

    @classmethod
    def of(cls, runtime_id: str, window: MetricsWindow) -> MetricsOut:
        return cls(
            runtime_id=runtime_id,
            interval_s=window.interval_s,
            running=window.running,
            samples=[
                SampleOut(
                    ts=s.ts,
                    cpu_percent=s.cpu_percent,
                    memory_bytes=s.memory_bytes,
                    disk_bytes=s.disk_bytes,
                    processes=s.processes,
                )
                for s in window.samples
            ],
        )
