"""Per-runtime Prometheus series (RUNPLANE_METRICS_PER_RUNTIME): one series per
runtime and kind, so off by default: a thousand runtimes make three thousand
series. A runtime's series go when it ends."""

from __future__ import annotations

import contextlib

from prometheus_client import Gauge

from runplane.adapters.drivers.resource_history import Exporter
from runplane.domain.runtime_output import ResourceSample

_LABELS = ("runtime_id", "driver")
CPU = Gauge("runplane_runtime_cpu_percent", "A runtime's CPU use, % of one core.", _LABELS)
MEMORY = Gauge("runplane_runtime_memory_bytes", "A runtime's resident memory.", _LABELS)
DISK = Gauge("runplane_runtime_disk_bytes", "A runtime's disk use, where known.", _LABELS)


def exporter(driver: str) -> Exporter:
    def export(runtime_id: str, sample: ResourceSample | None) -> None:
        labels = (runtime_id, driver)
        if sample is None:
            for gauge in (CPU, MEMORY, DISK):
                with contextlib.suppress(KeyError):  # never set, or gone already
                    gauge.remove(*labels)
            return
        CPU.labels(*labels).set(sample.cpu_percent)
        MEMORY.labels(*labels).set(sample.memory_bytes)
        if sample.disk_bytes is not None:
            DISK.labels(*labels).set(sample.disk_bytes)

    return export
