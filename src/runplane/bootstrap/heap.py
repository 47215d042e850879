"""The heap a process built at start-up, set aside from the collector."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """What start-up built (modules, models, compiled statements) lives as long
    as the process: frozen, the collector's full passes skip it. Those passes
    over it were pauses of the whole event loop (30 ms on serve's heap), the
    slowest requests' tail and a stop round's last signals."""
    gc.collect()
    gc.freeze()
