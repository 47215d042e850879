"""The counts of a trial, read from the outside: the job results and events on
raw Redis, the runtimes and operations tables over SQL, processes in /proc.
Nothing here asks runplane itself."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis

from tests.faults.cluster import proc_alive
from tests.faults.workload import Answer, JobSpec

EVENTS_STREAM = "runplane:events"
JOB_STREAMS = ("runtime:stop_jobs", "runtime:start_jobs")
TRANSIENT = frozenset(
    {"starting", "stopping", "pausing", "resuming", "restarting", "patching", "removing"}
)
LIVE = frozenset({"running", "paused"})
"""A record in one of these has a process that runs; in any other persistent status, none."""
OWN_TRANSIENT = {"start": "starting", "stop": "stopping"}
"""The transient status each operation the trials send passes through."""
DOWN = frozenset({"pending", "stopped", "removed", "error"})


@dataclass
class Counts:
    """One trial's figures (DESIGN names; see docs/reliability.md for each)."""

    jobs: int = 0
    no_result: int = 0
    doubled: int = 0
    wrong: int = 0
    transient: int = 0
    disagree: int = 0
    missing_events: int = 0
    settle_s: float | None = None
    effects: int = 0
    """Effective status-changing log entries of the trial's runtimes (the events owed)."""
    failures: dict[str, int] = field(default_factory=dict)
    """Final answers that were failures, by error code (for reading, not a count above)."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """A few ids behind each nonzero count, to start an investigation from."""


# -- database -------------------------------------------------------------------


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        return list(await connection.fetch(query, timeout=30))
    finally:
        await connection.close()


def fetch(dsn: str, query: str) -> list[dict[str, Any]]:
    return [dict(row) for row in asyncio.run(_fetch(dsn, query))]


OPERATIONS_QUERY = """
SELECT runtime_id, op, outcome, coalesce(error_code, '') AS error_code,
       coalesce(job_id, details->>'job_id') AS job,
       job_id IS NOT NULL AS claimed, status_from, status_to
FROM operations ORDER BY seq
"""
RUNTIMES_QUERY = "SELECT runtime_id, status, container_id, version FROM runtimes"
UNSENT_QUERY = "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL AND durable"


def transient_runtimes(dsn: str) -> list[str]:
    return [r["runtime_id"] for r in fetch(dsn, RUNTIMES_QUERY) if r["status"] in TRANSIENT]


def unsent_events(dsn: str) -> int:
    return int(fetch(dsn, UNSENT_QUERY)[0]["n"])


# -- redis ----------------------------------------------------------------------


def pending_entries(client: redis.Redis) -> int:
    total = 0
    for stream in JOB_STREAMS:
        try:
            groups = client.xinfo_groups(stream)
        except redis.ResponseError:  # no such stream
            continue
        total += sum(int(group["pending"]) for group in groups)
    return total


def durable_events(client: redis.Redis) -> list[dict[str, Any]]:
    """Every event on runplane:events, each once (a relay retry repeats its id)."""
    seen: dict[str, dict[str, Any]] = {}
    for _, fields in client.xrange(EVENTS_STREAM):
        try:
            event = json.loads(fields.get("event", ""))
        except ValueError:
            continue
        if isinstance(event, dict):
            seen.setdefault(str(event.get("id")), event)
    return list(seen.values())


# -- the counts -------------------------------------------------------------------


def effective(entry: dict[str, Any]) -> bool:
    """An entry that changed something: a success that is not a replay."""
    return entry["outcome"] == "success" and entry["error_code"] == ""


def count_no_result(jobs: list[JobSpec], answers: dict[str, list[Answer]]) -> list[str]:
    return [job.job_id for job in jobs if not answers.get(job.job_id)]


def count_doubled(jobs: list[JobSpec], entries: list[dict[str, Any]]) -> list[str]:
    """Job ids with more than one effective operation-log entry."""
    ours = {job.job_id for job in jobs}
    per_job = Counter(e["job"] for e in entries if effective(e) and e["job"] in ours)
    return sorted(job_id for job_id, n in per_job.items() if n > 1)


def count_wrong(
    jobs: list[JobSpec], answers: dict[str, list[Answer]], entries: list[dict[str, Any]]
) -> list[str]:
    """Job ids answered `failure` (any of their answers) although an effective entry
    of theirs is in the log; refused as `invalid_state` while the record stood in
    the job's own operation's transient status (an interrupted attempt that a
    repeat resumes, DESIGN §3); or answered both success and failure."""
    applied = {e["job"] for e in entries if effective(e) and e["job"]}
    wrong = []
    for job in jobs:
        got = answers.get(job.job_id, [])
        outcomes = {a.outcome for a in got}
        failed = "failure" in outcomes
        refused_own = any(
            a.error_code == "invalid_state" and a.status == OWN_TRANSIENT.get(job.op) for a in got
        )
        if (failed and job.job_id in applied) or refused_own or len(outcomes) > 1:
            wrong.append(job.job_id)
    return wrong


def count_missing_events(
    entries: list[dict[str, Any]], events: list[dict[str, Any]], runtime_ids: Iterable[str]
) -> list[str]:
    """Per runtime, effective status-changing entries without their durable
    `runtime.<op>` event (success, same status_from -> status_to), matched as
    multisets; one id per missing event."""
    ours = set(runtime_ids)
    wanted: Counter[tuple[str, str, str, str]] = Counter()
    for e in entries:
        if effective(e) and e["runtime_id"] in ours and e["status_to"] != e["status_from"]:
            wanted[(e["runtime_id"], f"runtime.{e['op']}", e["status_from"], e["status_to"])] += 1
    found: Counter[tuple[str, str, str, str]] = Counter()
    for event in events:
        data = event.get("data") or {}
        if data.get("outcome") != "success":
            continue
        key = (
            event.get("subject"),
            event.get("type"),
            data.get("status_from"),
            data.get("status_to"),
        )
        found[key] += 1
    missing = []
    for key, n in wanted.items():
        missing += [f"{key[0]}:{key[1]}:{key[2]}->{key[3]}"] * max(0, n - found[key])
    return missing


def count_disagreeing(
    records: list[dict[str, Any]], containers_dir: Path, runtime_ids: Iterable[str]
) -> list[str]:
    """Runtimes whose record says running/paused but whose process (container_id
    `p-<pid>-<start ticks>`) is gone, or whose record is down (or live) while a
    process of theirs, other than the record's, still runs."""
    live_by_runtime: dict[str, set[str]] = {}
    for state_file in containers_dir.glob("p-*/state.json"):
        state = read_json(state_file)
        pid, ticks = state.get("pid"), state.get("start_ticks")
        runtime_id = state.get("runtime_id") or read_json(state_file.with_name("meta.json")).get(
            "runtime_id"
        )
        if isinstance(pid, int) and isinstance(ticks, int) and proc_alive(pid, ticks):
            live_by_runtime.setdefault(str(runtime_id), set()).add(state_file.parent.name)
    ours = set(runtime_ids)
    disagree = []
    for record in records:
        runtime_id, status = record["runtime_id"], record["status"]
        if runtime_id not in ours or status in TRANSIENT:
            continue  # counted as transient
        live = live_by_runtime.get(runtime_id, set())
        if status in LIVE:
            bad = not _container_alive(record["container_id"]) or bool(
                live - {record["container_id"]}
            )
        else:
            bad = bool(live)
        if bad:
            disagree.append(f"{runtime_id}:{status}:{record['container_id']}:{sorted(live)}")
    return disagree


def _container_alive(container_id: str | None) -> bool:
    parts = (container_id or "").split("-")
    if len(parts) != 3 or parts[0] != "p" or not all(p.isdigit() for p in parts[1:]):
        return False
    return proc_alive(int(parts[1]), int(parts[2]))


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def final_failures(answers: dict[str, list[Answer]], jobs: list[JobSpec]) -> dict[str, int]:
    codes: Counter[str] = Counter()
    for job in jobs:
        got = answers.get(job.job_id)
        if got and got[-1].outcome == "failure":
            last = got[-1]
            codes[f"{last.error_code or '?'}" + (f" ({last.status})" if last.status else "")] += 1
    return dict(sorted(codes.items()))


def measure(
    *,
    dsn: str,
    client: redis.Redis,
    containers_dir: Path,
    runtime_ids: list[str],
    jobs: list[JobSpec],
    answers: dict[str, list[Answer]],
    settle_s: float | None,
) -> Counts:
    entries = fetch(dsn, OPERATIONS_QUERY)
    records = fetch(dsn, RUNTIMES_QUERY)
    ours = set(runtime_ids)
    found = {
        "no_result": count_no_result(jobs, answers),
        "doubled": count_doubled(jobs, entries),
        "wrong": count_wrong(jobs, answers, entries),
        "transient": sorted(
            f"{r['runtime_id']}:{r['status']}"
            for r in records
            if r["runtime_id"] in ours and r["status"] in TRANSIENT
        ),
        "disagree": count_disagreeing(records, containers_dir, runtime_ids),
        "missing_events": count_missing_events(entries, durable_events(client), runtime_ids),
    }
    return Counts(
        jobs=len(jobs),
        effects=sum(
            1
            for e in entries
            if effective(e) and e["runtime_id"] in ours and e["status_to"] != e["status_from"]
        ),
        settle_s=settle_s,
        failures=final_failures(answers, jobs),
        examples={name: ids[:5] for name, ids in found.items() if ids},
        **{name: len(ids) for name, ids in found.items()},
    )
