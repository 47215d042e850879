"""What the drivers keep of their runtimes' output and resources (settings)."""

from __future__ import annotations

from dataclasses import dataclass

from runplane.adapters.drivers.supervisor_output import DEFAULT_FILES, DEFAULT_MAX_BYTES


@dataclass(frozen=True, slots=True)
class OutputSettings:
    log_max_bytes: int = DEFAULT_MAX_BYTES
    """Per log file of a runtime (process: a segment; docker: the engine's max-size)."""
    log_files: int = DEFAULT_FILES
    metrics_interval_s: float = 5.0
    metrics_watch_s: float = 600.0
    """A runtime is sampled this long after its metrics were last asked for."""
    metrics_per_runtime: bool = False
    """Sample every runtime and export per-runtime Prometheus series."""
