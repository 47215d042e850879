"""A billing hook: one line per runtime start and stop, appended to a file.

Run it with serve (docs/hooks.md):

    PYTHONPATH=docs/examples RUNPLANE_HOOKS=billing=billing_hook:BillingHook runplane serve

A hook may see an event more than once (a crash after the hook ran and before
the event was acknowledged delivers it again), so it keeps the ids it has
written and writes each event once."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

BILLED = {"runtime.start", "runtime.stop", "runtime.remove"}


class BillingHook:
    def __init__(self) -> None:
        self.path = Path(os.environ.get("BILLING_FILE", "billing.jsonl"))
        self.lock = threading.Lock()  # plain methods run in worker threads
        self.seen = {json.loads(line)["event_id"] for line in self._lines()}

    def _lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def __call__(self, event: dict[str, Any]) -> None:
        if event["type"] not in BILLED or event["data"].get("outcome") != "success":
            return
        with self.lock:
            if event["id"] in self.seen:
                return  # delivered again: billed already
            line = {
                "event_id": event["id"],
                "runtime_id": event["subject"],
                "team_id": event["data"].get("team_id"),
                "type": event["type"],
                "time": event["time"],
            }
            with self.path.open("a") as billing:
                billing.write(json.dumps(line) + "\n")
                billing.flush()
                os.fsync(billing.fileno())  # written before the event is acknowledged
            self.seen.add(event["id"])
