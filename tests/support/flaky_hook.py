"""An extension hook for tests/e2e/test_hooks.py, loaded by `serve` through
RUNPLANE_HOOKS. It fails the first FLAKY_FAILURES calls for every event, then
records the event. Its state is in files under FLAKY_DIR, so it carries across
a kill -9 of serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class FlakyHook:
    def __init__(self) -> None:
        self.dir = Path(os.environ["FLAKY_DIR"])
        self.failures = int(os.environ.get("FLAKY_FAILURES", "3"))

    async def __call__(self, event: dict[str, Any]) -> None:
        calls = self.dir / f"calls-{event['id']}"
        with calls.open("a") as log:  # one line per call
            log.write("x\n")
        if len(calls.read_text().splitlines()) <= self.failures:
            raise RuntimeError("the billing API is down")
        with (self.dir / "seen").open("a") as seen:
            seen.write(event["id"] + "\n")
