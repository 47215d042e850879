"""Entries a reader cannot decode are passed over, never a failed read: one
hostile or corrupt entry must not answer 500 for every caller that reads past it.

Each is logged at warning level the first time this process sees its id (reads
repeat, a log line per read would not), and counted in
`runplane_stream_entries_passed_over_total{stream}` every time."""

from __future__ import annotations

import logging
from collections import OrderedDict

from prometheus_client import Counter

logger = logging.getLogger(__name__)

PASSED_OVER = Counter(
    "runplane_stream_entries_passed_over",
    "Stream entries a reader could not decode and passed over",
    ["stream"],
)
REMEMBERED = 4_096
"""Ids already logged, per process: bounded, the oldest forgotten first."""

_logged: OrderedDict[tuple[str, str], None] = OrderedDict()


def pass_over(stream: str, entry_id: str, error: str) -> None:
    PASSED_OVER.labels(stream).inc()
    key = (stream, entry_id)
    if key in _logged:
        return
    _logged[key] = None
    if len(_logged) > REMEMBERED:
        _logged.popitem(last=False)
    logger.warning(
        "undecodable stream entry passed over",
        extra={"stream": stream, "entry_id": entry_id, "error": error[:200]},
    )
